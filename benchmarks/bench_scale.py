"""Fit and transform memory and throughput as the data grows, for four storages.

The DEFAULT estimator, ``ConvAutoEncoderTransformer(random_state=0, max_epochs=1)``
(``n_components=32``), is fitted for one epoch and then transforms the same rows,
on MNIST's 60,000 training images tiled to 60,000, 300,000 and 1,000,000 rows
(uint8, 784 columns), each held in four ways:

- ``memory``: ``np.array`` of the memory map, loaded into RAM before the baseline;
- ``memmap``: the read-only memory map of a ``.npy`` file (``np.load(mmap_mode="r")``);
- ``zarr``: a zarr v3 array of chunks (4096, 784), opened read-only;
- ``dask``: ``dask.array.from_array(memmap, chunks=(4096, 784))``, threaded scheduler.

Every (storage, rows) pair runs in a fresh Python process (this script with
``--one``), so that the memory numbers start clean. The child builds the input,
takes a baseline, then samples ``RssAnon`` of ``/proc/self/status`` every 20 ms
while ``fit`` runs: "peak growth" is the highest sample minus the baseline. Anonymous
memory is what the process allocates itself; the pages of a memory-mapped file are
``RssFile`` (page cache the kernel can drop) and are not counted. ``ru_maxrss``
(all resident pages, file-backed ones included; a lifetime high-water mark) is
recorded beside it for reference. ``transform`` is measured the same way from a new
baseline; its output array (rows x 32 float32) is reported so that the growth beyond
it shows. A Dask input gives a lazy Dask array of codes: its ``compute()`` is part
of the transform time and memory.

    python benchmarks/bench_scale.py                 # 60k, 300k, 1M; ~35 min idle
    python benchmarks/bench_scale.py --resume        # continue an interrupted run
    python benchmarks/bench_scale.py --quick --out /tmp/bench-scale-quick  # ~2 min
    python benchmarks/bench_scale.py --help

The data files (``.npy``, ``.zarr``) are written once into ``--work-dir`` and reused.
Each finished run is saved in ``<out>/runs/`` at once; ``--resume`` skips runs whose
file is there. Results: ``<out>/results.md``, ``<out>/results.json`` (machine,
versions, settings, every run) and ``<out>/scale.png``.

Sample output (the full run, AMD EPYC, 2 idle cores; first columns of the fit
table and some of the targets)::

    | rows | storage | fit (s) | fit rows/s | vs memory | fit peak RssAnon growth ...
    |---:|---|---:|---:|---:|---:|...
    | 60,000 | memory | 25.4 | 2,363 | 1.00x | 178.8 | ...
    | 60,000 | memmap | 21.0 | 2,852 | 1.21x | 231.5 | ...
    | 1,000,000 | memory | 347.2 | 2,881 | 1.00x | 192.7 | ...
    | 1,000,000 | memmap | 362.0 | 2,762 | 0.96x | 260.6 | ...
    | 1,000,000 | zarr | 370.2 | 2,701 | 0.94x | 266.3 | ...
    | 1,000,000 | dask | 334.2 | 2,992 | 1.04x | 257.7 | ...

    Targets (measured, not asserted):
    - memmap: fit peak growth at 1,000,000 rows 260.6 MB, 1.13x that at 60,000
      (231.5 MB); target <= 1.2x and <= 500 MB: **met**
    - memmap fit throughput at 1,000,000 rows: 0.96x in-memory; target >= 0.9x: **met**

Two cores are two torch threads: anything else running at the same time slows a
fit several times over (measured: a busy core made 2-thread inference 10x slower),
so run it on an idle machine; the table's CPU s / wall s and load columns show it.
"""

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
STORAGES = ("memory", "memmap", "zarr", "dask")
ROWS = (60_000, 300_000, 1_000_000)
QUICK_ROWS = (2_000, 6_000)
CHUNK_ROWS = 4096
N_FEATURES = 784
SAMPLE_SECONDS = 0.02
ESTIMATOR_PARAMS = {"random_state": 0, "max_epochs": 1}
RESULT_PREFIX = "BENCH_SCALE_RESULT "

