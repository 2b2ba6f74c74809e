"""The MNIST loaders: files on disk, downloads from a local server, bad files.

No test touches the network: files are written here, downloads come from an HTTP
server on 127.0.0.1, and the real MNIST files are used only where they are present
in scikit-learn's data home (``$SCIKIT_LEARN_DATA/mnist``).
"""

import gzip
import hashlib
import http.server
import os
import threading
import urllib.request
from dataclasses import replace

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from sk_convae.datasets import _download, _mnist, fetch_fashion_mnist, fetch_mnist
from sk_convae.datasets._download import RemoteFile
from sk_convae.datasets._idx import parse_idx, to_idx
from tests.conftest import DATA_HOME, needs_mnist

# ----------------------------------------------------------------------------------
# A small fake dataset in the canonical layout


def _fake_split(n, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    return images, labels


TRAIN = _fake_split(12, 0)
TEST = _fake_split(5, 1)
FILES = {
    "train-images-idx3-ubyte.gz": gzip.compress(to_idx(TRAIN[0])),
    "train-labels-idx1-ubyte.gz": gzip.compress(to_idx(TRAIN[1])),
    "t10k-images-idx3-ubyte.gz": gzip.compress(to_idx(TEST[0])),
    "t10k-labels-idx1-ubyte.gz": gzip.compress(to_idx(TEST[1])),
}


def _remote(name, *, by="decompressed"):
    if by == "decompressed":
        raw = gzip.decompress(FILES[name])
        return RemoteFile(
            name,
            md5=hashlib.md5(raw).hexdigest(),
            sha256=hashlib.sha256(raw).hexdigest(),
        )
    return RemoteFile(name, gz_md5=hashlib.md5(FILES[name]).hexdigest())


def _spec(base, mirrors, by="decompressed"):
    return replace(
        base,
        mirrors=tuple(mirrors),
        train=(
            _remote("train-images-idx3-ubyte.gz", by=by),
            _remote("train-labels-idx1-ubyte.gz", by=by),
        ),
        test=(
            _remote("t10k-images-idx3-ubyte.gz", by=by),
            _remote("t10k-labels-idx1-ubyte.gz", by=by),
        ),
    )


def _write_files(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in FILES.items():
        (folder / name).write_bytes(data)


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    """Failed downloads are retried after a backoff: no test waits for it."""
    monkeypatch.setattr(_download, "_sleep", lambda seconds: None)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


# ----------------------------------------------------------------------------------
# A local HTTP server with good, missing, corrupt and interrupted files


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append(self.path)
        mode, body = self.server.routes.get(self.path, ("missing", b""))
        if mode == "missing":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "interrupted":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.routes = {}
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _serve(server, prefix, mode="ok", files=FILES):
    for name, data in files.items():
        if mode == "corrupt":
            data = gzip.compress(b"\0\0\x08\x01\0\0\0\x03abc")
        server.routes[f"/{prefix}/{name}"] = (mode, data)
    return f"{server.url}/{prefix}/"


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ----------------------------------------------------------------------------------
# The IDX format


def test_idx_round_trip():
    images = TRAIN[0]
    parsed = parse_idx(to_idx(images))
    assert_array_equal(parsed, images)
    assert parsed.flags.writeable


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"\0\0", "too short"),
        (b"\x01\0\x08\x01\0\0\0\x01a", "not an IDX file"),
        (b"\0\0\x08\x02\0\0\0\x02", "ends inside its IDX header"),
        (to_idx(TRAIN[1])[:-1], "has 19 bytes, but its IDX header"),
    ],
)
def test_idx_rejects_malformed_bytes(raw, message):
    with pytest.raises(ValueError, match=message):
        parse_idx(raw)


# ----------------------------------------------------------------------------------
# Files already on disk


def test_files_on_disk_are_read_without_network(tmp_path, monkeypatch, no_network):
    monkeypatch.setattr(_mnist, "MNIST", _spec(_mnist.MNIST, ["http://unused/"]))
    _write_files(tmp_path / "mnist")

    train = fetch_mnist(tmp_path)
    assert train.data.shape == (12, 784) and train.data.dtype == np.uint8
    assert train.images.shape == (12, 28, 28)
    assert_array_equal(train.images, TRAIN[0])
    assert_array_equal(train.data, TRAIN[0].reshape(12, 784))
    assert train.target.dtype == np.int64
    assert_array_equal(train.target, TRAIN[1])
    assert len(train.feature_names) == 784 and train.feature_names[29] == "pixel_1_1"
    assert train.target_names == [str(d) for d in range(10)]
    assert "MNIST" in train.DESCR

    X, y = fetch_mnist(tmp_path, subset="test", return_X_y=True)
    assert_array_equal(X, TEST[0].reshape(5, 784))
    assert_array_equal(y, TEST[1])

    everything = fetch_mnist(tmp_path, subset="all")
    assert_array_equal(everything.target, np.concatenate([TRAIN[1], TEST[1]]))
    assert everything.data.shape == (17, 784)


def test_data_home_defaults_to_scikit_learn_data(tmp_path, monkeypatch, no_network):
    monkeypatch.setattr(_mnist, "MNIST", _spec(_mnist.MNIST, ["http://unused/"]))
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path))
    _write_files(tmp_path / "mnist")
    assert fetch_mnist(subset="test").data.shape == (5, 784)


