"""Figures of the benchmark pages, drawn from the committed result files.

Reads ``benchmarks/results/*/results.json`` (see ``benchmarks/results/README.md``)
and writes small PNGs into ``docs/images/benchmarks/``, where ``docs/benchmarks.md``
shows them. Nothing is trained or timed here; it runs in a few seconds.

    python benchmarks/plot_results.py
    python benchmarks/plot_results.py --out /tmp/figures

Written files::

    mnist_vs_pca.png          test MSE against n_components, PCA and the autoencoder
    mnist_reconstructions.png the first ten MNIST test digits, PCA and the autoencoder
    training_curves.png       test MSE against training seconds, CPU and GPU, d=32
    beyond_mnist.png          PCA's test MSE over the autoencoder's, per data set
    inference.png             transform rows/s on a CPU and a GPU
    scale.png                 fit memory and throughput at 60,000 to 1,000,000 rows
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "benchmarks"
DPI = 100
PCA_COLOUR, AE_COLOUR, GPU_COLOUR = "#7f7f7f", "#1f77b4", "#d62728"


def load(name):
    return json.loads((RESULTS / name / "results.json").read_text())


def save(fig, out, name):
    fig.tight_layout()
    fig.savefig(out / name, dpi=DPI)
    plt.close(fig)
    print(out / name)


def pca_mse(summary, n_components):
    """PCA's test MSE at ``n_components`` in a bench_mnist summary."""
    return next(
        r["test_mse"]
        for r in summary
        if r["method"] == "pca" and r["n_components"] == n_components
    )


