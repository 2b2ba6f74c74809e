"""The default estimator against PCA beyond MNIST: photos, RGB and grey, and digits.

Every entry fits ``ConvAutoEncoderTransformer(n_components=d, random_state=0)`` (all
other settings at their defaults) and ``PCA(d)`` on the same training rows and
scores both on test rows by the mean squared error of the reconstructions, with
pixels in [0, 1] (PCA's reconstructions are not clipped):

- ``photos-rgb32``: 32x32 RGB patches; 10,000 for training, cut at random places
  from scikit-learn's two sample photos (``china.jpg``, ``flower.jpg``) and
  scikit-image's ``astronaut`` and ``coffee``; 3,000 for testing, cut from *other*
  photos (scikit-image's ``chelsea``, ``rocket`` and the left view of
  ``stereo_motorcycle``), which is what a user's new images are;
- ``photos-gray32`` and ``photos-gray64``: the same photos in grey (plus
  ``camera`` for training and ``moon`` for testing), 32x32 and 64x64 patches;
- ``photos-*-split``: the same, with the training photos cut in two: training
  patches from the left 80% of each, 2,000 validation patches from the right 20%
  (no training patch overlaps them). Beside PCA and the default, ``validated`` is
  the default fitted with ``fit(X, X_val=validation patches)``: early stopping
  then watches rows that share no pixel with the training rows;
- ``digits``: scikit-learn's 8x8 digits, 1,347 rows for training, 450 for testing;
- ``mnist``: 60,000 / 10,000 (``--data-home`` must hold ``mnist/``; skipped if not).

Patches are uint8, as photos are stored; the estimator reads them as 0..255.
``--baseline`` adds the previous defaults (``architecture='dense', max_epochs=15,
precision='float32', lr=3e-3``) beside each entry, to compare in one run on one machine;
``--augmented`` adds ``augmentation='dihedral'`` (random flips and turns) on the
photo entries at d=32.

    python benchmarks/bench_suite.py                                     # everything
    python benchmarks/bench_suite.py --only photos-rgb32 --widths 32     # one entry
    python benchmarks/bench_suite.py --resume                            # continue

Each run is saved in ``<out>/runs/`` when it ends; ``--resume`` reuses runs with the
same settings. ``<out>/results.md`` is the table and ``<out>/results.json`` holds the
machine (CPU model and flags, torch threads), the versions and every run. Needs
scikit-image for the photos (``pip install scikit-image``).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA

from sk_convae import ConvAutoEncoderTransformer

from _benchmark import add_set_argument, parse_overrides, write_results

TRAIN_PHOTOS = ["china.jpg", "flower.jpg", "astronaut", "coffee"]
TEST_PHOTOS = ["chelsea", "rocket", "stereo_motorcycle"]
ENTRIES = {
    # name: (widths, what builds (X_train, X_test, image_shape))
    "photos-rgb32": ((8, 32, 64), lambda home: photo_patches(32, grey=False)),
    "photos-gray32": ((8, 32), lambda home: photo_patches(32, grey=True)),
    "photos-gray64": ((32,), lambda home: photo_patches(64, grey=True)),
    # the same photos with the training photos cut in two (see photo_patches):
    # default settings, with and without fit(X, X_val=...)
    "photos-rgb32-split": ((8, 32, 64), lambda home: photo_patches(32, False, True)),
    "photos-gray32-split": ((8, 32), lambda home: photo_patches(32, True, True)),
    "photos-gray64-split": ((32,), lambda home: photo_patches(64, True, True)),
    "digits": ((4, 8, 16), lambda home: digits()),
    "mnist": ((16, 32), lambda home: mnist(home)),
}
VALIDATION_SHARE = 0.2  # of each training photo's width, for the -split entries
BASELINE = dict(architecture="dense", max_epochs=15, precision="float32", lr=3e-3)
# --augmented: the default with random flips and turns, on the photo entries at d=32
AUGMENTED = dict(augmentation="dihedral")


# ----------------------------------------------------------------------------------
# Data


def photo(name):
    """One photo as uint8 (H, W) or (H, W, 3)."""
    if name.endswith(".jpg"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(name)
    import skimage.data

    image = getattr(skimage.data, name)()
    return image[0] if isinstance(image, tuple) else image  # stereo: the left view


def patches(image, n, size, rng):
    """``n`` random ``size`` x ``size`` patches as flat rows, channels first."""
    h, w = image.shape[:2]
    ys = rng.integers(0, h - size + 1, n)
    xs = rng.integers(0, w - size + 1, n)
    out = np.stack([image[y : y + size, x : x + size] for y, x in zip(ys, xs)])
    if out.ndim == 4:
        out = out.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    return out.reshape(n, -1)


def grey_image(image):
    """A photo in grey levels, uint8 (H, W)."""
    if image.ndim == 2:
        return image
    from skimage.color import rgb2gray

    return (rgb2gray(image[..., :3]) * 255).round().astype(np.uint8)


def photo_set(names, n, size, grey, seed, columns=(0.0, 1.0)):
    """``n`` patches from the photos ``names``, each cut within its ``columns``
    (fractions of the width), shuffled."""
    images = [photo(name) for name in names]
    if grey:
        images = [grey_image(im) for im in images]
    else:
        images = [im[..., :3] for im in images if im.ndim == 3]
    images = [
        im[:, round(columns[0] * im.shape[1]) : round(columns[1] * im.shape[1])]
        for im in images
    ]
    rng = np.random.default_rng(seed)
    counts = [n // len(images) + (i < n % len(images)) for i in range(len(images))]
    rows = np.concatenate(
        [patches(im, k, size, rng) for im, k in zip(images, counts)]
    ).astype(np.uint8)
    return rows[rng.permutation(n)]


def photo_patches(size, grey, split=False):
    """Training and test patches, the image shape and validation patches (None).

    ``split``: training patches from the left 80% of each training photo and 2,000
    validation patches from the right 20%, which no training patch overlaps (rows
    held out at random from patches of the same photos share their pixels with
    training rows; benchmarks/study/photos.md).
    """
    extra_train, extra_test = (["camera"], ["moon"]) if grey else ([], [])
    train_photos = TRAIN_PHOTOS + extra_train
    columns = (0.0, 1 - VALIDATION_SHARE) if split else (0.0, 1.0)
    train = photo_set(train_photos, 10_000, size, grey, seed=0, columns=columns)
    test = photo_set(TEST_PHOTOS + extra_test, 3_000 if size <= 32 else 2_000, size,
                     grey, seed=1)  # fmt: skip
    val = None
    if split:
        val = photo_set(
            train_photos, 2_000, size, grey, seed=2, columns=(columns[1], 1.0)
        )
    return train, test, (1 if grey else 3, size, size), val


def digits():
    from sklearn.datasets import load_digits

    X, _ = load_digits(return_X_y=True)
    X = np.round(X * 255 / 16).astype(np.uint8)
    return X[:1347], X[1347:], (1, 8, 8), None


def mnist(data_home):
    from sk_convae.datasets import fetch_mnist

    train = fetch_mnist(data_home, return_X_y=True, download_if_missing=False)[0]
    test = fetch_mnist(data_home, subset="test", return_X_y=True)[0]
    return train, test, (1, 28, 28), None


# ----------------------------------------------------------------------------------
# Runs


def mse(estimator, X_test):
    reconstruction = estimator.inverse_transform(estimator.transform(X_test))
    return float(np.mean((reconstruction / 255.0 - X_test / 255.0) ** 2))


def run(entry, method, d, data, overrides=None):
    X_train, X_test, image_shape, X_val = data
    fit_params = {"X_val": X_val} if method == "validated" else {}
    # --set changes the default estimator (and its variants), not PCA or --baseline
    applied = {} if method in ("pca", "baseline") else dict(overrides or {})
    if method == "pca":
        estimator = PCA(d, random_state=0)
    else:
        params = {"baseline": BASELINE, "augmented": AUGMENTED}.get(method, {})
        estimator = ConvAutoEncoderTransformer(
            d, image_shape=image_shape, random_state=0, **params, **applied
        )
    tic = time.perf_counter()
    estimator.fit(X_train, **fit_params)
    seconds = time.perf_counter() - tic
    return {
        "entry": entry,
        "method": method,
        "n_components": d,
        "test_mse": mse(estimator, X_test),
        "train_mse": mse(estimator, X_train[:3000]),
        "fit_seconds": seconds,
        "precision": getattr(estimator, "precision_", "float64"),
        "epochs": getattr(estimator, "n_epochs_", None),
        # epochs actually trained: fewer than planned where early stopping ended it
        "epochs_trained": getattr(estimator, "n_iter_", None),
        "rows": [len(X_train), len(X_test)],
        "overrides": {k: repr(v) for k, v in applied.items()},
    }


def table(runs):
    lines = [
        "| entry | d | PCA test MSE | method | test MSE | PCA's MSE / this | "
        "train MSE | epochs (planned) | precision | fit (s) |",
        "|---|---:|---:|---|---:|---:|---:|---:|---|---:|",
    ]
    pca = {(r["entry"], r["n_components"]): r for r in runs if r["method"] == "pca"}
    for r in runs:
        if r["method"] == "pca":
            continue
        base = pca.get((r["entry"], r["n_components"]))
        ratio = f"{base['test_mse'] / r['test_mse']:.2f}x" if base else "-"
        epochs = r["epochs"]
        trained = r.get("epochs_trained")
        if trained is not None and trained != epochs:
            epochs = f"{trained} ({epochs})"
        lines.append(
            f"| {r['entry']} | {r['n_components']} | "
            f"{base['test_mse']:.5f} | {r['method']} | {r['test_mse']:.5f} | "
            f"{ratio} | {r['train_mse']:.5f} | {epochs} | {r['precision']} | "
            f"{r['fit_seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-home", default=None, help="folder holding mnist/")
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/beyond-mnist")
    )
    parser.add_argument("--only", nargs="*", choices=list(ENTRIES), default=None)
    parser.add_argument("--widths", nargs="*", type=int, default=None)
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--augmented", action="store_true")
    parser.add_argument("--resume", action="store_true")
    add_set_argument(
        parser,
        "change a parameter of the default estimator (not of --baseline), "
        "e.g. lr=1e-2 (for studies of the recipe)",
    )
    args = parser.parse_args(argv)
    overrides = parse_overrides(args.overrides)

    (args.out / "runs").mkdir(parents=True, exist_ok=True)
    methods = ["pca", "autoencoder"] + (["baseline"] if args.baseline else [])
    runs = []
    for entry in args.only or ENTRIES:
        widths, build = ENTRIES[entry]
        try:
            data = build(args.data_home)
        except OSError as exc:  # MNIST not on disk
            print(f"skipping {entry}: {exc}", file=sys.stderr)
            continue
        for d in args.widths or widths:
            split = entry.endswith("-split")
            augmented = args.augmented and entry.startswith("photos") and d == 32
            extra = ["validated"] if split else []
            extra += ["augmented"] if augmented and not split else []
            for method in methods + extra:
                path = args.out / "runs" / f"{entry}-{method}-d{d}.json"
                if args.resume and path.exists():
                    runs.append(json.loads(path.read_text()))
                    continue
                result = run(entry, method, d, data, overrides)
                path.write_text(json.dumps(result, indent=1))
                runs.append(result)
                print(json.dumps(result), flush=True)
    # the table holds every saved run, this invocation's and earlier ones
    saved = sorted((args.out / "runs").glob("*.json"))
    runs = [json.loads(path.read_text()) for path in saved]
    write_results(args.out, table(runs), runs)
    print(table(runs))


if __name__ == "__main__":
    main()
