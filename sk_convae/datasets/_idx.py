"""The IDX file format of MNIST and its kin: read and write.

An IDX file is a big-endian header, then raw values in row-major order. The header is
two zero bytes, a type code (0x08 for unsigned bytes), the number of dimensions, and
one int32 size per dimension. MNIST images are ``(n, 28, 28)`` uint8 (magic 2051),
labels ``(n,)`` uint8 (magic 2049).
"""

import struct

import numpy as np

_UBYTE = 0x08


def parse_idx(raw, *, name="IDX data"):
    """Array of uint8 from the bytes of an (uncompressed) IDX file.

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
    """
    if len(raw) < 4:
        raise ValueError(f"{name} is too short to be an IDX file ({len(raw)} bytes).")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != _UBYTE or ndim == 0:
        raise ValueError(f"{name} is not an IDX file of unsigned bytes.")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(f"{name} ends inside its IDX header.")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    expected = header_size + int(np.prod(shape))
    if len(raw) != expected:
        raise ValueError(
            f"{name} has {len(raw)} bytes, but its IDX header {shape} needs {expected}."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape).copy()


def to_idx(array):
    """The bytes of an IDX file holding ``array`` (uint8, any number of dimensions)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"IDX here holds uint8 values, got {array.dtype}.")
    header = struct.pack(">HBB", 0, _UBYTE, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()
