"""Fuzzing the dataset file readers (hypothesis): IDX headers and bodies, gzip streams.

Whatever the bytes, reading a file ends quickly in an array or a ``ValueError`` that
says what is wrong: never a ``MemoryError``, a long stall or another exception. Sizes
declared in an IDX header are checked against the bytes that are there before
anything is allocated, and decompression stops at the size the file is known to
have, so a file that claims (or inflates to) gigabytes costs no memory.
"""

import gzip
import hashlib
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_array_equal

from sk_convae.datasets._download import (
    ChecksumError,
    RemoteFile,
    gunzip,
    read_verified,
)
from sk_convae.datasets._idx import parse_idx, to_idx

# Every example must finish well within this (a stall or a huge allocation would
# not); generous for a loaded CI machine.
FAST = settings(max_examples=200, deadline=1000)
HUGE = (2**31, 2**32 - 1, 2**16, 2**24)


# ----------------------------------------------------------------------------------
# IDX: the header against the body


@st.composite
def idx_bytes(draw):
    """An IDX header of drawn type, rank and sizes (small or huge), then a body of
    drawn length: sometimes what the header needs, mostly not."""
    type_code = draw(st.sampled_from([0x08, 0x08, 0x08, 0x09, 0x0D, 0xFF]))
    ndim = draw(st.sampled_from([0, 1, 2, 3, 4, 33, 255]))
    dims = draw(
        st.lists(
            st.integers(0, 6) | st.sampled_from(HUGE), min_size=ndim, max_size=ndim
        )
    )
    header = struct.pack(">HBB", draw(st.sampled_from([0, 0, 0, 1])), type_code, ndim)
    header += struct.pack(f">{ndim}I", *dims)
    needed = int(np.prod(dims, dtype=object)) if dims else 0
    length = draw(
        st.sampled_from([needed, needed - 1, needed + 1]) | st.integers(0, 64)
    )
    length = max(0, min(length, 4096))  # a huge declared size gets a short body
    body = draw(st.binary(min_size=length, max_size=length))
    cut = draw(st.none() | st.integers(0, len(header)))  # sometimes a cut header
    return header[:cut] + (body if cut is None else b"")


def _check_parsed(raw):
    """parse_idx(raw) is an array that accounts for every byte, or a ValueError."""
    try:
        array = parse_idx(raw, name="fuzz.idx")
    except ValueError as exc:
        assert "fuzz.idx" in str(exc)
        return None
    assert array.dtype == np.uint8 and array.flags.writeable and array.flags.owndata
    assert len(raw) == 4 + 4 * array.ndim + array.size
    assert_array_equal(
        array.ravel(), np.frombuffer(raw[4 + 4 * array.ndim :], np.uint8)
    )
    return array


@FAST
@given(raw=idx_bytes())
# found by this test: a size of 0 beside huge sizes (numpy's own error, not
# naming the file), and sizes whose product wraps around to 0 in int64
@example(raw=struct.pack(">HBB4I", 0, 0x08, 4, 0, 2, 2**31, 2**31))
@example(raw=struct.pack(">HBB4I", 0, 0x08, 4, 2**16, 2**16, 2**16, 2**16))
def test_idx_headers_and_bodies(raw):
    _check_parsed(raw)


@FAST
@given(raw=st.binary(max_size=300))
def test_idx_random_bytes(raw):
    _check_parsed(raw)


@settings(max_examples=50, deadline=1000)
@given(
    array=hnp.arrays(
        np.uint8,
        hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6),
    ),
    data=st.data(),
)
def test_idx_round_trip_and_every_truncation(array, data):
    raw = to_idx(array)
    parsed = parse_idx(raw)
    assert parsed.shape == array.shape
    assert_array_equal(parsed, array)
    cut = data.draw(st.integers(0, len(raw) - 1), label="cut")
    with pytest.raises(ValueError):
        parse_idx(raw[:cut])
    extra = data.draw(st.binary(min_size=1, max_size=8), label="extra")
    with pytest.raises(ValueError, match="but its IDX header"):
        parse_idx(raw + extra)


@pytest.mark.parametrize("ndim", [1, 3, 8, 32])
def test_huge_declared_sizes_are_refused_before_allocating(ndim):
    """2**31 in every axis (or a product that wraps around in int64) is a quick
    ValueError: the check happens on the header alone."""
    for dims in ([2**31] * ndim, [2**16] * ndim, [2**32 - 1] * ndim):
        raw = struct.pack(f">HBB{ndim}I", 0, 0x08, ndim, *dims) + b"\x00" * 16
        tracemalloc.start()
        try:
            with pytest.raises(ValueError, match="but its IDX header"):
                parse_idx(raw)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 1 << 20


