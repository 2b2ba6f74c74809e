"""Getting a dataset file onto disk: mirrors, retries, checksums, atomic writes.

A file is looked for in its folder first and the network is never touched when it is
there. Otherwise the mirrors are tried in rounds: each round asks every mirror in
turn, and after a round in which all of them failed the next one starts after an
exponential backoff (``delay``, ``2 * delay``, ``4 * delay``, ... seconds, at most
``MAX_DELAY_S``), for ``n_retries`` more rounds at most. A mirror that answers that
it does not have the file (HTTP 400, 401, 403, 404 or 410) is not asked again;
dropped connections, timeouts, server errors (5xx, 408, 429), truncated bodies and
bodies that fail their checksums are all retried.

The bytes stream to a temporary file in the same folder (``.<name>.*.part``), are
checked (length against ``Content-Length``, the gzip stream, the checksums), and only
then renamed into place, so an interrupted or corrupt transfer never leaves a file at
the final path; the temporary file is removed on any error, Ctrl-C included.

Settings, module-wide:

``N_RETRIES = 3``, ``DELAY_S = 1.0``
    The defaults of ``n_retries`` (rounds over the mirrors after the first one) and
    ``delay`` (the wait before the first retry round, doubled for each further
    round), which ``sk_convae.datasets.fetch_*`` take as arguments.
``MAX_DELAY_S = 60.0``
    Longest wait between two rounds (a server's ``Retry-After`` included).
``TIMEOUT_S = 30.0``
    Seconds to connect, and seconds without receiving a byte, before an attempt
    is given up as stalled and retried.

The last two are read at every call.
"""

import hashlib
import http.client
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

from sk_convae._version import __version__

N_RETRIES = 3
DELAY_S = 1.0
MAX_DELAY_S = 60.0
TIMEOUT_S = 30.0

_BLOCK = 1 << 16
# HTTP answers meaning "this mirror does not have the file": asking again is useless
_PERMANENT_HTTP = frozenset({400, 401, 403, 404, 410})
# what the waits between rounds go through; tests replace it
_sleep = time.sleep


@dataclass(frozen=True)
class RemoteFile:
    """A gzip-compressed file and what its bytes must hash to.

    ``md5`` and ``sha256`` are of the decompressed bytes, which stay the same
    whoever re-compresses the file; ``gz_md5`` is of the compressed file, for
    datasets that publish only that. At least one must be given. ``size``, the
    number of decompressed bytes when it is known, bounds the decompression: a file
    that would inflate beyond it is rejected without inflating it further.
    """

    filename: str
    md5: str | None = None
    sha256: str | None = None
    gz_md5: str | None = None
    size: int | None = None


class ChecksumError(ValueError):
    """A dataset file's bytes are not the published ones."""


class _TransientError(OSError):
    """A failed attempt worth repeating (a short body, for example)."""


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


def check_retry_options(n_retries, delay):
    """Validate the retry options of the ``fetch_*`` functions, in the user's terms."""
    if isinstance(n_retries, bool) or not isinstance(n_retries, Integral):
        raise TypeError(
            f"n_retries must be an int (rounds over the mirrors after the first), "
            f"got {type(n_retries).__name__}."
        )
    if n_retries < 0:
        raise ValueError(f"n_retries must be 0 or more, got {n_retries}.")
    if isinstance(delay, bool) or not isinstance(delay, Real):
        raise TypeError(
            f"delay must be a number of seconds, got {type(delay).__name__}."
        )
    if not 0 <= delay < float("inf"):
        raise ValueError(f"delay must be a finite number of seconds >= 0, got {delay}.")


