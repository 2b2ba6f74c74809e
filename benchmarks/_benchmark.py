"""ConvAutoEncoderTransformer against PCA on MNIST.

For each method and code width ``n_components`` the script fits on the 60,000
training images and scores on the 10,000 test images:

- reconstruction: test MSE and binary cross-entropy, pixels scaled to [0, 1];
- classification: kNN (k=5) and LogisticRegression accuracy on the codes;
- clustering: KMeans(10) NMI and accuracy (Hungarian matching) on the test codes;
- cost: fit time, transform throughput, peak memory above the baseline during fit;
- for autoencoders, the training time after which the test MSE first drops below
  PCA's at the same width.

Methods: ``pca``; ``autoencoder``, ``ConvAutoEncoderTransformer`` with its default
architecture and recipe; ``seed``, the Keras tutorial's network (its code is
always 4x4x8 = 128 wide, so it runs at n_components=128 only). Autoencoder rows
are the mean and standard deviation over ``--seeds``.

Each run is saved to ``<out>/runs/`` as it finishes, and ``--resume`` reuses runs
made with the same settings, so a long benchmark can be stopped and continued.
Results: ``<out>/results.md`` (table), ``<out>/results.json`` (machine, versions,
git commit, date, settings, every run), and figures.

This module is the engine of the scripts in ``benchmarks/`` (run from a checkout,
not part of the installed package): ``bench_mnist.py`` runs ``main``; the others
use ``write_results``, ``environment`` and the ``--set`` helpers. MNIST is read
from ``--data-home``, else from scikit-learn's data home (``$SCIKIT_LEARN_DATA``,
else ``~/scikit_learn_data``), and downloaded there if missing. Usage::

    python benchmarks/bench_mnist.py                  # full: about 1.5 h
    python benchmarks/bench_mnist.py --quick          # about a minute
    python benchmarks/bench_mnist.py --data-home DIR  # MNIST in DIR/mnist

Sample output (``--quick``: 10,000 training and 2,000 test images, d in (2, 10,
32), 8 epochs, one seed; the seed network runs only when 128 is among the widths)::

    | method | d | seeds | test MSE | test BCE | kNN(5) acc | LogReg acc | ...
    |---|---|---|---|---|---|---|
    | pca | 10 | 1 | 0.03330 | 0.1690 | 0.8760 | 0.7660 | ...
    | autoencoder | 10 | 1 | 0.02658 | 0.1464 | 0.8895 | 0.8030 | ...
"""

import argparse
import ast
import datetime
import json
import os
import platform
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import sklearn
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, normalized_mutual_info_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

import sk_convae
from sk_convae import ConvAutoEncoderTransformer
from sk_convae._device import resolve_device
from sk_convae._precision import cpu_flags, resolve_precision
from sk_convae.callbacks import reconstruct
from sk_convae.datasets import fetch_mnist

N_COMPONENTS = (2, 10, 16, 32, 64, 128)
SEEDS = (0, 1, 2)
QUALITY_MARKS = (0.0038, 0.0033)  # Hinton & Salakhutdinov's 30-d MSE, and better
SEED_ARCHITECTURE = dict(n_components=128, architecture="conv", channels=(16, 8, 8))
# the tutorial's network trained as it was before lr='auto' (1e-2 on MNIST now)
SEED_TRAINING = dict(lr=3e-3)

ESTIMATORS = {
    "pca": lambda d, seed, epochs: PCA(n_components=d, random_state=seed),
    "autoencoder": lambda d, seed, epochs, **overrides: ConvAutoEncoderTransformer(
        n_components=d, random_state=seed, **_epochs(epochs), **overrides
    ),
    "seed": lambda d, seed, epochs: ConvAutoEncoderTransformer(
        **SEED_ARCHITECTURE, **SEED_TRAINING, random_state=seed, **_epochs(epochs)
    ),
}


def _epochs(epochs):
    return {} if epochs is None else {"max_epochs": epochs}


# ----------------------------------------------------------------------------------
# Measuring


