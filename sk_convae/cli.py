"""The ``sk-convae`` command: a demo on a small dataset.

sk-convae demo                       # 8x8 digits, offline
sk-convae demo --dataset mnist       # MNIST from scikit-learn's data home
sk-convae demo --dataset mnist --data-home DIR

MNIST is read from ``DIR/mnist`` (``--data-home``), else from scikit-learn's data
home (the ``SCIKIT_LEARN_DATA`` environment variable, else ``~/scikit_learn_data``),
and downloaded there if it is missing. The benchmarks are scripts of the source
repository (``benchmarks/``), run from a checkout.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]

DESCRIPTION = """\
sk-convae trains a convolutional autoencoder as a scikit-learn transformer: a
drop-in replacement for PCA that compresses images into n_components numbers and
draws them back.

  demo       fit PCA and the autoencoder on a small dataset, print how they
             compare, and save figures (reconstructions, codes, 2-D map,
             learning curve, interpolation, denoising) into --out

Run 'sk-convae demo --help' for the options. The benchmarks against PCA are
scripts of the source repository (benchmarks/), run from a checkout.
"""


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="sk-convae",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="{demo}")

    demo = commands.add_parser(
        "demo",
        help="fit on a small dataset and save figures",
        description="Fit PCA and ConvAutoEncoderTransformer at the same code width, "
        "print a comparison table and save the figures into --out. The default "
        "dataset (scikit-learn's 8x8 digits) ships with scikit-learn: no download.",
    )
    demo.add_argument(
        "--dataset",
        choices=["digits", "mnist"],
        default="digits",
        help="digits: 1797 8x8 images, offline (default); mnist: 70,000 28x28 "
        "images through fetch_mnist",
    )
    demo.add_argument(
        "--data-home",
        default=None,
        help="folder holding mnist/ (for --dataset mnist); default: scikit-learn's "
        "data home, $SCIKIT_LEARN_DATA or ~/scikit_learn_data",
    )
    demo.add_argument(
        "--out", type=Path, default=Path("sk-convae-demo"), help="output folder"
    )
    demo.add_argument("--n-components", type=int, default=8, help="code width")
    demo.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help="training epochs (default: 40 below 10,000 training images, as on the "
        "digits; else 5, as on mnist)",
    )
    demo.add_argument(
        "--n-train", type=int, default=None, help="use only the first N training rows"
    )
    demo.add_argument("--quiet", action="store_true", help="no progress output")

    args = parser.parse_args(argv)
    if args.command == "demo":
        _run_demo(args)
        return 0
    parser.print_help()
    return 0


def _run_demo(args):
    """Fit, compare, and draw every figure of the seed's workflow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA
    from sklearn.neighbors import KNeighborsClassifier

    from sk_convae import ConvAutoEncoderTransformer
    from sk_convae.datasets import load_demo_data
    from sk_convae.plotting import (
        CodeImagesDisplay,
        EmbeddingDisplay,
        InterpolationDisplay,
        ReconstructionDisplay,
        TrainingCurveDisplay,
    )

    data = load_demo_data(
        args.dataset,
        data_home=args.data_home,
        n_train=args.n_train,
        progress=not args.quiet,  # a bar while MNIST downloads, if it must
    )
    small = len(data.X_train) < 10_000
    epochs = args.max_epochs if args.max_epochs is not None else (40 if small else 5)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    say = (lambda *a: None) if args.quiet else print
    say(
        f"{data.name}: {len(data.X_train)} training and {len(data.X_test)} test "
        f"images of {data.image_shape[0]}x{data.image_shape[1]}; codes of width "
        f"{args.n_components}"
    )

    shared = dict(
        n_components=args.n_components,
        image_shape=data.image_shape,
        max_epochs=epochs,
        batch_size=64 if small else 256,
        random_state=0,
    )
    reducers = {
        "PCA": PCA(n_components=args.n_components, random_state=0),
        "autoencoder": ConvAutoEncoderTransformer(
            **shared, verbose=0 if args.quiet else 1
        ),
        "denoising autoencoder": ConvAutoEncoderTransformer(**shared, noise_factor=0.5),
    }
    rows = []
    for name, reducer in reducers.items():
        say(f"fitting {name} ...")
        tic = time.perf_counter()
        reducer.fit(data.X_train)
        seconds = time.perf_counter() - tic
        codes_train, codes_test = (
            reducer.transform(data.X_train),
            reducer.transform(data.X_test),
        )
        reconstruction = reducer.inverse_transform(codes_test)
        knn = KNeighborsClassifier().fit(codes_train, data.y_train)
        rows.append(
            (
                name,
                float(np.mean((data.X_test - reconstruction) ** 2)),
                knn.score(codes_test, data.y_test),
                seconds,
            )
        )
    table = _table(rows, data.name, args.n_components)
    (out / "results.md").write_text(table)
    print(table)

    pca = reducers["PCA"]
    ae = reducers["autoencoder"]
    denoiser = reducers["denoising autoencoder"]
    figures = {}
    X_show = data.X_test[:10]

    fig, axes = plt.subplots(2, 1, figsize=(8, 4.5))
    ReconstructionDisplay.from_estimator(ae, X_show, ax=axes[0])
    axes[0].set_title(f"autoencoder, {args.n_components} numbers per image")
    pca_display = ReconstructionDisplay(
        X_show, pca.inverse_transform(pca.transform(X_show)), ae.image_shape_
    )
    pca_display.plot(ax=axes[1])
    axes[1].set_title(f"PCA, {args.n_components} components")
    figures["reconstructions.png"] = fig

    fig, ax = plt.subplots(figsize=(8, 3))
    ReconstructionDisplay.from_estimator(denoiser, X_show, noise_factor=0.5, ax=ax)
    ax.set_title("denoising autoencoder: original, noisy input, reconstruction")
    figures["denoising.png"] = fig

    fig, ax = plt.subplots(figsize=(8, 2))
    CodeImagesDisplay.from_estimator(ae, X_show, ax=ax)
    ax.set_title("codes of the ten test images above, as images")
    figures["codes.png"] = fig

    fig, ax = plt.subplots(figsize=(6, 5))
    EmbeddingDisplay.from_estimator(ae, data.X_test, data.y_test, ax=ax)
    ax.set_title("test images in code space")
    figures["embedding.png"] = fig

    fig, ax = plt.subplots(figsize=(6, 4))
    TrainingCurveDisplay.from_estimator(ae, ax=ax)
    ax.set_title("autoencoder training")
    figures["training_curve.png"] = fig

    fig, ax = plt.subplots(figsize=(8, 1.6))
    other = int(np.argmax(data.y_test != data.y_test[0]))
    InterpolationDisplay.from_estimator(ae, data.X_test[0], data.X_test[other], ax=ax)
    ax.set_title(f"from a {data.y_test[0]} to a {data.y_test[other]} in code space")
    figures["interpolation.png"] = fig

    for name, fig in figures.items():
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
    say(f"figures and results.md written to {out}/: {', '.join(figures)}")
    return rows


def _table(rows, dataset, n_components):
    lines = [
        f"{dataset}, codes of width {n_components}: test reconstruction MSE "
        "(on the input's scale), kNN(5) accuracy on the codes, fit time\n",
        f"| {'reducer':<22} | test MSE | kNN accuracy | fit time |",
        f"|{'-' * 24}|----------|--------------|----------|",
    ]
    for name, mse, accuracy, seconds in rows:
        lines.append(
            f"| {name:<22} | {mse:8.4f} | {accuracy:12.3f} | {seconds:6.1f} s |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
