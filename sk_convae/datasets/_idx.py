"""The IDX file format of MNIST and its kin: read and write.

An IDX file is a big-endian header, then raw values in row-major order. The header is
two zero bytes, a type code (0x08 for unsigned bytes), the number of dimensions, and
one int32 size per dimension. MNIST images are ``(n, 28, 28)`` uint8 (magic 2051),
labels ``(n,)`` uint8 (magic 2049).

The reader trusts nothing in the bytes: every size the header declares is checked
against the bytes actually there before anything is allocated, so a damaged or
hostile file is a ``ValueError``, never a ``MemoryError`` or a long stall.
"""

import math
import struct

import numpy as np

_UBYTE = 0x08
# The other element types of the IDX format, for error messages: the datasets
# read here (MNIST, Fashion-MNIST) are all unsigned bytes.
_TYPE_NAMES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "int16",
    0x0C: "int32",
    0x0D: "float32",
    0x0E: "float64",
}
# NumPy 1.x arrays have at most 32 dimensions (2.x: 64); MNIST uses 1 or 3.
_MAX_NDIM = 32


def parse_idx(raw, *, name="IDX data"):
    """Array of uint8 from the bytes of an (uncompressed) IDX file.

    The sizes in the header must account for every byte of the body, exactly;
    they are checked before the array is made, so the memory used is at most the
    size of ``raw`` whatever the header claims.

    Parameters
    ----------
    raw : bytes
        The whole file.
    name : str
        What to call the file in error messages.

    Returns
    -------
    array : ndarray of uint8, shape given by the header
        A writable array that owns its memory.

    Raises
    ------
    ValueError
        If ``raw`` is not an IDX file of unsigned bytes whose header matches its
        length; the message names ``name`` and what is wrong.
    """
    raw = bytes(raw)
    if len(raw) < 4:
        raise ValueError(f"{name} is too short to be an IDX file ({len(raw)} bytes).")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0:
        raise ValueError(
            f"{name} is not an IDX file: it does not start with two zero bytes "
            f"(starts with {raw[:4].hex()})."
        )
    if dtype_code != _UBYTE:
        kind = _TYPE_NAMES.get(dtype_code, "an unknown type")
        raise ValueError(
            f"{name} is not an IDX file of unsigned bytes: its type code "
            f"0x{dtype_code:02x} is {kind}; only 0x08 (unsigned byte) is read here."
        )
    if ndim == 0 or ndim > _MAX_NDIM:
        raise ValueError(
            f"{name} is not a usable IDX file: it declares {ndim} dimensions "
            f"(1 to {_MAX_NDIM} are read)."
        )
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(
            f"{name} ends inside its IDX header ({len(raw)} of {header_size} bytes)."
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    # Python integers: exact for any header (np.prod would wrap around in int64)
    expected = header_size + math.prod(shape)
    if len(raw) != expected:
        raise ValueError(
            f"{name} has {len(raw)} bytes, but its IDX header {shape} needs {expected}."
        )
    if expected == header_size:  # a dimension of size 0: no values, no body
        try:
            return np.zeros(shape, dtype=np.uint8)
        except ValueError:  # the other sizes overflow NumPy's index type
            raise ValueError(
                f"{name} declares the shape {shape}, which NumPy cannot represent."
            ) from None
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape).copy()


def to_idx(array):
    """The bytes of an IDX file holding ``array`` (uint8, any number of dimensions)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"IDX here holds uint8 values, got {array.dtype}.")
    if not 1 <= array.ndim <= _MAX_NDIM:
        raise ValueError(f"IDX holds 1 to {_MAX_NDIM} dimensions, got {array.ndim}.")
    if max(array.shape) >= 2**32:
        raise ValueError(f"IDX sizes are below 2**32, got shape {array.shape}.")
    header = struct.pack(">HBB", 0, _UBYTE, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()
