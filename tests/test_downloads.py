"""Downloads over a flaky network: retries with backoff across mirrors, progress, and
a clear error when every mirror fails.

A real HTTP server runs on 127.0.0.1 in a thread. For each path it follows a script,
one behaviour per request (the last one repeats): serve the file, drop the
connection before answering, reset it, cut the body short, serve other bytes, stall,
or answer with an HTTP error. The waits between retry rounds are recorded instead
of slept.
"""

import gzip
import hashlib
import http.server
import socket
import struct
import threading
from dataclasses import replace

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from sk_convae.datasets import _download, _mnist, fetch_mnist
from sk_convae.datasets._download import RemoteFile, download
from sk_convae.datasets._idx import to_idx

IMAGES = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
LABELS = np.arange(5, dtype=np.uint8)
FILES = {
    "t10k-images-idx3-ubyte.gz": gzip.compress(to_idx(IMAGES), mtime=0),
    "t10k-labels-idx1-ubyte.gz": gzip.compress(to_idx(LABELS), mtime=0),
}
NAME = "t10k-labels-idx1-ubyte.gz"


def _remote(name):
    raw = gzip.decompress(FILES[name])
    return RemoteFile(name, md5=hashlib.md5(raw).hexdigest(), size=len(raw))


def _spec(mirrors):
    """MNIST's description, with our files and mirrors (the train files unused)."""
    test = (_remote("t10k-images-idx3-ubyte.gz"), _remote(NAME))
    return replace(_mnist.MNIST, mirrors=tuple(mirrors), train=test, test=test)


# ----------------------------------------------------------------------------------
# The flaky server


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        with server.lock:
            server.requests.append(self.path)
            script = server.scripts.get(self.path, ["404"])
            mode = script.pop(0) if len(script) > 1 else script[0]
        body = FILES.get(self.path.rsplit("/", 1)[-1], b"")
        if mode == "drop":  # close before any answer
            self.close_connection = True
            return
        if mode == "reset":  # abort the connection: the client sees a reset (RST)
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            self.connection.close()
            self.close_connection = True
            return
        if mode.isdigit():
            self.send_response(int(mode))
            if mode in ("429", "503"):
                self.send_header("Retry-After", "7")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if mode == "wrong":  # a complete, well-formed file with other contents
            body = gzip.compress(to_idx(LABELS[::-1].copy()), mtime=0)
        if mode.startswith("oversized"):  # far more than the file can be
            body = bytes(200_000)
        self.send_response(200)
        if mode not in ("cut-no-length", "oversized-no-length"):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "stall":  # headers, then nothing until the client gives up
            server.release.wait(10)
            return
        if mode in ("cut", "cut-no-length"):
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.lock = threading.Lock()
    httpd.scripts = {}
    httpd.requests = []
    httpd.release = threading.Event()
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"

    def mirror(prefix, *script):
        """A mirror under /prefix/ whose every file follows ``script``."""
        for name in FILES:
            httpd.scripts[f"/{prefix}/{name}"] = list(script)
        return f"{httpd.url}/{prefix}/"

    httpd.mirror = mirror
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def waits(monkeypatch):
    """The waits between retry rounds, recorded instead of slept."""
    recorded = []
    monkeypatch.setattr(_download, "_sleep", recorded.append)
    return recorded


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ----------------------------------------------------------------------------------
# Recovering


@pytest.mark.parametrize(
    "failure",
    [
        "drop",
        "reset",
        "cut",
        "cut-no-length",
        "wrong",
        "oversized",
        "oversized-no-length",
        "500",
        "503",
        "stall",
    ],
)
def test_each_kind_of_failure_is_retried(tmp_path, server, waits, failure):
    mirror = server.mirror("flaky", failure, "ok")
    path = download(_remote(NAME), [mirror], tmp_path, delay=0.5, timeout=0.5)
    assert path == tmp_path / NAME
    assert path.read_bytes() == FILES[NAME]
    assert _leftovers(tmp_path) == [NAME]  # no temporary file left
    assert len(server.requests) == 2
    # a 503 asks for 7 s with Retry-After; the rest wait the first backoff
    assert waits == ([7.0] if failure == "503" else [0.5])


def test_mirrors_are_tried_in_turn_and_the_waits_double(tmp_path, server, waits):
    first = server.mirror("a", "500")
    second = server.mirror("b", "drop", "cut", "reset", "ok")
    download(_remote(NAME), [first, second], tmp_path, n_retries=3, delay=0.25)
    assert server.requests == [f"/{m}/{NAME}" for m in "abababab"]
    assert waits == [0.25, 0.5, 1.0]
    assert (tmp_path / NAME).read_bytes() == FILES[NAME]


def test_a_mirror_without_the_file_is_not_asked_again(tmp_path, server, waits):
    missing = server.mirror("gone", "404")
    flaky = server.mirror("flaky", "cut", "cut", "ok")
    download(_remote(NAME), [missing, flaky], tmp_path, delay=0)
    assert server.requests == [f"/gone/{NAME}"] + [f"/flaky/{NAME}"] * 3
    assert waits == [0, 0]


def test_waits_are_capped(tmp_path, server, waits):
    mirror = server.mirror("down", "500")
    with pytest.raises(OSError):
        download(_remote(NAME), [mirror], tmp_path, n_retries=9, delay=1.0)
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_fetch_mnist_rides_out_a_flaky_mirror(tmp_path, monkeypatch, server, waits):
    flaky = server.mirror("flaky", "drop", "cut", "ok")
    monkeypatch.setattr(_mnist, "MNIST", _spec([flaky]))
    test = fetch_mnist(tmp_path, subset="test", delay=0.1)
    assert_array_equal(test.images, IMAGES)
    assert_array_equal(test.target, LABELS)
    assert _leftovers(tmp_path / "mnist") == sorted(FILES)
    assert waits == [0.1, 0.2] * 2  # two files, each after two failed tries