def test_unknown_subset():
    with pytest.raises(ValueError, match="subset must be one of"):
        fetch_mnist(subset="validation")


def test_missing_files_offline_say_where_to_put_them(tmp_path, no_network):
    with pytest.raises(OSError) as excinfo:
        fetch_mnist(tmp_path, download_if_missing=False)
    message = str(excinfo.value)
    assert str(tmp_path / "mnist") in message
    assert "train-images-idx3-ubyte.gz" in message
    assert "download_if_missing is False" in message


def test_truncated_file_on_disk_is_rejected_by_name(tmp_path, monkeypatch):
    monkeypatch.setattr(_mnist, "MNIST", _spec(_mnist.MNIST, ["http://unused/"]))
    _write_files(tmp_path / "mnist")
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(FILES[path.name][:-100])
    with pytest.raises(ValueError, match="corrupt or truncated") as excinfo:
        fetch_mnist(tmp_path)
    assert str(path) in str(excinfo.value)
    assert "Delete it and fetch again" in str(excinfo.value)


def test_file_with_other_contents_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setattr(_mnist, "MNIST", _spec(_mnist.MNIST, ["http://unused/"]))
    _write_files(tmp_path / "mnist")
    path = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(to_idx(np.zeros(5, dtype=np.uint8))))
    with pytest.raises(ValueError, match="md5 of the decompressed bytes"):
        fetch_mnist(tmp_path, subset="test")


# ----------------------------------------------------------------------------------
# Downloads


def test_download_falls_back_to_the_next_mirror(tmp_path, monkeypatch, server):
    dead = f"{server.url}/dead/"  # every file 404s there
    good = _serve(server, "good")
    monkeypatch.setattr(_mnist, "MNIST", _spec(_mnist.MNIST, [dead, good]))

    train = fetch_mnist(tmp_path)
    assert_array_equal(train.images, TRAIN[0])
    assert _leftovers(tmp_path / "mnist") == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]
    assert (tmp_path / "mnist" / "train-images-idx3-ubyte.gz").read_bytes() == FILES[
        "train-images-idx3-ubyte.gz"
    ]
    # readable like any file written with open(), not private like mkstemp's
    mode = (tmp_path / "mnist" / "train-images-idx3-ubyte.gz").stat().st_mode
    assert mode & 0o044 == 0o044 & ~_current_umask()

    # cached: a second call never asks the server
    n_requests = len(server.requests)
    fetch_mnist(tmp_path)
    assert len(server.requests) == n_requests


@pytest.mark.parametrize(
    "mode, message",
    [
        ("corrupt", "md5 of the decompressed bytes"),
        ("interrupted", "transfer interrupted after"),
        ("missing", "404"),
    ],
)
def test_failed_download_leaves_no_file(tmp_path, monkeypatch, server, mode, message):
    mirror = _serve(server, "bad", mode=mode)
    monkeypatch.setattr(_mnist, "MNIST", _spec(_mnist.MNIST, [mirror]))
    with pytest.raises(OSError, match=message) as excinfo:
        fetch_mnist(tmp_path, subset="test")
    assert "Put the file" in str(excinfo.value)
    assert str(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz") in str(excinfo.value)
    assert _leftovers(tmp_path / "mnist") == []  # no partial or temporary file


def test_unreachable_mirror(tmp_path, monkeypatch):
    # a port nothing listens on
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = _spec(_mnist.MNIST, [f"http://127.0.0.1:{port}/"])
    monkeypatch.setattr(_mnist, "MNIST", spec)
    with pytest.raises(OSError, match="Could not download t10k-images-idx3-ubyte.gz"):
        fetch_mnist(tmp_path, subset="test")


def test_fashion_mnist_checks_the_published_gz_md5(tmp_path, monkeypatch, server):
    good = _serve(server, "fashion")
    spec = _spec(_mnist.FASHION_MNIST, [good], by="gz")
    monkeypatch.setattr(_mnist, "FASHION_MNIST", spec)
    test = fetch_fashion_mnist(tmp_path, subset="test")
    assert_array_equal(test.images, TEST[0])
    assert test.target_names[9] == "Ankle boot"
    assert _leftovers(tmp_path / "fashion-mnist") == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]

    # a re-compressed file has other .gz bytes: rejected, since only they are known
    path = tmp_path / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), mtime=1))
    with pytest.raises(ValueError, match=r"corrupt or truncated: md5 "):
        fetch_fashion_mnist(tmp_path, subset="test")


def test_published_checksums_are_well_formed():
    for spec in (_mnist.MNIST, _mnist.FASHION_MNIST):
        for remote in (*spec.train, *spec.test):
            digests = [remote.md5, remote.gz_md5]
            assert any(d is not None and len(d) == 32 for d in digests)
            assert remote.sha256 is None or len(remote.sha256) == 64


# ----------------------------------------------------------------------------------
# The real files, where this machine has them


@needs_mnist
def test_real_mnist_files(no_network):
    train = fetch_mnist(DATA_HOME, download_if_missing=False)
    test = fetch_mnist(DATA_HOME, subset="test", download_if_missing=False)
    assert train.data.shape == (60000, 784) and test.data.shape == (10000, 784)
    assert_array_equal(
        np.bincount(train.target),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    )
    assert_array_equal(
        np.bincount(test.target),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    )
    assert train.data.mean() / 255 == pytest.approx(0.1307, abs=1e-4)