class BeatPCATimer(Callback):
    """Training time at which the held-out MSE first drops below ``target_mse``.

    Checked on ``X_eval`` (scaled to [0, 1]) every ``every`` batches during the
    first minute, ten times less often after, and at the end of training: the curve
    runs to the end (``seconds_to`` reads the time to any quality from it). The time
    spent checking is excluded from the clock and reported as ``excluded_``.
    """

    def __init__(self, X_eval, target_mse, every=20):
        self.X_eval = X_eval
        self.target_mse = target_mse
        self.every = every

    def on_train_begin(self, net, **kwargs):
        self.seconds_ = None
        self.curve_ = []
        self.excluded_ = 0.0
        self._batches = 0
        self._start = time.perf_counter()

    def on_batch_end(self, net, training=True, **kwargs):
        if not training:
            return
        self._batches += 1
        elapsed = time.perf_counter() - self._start - self.excluded_
        every = self.every if elapsed < 60 else 10 * self.every
        if self._batches % every == 0:
            self._check(net, elapsed)

    def on_train_end(self, net, **kwargs):
        self._check(net, time.perf_counter() - self._start - self.excluded_)

    def _check(self, net, elapsed):
        tic = time.perf_counter()
        x = torch.as_tensor(self.X_eval)
        mse = float(torch.mean((reconstruct(net, x).cpu() - x) ** 2))
        self.excluded_ += time.perf_counter() - tic
        self.curve_.append((elapsed, mse))
        if mse < self.target_mse and self.seconds_ is None:
            self.seconds_ = elapsed


def seconds_to(curve, mse):
    """Training seconds until the curve first reaches ``mse`` (None: never)."""
    return next((seconds for seconds, value in curve if value <= mse), None)


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every 50 ms (Linux)."""

    def __enter__(self):
        self.baseline = self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.05):
            rss = _rss_bytes()
            if rss is not None and rss > self.peak:
                self.peak = rss

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def megabytes(self):
        if self.baseline is None:
            return None
        return (self.peak - self.baseline) / 2**20


def _saved_run(path, settings, params):
    """The run saved at ``path`` if it was made with these settings and parameters."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):  # missing, or cut short by an interruption
        return None
    if saved.get("settings") != settings:
        return None
    saved_params = {
        k: v for k, v in saved.get("params", {}).items() if k != "callbacks"
    }
    return saved if saved_params == params else None


def _write_atomically(path, text):
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(text)
    os.replace(tmp, path)


def _rss_bytes():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def clustering_accuracy(y_true, y_pred):
    """Accuracy of cluster labels after the best one-to-one matching to classes."""
    cm = confusion_matrix(y_true, y_pred)
    rows, cols = linear_sum_assignment(-cm)
    return cm[rows, cols].sum() / cm.sum()


def build_estimator(method, d, seed, epochs, overrides=None):
    extra = overrides if method == "autoencoder" and overrides else {}
    return ESTIMATORS[method](d, seed, epochs, **extra)


def estimator_params(estimator):
    """The estimator's parameters as text, to tell whether a saved run still applies
    (``callbacks`` left out: the benchmark adds its own timer there)."""
    params = estimator.get_params()
    return {k: repr(v) for k, v in sorted(params.items()) if k != "callbacks"}


