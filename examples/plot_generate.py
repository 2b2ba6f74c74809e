"""
Draw new images with the decoder
================================

The decoder of a fitted :class:`~sk_convae.ConvAutoEncoderTransformer` turns any
code into an image, through
:meth:`~sk_convae.ConvAutoEncoderTransformer.inverse_transform`. This example
decodes (1) the straight line in code space between pairs of test images, and
(2) codes sampled from a Gaussian fitted to the training codes.

From a checkout, the same runs on MNIST with
``python examples/plot_generate.py --dataset mnist``.
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
from sk_convae.plotting import InterpolationDisplay, as_images, interpolate, mosaic

parser = argparse.ArgumentParser(description="Decode interpolations and samples.")
parser.add_argument("--dataset", choices=["digits", "mnist"], default="digits")
parser.add_argument("--data-home", default=None, help="where MNIST is kept")
parser.add_argument("--n-components", type=int, default=8)
parser.add_argument("--max-epochs", type=int, default=30)
parser.add_argument("--n-steps", type=int, default=10)
parser.add_argument("--out", default=None, help="also save the figure there")
args = parser.parse_args()

# %%
# Fit the autoencoder
# -------------------
data = load_demo_data(args.dataset, data_home=args.data_home)
ae = ConvAutoEncoderTransformer(
    n_components=args.n_components,
    image_shape=data.image_shape,
    max_epochs=args.max_epochs,
    batch_size=64 if len(data.X_train) < 10_000 else 256,
    random_state=0,
).fit(data.X_train)

# %%
# Walk from one image to another
# ------------------------------
# :class:`~sk_convae.plotting.InterpolationDisplay` encodes two images, takes
# evenly spaced points on the segment between their codes, and decodes each.
# Here: the first test image and the next one with another label.
first_other = 1 + np.argmax(data.y_test[1:] != data.y_test[0])
InterpolationDisplay.from_estimator(
    ae, data.X_test[0], data.X_test[first_other], n_steps=args.n_steps
)
plt.show()

# %%
# Three such walks, between pairs of test images with different labels, and
# twenty images decoded from codes drawn at random. A Gaussian with the mean and
# covariance of the training codes stays where the decoder has seen codes; codes
# far from there decode to blur.
pairs = []
for i in range(len(data.X_test)):
    j = i + 1 + np.argmax(data.y_test[i + 1 :] != data.y_test[i])
    pairs.append((i, j))
    if len(pairs) == 3:
        break
interpolations = [
    interpolate(ae, data.X_test[i], data.X_test[j], n_steps=args.n_steps)
    for i, j in pairs
]

codes = ae.transform(data.X_train)
rng = np.random.default_rng(0)
cov = np.cov(codes, rowvar=False).reshape(codes.shape[1], codes.shape[1])
sampled_codes = rng.multivariate_normal(codes.mean(axis=0), cov, size=2 * args.n_steps)
samples = ae.inverse_transform(sampled_codes.astype(np.float32))

rows = [*interpolations, samples[: args.n_steps], samples[args.n_steps :]]
tiles = mosaic([as_images(r, ae.image_shape_) for r in rows])
fig, ax = plt.subplots(figsize=(len(rows[0]), 1.1 * len(rows)))
ax.imshow(tiles, cmap="gray")
ax.set_axis_off()
ax.set_title("rows 1-3: interpolations in code space; rows 4-5: sampled codes")
print(f"{len(interpolations)} interpolations and {len(samples)} sampled images")
if args.out:
    fig.savefig(args.out, dpi=100, bbox_inches="tight")
    print(f"Saved the figure to {args.out}")
plt.show()