# ----------------------------------------------------------------------------------
# Failing clearly


def test_every_mirror_failing_names_each_url_and_its_last_error(
    tmp_path, monkeypatch, server, waits
):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{s.getsockname()[1]}/"
    missing = server.mirror("gone", "404")
    erroring = server.mirror("err", "500")
    cut = server.mirror("cut", "cut")
    monkeypatch.setattr(_mnist, "MNIST", _spec([missing, erroring, cut, refused]))
    with pytest.raises(OSError) as excinfo:
        fetch_mnist(tmp_path, subset="test", n_retries=2, delay=0)
    message = str(excinfo.value)
    assert message.startswith(
        "Could not download t10k-images-idx3-ubyte.gz from its 4 mirror(s)"
    )
    lines = message.splitlines()
    name = "t10k-images-idx3-ubyte.gz"
    assert f"  {missing}{name} (1 attempt): HTTP Error 404: Not Found" in lines
    assert f"  {erroring}{name} (3 attempts): HTTP Error 500: Internal" in " ".join(
        lines
    )
    assert any(
        line.startswith(f"  {cut}{name} (3 attempts): transfer interrupted after ")
        for line in lines
    )
    assert any(
        line.startswith(f"  {refused}{name} (3 attempts): ") and "refused" in line
        for line in lines
    )
    assert f"Put the file (as published, gzip-compressed) at {tmp_path}" in message
    assert waits == [0, 0]
    assert _leftovers(tmp_path / "mnist") == []


def test_wrong_bytes_are_never_kept(tmp_path, server, waits):
    mirror = server.mirror("wrong", "wrong")
    with pytest.raises(OSError, match="md5 of the decompressed bytes") as excinfo:
        download(_remote(NAME), [mirror], tmp_path, n_retries=1, delay=0)
    assert "(2 attempts)" in str(excinfo.value)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "mode, message",
    [
        ("oversized", "the server announces 200000 bytes, more than the file can"),
        ("oversized-no-length", "the server sent more than the 65549 bytes"),
    ],
)
def test_a_body_larger_than_the_file_can_be_is_cut_short(
    tmp_path, server, waits, mode, message
):
    mirror = server.mirror("big", mode)
    with pytest.raises(OSError, match=message):
        download(_remote(NAME), [mirror], tmp_path, n_retries=0)
    assert _leftovers(tmp_path) == []


def test_a_stalled_server_times_out(tmp_path, server, waits):
    mirror = server.mirror("stall", "stall")
    with pytest.raises(OSError, match=r"timed out: no answer or no data for 0.3 s"):
        download(_remote(NAME), [mirror], tmp_path, n_retries=0, timeout=0.3)
    assert _leftovers(tmp_path) == []


def test_nothing_is_at_the_final_path_until_the_file_is_checked(
    tmp_path, monkeypatch, server, waits
):
    target = tmp_path / NAME
    seen = []
    verify = _download._decompress_verified

    def spy(compressed, remote):
        seen.append(target.exists())
        return verify(compressed, remote)

    monkeypatch.setattr(_download, "_decompress_verified", spy)
    download(_remote(NAME), [server.mirror("ok", "ok")], tmp_path)
    assert seen == [False] and target.exists()


def test_an_interrupt_leaves_no_file(tmp_path, monkeypatch, server, waits):
    def interrupt(compressed, remote):
        raise KeyboardInterrupt

    monkeypatch.setattr(_download, "_decompress_verified", interrupt)
    with pytest.raises(KeyboardInterrupt):
        download(_remote(NAME), [server.mirror("ok", "ok")], tmp_path)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"n_retries": -1}, ValueError, "n_retries must be 0 or more"),
        ({"n_retries": 1.5}, TypeError, "n_retries must be an int"),
        ({"n_retries": True}, TypeError, "n_retries must be an int"),
        ({"delay": -1}, ValueError, "delay must be a finite number"),
        ({"delay": float("nan")}, ValueError, "delay must be a finite number"),
        ({"delay": "1"}, TypeError, "delay must be a number of seconds"),
    ],
)
def test_bad_retry_options(tmp_path, options, error, message):
    with pytest.raises(error, match=message):
        fetch_mnist(tmp_path, **options)


# ----------------------------------------------------------------------------------
# Progress


def test_progress_bar_on_request(tmp_path, monkeypatch, server, waits, capsys):
    flaky = server.mirror("flaky", "cut", "ok")
    monkeypatch.setattr(_mnist, "MNIST", _spec([flaky]))
    fetch_mnist(tmp_path, subset="test", progress=True, delay=0)
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err
    for name in FILES:
        assert name in err
        assert f"{flaky}{name}: transfer interrupted after" in err
        assert f"{name}: no mirror succeeded; retrying in 0 s (retry 1 of 3)" in err
    assert "100%" in err
    # the files are on disk now: no bar, no output
    fetch_mnist(tmp_path, subset="test", progress=True)
    assert capsys.readouterr().err == ""


def test_no_output_by_default(tmp_path, monkeypatch, server, waits, capsys):
    flaky = server.mirror("flaky", "cut", "ok")
    monkeypatch.setattr(_mnist, "MNIST", _spec([flaky]))
    fetch_mnist(tmp_path, subset="test", delay=0)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
