"""Denoising: a model trained on noisy inputs cleans noisy images better.

Trains two autoencoders of the same width, one plainly and one with
``noise_factor`` (Gaussian noise on the inputs, clean images as targets, as in the
Keras tutorial's noisy-digits setting), corrupts the test images with the same
noise, and prints how far each model's reconstruction of the noisy images lies
from the clean ones. Saves a grid: clean, noisy, plain model, denoising model.

    python examples/denoising.py                                # 8x8 digits, offline
    python examples/denoising.py --dataset mnist --data-home ../shared/data
"""

import argparse
from pathlib import Path

import numpy as np

from sk_convae import ConvAutoEncoderTransformer
from sk_convae.datasets import load_demo_data
from sk_convae.plotting import add_noise, as_images, mosaic


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=["digits", "mnist"], default="digits")
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--n-components", type=int, default=16)
    parser.add_argument("--noise-factor", type=float, default=0.5)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("denoising.png"))
    args = parser.parse_args(argv)

    data = load_demo_data(args.dataset, data_home=args.data_home)
    params = dict(
        n_components=args.n_components,
        image_shape=data.image_shape,
        max_epochs=args.max_epochs,
        batch_size=64 if len(data.X_train) < 10_000 else 256,
        random_state=0,
    )
    models = {
        "plain autoencoder": ConvAutoEncoderTransformer(**params),
        f"denoising autoencoder (noise_factor={args.noise_factor})": (
            ConvAutoEncoderTransformer(noise_factor=args.noise_factor, **params)
        ),
    }
    for model in models.values():
        model.fit(data.X_train)

    clean = data.X_test
    noisy = add_noise(models["plain autoencoder"], clean, args.noise_factor)
    errors = {"noisy input itself": float(np.mean((noisy - clean) ** 2))}
    cleaned = {}
    for name, model in models.items():
        cleaned[name] = model.inverse_transform(model.transform(noisy))
        errors[name] = float(np.mean((cleaned[name] - clean) ** 2))

    print(
        f"{data.name}: MSE to the clean test images, noise_factor={args.noise_factor}"
    )
    print(f"\n| {'reconstruction of the noisy images by':<45} | MSE to clean |")
    print(f"|{'-' * 47}|--------------|")
    for name, error in errors.items():
        print(f"| {name:<45} | {error:12.4f} |")

    rows = [clean[:10], noisy[:10], *(c[:10] for c in cleaned.values())]
    save_grid(rows, data.image_shape, args.out)
    print(f"\nclean / noisy / plain / denoising, first ten test images: {args.out}")
    return errors


def save_grid(rows, image_shape, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tiles = mosaic([as_images(r, image_shape) for r in rows])
    fig, ax = plt.subplots(figsize=(10, 4.4))
    ax.imshow(tiles, cmap="gray", vmin=0, vmax=float(np.max(rows[0])))
    ax.set_axis_off()
    ax.set_title("clean | noisy | plain autoencoder | denoising autoencoder")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    main()
