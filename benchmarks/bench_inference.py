"""Inference paths of the default network on MNIST: what makes ``transform`` faster,
and how far each path's codes move from float32's.

Fits the default transformer (d=32) for 4 epochs on the 10,000 MNIST test images,
then encodes them along each path (best of 8 rounds, each timing every path in
turn) and compares the codes with those of ``transform`` as it was (float32,
256-row batches). It also counts the float32 work per row, and so the GFLOP/s
each path reaches:

- ``transform, module's encode (before)``: the estimator's path (input checks and
  scaling included) with the network's own ``encode`` (no prepared encoder);
- ``transform, prepared encoder``: the same with the encoder prepared for the CPU
  (``sk_convae/_inference.py``: BatchNorm folded, oneDNN layout), what ``transform``
  runs now, at two batch sizes;
- ``float32, N-row batches``: the module's ``encode`` on scaled rows;
- ``BatchNorm folded``: each convolution and its BatchNorm merged into one
  convolution (what an inference compiler does);
- ``... channels_last``: the same, images in NHWC memory order;
- ``bfloat16 convolutions``: the convolutional path under bfloat16 autocast, the
  linear (PCA) path and the last layer in float32;
- ``bfloat16 autocast``: everything but the linear path under autocast.

Timed in the same rounds: a 2,048 x 2,048 matrix product in float32 and in
bfloat16, the rate of the CPU's best-tuned kernel. No convolution beats it, so
its rate over the encoder's work per row bounds the rows/s of any exact (float32)
path on this machine.

    python benchmarks/bench_inference.py

Results: ``<out>/results.md`` and ``<out>/results.json`` (machine, every number).
"""

import argparse
import contextlib
import math
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from sk_convae import ConvAutoEncoderTransformer
from sk_convae import _estimator as estimator_module
from sk_convae import _inference as inference_module
from sk_convae._inference import _folded_convolution as folded_convolution
from sk_convae._inference import inference_batch_rows
from sk_convae._network import downsampled_sizes
from sk_convae.datasets import fetch_mnist

from _benchmark import cpu_model, write_results

# image shapes and rows of the second table
SHAPES = [((1, 8, 8), 20_000), ((1, 28, 28), 8_000), ((3, 32, 32), 4_000),
          ((1, 64, 64), 2_000)]  # fmt: skip


def batches_of_batch_size():
    """``transform`` in batches of ``batch_size`` rows (no memory budget)."""
    return mock.patch.dict(inference_module.INFERENCE_BYTES, clear=True)


def shape_rates(rounds):
    """``transform``'s rows/s on other image sizes, in batches of ``batch_size``
    and in the memory-budget batches of ``sk_convae._inference`` (random weights
    and rows)."""
    rng = np.random.default_rng(0)
    results = []
    for shape, n in SHAPES:
        X = rng.integers(0, 256, (n, math.prod(shape)), dtype=np.uint8)
        ae = ConvAutoEncoderTransformer(
            16, image_shape=shape, max_epochs=1, random_state=0, device="cpu"
        ).fit(X[:512])

        def before(ae=ae, X=X):
            with batches_of_batch_size():
                return ae.transform(X)

        candidates = {"before": before, "now": lambda ae=ae, X=X: ae.transform(X)}
        rates, codes = timed_rounds(candidates, n, rounds)
        results.append({
            "image_shape": shape,
            "rows": inference_batch_rows(ae.net_.module_, "cpu", ae.batch_size),
            "before": rates["before"], "now": rates["now"],
            "max_abs_diff": float(np.abs(codes["now"] - codes["before"]).max()),
        })  # fmt: skip
    return results


def folded_encoder(module):
    """The conv encoder with each BatchNorm folded into its convolution (eval), in
    plain float32 layout: ``transform``'s folding without oneDNN's layout."""
    *blocks, flatten, linear = module.encoder
    _, height, width = module.image_shape
    sizes = downsampled_sizes(height, width, len(blocks))
    layers = []
    for block, size in zip(blocks, sizes):
        layers += [folded_convolution(block, size), nn.ReLU()]
    return nn.Sequential(*layers, flatten, linear).eval()