def run_one(method, d, seed, data, pca_mse, epochs, overrides=None):
    """Fit one reducer and measure everything; returns a dict of numbers."""
    X_train, y_train, X_test, y_test = data
    estimator = build_estimator(method, d, seed, epochs, overrides)
    params = estimator_params(estimator)
    X_test_unit = X_test.astype(np.float32) / 255.0
    timer = None
    if method != "pca" and pca_mse is not None:
        timer = BeatPCATimer(X_test_unit[:1000], pca_mse)
        estimator.set_params(callbacks=[("beat_pca", timer)])

    with PeakRSS() as memory:
        tic = time.perf_counter()
        estimator.fit(X_train)
        fit_seconds = time.perf_counter() - tic

    tic = time.perf_counter()
    codes_test = estimator.transform(X_test)
    transform_seconds = time.perf_counter() - tic
    codes_train = estimator.transform(X_train)
    # As inverse_transform returns it: PCA's values may leave [0, 1] (clipping
    # them would lower its MSE by a few percent); BCE needs them clipped.
    reconstruction = estimator.inverse_transform(codes_test) / 255.0

    eps = 1e-7
    r = np.clip(reconstruction, eps, 1 - eps)
    bce = -np.mean(X_test_unit * np.log(r) + (1 - X_test_unit) * np.log(1 - r))
    knn = KNeighborsClassifier(n_neighbors=5).fit(codes_train, y_train)
    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    logreg.fit(codes_train, y_train)
    clusters = KMeans(n_clusters=10, n_init=10, random_state=seed).fit_predict(
        codes_test
    )

    result = {
        "method": method,
        "n_components": d,
        "seed": seed,
        "test_mse": float(np.mean((X_test_unit - reconstruction) ** 2)),
        "test_bce": float(bce),
        "knn_accuracy": float(knn.score(codes_test, y_test)),
        "logreg_accuracy": float(logreg.score(codes_test, y_test)),
        "kmeans_nmi": float(normalized_mutual_info_score(y_test, clusters)),
        "kmeans_accuracy": float(clustering_accuracy(y_test, clusters)),
        "fit_seconds": fit_seconds,
        "transform_rows_per_second": len(X_test) / transform_seconds,
        "fit_peak_memory_mb": memory.megabytes,
        "params": params,
        "precision": getattr(estimator, "precision_", "float64"),  # PCA: float64
        "epochs": getattr(estimator, "n_epochs_", None),
    }
    if seed == 0:  # what the figures show, kept with the run so --resume can redraw
        result["reconstruction_first10"] = (
            estimator.inverse_transform(codes_test[:10]).round(1).tolist()
        )
        if d == 2:
            result["codes_2d"] = codes_test.round(4).tolist()
    if timer is not None:
        fitted_timer = dict(estimator.net_.callbacks_)["beat_pca"]
        result["fit_seconds"] -= fitted_timer.excluded_
        result["seconds_to_beat_pca"] = fitted_timer.seconds_
        result["beat_pca_curve"] = fitted_timer.curve_
        # the time-to-quality marks (MSE on the 1,000 checked test images)
        result["seconds_to_mse"] = {
            str(mse): seconds_to(fitted_timer.curve_, mse) for mse in QUALITY_MARKS
        }
    return result


# ----------------------------------------------------------------------------------
# Reporting

METRICS = [
    ("test_mse", "test MSE", "{:.5f}"),
    ("test_bce", "test BCE", "{:.4f}"),
    ("knn_accuracy", "kNN(5) acc", "{:.4f}"),
    ("logreg_accuracy", "LogReg acc", "{:.4f}"),
    ("kmeans_nmi", "KMeans NMI", "{:.3f}"),
    ("kmeans_accuracy", "KMeans ACC", "{:.3f}"),
    ("fit_seconds", "fit (s)", "{:.1f}"),
    ("seconds_to_beat_pca", "beats PCA after (s)", "{:.1f}"),
    ("transform_rows_per_second", "transform (rows/s)", "{:,.0f}"),
    ("fit_peak_memory_mb", "fit memory (MB)", "{:.0f}"),
]


def summarize(runs):
    """One row per (method, n_components): mean, std and count over seeds."""
    groups = {}
    for run in runs:
        groups.setdefault((run["method"], run["n_components"]), []).append(run)
    order = {name: i for i, name in enumerate(ESTIMATORS)}
    rows = []
    for (method, d), group in sorted(
        groups.items(), key=lambda g: (g[0][1], order[g[0][0]])
    ):
        row = {"method": method, "n_components": d, "n_seeds": len(group)}
        for key, _, _ in METRICS:
            if not any(key in run for run in group):
                row[key] = None  # not measured for this method
                continue
            values = [run.get(key) for run in group]
            if any(v is None for v in values):
                # e.g. an autoencoder that never beat PCA in one of the seeds
                row[key] = None
                row[key + "_never"] = sum(v is None for v in values)
                continue
            row[key] = float(np.mean(values))
            row[key + "_std"] = float(np.std(values))
        rows.append(row)
    return rows


