"""Draw new images with the decoder.

Fits a ConvAutoEncoderTransformer, then decodes (1) the straight line in code
space between pairs of test images, and (2) codes sampled from a Gaussian fitted
to the training codes. Saves both as one image grid.

    python examples/generate.py                                # 8x8 digits, offline
    python examples/generate.py --dataset mnist --data-home ../shared/data
"""

import argparse
from pathlib import Path

import numpy as np

from sk_convae import ConvAutoEncoderTransformer
from sk_convae.datasets import load_demo_data
from sk_convae.plotting import as_images, interpolate, mosaic


def sample_codes(codes, n_samples, *, random_state=0):
    """Codes drawn from the Gaussian (mean, full covariance) fitted to ``codes``."""
    rng = np.random.default_rng(random_state)
    mean = codes.mean(axis=0)
    cov = np.cov(codes, rowvar=False).reshape(codes.shape[1], codes.shape[1])
    return rng.multivariate_normal(mean, cov, size=n_samples).astype(np.float32)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=["digits", "mnist"], default="digits")
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--n-components", type=int, default=8)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--n-steps", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("generated.png"))
    args = parser.parse_args(argv)

    data = load_demo_data(args.dataset, data_home=args.data_home)
    ae = ConvAutoEncoderTransformer(
        n_components=args.n_components,
        image_shape=data.image_shape,
        max_epochs=args.max_epochs,
        batch_size=64 if len(data.X_train) < 10_000 else 256,
        random_state=0,
    ).fit(data.X_train)

    # pairs of test images with different labels
    pairs = []
    for i in range(len(data.X_test)):
        j = i + 1 + np.argmax(data.y_test[i + 1 :] != data.y_test[i])
        pairs.append((i, j))
        if len(pairs) == 3:
            break
    lines = [
        interpolate(ae, data.X_test[i], data.X_test[j], n_steps=args.n_steps)
        for i, j in pairs
    ]
    samples = ae.inverse_transform(
        sample_codes(ae.transform(data.X_train), 2 * args.n_steps)
    )
    rows = [*lines, samples[: args.n_steps], samples[args.n_steps :]]
    save_grid(rows, ae.image_shape_, args.out)
    print(
        f"Saved {len(lines)} interpolations and {len(samples)} sampled images "
        f"to {args.out}"
    )
    return {"interpolations": lines, "samples": samples}


def save_grid(rows, image_shape, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tiles = mosaic([as_images(r, image_shape) for r in rows])
    fig, ax = plt.subplots(figsize=(len(rows[0]), 1.1 * len(rows)))
    ax.imshow(tiles, cmap="gray")
    ax.set_axis_off()
    ax.set_title("rows 1-3: interpolations in code space; rows 4-5: sampled codes")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    main()