def paths(ae):
    module = ae.net_.module_.eval()
    shape = module.image_shape
    encoder = folded_encoder(module)
    convs, head = encoder[:-2], encoder[-2:]  # (..., Flatten, Linear)

    def linear(x):
        return (x - module.mean()) @ module.encoder_axes().T

    def folded(x):
        return linear(x) + encoder(x.view(-1, *shape))  # (N, D) -> (N, C, H, W)

    def folded_channels_last(x):
        images = x.view(-1, *shape).contiguous(memory_format=torch.channels_last)
        return linear(x) + encoder(images)

    def bf16_convolutions(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            features = convs(x.view(-1, *shape))
        return linear(x) + head(features.float())

    def bf16_autocast(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return linear(x) + encoder(x.view(-1, *shape)).float()

    return {
        "float32, 256-row batches": (module.encode, 256),
        "float32, 64-row batches": (module.encode, 64),
        "float32, 1,024-row batches": (module.encode, 1024),
        "BatchNorm folded": (folded, 256),
        "BatchNorm folded, channels_last": (folded_channels_last, 256),
        "bfloat16 convolutions": (bf16_convolutions, 256),
        "bfloat16 autocast": (bf16_autocast, 256),
    }


def flops_per_row(module, rows):
    """Floating-point operations of ``module.encode`` per row (2 per multiply-add)."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        module.encode(rows)
    return counter.get_total_flops() / len(rows)


def matmul_ceiling(size=2048, dtype=torch.float32):
    """A function that multiplies two ``size`` x ``size`` matrices, and its FLOPs:
    the rate of the CPU's best-tuned kernel, a ceiling no convolution reaches."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)

    def run():
        with torch.inference_mode():
            return torch.mm(a, b)

    return run, 2 * size**3


def timed_rounds(candidates, n_rows, rounds):
    """Best rows/s of each candidate over ``rounds`` rounds, each round timing every
    candidate once in turn (so that a slow spell of a shared machine hits all), and
    the codes of its last pass."""
    best, codes = {}, {}
    for _ in range(rounds):
        for name, fn in candidates.items():
            tic = time.perf_counter()
            codes[name] = fn()
            rate = n_rows / (time.perf_counter() - tic)
            best[name] = max(best.get(name, 0.0), rate)
    return best, codes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/inference/cpu")
    )
    args = parser.parse_args(argv)
    X = fetch_mnist(args.data_home, subset="test", return_X_y=True)[0]
    ae = ConvAutoEncoderTransformer(32, max_epochs=4, random_state=0, device="cpu")
    ae.fit(X)
    scaled = torch.from_numpy(
        ((X - ae.data_offset_) / ae.data_scale_).astype(np.float32)
    )

    def transform(size, prepared=True, fixed=True):
        def run():
            ae.set_params(batch_size=size)
            with contextlib.ExitStack() as stack:
                if fixed:
                    stack.enter_context(batches_of_batch_size())
                if not prepared:
                    stack.enter_context(mock.patch.object(
                        estimator_module, "inference_encoder",
                        lambda module, _: module.encode,
                    ))  # fmt: skip
                return ae.transform(X)

        return run

    rows = inference_batch_rows(ae.net_.module_, "cpu", 256)
    candidates = {
        "transform, module's encode (before)": transform(256, prepared=False),
        "transform, prepared encoder, 256-row batches": transform(256),
        "transform, prepared encoder, 1,024-row batches": transform(1024),
        f"transform now (inference batches: {rows} rows)": transform(256, fixed=False),
    }
    for name, (fn, size) in paths(ae).items():

        def encode(fn=fn, size=size):
            with torch.inference_mode():
                parts = [fn(scaled[i : i + size]) for i in range(0, len(X), size)]
            return torch.cat(parts).float().numpy()

        candidates[name] = encode
    # the float32 and bfloat16 matrix-multiply ceilings, timed in the same rounds;
    # "rows" of a ceiling are its FLOPs, so that its rate is FLOP/s
    flops = flops_per_row(ae.net_.module_, scaled[:256])
    ceilings = {}
    for dtype in ("float32", "bfloat16"):
        run, work = matmul_ceiling(dtype=getattr(torch, dtype))
        name = f"{dtype} matrix multiply (2,048 x 2,048)"
        ceilings[name] = work
        candidates[name] = run
    rates, codes = timed_rounds(candidates, len(X), args.rounds)
    for name, work in ceilings.items():
        del codes[name]
        # timed as len(X) "rows": rows/s * work / len(X) is FLOP/s
        rates[name] = rates.pop(name) * work / len(X)
    reference = codes["transform, module's encode (before)"]
    runs = [
        {
            "path": name,
            "rows_per_s": rates[name],
            "max_abs_diff": float(np.abs(codes[name] - reference).max()),
            "rms_diff": float(np.sqrt(np.mean((codes[name] - reference) ** 2))),
        }
        for name in codes
    ]
    base = runs[0]["rows_per_s"]
    peak = {name: rates[name] for name in ceilings}  # FLOP/s
    float32_peak = peak["float32 matrix multiply (2,048 x 2,048)"]
    lines = [
        f"MNIST test images, d=32, 4 epochs; largest code {np.abs(reference).max():.2f}"
        f"; {cpu_model()}, {torch.get_num_threads()} threads",
        "",
        f"float32 work per row {flops / 1e6:.2f} MFLOP (2 per multiply-add)",
        "",
        "| path | rows/s | vs transform | GFLOP/s | of float32 matmul | "
        "largest code difference | RMS code difference |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        rate = r["rows_per_s"] * flops
        lines.append(
            f"| {r['path']} | {r['rows_per_s']:,.0f} | {r['rows_per_s'] / base:.2f}x | "
            f"{rate / 1e9:.0f} | {rate / float32_peak:.0%} | {r['max_abs_diff']:.1e} | "
            f"{r['rms_diff']:.1e} |"
        )
    lines += ["", "| ceiling | GFLOP/s | rows/s at this rate | vs transform |"]
    lines.append("|---|---:|---:|---:|")
    for name, rate in peak.items():
        lines.append(
            f"| {name} | {rate / 1e9:.0f} | {rate / flops:,.0f} | "
            f"{rate / flops / base:.2f}x |"
        )
    shapes = shape_rates(args.rounds)
    lines += [
        "",
        "`transform` on other image sizes (random rows, weights of one epoch, d=16):",
        "",
        "| image shape | inference batch (rows) | rows/s, batches of 256 | rows/s now "
        "| now / before | largest code difference |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in shapes:
        lines.append(
            f"| {'x'.join(map(str, r['image_shape']))} | {r['rows']:,} | "
            f"{r['before']:,.0f} | {r['now']:,.0f} | {r['now'] / r['before']:.2f}x | "
            f"{r['max_abs_diff']:.1e} |"
        )
    summary = {"flops_per_row": flops, "matmul_flops_per_s": peak, "shapes": shapes}
    write_results(args.out, "\n".join(lines) + "\n", [summary, *runs])
    print("\n".join(lines))


if __name__ == "__main__":
    main()
