"""The test error on other photos after every epoch (benchmarks/study/photos.md).

Fits the default transformer on the suite's photo patches with a callback that
measures, at each epoch's end, PCA's test MSE over the network's (above 1: better
than PCA) on the patches of other photos, and prints one line per epoch.

    python benchmarks/study/photo_curves.py curve --d 8            # the default
    python benchmarks/study/photo_curves.py curve --d 8 --set augmentation=dihedral
    python benchmarks/study/photo_curves.py split --d 8            # overlap-free rows
    python benchmarks/study/photo_curves.py parts --d 8 --train decoder

``split`` cuts the training patches from the left 75% of each training photo and
also reports rows from the right 25%, which no training patch overlaps.
``parts`` trains only one part of the network for 10 epochs (``encoder``,
``decoder``: the convolutional paths; ``linear``: the PCA path; ``all``).
"""

import argparse
import sys
from pathlib import Path

from sklearn.decomposition import PCA
from skorch.callbacks import Callback

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_suite  # noqa: E402
from photo_bound import EpochRatios, network_mse  # noqa: E402

from sk_convae import ConvAutoEncoderTransformer  # noqa: E402

PARTS = {
    "all": lambda name: True,
    "encoder": lambda name: name.startswith("encoder."),
    "decoder": lambda name: name.startswith("decoder."),
    "linear": lambda name: (
        name.split(".")[0] in ("mean", "encoder_axes", "decoder_axes")
    ),
}


class TrainOnly(Callback):
    """Freeze every parameter but those of one part of the network."""

    def __init__(self, part):
        self.part = part

    def on_train_begin(self, net, **kwargs):
        for name, parameter in net.module_.named_parameters():
            parameter.requires_grad_(PARTS[self.part](name))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["curve", "split", "parts"])
    parser.add_argument("--d", type=int, default=8)
    parser.add_argument("--grey", action="store_true")
    parser.add_argument("--train", choices=list(PARTS), default="all")
    parser.add_argument("--set", nargs="*", default=[], help="param=value (Python)")
    args = parser.parse_args(argv)

    X_train, X_test, shape, _ = bench_suite.photo_patches(32, args.grey)
    sets = {"other photos": X_test}
    if args.mode == "split":
        names = bench_suite.TRAIN_PHOTOS + (["camera"] if args.grey else [])
        X_train = bench_suite.photo_set(names, 10_000, 32, args.grey, 0, (0, 0.75))
        sets["right 25%"] = bench_suite.photo_set(
            names, 2_000, 32, args.grey, 2, (0.75, 1)
        )
    pca = PCA(args.d, random_state=0).fit(X_train)
    pca_mse = {name: bench_suite.mse(pca, X) for name, X in sets.items()}
    params = dict(kv.split("=", 1) for kv in args.set)
    params = {k: eval(v, {}) for k, v in params.items()}  # noqa: S307 (a CLI for us)
    callbacks = [EpochRatios(sets, pca_mse)]
    if args.mode == "parts":
        callbacks.insert(0, TrainOnly(args.train))
        params = {"max_epochs": 10, "early_stopping": False, **params}
    ae = ConvAutoEncoderTransformer(
        args.d, image_shape=shape, random_state=0, callbacks=callbacks, **params
    )
    ae.fit(X_train)
    kept = network_mse(ae.net_.module_, X_test, ae.loss_ == "bce")
    print(f"kept: {pca_mse['other photos'] / kept:.3f}")


if __name__ == "__main__":
    main()