# Targets of the issue: measured and printed, never asserted.
MEMORY_RATIO_TARGET = 1.2  # fit growth at the most rows / at the fewest
MEMORY_CAP_MB = 500.0  # fit growth at the most rows
MEMMAP_THROUGHPUT_TARGET = 0.9  # memmap fit rows/s over in-memory fit rows/s
TRANSFORM_EXTRA_MB = 100.0  # memmap transform growth beyond its output array


# ----------------------------------------------------------------------------------
# The data files (parent process)


def npy_path(work_dir, n_rows):
    return Path(work_dir) / f"mnist-train-uint8-{n_rows}.npy"


def zarr_path(work_dir, n_rows):
    return Path(work_dir) / f"mnist-train-uint8-{n_rows}-c{CHUNK_ROWS}.zarr"


def _npy_ok(path, n_rows):
    try:
        X = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return False
    return X.shape == (n_rows, N_FEATURES) and X.dtype == np.uint8


def _zarr_ok(path, n_rows):
    import zarr

    try:
        Z = zarr.open_array(str(path), mode="r")
    except Exception:  # missing or unreadable: written again
        return False
    return (
        Z.shape == (n_rows, N_FEATURES)
        and Z.dtype == np.uint8
        and tuple(Z.chunks) == (CHUNK_ROWS, N_FEATURES)
    )


def write_npy(path, n_rows, mnist):
    """MNIST's rows tiled to ``n_rows`` in a uint8 ``.npy`` file, written atomically."""
    part = path.with_name(path.name + ".part")
    out = np.lib.format.open_memmap(
        part, mode="w+", dtype=np.uint8, shape=(n_rows, N_FEATURES)
    )
    n_mnist = len(mnist)
    for start in range(0, n_rows, n_mnist):
        stop = min(start + n_mnist, n_rows)
        out[start:stop] = mnist[: stop - start]
    out.flush()
    del out
    os.replace(part, path)


