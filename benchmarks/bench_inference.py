"""Inference paths of the default network on MNIST: what makes ``transform`` faster,
and how far each path's codes move from float32's.

Fits the default transformer (d=32) for 4 epochs on the 10,000 MNIST test images,
then encodes them along each path, best of 4 timed passes, and compares the codes
with ``transform``'s (float32, 256-row batches):

- ``transform``: the estimator's own path (input checks and scaling included);
- ``float32, N-row batches``: the module's ``encode`` on scaled rows;
- ``BatchNorm folded``: each convolution and its BatchNorm merged into one
  convolution (what an inference compiler does);
- ``... channels_last``: the same, images in NHWC memory order;
- ``bfloat16 convolutions``: the convolutional path under bfloat16 autocast, the
  linear (PCA) path and the last layer in float32;
- ``bfloat16 autocast``: everything but the linear path under autocast.

    python benchmarks/bench_inference.py --data-home ../shared/data

Results: ``<out>/results.md`` and ``<out>/results.json`` (machine, every number).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sk_convae import ConvAutoEncoderTransformer
from sk_convae._benchmark import write_results
from sk_convae.datasets import fetch_mnist


def folded_encoder(module):
    """The conv encoder with each BatchNorm folded into its convolution (eval)."""
    layers = []
    for block in module.encoder:
        if block.__class__.__name__ != "DownBlock":
            layers.append(block)
            continue
        conv, norm, _ = block
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        merged = nn.Conv2d(conv.in_channels, conv.out_channels, 3, stride=2, padding=1)
        merged.weight.data = conv.weight * scale[:, None, None, None]
        merged.bias.data = norm.bias - norm.running_mean * scale
        layers += [merged, nn.ReLU()]
    return nn.Sequential(*layers).eval()


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


def best_rate(fn, n_rows, repeats=4):
    seconds, out = [], None
    for _ in range(repeats):
        tic = time.perf_counter()
        out = fn()
        seconds.append(time.perf_counter() - tic)
    return n_rows / min(seconds), out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-home", default=None)
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/inference")
    )
    args = parser.parse_args(argv)
    X = fetch_mnist(args.data_home, subset="test", return_X_y=True)[0]
    ae = ConvAutoEncoderTransformer(32, max_epochs=4, random_state=0).fit(X)
    scaled = torch.from_numpy(
        ((X - ae.data_offset_) / ae.data_scale_).astype(np.float32)
    )
    rate, reference = best_rate(lambda: ae.transform(X), len(X))
    runs = [{"path": "transform", "rows_per_s": rate, "max_abs_diff": 0.0}]
    for name, (fn, size) in paths(ae).items():

        def encode(fn=fn, size=size):
            with torch.inference_mode():
                parts = [fn(scaled[i : i + size]) for i in range(0, len(X), size)]
            return torch.cat(parts).float().numpy()

        rate, codes = best_rate(encode, len(X))
        diff = float(np.abs(codes - reference).max())
        runs.append({"path": name, "rows_per_s": rate, "max_abs_diff": diff})
        print(json.dumps(runs[-1]), flush=True)
    base = runs[0]["rows_per_s"]
    lines = [
        "MNIST test images, d=32, 4 epochs; largest code "
        f"{np.abs(reference).max():.2f}",
        "",
        "| path | rows/s | vs transform | largest code difference |",
        "|---|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r['path']} | {r['rows_per_s']:,.0f} | {r['rows_per_s'] / base:.2f}x | "
            f"{r['max_abs_diff']:.1e} |"
        )
    write_results(args.out, "\n".join(lines) + "\n", runs)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
