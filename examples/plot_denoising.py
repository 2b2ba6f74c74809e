"""
Denoising: train on noisy images to clean noisy images
======================================================

An autoencoder trained with ``noise_factor`` sees its training images with
Gaussian noise added and learns to reconstruct the clean ones (a denoising
autoencoder, after Vincent et al., 2008). Here two autoencoders of the same
width are trained, one plainly and one with noise; the test images are then
corrupted with the same noise, and we measure how far each model's
reconstruction of the noisy images lies from the clean ones.

From a checkout, the same runs on MNIST with
``python examples/plot_denoising.py --dataset mnist``.
"""

# %%
# Settings
# --------
# The gallery runs with the defaults below; a script run can change them.
import argparse

import matplotlib.pyplot as plt
import numpy as np

from sk_convae import ConvAutoEncoderTransformer
from sk_convae.datasets import load_demo_data
from sk_convae.plotting import add_noise, as_images, mosaic

parser = argparse.ArgumentParser(description="Denoising autoencoder example.")
parser.add_argument("--dataset", choices=["digits", "mnist"], default="digits")
parser.add_argument("--data-home", default=None, help="where MNIST is kept")
parser.add_argument("--n-components", type=int, default=16)
parser.add_argument("--noise-factor", type=float, default=0.5)
parser.add_argument("--max-epochs", type=int, default=30)
parser.add_argument("--out", default=None, help="also save the figure there")
args = parser.parse_args()

# %%
# Two autoencoders
# ----------------
# The same settings, except ``noise_factor``: the standard deviation of the noise
# added to each training image on the network's scale (pixels in [0, 1]).
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

# %%
# Cleaning noisy test images
# --------------------------
# :func:`~sk_convae.plotting.add_noise` corrupts the test images as training
# does. Each model encodes the noisy images and decodes them; the error is
# measured against the clean images.
clean = data.X_test
noisy = add_noise(models["plain autoencoder"], clean, args.noise_factor)
errors = {"noisy input itself": float(np.mean((noisy - clean) ** 2))}
cleaned = {}
for name, model in models.items():
    cleaned[name] = model.inverse_transform(model.transform(noisy))
    errors[name] = float(np.mean((cleaned[name] - clean) ** 2))

print(f"{data.name}: MSE to the clean test images, noise_factor={args.noise_factor}")
print(f"\n| {'reconstruction of the noisy images by':<45} | MSE to clean |")
print(f"|{'-' * 47}|--------------|")
for name, error in errors.items():
    print(f"| {name:<45} | {error:12.4f} |")

# %%
# The plain model already removes some noise, as any narrow code must; the
# model trained on noise removes much more of it.
#
# The first ten test images: clean, noisy, and the two models' reconstructions
# of the noisy ones.
rows = [clean[:10], noisy[:10], *(c[:10] for c in cleaned.values())]
tiles = mosaic([as_images(r, data.image_shape) for r in rows])
fig, ax = plt.subplots(figsize=(10, 4.4))
ax.imshow(tiles, cmap="gray", vmin=0, vmax=float(np.max(clean)))
ax.set_axis_off()
ax.set_title("clean | noisy | plain autoencoder | denoising autoencoder")
if args.out:
    fig.savefig(args.out, dpi=100, bbox_inches="tight")
    print(f"\nSaved the figure to {args.out}")
plt.show()