def markdown_table(rows):
    header = ["method", "d", "seeds"] + [label for _, label, _ in METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["method"], str(row["n_components"]), str(row["n_seeds"])]
        for key, _, fmt in METRICS:
            value = row.get(key)
            if value is None:
                never = row.get(key + "_never")
                cells.append(f"never in {never}" if never else "-")
            elif row["n_seeds"] > 1 and row.get(key + "_std", 0) > 0:
                cells.append(f"{fmt.format(value)} ± {fmt.format(row[key + '_std'])}")
            else:
                cells.append(fmt.format(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def cpu_model():
    """The CPU's model name (Linux's /proc/cpuinfo), else what platform says."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(
                line.split(":", 1)[1].strip() for line in f if "model name" in line
            )
    except (OSError, StopIteration):
        return platform.processor()


def gpu_name():
    """The CUDA device's name where the estimator's ``device='auto'`` uses one."""
    return torch.cuda.get_device_name() if torch.cuda.is_available() else None


def git_commit(path=Path(__file__).resolve().parent):
    """``git rev-parse HEAD`` of the checkout holding ``path``, with ``-dirty``
    when tracked files differ from that commit; None outside a git checkout."""
    try:
        commit, status = (
            subprocess.run(
                ["git", *command],
                cwd=path,
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout.strip()
            for command in (
                ["rev-parse", "HEAD"],
                ["status", "--porcelain", "--untracked-files=no"],
            )
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if status else "")


# The commit and the date of the run, taken when a script starts: before it writes
# results into the checkout (which would make it read as dirty).
STARTED = {
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "git_commit": git_commit(),
}


def environment():
    """What made a result: the date and commit of the run, the machine (CPU and
    GPU model) and the versions of the libraries; the head of every results.json."""
    return {
        **STARTED,
        "machine": {
            "platform": platform.platform(),
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cpu_flags": cpu_flags(),
            "precision_auto": resolve_precision("auto", resolve_device("auto")),
            "gpu": gpu_name(),
        },
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "torch": torch.__version__,
            "skorch": __import__("skorch").__version__,
            "sk-convae": sk_convae.__version__,
        },
    }


def write_results(out, table, runs):
    """Write ``table`` (markdown) to ``<out>/results.md`` and ``environment()`` (date,
    commit, machine, versions) with ``runs`` to ``<out>/results.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(table)
    (out / "results.json").write_text(
        json.dumps({**environment(), "runs": runs}, indent=1)
    )


def make_figures(runs, rows, X_test, y_test, out):
    """MSE vs n_components, reconstruction grids, and the 2-D codes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method, marker in (("pca", "o"), ("autoencoder", "s"), ("seed", "^")):
        sel = [r for r in rows if r["method"] == method]
        if sel:
            ax.errorbar(
                [r["n_components"] for r in sel],
                [r["test_mse"] for r in sel],
                yerr=[r.get("test_mse_std", 0) for r in sel],
                marker=marker,
                capsize=3,
                label=method,
            )
    widths = sorted({r["n_components"] for r in rows})
    ax.set(xscale="log", yscale="log", xlabel="n_components", ylabel="test MSE")
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title("MNIST test reconstruction error")
    fig.tight_layout()
    fig.savefig(out / "mse_vs_n_components.png", dpi=120)
    plt.close(fig)

    seed0 = [r for r in runs if r["seed"] == 0]
    for d in widths:
        shown = [r for r in seed0 if r["n_components"] == d]
        fig, axes = plt.subplots(
            1 + len(shown), 10, figsize=(10, 1.15 * (1 + len(shown))), squeeze=False
        )
        grids = [("original", X_test[:10])] + [
            (r["method"], np.asarray(r["reconstruction_first10"])) for r in shown
        ]
        for i, (label, images) in enumerate(grids):
            for j in range(10):
                axes[i, j].imshow(
                    images[j].reshape(28, 28), cmap="gray", vmin=0, vmax=255
                )
                axes[i, j].set_axis_off()
            axes[i, 0].set_title(label, loc="left", fontsize=8)
        fig.suptitle(f"Test digits and their reconstructions, n_components={d}")
        fig.tight_layout()
        fig.savefig(out / f"reconstructions_d{d}.png", dpi=100)
        plt.close(fig)

    flat = [r for r in seed0 if r["n_components"] == 2 and "codes_2d" in r]
    if flat:
        fig, axes = plt.subplots(
            1, len(flat), figsize=(5 * len(flat), 4.5), squeeze=False
        )
        for ax, run in zip(axes[0], flat):
            codes = np.asarray(run["codes_2d"])
            points = ax.scatter(
                codes[:, 0], codes[:, 1], c=y_test, cmap="tab10", s=2, alpha=0.6
            )
            ax.set_title(f"{run['method']}: 2-D codes of the test digits")
        fig.colorbar(points, ax=axes[0].tolist(), ticks=range(10), label="digit")
        fig.savefig(out / "codes_2d.png", dpi=100)
        plt.close(fig)


# ----------------------------------------------------------------------------------
# Main


def add_set_argument(parser, help):
    """``--set PARAM=VALUE ...``: parameters of the estimator under study."""
    parser.add_argument(
        "--set",
        dest="overrides",
        metavar="PARAM=VALUE",
        nargs="+",
        default=[],
        help=help,
    )


def parse_overrides(items):
    """``["lr=1e-2", "channels=(16, 32)"]`` -> ``{"lr": 0.01, ...}`` (Python
    literals)."""
    return {
        key: ast.literal_eval(value)
        for key, value in (item.split("=", 1) for item in items)
    }


def parse_args(argv=None, default_out=Path("benchmark-results")):
    parser = argparse.ArgumentParser(
        prog="bench_mnist.py",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--data-home",
        default=None,
        help="folder holding mnist/ (default: scikit-learn's data home, "
        "$SCIKIT_LEARN_DATA or ~/scikit_learn_data)",
    )
    parser.add_argument("--n-components", type=int, nargs="+", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--methods", nargs="+", choices=list(ESTIMATORS), default=None)
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help="override the autoencoders' max_epochs (default: the estimator's)",
    )
    add_set_argument(
        parser,
        "change a parameter of the 'autoencoder' method, e.g. lr=1e-3 "
        "(for studies of the recipe)",
    )
    parser.add_argument("--n-train", type=int, default=None, help="training subset")
    parser.add_argument("--n-test", type=int, default=None, help="test subset")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="10000 training and 2000 test images, d in (2, 10, 32), one seed, "
        "8 epochs: about a minute",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--resume", action="store_true", help="reuse finished runs")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "n_components": (2, 10, 32) if quick else N_COMPONENTS,
        "seeds": (0,) if quick else SEEDS,
        "methods": list(ESTIMATORS),
        "max_epochs": 8 if quick else None,
        "n_train": 10000 if quick else None,
        "n_test": 2000 if quick else None,
        "out": Path(f"{default_out}-quick") if quick else Path(default_out),
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv=None, default_out=Path("benchmark-results")):
    """Run the benchmark; ``argv`` as on the command line. Returns the summary rows."""
    args = parse_args(argv, default_out)
    out = args.out
    (out / "runs").mkdir(parents=True, exist_ok=True)
    train = fetch_mnist(args.data_home, subset="train")
    test = fetch_mnist(args.data_home, subset="test")
    data = (
        train.data[: args.n_train],
        train.target[: args.n_train],
        test.data[: args.n_test],
        test.target[: args.n_test],
    )
    overrides = parse_overrides(args.overrides)
    settings = {
        "n_train": len(data[0]),
        "n_test": len(data[2]),
        "max_epochs": args.max_epochs,
        "quick": args.quick,
        "overrides": args.overrides,
    }
    print(f"MNIST: {settings['n_train']} training, {settings['n_test']} test images")

    runs, pca_mse = [], {}
    for d in args.n_components:
        for method in args.methods:
            if method == "seed" and d != SEED_ARCHITECTURE["n_components"]:
                continue
            seeds = [0] if method == "pca" else args.seeds
            for seed in seeds:
                path = out / "runs" / f"{method}-d{d}-seed{seed}.json"
                result = None
                if args.resume:
                    params = estimator_params(
                        build_estimator(method, d, seed, args.max_epochs, overrides)
                    )
                    result = _saved_run(path, settings, params)
                if result is None:
                    result = run_one(
                        method,
                        d,
                        seed,
                        data,
                        pca_mse.get(d),
                        args.max_epochs,
                        overrides,
                    )
                    result["settings"] = settings
                    _write_atomically(path, json.dumps(result, indent=1))
                runs.append(result)
                if method == "pca":
                    pca_mse[d] = result["test_mse"]
                print(
                    f"{method:>11} d={d:<3} seed={seed} "
                    f"MSE {result['test_mse']:.5f} kNN {result['knn_accuracy']:.4f} "
                    f"NMI {result['kmeans_nmi']:.3f} fit {result['fit_seconds']:.0f} s "
                    f"beat PCA after {result.get('seconds_to_beat_pca')}",
                    flush=True,
                )

    rows = summarize(runs)
    table = markdown_table(rows)
    env = environment()
    (out / "results.md").write_text(
        f"MNIST, {settings['n_train']} training / {settings['n_test']} test images, "
        f"{env['machine']['cpu']}, {os.cpu_count()} cores. "
        "Autoencoder rows: mean ± std over seeds.\n\n" + table
    )
    (out / "results.json").write_text(
        json.dumps(
            {
                **env,
                "settings": {**vars(args), **settings, "out": str(out)},
                "summary": rows,
                "runs": runs,
            },
            indent=1,
            default=str,
        )
    )
    print(table)
    make_figures(runs, rows, data[2], data[3], out)
    return rows
