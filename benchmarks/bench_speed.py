"""Training and inference speed: ``fit`` against a raw PyTorch loop, old defaults
against new, on the 8x8 digits and on MNIST.

Training rows/s: ``ConvAutoEncoderTransformer(...).fit(X)`` for a fixed number of
epochs (its wall time, data checks and PCA start included), and a raw loop over the
*same* module and precision (a float32 tensor of the scaled data in memory, a
``randperm`` per epoch, slices, AdamW, the same loss), which is the ceiling for a
batch path with no per-row overhead. Each is run for the new defaults and for the
previous ones (``architecture='dense', precision='float32', lr=3e-3``).

Inference rows/s: ``transform`` of the test rows, new defaults against the previous
path, and a plain float32 pass over the same module in batches of 256 rows (what
``transform`` did before); and the largest difference between their codes.

    python benchmarks/bench_speed.py
    python benchmarks/bench_speed.py --quick          # digits only, ~1 minute

Results: ``<out>/results.md`` and ``<out>/results.json`` (machine: CPU model and
flags, torch threads; every measurement).
"""

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

from sk_convae import ConvAutoEncoderTransformer
from sk_convae._precision import autocast

from _benchmark import write_results

SETTINGS = {
    "new defaults": {},
    "previous defaults": dict(architecture="dense", precision="float32", lr=3e-3),
}


def data(name, data_home):
    if name == "digits":
        from sklearn.datasets import load_digits

        X, _ = load_digits(return_X_y=True)
        X = np.round(X * 255 / 16).astype(np.uint8)
        return X, X[-450:], (8, 8), 40
    from sk_convae.datasets import fetch_mnist

    train = fetch_mnist(data_home, return_X_y=True)[0][:20_000]
    test = fetch_mnist(data_home, subset="test", return_X_y=True)[0]
    return train, test, (28, 28), 2


def raw_loop_seconds(ae, X, epochs):
    """Seconds for ``epochs`` epochs of a plain loop over a copy of ``ae``'s module."""
    module = copy.deepcopy(ae.net_.module_).train()
    rows = torch.from_numpy(((X - ae.data_offset_) / ae.data_scale_).astype(np.float32))
    criterion = copy.deepcopy(ae.net_.criterion_)
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4, weight_decay=1e-4)
    tic = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(rows))
        for start in range(0, len(rows) - ae.batch_size + 1, ae.batch_size):
            batch = rows[order[start : start + ae.batch_size]]
            with autocast("cpu", ae.precision_):
                out = module(batch)
            loss = criterion(out.float(), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return time.perf_counter() - tic


def measure(name, setting, X, X_test, image_shape, epochs):
    params = dict(n_components=32, image_shape=image_shape, random_state=0)
    ae = ConvAutoEncoderTransformer(max_epochs=epochs, **params, **SETTINGS[setting])
    tic = time.perf_counter()
    ae.fit(X)
    fit_s = time.perf_counter() - tic
    raw_s = raw_loop_seconds(ae, X, epochs)
    tic = time.perf_counter()
    codes = ae.transform(X_test)
    transform_s = time.perf_counter() - tic
    # the reference: float32 batches of 256 rows, as transform did before
    module = ae.net_.module_.eval()
    scaled = torch.from_numpy(
        ((X_test - ae.data_offset_) / ae.data_scale_).astype(np.float32)
    )
    tic = time.perf_counter()
    with torch.inference_mode():
        reference = torch.cat(
            [module.encode(scaled[i : i + 256]) for i in range(0, len(scaled), 256)]
        ).numpy()
    reference_s = time.perf_counter() - tic
    return {
        "data": name,
        "setting": setting,
        "precision": ae.precision_,
        "epochs": epochs,
        "fit_rows_per_s": epochs * len(X) / fit_s,
        "raw_loop_rows_per_s": epochs * len(X) / raw_s,
        "transform_rows_per_s": len(X_test) / transform_s,
        "batches_of_256_rows_per_s": len(X_test) / reference_s,
        "codes_max_abs_diff_vs_float32": float(np.abs(codes - reference).max()),
    }


def table(runs):
    lines = [
        "| data | setting | precision | fit rows/s | raw loop rows/s | fit / raw | "
        "transform rows/s | 256-row batches rows/s | codes vs float32 |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r['data']} | {r['setting']} | {r['precision']} | "
            f"{r['fit_rows_per_s']:,.0f} | {r['raw_loop_rows_per_s']:,.0f} | "
            f"{r['fit_rows_per_s'] / r['raw_loop_rows_per_s']:.2f} | "
            f"{r['transform_rows_per_s']:,.0f} | "
            f"{r['batches_of_256_rows_per_s']:,.0f} | "
            f"{r['codes_max_abs_diff_vs_float32']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-home", default=None)
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/speed-cpu")
    )
    parser.add_argument("--quick", action="store_true", help="digits only")
    args = parser.parse_args(argv)
    runs = []
    for name in ["digits"] + ([] if args.quick else ["mnist"]):
        X, X_test, image_shape, epochs = data(name, args.data_home)
        for setting in SETTINGS:
            runs.append(measure(name, setting, X, X_test, image_shape, epochs))
            print(json.dumps(runs[-1]), flush=True)
    write_results(args.out, table(runs), runs)
    print(table(runs))


if __name__ == "__main__":
    main()
