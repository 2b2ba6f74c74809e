"""How far any recipe gets past PCA on photos: the best epoch of long fits.

The question: can any network reach 1.2x PCA's MSE on 32x32 RGB patches of
*other* photos at d=32?
This script measures the ceiling a recipe reaches when nothing stops it early and
the best epoch is picked by looking at the test rows (an oracle choice no user can
make, hence an upper bound): after every epoch it records PCA's MSE over the
network's (above 1: better than PCA) on each test set, and reports the best.

Three data layouts (patches as in ``benchmarks/bench_suite.py``):

``cross``
    The suite's ``photos-rgb32``: training patches from the four training photos,
    test patches from three other photos.
``split``
    Training patches from the left 75% of the training photos; test sets: the other
    photos, and the right 25% of the training photos (no pixel shared with
    training: the same photos' content, unseen).
``oracle``
    Training patches from the left 75% of the *test* photos, tested on their right
    25% (and PCA fitted on the same training rows): what a network gains on the
    photos it is judged on, the most any training set could give.

    python benchmarks/study/photo_bound.py cross --d 32 --set max_epochs=60
    python benchmarks/study/photo_bound.py oracle --d 32 --n-train 100000 \
        --set max_epochs=30 augmentation="'dihedral'" --out /tmp/bound.json

``--photos DIR`` reads each photo from ``DIR/<name>.npy`` (written by ``dump``), for
a machine without scikit-image.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from skorch.callbacks import Callback

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench_suite  # noqa: E402

from sk_convae import ConvAutoEncoderTransformer  # noqa: E402

from _benchmark import add_set_argument, parse_overrides  # noqa: E402

CURVE = []  # what EpochRatios records
LEFT = (0.0, 0.75)
RIGHT = (0.75, 1.0)


def datasets(mode, n_train, grey):
    """(X_train, {name: X_test}) for one layout, uint8 patches of 32x32."""
    train_photos, test_photos = bench_suite.TRAIN_PHOTOS, bench_suite.TEST_PHOTOS
    if mode == "oracle":
        X_train = bench_suite.photo_set(test_photos, n_train, 32, grey, 0, LEFT)
        right = bench_suite.photo_set(test_photos, 2_000, 32, grey, 2, RIGHT)
        return X_train, {"right 25%": right}
    columns = LEFT if mode == "split" else (0.0, 1.0)
    X_train = bench_suite.photo_set(train_photos, n_train, 32, grey, 0, columns)
    sets = {"other photos": bench_suite.photo_set(test_photos, 3_000, 32, grey, 1)}
    if mode == "split":
        sets["right 25%"] = bench_suite.photo_set(
            train_photos, 2_000, 32, grey, 2, RIGHT
        )
    return X_train, sets


def network_mse(module, X, logits=False):
    """MSE of the module's reconstruction of uint8 rows, pixels in [0, 1]: clipped,
    or through a sigmoid where the module outputs ``logits`` (``loss='bce'``)."""
    device = next(module.parameters()).device
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(X), 1024):
            x = torch.as_tensor(X[start : start + 1024], device=device).float() / 255
            out = module(x).float()
            out = torch.sigmoid(out) if logits else out.clamp(0, 1)
            total += float(((out - x) ** 2).sum())
    return total / X.size


class EpochRatios(Callback):
    """After every epoch: PCA's test MSE over the network's, on each test set."""

    def __init__(self, sets, pca_mse):
        self.sets = sets
        self.pca_mse = pca_mse

    def on_epoch_end(self, net, **kwargs):
        module = net.module_.eval()
        logits = isinstance(net.criterion_, torch.nn.BCEWithLogitsLoss)
        ratios = {
            k: self.pca_mse[k] / network_mse(module, X, logits)
            for k, X in self.sets.items()
        }
        module.train()
        epoch = net.history[-1]["epoch"]
        CURVE.append({"epoch": epoch, **ratios})  # not self.*: fit clones callbacks
        values = " ".join(f"{k} {v:.4f}" for k, v in ratios.items())
        valid = net.history[-1].get("valid_loss")
        held_out = "" if valid is None else f"held-out {valid:.5f} "
        print(f"epoch {epoch:3d} {held_out}{values}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["cross", "split", "oracle", "dump"])
    parser.add_argument("--d", type=int, default=32)
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--grey", action="store_true")
    parser.add_argument("--photos", type=Path, help="read photos from DIR/<name>.npy")
    parser.add_argument("--out", type=Path, help="write the curve and best as JSON")
    add_set_argument(parser, "estimator parameters (Python literals)")
    args = parser.parse_args(argv)

    if args.mode == "dump":
        args.photos.mkdir(parents=True, exist_ok=True)
        for name in bench_suite.TRAIN_PHOTOS + bench_suite.TEST_PHOTOS:
            np.save(args.photos / f"{name}.npy", bench_suite.photo(name))
        return
    if args.photos is not None:
        bench_suite.photo = lambda name: np.load(args.photos / f"{name}.npy")

    X_train, sets = datasets(args.mode, args.n_train, args.grey)
    pca = PCA(args.d, random_state=0).fit(X_train)
    pca_mse = {name: bench_suite.mse(pca, X) for name, X in sets.items()}
    overrides = parse_overrides(args.overrides)
    params = {"max_epochs": 30, "early_stopping": False, **overrides}
    ae = ConvAutoEncoderTransformer(
        args.d,
        image_shape=(1 if args.grey else 3, 32, 32),
        random_state=0,
        callbacks=[EpochRatios(sets, pca_mse)],
        **params,
    )
    start = time.perf_counter()
    ae.fit(X_train)
    seconds = time.perf_counter() - start
    best = {k: max(CURVE, key=lambda e: e[k]) for k in sets}
    result = {
        "mode": args.mode,
        "d": args.d,
        "n_train": args.n_train,
        "grey": args.grey,
        "set": overrides,
        "device": ae.device_,
        "precision": ae.precision_,
        "lr": ae.lr_,
        "fit_seconds": round(seconds, 1),
        "pca_mse": pca_mse,
        "best": {k: {"epoch": b["epoch"], "ratio": b[k]} for k, b in best.items()},
        "last": CURVE[-1],
        "curve": CURVE,
    }
    for k, b in best.items():
        print(
            f"best on {k}: {b[k]:.4f} at epoch {b['epoch']} (last {CURVE[-1][k]:.4f})"
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