def download(
    remote,
    mirrors,
    folder,
    *,
    n_retries=N_RETRIES,
    delay=DELAY_S,
    timeout=None,
    progress=False,
):
    """Download ``remote`` from the first mirror that serves good bytes.

    Parameters
    ----------
    remote : RemoteFile
        The file and its checksums.
    mirrors : sequence of str
        Base URLs, tried in this order in every round.
    folder : path-like
        Where the file goes; created if needed.
    n_retries : int, default=N_RETRIES
        Rounds over the mirrors after the first one.
    delay : float, default=DELAY_S
        Seconds before the first retry round, doubled for each further round, at
        most ``MAX_DELAY_S``; a server's ``Retry-After`` (with 429 or 503)
        lengthens a wait, within the same bound.
    timeout : float, default=None
        Seconds to connect, and seconds without a byte, before giving up on an
        attempt; None uses ``TIMEOUT_S``.
    progress : bool, default=False
        Show a progress bar (tqdm, on stderr) for each transfer, and a line for
        each failed attempt.

    Returns
    -------
    path : Path
        ``folder / remote.filename``, written atomically.

    Raises
    ------
    OSError
        If no mirror gave a complete, verified file; names every URL tried, how
        many times, its last error, and where the file can be put by hand.
    """
    timeout = TIMEOUT_S if timeout is None else timeout
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / remote.filename
    urls = [mirror.rstrip("/") + "/" + remote.filename for mirror in mirrors]
    attempts = dict.fromkeys(urls, 0)
    last_error = dict.fromkeys(urls, "not tried")
    active = list(urls)  # the mirrors that may still have the file
    retry_after = 0.0
    for round_ in range(n_retries + 1):
        if not active:
            break
        if round_:
            wait = min(max(delay * 2 ** (round_ - 1), retry_after), MAX_DELAY_S)
            _say(
                progress,
                f"{remote.filename}: no mirror succeeded; retrying in {wait:g} s "
                f"(retry {round_} of {n_retries})",
            )
            _sleep(wait)
            retry_after = 0.0
        for url in list(active):
            attempts[url] += 1
            try:
                _fetch(url, target, remote, timeout=timeout, progress=progress)
                return target
            except urllib.error.HTTPError as exc:
                exc.close()
                last_error[url] = f"HTTP Error {exc.code}: {exc.reason}"
                if exc.code in _PERMANENT_HTTP:
                    active.remove(url)
                else:
                    retry_after = max(retry_after, _retry_after_s(exc))
            except (OSError, http.client.HTTPException, ChecksumError) as exc:
                last_error[url] = _describe(exc, timeout)
            _say(progress, f"{url}: {last_error[url]}")
    tried = "\n  ".join(
        f"{url} ({attempts[url]} attempt{'' if attempts[url] == 1 else 's'}): "
        f"{last_error[url]}"
        for url in urls
    )
    tried = tried or "(no mirror is known for this file)"
    raise OSError(
        f"Could not download {remote.filename} from its {len(urls)} mirror(s); "
        f"tried:\n  {tried}\n"
        f"Put the file (as published, gzip-compressed) at {target}, "
        "or pass data_home= pointing to a folder that has it."
    )


def _fetch(url, target, remote, *, timeout, progress):
    """One attempt: ``url`` streamed to a temporary file, checked, renamed to
    ``target``. Raises (and leaves nothing behind) when anything is wrong."""
    request = urllib.request.Request(
        url,
        headers={
            "User-Agent": f"sk-convae/{__version__}",
            # the checksums are of the bytes as published: no transfer encoding
            "Accept-Encoding": "identity",
        },
    )
    fd, tmp = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".part"
    )
    bar = None
    try:
        with os.fdopen(fd, "wb") as f:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                expected = _content_length(response)
                limit = _max_compressed_size(remote)
                if expected is not None and limit is not None and expected > limit:
                    raise _TransientError(
                        f"the server announces {expected} bytes, more than the "
                        f"file can have ({limit})"
                    )
                bar = _progress_bar(progress, expected, remote.filename)
                received = _copy(response, f, bar, expected, limit)
            if expected is not None and received != expected:
                raise _TransientError(
                    f"transfer interrupted after {received} of {expected} bytes"
                )
            f.flush()
            os.fsync(f.fileno())
        _decompress_verified(Path(tmp).read_bytes(), remote)
        # the permissions a plain open() would give (mkstemp's are private), so
        # that a shared data home stays readable
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        if bar is not None:
            bar.close()


def _max_compressed_size(remote):
    """Most bytes the gzip file of ``remote`` can have, when its size is known.

    Deflate's worst case (zlib's ``deflateBound``) adds about 0.03% to the data,
    gzip 18 bytes of header and trailer: 1% and 64 KiB more are ample, and a
    server that sends more is not sending this file.
    """
    if remote.size is None:
        return None
    return remote.size + remote.size // 100 + (1 << 16)


def _copy(response, f, bar, expected, limit=None):
    """Stream the body into ``f``, at most ``limit`` bytes; the number received."""
    received = 0
    while True:
        try:
            block = response.read(_BLOCK)
        except http.client.IncompleteRead as exc:
            received += len(exc.partial)
            raise _TransientError(
                f"transfer interrupted after {received} of {expected} bytes"
            ) from None
        if not block:
            return received
        f.write(block)
        received += len(block)
        if limit is not None and received > limit:
            raise _TransientError(
                f"the server sent more than the {limit} bytes the file can have"
            )
        if bar is not None:
            bar.update(len(block))