def test_idx_error_messages_name_the_problem():
    with pytest.raises(ValueError, match="type code 0x0d is float32"):
        parse_idx(b"\0\0\x0d\x01\0\0\0\x01abcd")
    with pytest.raises(ValueError, match="declares 33 dimensions"):
        parse_idx(struct.pack(">HBB33I", 0, 8, 33, *[1] * 33) + b"a")
    with pytest.raises(ValueError, match="declares 0 dimensions"):
        parse_idx(b"\0\0\x08\x00")
    assert parse_idx(to_idx(np.zeros((0, 28, 28), np.uint8))).shape == (0, 28, 28)


# ----------------------------------------------------------------------------------
# gzip: truncated, corrupt, padded, concatenated, bombs


@st.composite
def gzip_bytes(draw):
    """A gzip file of a short body, then damaged in one drawn way (or not at all)."""
    body = draw(st.binary(max_size=200))
    compressed = gzip.compress(body, mtime=0)
    how = draw(
        st.sampled_from(
            ["intact", "cut", "flip", "padded", "two-members", "junk-after", "raw"]
        )
    )
    if how == "cut":
        return compressed[: draw(st.integers(0, len(compressed) - 1))]
    if how == "flip":
        at = draw(st.integers(0, len(compressed) - 1))
        bit = draw(st.integers(0, 7))
        return (
            compressed[:at] + bytes([compressed[at] ^ 1 << bit]) + compressed[at + 1 :]
        )
    if how == "padded":
        return compressed + b"\0" * draw(st.integers(1, 20))
    if how == "two-members":
        return compressed + gzip.compress(draw(st.binary(max_size=50)), mtime=0)
    if how == "junk-after":
        return compressed + draw(st.binary(min_size=1, max_size=20))
    if how == "raw":  # not gzip at all
        return body
    return compressed


def _stdlib(raw):
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error):
        return None


def _stricter_than_stdlib(raw):
    """Where gunzip refuses what gzip.decompress takes: an empty file (no member at
    all), and header flags the standard library does not check but zlib does (the
    reserved bits, 0xe0, and the header's own CRC, 0x02)."""
    return raw == b"" or (len(raw) > 3 and raw[3] & 0xE2)


@FAST
@given(raw=gzip_bytes())
def test_gunzip_agrees_with_the_standard_library_or_refuses(raw):
    """The bytes ``gzip.decompress`` gives where that succeeds; a ChecksumError (a
    ValueError) wherever it fails, and on the few files it is lenient with."""
    expected = _stdlib(raw)
    try:
        got = gunzip(raw)
    except ChecksumError:
        assert expected is None or _stricter_than_stdlib(raw)
        return
    assert got == expected


@FAST
@given(raw=gzip_bytes(), max_size=st.integers(0, 300))
def test_gunzip_never_goes_beyond_max_size(raw, max_size):
    try:
        got = gunzip(raw, max_size=max_size)
    except ChecksumError:
        return
    assert len(got) <= max_size
    assert got == _stdlib(raw)


def test_a_gzip_bomb_is_refused_without_inflating_it():
    """64 MiB of zeros in 64 KiB of gzip: refused at the expected size, with the
    memory the expected size needs, not the bomb's."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    bomb = b"".join(deflate.compress(zeros) for _ in range(64)) + deflate.flush()
    assert len(bomb) < 1 << 17
    tracemalloc.start()
    try:
        with pytest.raises(ChecksumError, match="more than the expected 60008 bytes"):
            gunzip(bomb, max_size=60008)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * len(bomb) + (1 << 20)


# ----------------------------------------------------------------------------------
# A file on disk, as fetch_mnist reads it


@settings(max_examples=100, deadline=1000)
@given(raw=gzip_bytes() | st.binary(max_size=100), data=st.data())
def test_any_file_on_disk_is_an_array_or_a_clear_error(raw, data, tmp_path_factory):
    """``parse_idx(read_verified(...))``, the path of every file fetch_mnist reads:
    a damaged file is a ValueError naming it; one that passes the checksum but
    whose header lies is a ValueError too."""
    folder = tmp_path_factory.getbasetemp() / "idx-fuzz"
    folder.mkdir(exist_ok=True)
    path = folder / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(raw)
    decompressed = _stdlib(raw)
    # half the time the checksum is the file's own: the IDX check must still hold
    honest = decompressed is not None and data.draw(st.booleans(), label="honest")
    md5 = hashlib.md5(decompressed if honest else b"the published file").hexdigest()
    remote = RemoteFile(path.name, md5=md5, size=data.draw(st.none() | st.just(10008)))
    try:
        array = parse_idx(read_verified(path, remote), name=str(path))
    except ValueError as exc:
        assert str(path) in str(exc)
        return
    assert honest and array.dtype == np.uint8