def write_zarr(path, memmap):
    """A zarr v3 copy of ``memmap``, chunks (4096, 784), written atomically."""
    import zarr

    part = path.with_name(path.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    Z = zarr.create_array(
        store=str(part),
        shape=memmap.shape,
        chunks=(CHUNK_ROWS, N_FEATURES),
        dtype="uint8",
        zarr_format=3,
    )
    step = 16 * CHUNK_ROWS  # whole chunks per write
    for start in range(0, memmap.shape[0], step):
        Z[start : start + step] = memmap[start : start + step]
    del Z
    shutil.rmtree(path, ignore_errors=True)
    os.replace(part, path)


def prepare_data(rows, storages, work_dir, data_home):
    """Write the files the runs need, unless they are there with the right shape."""
    work_dir.mkdir(parents=True, exist_ok=True)
    mnist = None
    for n_rows in rows:
        path = npy_path(work_dir, n_rows)
        if not _npy_ok(path, n_rows):
            if mnist is None:
                from sk_convae.datasets import fetch_mnist

                mnist = fetch_mnist(data_home=data_home, subset="train").data
                assert mnist.dtype == np.uint8 and mnist.shape[1] == N_FEATURES
            print(f"writing {path}", flush=True)
            write_npy(path, n_rows, mnist)
        if "zarr" in storages:
            zpath = zarr_path(work_dir, n_rows)
            if not _zarr_ok(zpath, n_rows):
                print(f"writing {zpath}", flush=True)
                write_zarr(zpath, np.load(path, mmap_mode="r"))


# ----------------------------------------------------------------------------------
# One measurement (child process)


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _maxrss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux


def _cpu_s():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class PeakGrowth:
    """Peak ``RssAnon`` (and ``RssFile``) above the level at entry, every 20 ms."""

    def __enter__(self):
        gc.collect()
        self.anon0 = self.anon_peak = _status_kb("RssAnon")
        self.file0 = self.file_peak = _status_kb("RssFile")
        self.maxrss0 = _maxrss_kb()
        self.cpu0 = _cpu_s()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        self.anon_peak = max(self.anon_peak, _status_kb("RssAnon"))
        self.file_peak = max(self.file_peak, _status_kb("RssFile"))

    def _run(self):
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample()

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()  # a last one, for a peak at the very end
        self.maxrss1 = _maxrss_kb()
        self.cpu1 = _cpu_s()

    def report(self, prefix):
        return {
            f"{prefix}_baseline_anon_mb": self.anon0 / 1024,
            f"{prefix}_peak_anon_growth_mb": (self.anon_peak - self.anon0) / 1024,
            f"{prefix}_peak_file_growth_mb": (self.file_peak - self.file0) / 1024,
            f"{prefix}_maxrss_growth_mb": (self.maxrss1 - self.maxrss0) / 1024,
            # CPU seconds of this process (all its threads) during the call
            f"{prefix}_cpu_s": self.cpu1 - self.cpu0,
        }


def build_input(storage, n_rows, work_dir):
    memmap = np.load(npy_path(work_dir, n_rows), mmap_mode="r")
    if storage == "memory":
        return np.array(memmap)
    if storage == "memmap":
        return memmap
    if storage == "zarr":
        import zarr

        return zarr.open_array(str(zarr_path(work_dir, n_rows)), mode="r")
    if storage == "dask":
        import dask.array as da

        return da.from_array(memmap, chunks=(CHUNK_ROWS, N_FEATURES))
    raise ValueError(storage)


def measure_one(storage, n_rows, work_dir, torch_threads=None):
    """Fit then transform in this (fresh) process; the result as a dict."""
    import torch

    if torch_threads is not None:
        torch.set_num_threads(torch_threads)

    import sk_convae
    from sk_convae import ConvAutoEncoderTransformer

    X = build_input(storage, n_rows, work_dir)
    load_before = os.getloadavg()[0]
    est = ConvAutoEncoderTransformer(**ESTIMATOR_PARAMS)

    with PeakGrowth() as fit_mem:
        t0 = time.perf_counter()
        est.fit(X)
        fit_s = time.perf_counter() - t0

    with PeakGrowth() as transform_mem:
        t0 = time.perf_counter()
        codes = est.transform(X)
        if hasattr(codes, "compute"):  # a Dask input gives lazy codes
            codes = codes.compute()
        transform_s = time.perf_counter() - t0
    codes = np.asarray(codes)
    output_mb = codes.nbytes / 2**20

    tp = transform_mem.report("transform")
    return {
        "storage": storage,
        "rows": n_rows,
        "input_type": f"{type(X).__module__}.{type(X).__qualname__}",
        "estimator": ESTIMATOR_PARAMS,
        "chunk_rows": CHUNK_ROWS,
        "fit_s": fit_s,
        "fit_rows_per_s": n_rows / fit_s,
        **fit_mem.report("fit"),
        "n_iter": int(est.n_iter_),
        "train_loss": float(est.history_[-1, "train_loss"]),
        "transform_s": transform_s,
        "transform_rows_per_s": n_rows / transform_s,
        **tp,
        "transform_output_mb": output_mb,
        "transform_growth_beyond_output_mb": tp["transform_peak_anon_growth_mb"]
        - output_mb,
        "codes_shape": list(codes.shape),
        "codes_finite": bool(np.isfinite(codes).all()),
        "torch_threads": torch.get_num_threads(),
        # other jobs on the machine: 1-minute load averages around the run
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg()[0],
        "sk_convae": sk_convae.__version__,
    }


# ----------------------------------------------------------------------------------
# Running the children, saving and resuming (parent process)


def run_path(out, storage, n_rows):
    return out / "runs" / f"{storage}-{n_rows}.json"


def saved_run(path, storage, n_rows, torch_threads=None):
    """The run saved at ``path`` if it is complete and made with these settings."""
    try:
        run = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    same = (
        run.get("storage") == storage
        and run.get("rows") == n_rows
        and run.get("estimator") == ESTIMATOR_PARAMS
        and run.get("chunk_rows") == CHUNK_ROWS
        and torch_threads in (None, run.get("torch_threads"))
    )
    return run if same else None


def run_child(storage, n_rows, work_dir, torch_threads=None):
    """This script with ``--one`` in a fresh process; its result, or None."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--one",
        storage,
        str(n_rows),
        "--work-dir",
        str(work_dir),
    ]
    if torch_threads is not None:
        cmd += ["--torch-threads", str(torch_threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [
        line[len(RESULT_PREFIX) :]
        for line in proc.stdout.splitlines()
        if line.startswith(RESULT_PREFIX)
    ]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        print(f"  FAILED (exit {proc.returncode}):\n{tail}", flush=True)
        return None
    return json.loads(lines[-1])


def _write_atomically(path, text):
    part = path.with_name(f".{path.name}.part")
    part.write_text(text)
    os.replace(part, path)


# ----------------------------------------------------------------------------------
# Tables, targets, figure


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def throughput_ratios(runs):
    """``(storage, rows) -> fit rows/s over in-memory fit rows/s at the same rows``."""
    memory = {r["rows"]: r["fit_rows_per_s"] for r in runs if r["storage"] == "memory"}
    return {
        (r["storage"], r["rows"]): r["fit_rows_per_s"] / memory[r["rows"]]
        for r in runs
        if r["rows"] in memory
    }


def markdown_tables(runs):
    ratios = throughput_ratios(runs)
    fit = [
        "| rows | storage | fit (s) | fit rows/s | vs memory | "
        "fit peak RssAnon growth (MB) | fit ru_maxrss growth (MB) | "
        "fit CPU s / wall s | load avg |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    transform = [
        "| rows | storage | transform (s) | transform rows/s | "
        "peak RssAnon growth (MB) | output (MB) | growth beyond output (MB) |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        ratio = ratios.get((r["storage"], r["rows"]))
        fit.append(
            f"| {r['rows']:,} | {r['storage']} | {r['fit_s']:.1f} | "
            f"{r['fit_rows_per_s']:,.0f} | {_fmt(ratio, '.2f')}x | "
            f"{r['fit_peak_anon_growth_mb']:.1f} | {r['fit_maxrss_growth_mb']:.1f} | "
            f"{r['fit_cpu_s'] / r['fit_s']:.2f} | "
            f"{r['loadavg_before']:.1f}-{r['loadavg_after']:.1f} |"
        )
        transform.append(
            f"| {r['rows']:,} | {r['storage']} | {r['transform_s']:.1f} | "
            f"{r['transform_rows_per_s']:,.0f} | "
            f"{r['transform_peak_anon_growth_mb']:.1f} | "
            f"{r['transform_output_mb']:.1f} | "
            f"{r['transform_growth_beyond_output_mb']:.1f} |"
        )
    return "\n".join(fit) + "\n", "\n".join(transform) + "\n"


def targets(runs):
    """The issue's targets, as ``(text, met)`` lines; ``met`` is None if unmeasured."""
    lines = []
    by = {(r["storage"], r["rows"]): r for r in runs}
    rows = sorted({r["rows"] for r in runs})
    if len(rows) >= 2:
        low, high = rows[0], rows[-1]
        for storage in STORAGES:
            a, b = by.get((storage, low)), by.get((storage, high))
            if a is None or b is None:
                continue
            ga, gb = a["fit_peak_anon_growth_mb"], b["fit_peak_anon_growth_mb"]
            ratio = gb / ga if ga > 0 else float("inf")
            met = ratio <= MEMORY_RATIO_TARGET and gb <= MEMORY_CAP_MB
            lines.append(
                (
                    f"{storage}: fit peak growth at {high:,} rows {gb:.1f} MB, "
                    f"{ratio:.2f}x that at {low:,} ({ga:.1f} MB); target <= "
                    f"{MEMORY_RATIO_TARGET}x and <= {MEMORY_CAP_MB:.0f} MB",
                    met,
                )
            )
    ratios = throughput_ratios(runs)
    for n_rows in rows:
        ratio = ratios.get(("memmap", n_rows))
        if ratio is not None:
            lines.append(
                (
                    f"memmap fit throughput at {n_rows:,} rows: {ratio:.2f}x "
                    f"in-memory; target >= {MEMMAP_THROUGHPUT_TARGET}x",
                    ratio >= MEMMAP_THROUGHPUT_TARGET,
                )
            )
    for n_rows in rows:
        r = by.get(("memmap", n_rows))
        if r is not None:
            extra = r["transform_growth_beyond_output_mb"]
            lines.append(
                (
                    f"memmap transform at {n_rows:,} rows: peak growth "
                    f"{r['transform_peak_anon_growth_mb']:.1f} MB, {extra:.1f} MB "
                    f"beyond its {r['transform_output_mb']:.1f} MB output; target "
                    f"<= {TRANSFORM_EXTRA_MB:.0f} MB beyond",
                    extra <= TRANSFORM_EXTRA_MB,
                )
            )
    return lines


def target_lines(runs):
    def mark(met):
        return "n/a" if met is None else ("met" if met else "NOT met")

    return [f"- {text}: **{mark(met)}**" for text, met in targets(runs)]


def make_figure(runs, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for storage in STORAGES:
        mine = sorted((r for r in runs if r["storage"] == storage), key=_rows)
        if not mine:
            continue
        x = [r["rows"] for r in mine]
        left.plot(x, [r["fit_peak_anon_growth_mb"] for r in mine], "o-", label=storage)
        right.plot(x, [r["fit_rows_per_s"] for r in mine], "o-", label=storage)
    left.axhline(MEMORY_CAP_MB, color="grey", ls="--", lw=1, label="500 MB target")
    left.set(
        xscale="log",
        xlabel="rows",
        ylabel="MB",
        title="fit: peak RssAnon growth over baseline",
    )
    left.set_ylim(bottom=0)
    right.set(xscale="log", xlabel="rows", ylabel="rows / s", title="fit throughput")
    right.set_ylim(bottom=0)
    ticks = sorted({r["rows"] for r in runs})
    for ax in (left, right):
        ax.set_xticks(ticks, [_short(n) for n in ticks])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(
        "ConvAutoEncoderTransformer(random_state=0, max_epochs=1), MNIST tiled, 1 epoch"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _rows(run):
    return run["rows"]


def _short(n):
    """60000 -> '60k', 1000000 -> '1M'."""
    for size, suffix in ((10**6, "M"), (10**3, "k")):
        if n >= size:
            return f"{n / size:g}{suffix}"
    return str(n)


def environment(started):
    """``started`` (the date and commit of the run), the machine and the versions."""
    import sk_convae

    from _benchmark import cpu_model, gpu_name

    cpu = cpu_model()
    try:
        with open("/proc/meminfo") as f:
            mem_total_mb = int(f.readline().split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        mem_total_mb = None
    # the package's own version from the code that ran (an editable install's
    # metadata can be older)
    versions = {"python": platform.python_version(), "sk-convae": sk_convae.__version__}
    for name in ("torch", "numpy", "zarr", "dask", "skorch"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        **started,
        "machine": {
            "cpu": cpu,
            "gpu": gpu_name(),
            "cpu_count": os.cpu_count(),
            "mem_total_mb": mem_total_mb,
            "platform": platform.platform(),
        },
        "versions": versions,
    }


def write_results(runs, out, settings, started):
    env = environment(started)
    fit_table, transform_table = markdown_tables(runs)
    goals = target_lines(runs)
    m, v = env["machine"], env["versions"]
    threads = sorted({r.get("torch_threads") for r in runs} - {None})
    header = (
        f"{m['cpu']}, {m['cpu_count']} cores (torch threads: "
        f"{', '.join(map(str, threads)) or '?'}), torch {v['torch']}, "
        f"numpy {v['numpy']}, zarr {v['zarr']}, dask {v['dask']}; "
        f"{env['date'][:10]}."
    )
    text = (
        "# Fit and transform at scale: memory and throughput by storage\n\n"
        "`ConvAutoEncoderTransformer(random_state=0, max_epochs=1)` (n_components=32),"
        " one epoch on MNIST's training images tiled to each row count, uint8, "
        f"zarr and Dask chunks ({CHUNK_ROWS}, {N_FEATURES}); each (storage, rows) "
        "in a fresh process. Peak growth: highest `RssAnon` sample (every 20 ms) "
        "above the baseline taken just before the call (for `memory`, after the "
        "array is loaded). `ru_maxrss` counts file-backed pages too (a memory "
        "map's page cache) and is a lifetime high-water mark: for reference only. "
        "CPU s / wall s is about the torch thread count when the process had the "
        "cores to itself; lower, with a load average above the core count, means "
        "other jobs took CPU and the throughputs are low and noisy. Written by "
        "`benchmarks/bench_scale.py`.\n\n"
        f"{header}\n\n## fit\n\n{fit_table}\n## transform\n\n{transform_table}\n"
        "## Targets (measured, not asserted)\n\n" + "\n".join(goals) + "\n\n"
        "![fit memory and throughput](scale.png)\n"
    )
    _write_atomically(out / "results.md", text)
    payload = {**env, "settings": settings, "runs": runs, "targets": targets(runs)}
    _write_atomically(out / "results.json", json.dumps(payload, indent=2) + "\n")
    if runs:
        make_figure(runs, out / "scale.png")
    return fit_table, transform_table, goals


# ----------------------------------------------------------------------------------
# Command line


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=list(ROWS),
        help="row counts (MNIST's 60,000 training rows tiled); default: %(default)s",
    )
    parser.add_argument(
        "--storages",
        nargs="+",
        choices=STORAGES,
        default=list(STORAGES),
        help="how the rows are held; default: all",
    )
    parser.add_argument(
        "--data-home",
        type=Path,
        default=None,
        help="folder holding mnist/ (fetch_mnist's data_home); default: "
        "scikit-learn's data home, $SCIKIT_LEARN_DATA or ~/scikit_learn_data",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path("/tmp/sk-convae-bench-scale"),
        help="where the .npy and .zarr files are written once and reused; "
        "default: %(default)s",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "benchmarks" / "results" / "scale",
        help="results folder; default: benchmarks/results/scale",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: rows {' and '.join(map(str, QUICK_ROWS))} (overrides "
        "--rows)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch.set_num_threads in each run; default: torch's own (the cores)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="skip runs already saved in <out>/runs/"
    )
    parser.add_argument(
        "--one", nargs=2, metavar=("STORAGE", "ROWS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rows = list(QUICK_ROWS)
    if any(n < 2 for n in args.rows):
        parser.error("--rows: at least 2 rows")
    args.rows = sorted(set(args.rows))
    args.storages = [s for s in STORAGES if s in args.storages]
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.one:
        storage, n_rows = args.one[0], int(args.one[1])
        result = measure_one(storage, n_rows, args.work_dir, args.torch_threads)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0

    # the engine beside this script, imported by the parent only (the children
    # measure memory); STARTED holds the commit before any result is written
    from _benchmark import STARTED

    out = args.out
    (out / "runs").mkdir(parents=True, exist_ok=True)
    prepare_data(args.rows, args.storages, args.work_dir, args.data_home)
    settings = {
        "rows": args.rows,
        "storages": args.storages,
        "estimator": ESTIMATOR_PARAMS,
        "chunk_rows": CHUNK_ROWS,
        "sample_seconds": SAMPLE_SECONDS,
        "torch_threads": args.torch_threads,
        "work_dir": str(args.work_dir),
    }
    runs, failed = [], []
    for n_rows in args.rows:
        for storage in args.storages:
            path = run_path(out, storage, n_rows)
            run = None
            if args.resume:
                run = saved_run(path, storage, n_rows, args.torch_threads)
            if run is not None:
                print(f"{storage:>6} {n_rows:>9,} rows: saved run reused", flush=True)
            else:
                print(f"{storage:>6} {n_rows:>9,} rows: ...", end=" ", flush=True)
                run = run_child(storage, n_rows, args.work_dir, args.torch_threads)
                if run is None:
                    failed.append((storage, n_rows))
                    continue
                _write_atomically(path, json.dumps(run, indent=2) + "\n")
                print(
                    f"fit {run['fit_s']:.1f} s, "
                    f"+{run['fit_peak_anon_growth_mb']:.0f} MB; transform "
                    f"{run['transform_s']:.1f} s, "
                    f"+{run['transform_peak_anon_growth_mb']:.0f} MB",
                    flush=True,
                )
                cores = run["fit_cpu_s"] / run["fit_s"]
                if cores < 0.75 * run["torch_threads"]:
                    print(
                        f"  note: fit kept {cores:.2f} cores busy with "
                        f"{run['torch_threads']} torch threads (load average "
                        f"{run['loadavg_after']:.1f}): other jobs are using the "
                        "CPU, throughputs are unreliable",
                        flush=True,
                    )
            runs.append(run)

    fit_table, transform_table, goals = write_results(runs, out, settings, STARTED)
    print(f"\nfit\n\n{fit_table}\ntransform\n\n{transform_table}")
    print("Targets (measured, not asserted):")
    print("\n".join(goals))
    print(f"\nwritten: {out / 'results.md'}, {out / 'results.json'}, ", end="")
    print(out / "scale.png")
    if failed:
        print("failed runs: " + ", ".join(f"{s} {n:,}" for s, n in failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
