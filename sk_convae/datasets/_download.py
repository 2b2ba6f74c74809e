"""Getting a dataset file onto disk: mirrors, checksums, atomic writes.

A file is looked for in its folder first and the network is never touched when it is
there. Otherwise each mirror is tried in turn; the bytes go to a temporary file in
the same folder, are checked (length, gzip stream, checksums), and only then renamed
into place, so an interrupted or corrupt transfer never leaves a file behind.
"""

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

_TIMEOUT_S = 60
_BLOCK = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """A gzip-compressed file and what its bytes must hash to.

    ``md5`` and ``sha256`` are of the decompressed bytes, which stay the same
    whoever re-compresses the file; ``gz_md5`` is of the compressed file, for
    datasets that publish only that. At least one must be given.
    """

    filename: str
    md5: str | None = None
    sha256: str | None = None
    gz_md5: str | None = None


class ChecksumError(ValueError):
    """A dataset file's bytes are not the published ones."""


def read_verified(path, remote):
    """Decompressed bytes of ``path``, checked against ``remote``'s checksums.

    Raises
    ------
    ChecksumError
        If the file is not a complete gzip stream or its checksums differ; the
        message names the file and how to fix it.
    """
    path = Path(path)
    try:
        return _decompress_verified(path.read_bytes(), remote)
    except ChecksumError as exc:
        raise ChecksumError(
            f"{path} is corrupt or truncated: {exc}. Delete it and fetch again "
            "to download a fresh copy, or replace it with the original file "
            f"{remote.filename}."
        ) from None


def download(remote, mirrors, folder):
    """Download ``remote`` from the first mirror that serves good bytes.

    Returns
    -------
    path : Path
        ``folder / remote.filename``, written atomically.

    Raises
    ------
    OSError
        If no mirror gave a complete, verified file; lists what each one did and
        where the file can be put by hand.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / remote.filename
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + remote.filename
        try:
            compressed = _get(url)
        except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
            failures.append(f"{url}: {exc}")
            continue
        try:
            _decompress_verified(compressed, remote)
        except ChecksumError as exc:
            failures.append(f"{url}: {exc}")
            continue
        _write_atomically(target, compressed)
        return target
    tried = "\n  ".join(failures)
    raise OSError(
        f"Could not download {remote.filename}; tried:\n  {tried}\n"
        f"Put the file (as published, gzip-compressed) at {target}, "
        "or pass data_home= pointing to a folder that has it."
    )


def _get(url):
    """The body at ``url``; an error if it is shorter than its Content-Length."""
    with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
        expected = response.headers.get("Content-Length")
        chunks = []
        while block := response.read(_BLOCK):
            chunks.append(block)
    body = b"".join(chunks)
    if expected is not None and len(body) != int(expected):
        raise OSError(
            f"transfer interrupted after {len(body)} of {int(expected)} bytes"
        )
    return body


def _decompress_verified(compressed, remote):
    """The decompressed bytes; ChecksumError saying what is wrong otherwise."""
    if remote.gz_md5 is not None:
        digest = hashlib.md5(compressed, usedforsecurity=False).hexdigest()
        if digest != remote.gz_md5:
            raise ChecksumError(f"md5 {digest}, expected {remote.gz_md5}")
    try:
        raw = gzip.decompress(compressed)
    except (OSError, EOFError, zlib.error) as exc:
        raise ChecksumError(f"not a complete gzip file ({exc})") from None
    for name, expected in (("md5", remote.md5), ("sha256", remote.sha256)):
        if expected is None:
            continue
        digest = hashlib.new(name, raw, usedforsecurity=False).hexdigest()
        if digest != expected:
            raise ChecksumError(
                f"{name} of the decompressed bytes {digest}, expected {expected}"
            )
    return raw


def _write_atomically(target, data):
    """Write ``data`` to ``target`` through a temporary file and a rename.

    The file gets the permissions a plain ``open`` would give it (mkstemp's are
    private), so that a shared data home stays readable.
    """
    fd, tmp = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".part"
    )
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