def _content_length(response):
    value = response.headers.get("Content-Length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _retry_after_s(exc):
    """Seconds a 429/503 answer asks to wait (``Retry-After: <seconds>``), or 0."""
    value = exc.headers.get("Retry-After") if exc.headers is not None else None
    if value is None or not value.strip().isdigit():
        return 0.0
    return float(value)


def _describe(exc, timeout):
    """One line saying what went wrong with an attempt."""
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, Exception):
        exc = exc.reason  # e.g. "Connection refused", without urllib's wrapping
    if isinstance(exc, TimeoutError):
        return f"timed out: no answer or no data for {timeout:g} s"
    if isinstance(exc, (_TransientError, ChecksumError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _progress_bar(progress, total, name):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=name,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        leave=True,
    )


def _say(progress, message):
    """A line on stderr when the caller asked for progress, between the bars."""
    if progress:
        from tqdm import tqdm

        tqdm.write(message, file=sys.stderr)


def _decompress_verified(compressed, remote):
    """The decompressed bytes; ChecksumError saying what is wrong otherwise."""
    if remote.gz_md5 is not None:
        digest = hashlib.md5(compressed, usedforsecurity=False).hexdigest()
        if digest != remote.gz_md5:
            raise ChecksumError(f"md5 {digest}, expected {remote.gz_md5}")
    raw = gunzip(compressed, max_size=remote.size)
    if remote.size is not None and len(raw) != remote.size:
        raise ChecksumError(
            f"{len(raw)} bytes once decompressed, expected {remote.size}"
        )
    for name, expected in (("md5", remote.md5), ("sha256", remote.sha256)):
        if expected is None:
            continue
        digest = hashlib.new(name, raw, usedforsecurity=False).hexdigest()
        if digest != expected:
            raise ChecksumError(
                f"{name} of the decompressed bytes {digest}, expected {expected}"
            )
    return raw


def gunzip(compressed, *, max_size=None):
    """Decompress a gzip file (one member or several), never beyond ``max_size``.

    Parameters
    ----------
    compressed : bytes
        The whole file.
    max_size : int, default=None
        Most bytes the result may have; None for no bound. Decompression stops as
        soon as the output would exceed it, so memory stays bounded whatever the
        file holds (a "gzip bomb" included).

    Returns
    -------
    raw : bytes

    Raises
    ------
    ChecksumError
        If the bytes are not gzip, the stream is truncated or corrupt (each
        member's CRC-32 and length are checked), it holds more than ``max_size``
        bytes, or bytes other than gzip members or zero padding follow it.
    """
    rest = memoryview(bytes(compressed))
    if rest[:2] != b"\x1f\x8b":
        raise ChecksumError("not a gzip file (it does not start with 1f 8b)")
    parts, size = [], 0
    while rest:
        # 16 + MAX_WBITS: one gzip member, its header and trailer checked
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        fed = 0
        try:
            # the input in blocks, so that no call copies the whole file again
            while fed < len(rest) and not inflater.eof:
                block = rest[fed : fed + _BLOCK]
                fed += len(block)
                # max_length=0 is no bound; one byte over the bound is enough to
                # know that the file is too large
                limit = 0 if max_size is None else max_size - size + 1
                part = inflater.decompress(block, limit)
                size += len(part)
                if max_size is not None and size > max_size:
                    raise ChecksumError(
                        f"it decompresses to more than the expected {max_size} bytes"
                    )
                parts.append(part)
        except zlib.error as exc:
            raise ChecksumError(f"not a complete gzip file ({exc})") from None
        if not inflater.eof:
            raise ChecksumError("not a complete gzip file (the stream is truncated)")
        rest = rest[fed - len(inflater.unused_data) :]  # a view: no copy
        # what may follow a member, as for gzip.decompress: zero padding, then
        # another member
        rest = rest[_leading_zeros(rest) :]
        if rest and rest[:2] != b"\x1f\x8b":
            raise ChecksumError(
                f"not a gzip file: {len(rest)} other bytes follow the stream"
            )
    return b"".join(parts)


def _leading_zeros(view):
    """How many zero bytes ``view`` starts with (read a block at a time)."""
    count = 0
    while count < len(view):
        block = bytes(view[count : count + _BLOCK])
        zeros = len(block) - len(block.lstrip(b"\0"))
        count += zeros
        if zeros < len(block):
            break
    return count


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
