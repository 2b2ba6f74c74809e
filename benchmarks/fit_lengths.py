"""Wall time of a whole ``fit`` against its quality, for a few training lengths.

The MNIST benchmark's curve gives the training seconds after which a long fit
crosses a test error; this script answers the user's question instead: how long
does a complete ``fit(X)`` of the 60,000 MNIST images take (data checks, PCA start
and the whole one-cycle schedule included) for a test MSE of 0.0038 at d=32? For
each ``max_epochs`` it fits ``ConvAutoEncoderTransformer(32, max_epochs=E)`` (every
other setting at its default, on the default device) and prints the wall time and
the test MSE.

    python benchmarks/fit_lengths.py --epochs 4 6 8

Results: ``<out>/results.md`` and ``<out>/results.json``.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from sk_convae import ConvAutoEncoderTransformer
from sk_convae.datasets import fetch_mnist

from _benchmark import write_results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--epochs", nargs="+", type=int, default=[4, 6, 8])
    parser.add_argument("--n-components", type=int, default=32)
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/fit-lengths")
    )
    args = parser.parse_args(argv)
    X = fetch_mnist(args.data_home, return_X_y=True)[0]
    X_test = fetch_mnist(args.data_home, subset="test", return_X_y=True)[0]
    runs = []
    for epochs in args.epochs:
        ae = ConvAutoEncoderTransformer(
            args.n_components, max_epochs=epochs, random_state=0
        )
        tic = time.perf_counter()
        ae.fit(X)
        seconds = time.perf_counter() - tic
        reconstruction = ae.inverse_transform(ae.transform(X_test)) / 255.0
        mse = float(np.mean((reconstruction - X_test / 255.0) ** 2))
        runs.append(
            {
                "max_epochs": epochs,
                "fit_seconds": seconds,
                "test_mse": mse,
                "device": ae.device_,
                "precision": ae.precision_,
            }
        )
        print(json.dumps(runs[-1]), flush=True)
    lines = [
        "| d | max_epochs | device | precision | fit (s, wall) | test MSE |",
        "|---|---:|---|---|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {args.n_components} | {r['max_epochs']} | {r['device']} | "
            f"{r['precision']} | {r['fit_seconds']:.1f} | {r['test_mse']:.5f} |"
        )
    write_results(args.out, "\n".join(lines) + "\n", runs)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
