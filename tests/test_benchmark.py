"""The benchmark scripts of benchmarks/, end to end on tiny fake data."""

import datetime
import gzip
import hashlib
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import sk_convae
from sk_convae.datasets import _mnist
from sk_convae.datasets._download import RemoteFile
from sk_convae.datasets._idx import to_idx

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_mnist.py"


@pytest.fixture(scope="module", autouse=True)
def benchmarks_on_path():
    """The scripts import their engine, ``_benchmark``, from beside them: benchmarks/
    is run from a checkout and is not part of the installed package."""
    sys.path.insert(0, str(SCRIPT.parent))
    yield
    sys.path.remove(str(SCRIPT.parent))


@pytest.fixture(scope="module")
def bench():
    import _benchmark

    return _benchmark


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """300 training and 100 test 'digits': a bright bar whose angle is the label."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[-13.5:14, -13.5:14]

    def split(n):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        angles = labels * np.pi / 10 + rng.normal(0, 0.05, size=n)
        distance = np.abs(
            np.cos(angles)[:, None, None] * yy - np.sin(angles)[:, None, None] * xx
        )
        images = (255 * np.exp(-(distance**2) / 4)).astype(np.uint8)
        return images, labels

    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    remotes = []
    for prefix, (images, labels) in (("train", split(300)), ("t10k", split(100))):
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte.gz"
            raw = to_idx(array)
            (folder / name).write_bytes(gzip.compress(raw))
            remotes.append(RemoteFile(name, md5=hashlib.md5(raw).hexdigest()))
    spec = replace(
        _mnist.MNIST, mirrors=(), train=tuple(remotes[:2]), test=tuple(remotes[2:])
    )
    monkeypatch.setattr(_mnist, "MNIST", spec)
    return tmp_path / "data"


def test_benchmark_writes_tables_json_and_figures(bench, tiny_mnist, tmp_path):
    out = tmp_path / "results"
    args = [
        "--data-home",
        str(tiny_mnist),
        "--quick",
        "--n-components",
        "2",
        "128",
        "--max-epochs",
        "1",
        "--n-train",
        "300",
        "--n-test",
        "100",
        "--out",
        str(out),
    ]
    rows = bench.main(args)

    assert [(r["method"], r["n_components"]) for r in rows] == [
        ("pca", 2),
        ("autoencoder", 2),
        ("pca", 128),
        ("autoencoder", 128),
        ("seed", 128),
    ]
    for row in rows:
        assert 0 < row["test_mse"] < 1
        assert 0 <= row["knn_accuracy"] <= 1 and 0 <= row["kmeans_nmi"] <= 1
        assert row["transform_rows_per_second"] > 0
        if row["method"] == "pca":
            assert row["seconds_to_beat_pca"] is None
            assert "seconds_to_beat_pca_never" not in row
        elif row["seconds_to_beat_pca"] is None:
            assert row["seconds_to_beat_pca_never"] == 1
        else:
            assert row["seconds_to_beat_pca"] >= 0

    table = (out / "results.md").read_text()
    assert "| seed | 128 | 1 |" in table and "| pca | 2 | 1 |" in table
    assert "beats PCA after (s)" in table

    report = json.loads((out / "results.json").read_text())
    assert {"machine", "versions", "settings", "summary", "runs"} <= set(report)
    assert report["versions"]["torch"]
    assert report["settings"]["n_train"] == 300
    seed_run = next(r for r in report["runs"] if r["method"] == "seed")
    assert seed_run["params"]["architecture"] == "'conv'"
    assert seed_run["params"]["channels"] == "(16, 8, 8)"

    for name in (
        "mse_vs_n_components.png",
        "reconstructions_d2.png",
        "reconstructions_d128.png",
        "codes_2d.png",
    ):
        assert (out / name).stat().st_size > 1000

    # --resume reuses every run: nothing is fitted again
    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was fitted again")

    bench.run_one, original = refuse, bench.run_one
    try:
        again = bench.main([*args, "--resume"])
    finally:
        bench.run_one = original
    assert [r["test_mse"] for r in again] == [r["test_mse"] for r in rows]


def test_benchmark_script_runs_from_the_checkout():
    script = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True
    )
    assert script.returncode == 0, script.stderr
    assert "usage: bench_mnist.py" in script.stdout
    assert "--quick" in script.stdout and "--resume" in script.stdout


def test_the_engine_is_not_in_the_installed_package():
    assert not (Path(sk_convae.__file__).parent / "_benchmark.py").exists()


def test_results_record_version_commit_machine_and_date(bench, tmp_path):
    bench.write_results(tmp_path, "| table |\n", [{"method": "pca"}])
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["runs"] == [{"method": "pca"}]
    assert report["versions"]["sk-convae"] == sk_convae.__version__
    assert report["versions"]["torch"] == torch.__version__
    assert report["machine"]["cpu"] == bench.cpu_model()
    assert report["machine"]["gpu"] == (
        torch.cuda.get_device_name() if torch.cuda.is_available() else None
    )
    date = datetime.datetime.fromisoformat(report["date"])
    assert date.tzinfo is not None and date <= datetime.datetime.now(
        datetime.timezone.utc
    )
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=SCRIPT.parent, capture_output=True, text=True
    )
    if head.returncode == 0:  # a checkout (else git_commit is None, tested below)
        assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", report["git_commit"])
        assert report["git_commit"].startswith(head.stdout.strip())
    assert (tmp_path / "results.md").read_text() == "| table |\n"


def test_git_commit_is_none_outside_a_checkout_and_marks_a_dirty_tree(bench, tmp_path):
    assert bench.git_commit(tmp_path) is None
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    try:
        subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs git")
    (tmp_path / "a.txt").write_text("a")
    subprocess.run([*git, "add", "a.txt"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a"], cwd=tmp_path, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (tmp_path / "untracked.txt").write_text("not part of the commit")
    assert bench.git_commit(tmp_path) == head
    (tmp_path / "a.txt").write_text("changed")
    assert bench.git_commit(tmp_path) == head + "-dirty"


def test_clustering_accuracy_matches_labels_up_to_renaming(bench):
    y = np.array([0, 0, 1, 1, 2, 2])
    assert bench.clustering_accuracy(y, np.array([2, 2, 0, 0, 1, 1])) == 1.0
    assert bench.clustering_accuracy(y, np.array([1, 1, 0, 0, 0, 2])) == pytest.approx(
        5 / 6
    )


def test_scale_benchmark_writes_tables_json_and_figure(tiny_mnist, tmp_path):
    import importlib.util

    path = SCRIPT.parent / "bench_scale.py"
    spec = importlib.util.spec_from_file_location("bench_scale", path)
    bench_scale = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_scale)
    out = tmp_path / "scale"
    # in this process, so that the tiny MNIST is fetched; each run is a child
    # process that reads the files written here
    bench_scale.main(
        ["--rows", "600", "--data-home", str(tiny_mnist), "--torch-threads", "1"]
        + ["--work-dir", str(tmp_path / "work"), "--out", str(out)]
    )
    results = json.loads((out / "results.json").read_text())
    runs = {run["storage"]: run for run in results["runs"]}
    assert set(runs) == {"memory", "memmap", "zarr", "dask"}
    for run in runs.values():
        assert run["rows"] == 600 and run["fit_rows_per_s"] > 0
        assert run["transform_output_mb"] > 0
    assert "| 600 | memmap |" in (out / "results.md").read_text()
    assert (out / "scale.png").stat().st_size > 10_000


def _load_script(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, SCRIPT.parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_suite_benchmark_compares_with_pca_and_writes_tables(tmp_path, monkeypatch):
    from sk_convae import _estimator

    monkeypatch.setattr(_estimator, "AUTO_MAX_EPOCHS", 2)  # a short fit
    bench_suite = _load_script("bench_suite")
    out = tmp_path / "suite"
    bench_suite.main(["--only", "digits", "--widths", "4", "--baseline"] + [
        "--out", str(out)])  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    runs = {run["method"]: run for run in results["runs"]}
    assert set(runs) == {"pca", "autoencoder", "baseline"}
    assert runs["autoencoder"]["epochs"] == 2 and runs["baseline"]["epochs"] == 15
    assert all(run["test_mse"] > 0 for run in runs.values())
    assert "cpu_flags" in results["machine"]
    assert "| digits | 4 | " in (out / "results.md").read_text()


def test_speed_benchmark_measures_fit_raw_loop_and_transform(tmp_path, monkeypatch):
    bench_speed = _load_script("bench_speed")
    original = bench_speed.data
    # two epochs of the digits instead of forty
    monkeypatch.setattr(
        bench_speed, "data", lambda name, home: (*original(name, home)[:3], 2)
    )
    bench_speed.main(["--quick", "--out", str(tmp_path)])
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert [run["setting"] for run in runs] == ["new defaults", "previous defaults"]
    for run in runs:
        assert run["fit_rows_per_s"] > 0 and run["raw_loop_rows_per_s"] > 0
        assert run["codes_max_abs_diff_vs_float32"] < 1e-3


def test_suite_split_entries_validate_on_columns_no_training_patch_overlaps(
    tmp_path, monkeypatch
):
    """The -split photo entries: training patches from the left 80% of each
    training photo, X_val from the right 20%, and a 'validated' run that fits
    with X_val beside the default one."""
    from sk_convae import _estimator

    monkeypatch.setattr(_estimator, "AUTO_MAX_EPOCHS", 2)  # a short fit
    bench_suite = _load_script("bench_suite")
    # synthetic "photos" whose pixels hold their column: 0..199
    columns = np.broadcast_to(np.arange(200, dtype=np.uint8), (120, 200))
    monkeypatch.setattr(bench_suite, "photo", lambda name: columns.copy())
    train, test, shape, val = bench_suite.photo_patches(32, grey=True, split=True)
    assert shape == (1, 32, 32) and len(train) == 10_000 and len(val) == 2_000
    assert train.max() < 160 <= val.min()  # 80% of 200 columns
    assert bench_suite.photo_patches(32, grey=True)[3] is None

    out = tmp_path / "suite"
    bench_suite.main(
        ["--only", "photos-gray32-split", "--widths", "2", "--out", str(out)]
    )
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [run["method"] for run in runs] == ["autoencoder", "pca", "validated"]
    assert all(run["test_mse"] >= 0 for run in runs)