def mnist_vs_pca(out):
    summary = load("mnist-vs-pca")["summary"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, colour, label in (
        ("pca", PCA_COLOUR, "PCA"),
        ("autoencoder", AE_COLOUR, "ConvAutoEncoderTransformer (defaults)"),
    ):
        rows = [r for r in summary if r["method"] == method]
        d = [r["n_components"] for r in rows]
        mse = [r["test_mse"] for r in rows]
        std = [r.get("test_mse_std", 0.0) for r in rows]
        ax.errorbar(d, mse, yerr=std, marker="o", color=colour, label=label, capsize=3)
    for r in summary:
        if r["method"] == "autoencoder":
            pca = pca_mse(summary, r["n_components"])
            ax.annotate(
                f"{pca / r['test_mse']:.1f}x",
                (r["n_components"], r["test_mse"]),
                textcoords="offset points",
                xytext=(0, -14),
                ha="center",
                fontsize=8,
                color=AE_COLOUR,
            )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks([2, 10, 16, 32, 128], labels=["2", "10", "16", "32", "128"])
    ax.set_xlabel("n_components (width of the code)")
    ax.set_ylabel("test MSE (pixels in [0, 1])")
    ax.set_title("MNIST, 10,000 test images: reconstruction error", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, out, "mnist_vs_pca.png")


def mnist_reconstructions(out):
    data = json.loads((RESULTS / "mnist-vs-pca" / "reconstructions.json").read_text())
    rows = [
        ("test images", "test-images"),
        ("PCA, d=10", "pca-d10"),
        ("autoencoder, d=10", "autoencoder-d10"),
        ("PCA, d=32", "pca-d32"),
        ("autoencoder, d=32", "autoencoder-d32"),
    ]
    fig, axes = plt.subplots(len(rows), 10, figsize=(7.5, 4.2))
    for i, (label, key) in enumerate(rows):
        images = np.asarray(data[key], dtype=np.uint8).reshape(10, 28, 28)
        for j in range(10):
            axes[i, j].imshow(images[j], cmap="gray_r", vmin=0, vmax=255)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
        axes[i, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    save(fig, out, "mnist_reconstructions.png")


def training_curves(out):
    cpu = load("mnist-vs-pca")
    gpu = load("speed-gpu")
    fig, ax = plt.subplots(figsize=(6, 4))
    pca = pca_mse(cpu["summary"], 32)
    for report, colour, label in (
        (cpu, AE_COLOUR, "CPU: " + cpu["machine_summary"].split(" (")[0]),
        (gpu, GPU_COLOUR, "GPU: NVIDIA H200"),
    ):
        run = next(
            r
            for r in report["runs"]
            if r["method"] == "autoencoder" and r["n_components"] == 32 and "curve" in r
        )
        t, mse = np.asarray(run["curve"]).T
        ax.plot(t, mse, color=colour, label=f"{label} (fit {run['fit_seconds']:.0f} s)")
    ax.axhline(pca, color=PCA_COLOUR, linestyle="--", label=f"PCA, d=32 ({pca:.4f})")
    ax.axhline(0.0038, color="black", linestyle=":", linewidth=1)
    ax.text(1.1, 0.0039, "0.0038", fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training seconds")
    ax.set_ylabel("MSE on 1,000 MNIST test images")
    ax.set_title("MNIST, d=32: error during one default fit", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, out, "training_curves.png")


def beyond_mnist(out):
    runs = load("beyond-mnist")["runs"]
    names = {
        "digits": "digits 8x8",
        "mnist": "MNIST",
        "photos-rgb32": "photos RGB 32x32",
        "photos-gray32": "photos grey 32x32",
        "photos-gray64": "photos grey 64x64",
    }
    labels, ratios = [], []
    for entry in names:
        for d in sorted({r["n_components"] for r in runs if r["entry"] == entry}):
            mse = {
                r["method"]: r["test_mse"]
                for r in runs
                if r["entry"] == entry and r["n_components"] == d
            }
            labels.append(f"{names[entry]}, d={d}")
            ratios.append(mse["pca"] / mse["autoencoder"])
    fig, ax = plt.subplots(figsize=(6, 4))
    y = np.arange(len(labels))
    colours = [AE_COLOUR if r >= 1 else GPU_COLOUR for r in ratios]
    ax.barh(y, ratios, color=colours)
    for yi, r in zip(y, ratios, strict=True):
        ax.text(r + 0.03, yi, f"{r:.2f}x", va="center", fontsize=8)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(y, labels=labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(ratios) * 1.15)
    ax.set_xlabel("PCA's test MSE / the autoencoder's (above 1: better than PCA)")
    ax.set_title("Default settings against PCA at the same width", fontsize=10)
    save(fig, out, "beyond_mnist.png")


def inference(out):
    cpu = load("inference/cpu")["runs"]
    gpu = load("inference/gpu")["runs"]
    cpu_rows = {r["path"]: r["rows_per_s"] for r in cpu if "path" in r}
    matmul = next(r for r in cpu if "matmul_flops_per_s" in r)
    flops = matmul["flops_per_row"]
    ceiling = matmul["matmul_flops_per_s"]["float32 matrix multiply (2,048 x 2,048)"]
    bars = [
        (
            "CPU: transform (float32)",
            cpu_rows["transform now (inference batches: 668 rows)"],
        ),
        ("CPU: float32 matmul ceiling", ceiling / flops),
        ("CPU: bfloat16 convolutions*", cpu_rows["bfloat16 convolutions"]),
    ]
    gpu_rows = {r["path"]: r["rows_per_s"] for r in gpu if "path" in r}
    host = next(r for r in gpu if "transform_rows_per_s" in r)
    bars += [
        ("GPU: transform from host rows", host["transform_rows_per_s"]["now"]),
        ("GPU: float32, rows on the GPU", gpu_rows["float32, one batch"]),
        ("GPU: float16 autocast*", gpu_rows["float16 autocast, one batch"]),
    ]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    y = np.arange(len(bars))
    colours = [AE_COLOUR] * 3 + [GPU_COLOUR] * 3
    ax.barh(y, [b[1] for b in bars], color=colours)
    for yi, (_, v) in zip(y, bars, strict=True):
        ax.text(v * 1.1, yi, f"{v:,.0f}", va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(1e4, 2e7)
    ax.set_yticks(y, labels=[b[0] for b in bars], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("rows per second (28x28 MNIST images, d=32)")
    ax.set_title(
        "Encoding speed (* codes off by more than 1e-3; not used)", fontsize=10
    )
    save(fig, out, "inference.png")


def scale(out):
    runs = load("scale")["runs"]
    storages = ["memory", "memmap", "zarr", "dask"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.4))
    for storage in storages:
        rs = sorted(
            (r for r in runs if r["storage"] == storage), key=lambda r: r["rows"]
        )
        rows = [r["rows"] for r in rs]
        left.plot(
            rows, [r["fit_peak_anon_growth_mb"] for r in rs], marker="o", label=storage
        )
        right.plot(rows, [r["fit_rows_per_s"] for r in rs], marker="o", label=storage)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("rows (MNIST tiled)")
        ax.grid(True, alpha=0.3)
    left.set_ylim(0, 500)
    left.set_ylabel("fit: peak memory growth (MB)")
    right.set_ylim(0, 1.15 * max(r["fit_rows_per_s"] for r in runs))
    right.set_ylabel("fit: rows per second (one epoch)")
    left.legend(fontsize=8)
    fig.suptitle("One-epoch fits on 2 CPU cores: memory stays flat", fontsize=10)
    save(fig, out, "scale.png")


FIGURES = [
    mnist_vs_pca,
    mnist_reconstructions,
    training_curves,
    beyond_mnist,
    inference,
    scale,
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for figure in FIGURES:
        figure(args.out)


if __name__ == "__main__":
    main()
