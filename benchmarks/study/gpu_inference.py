"""Encoding on a CUDA device in float32, TF32, bfloat16 and float16.

On the CPU of this project's machines float32 ``transform`` already runs at the
matrix product's ceiling (``benchmarks/bench_inference.py``) and bfloat16 moves the
codes by 1e-2; float16 (10-bit mantissa) needs hardware with fast half precision.
This fits the default transformer (d=32) for 4 epochs on the 10,000 MNIST test
images on the GPU, then times the module's ``encode`` on rows already on the device
(best of 10 rounds, every path in turn) and ``transform`` from host rows in
batches of ``batch_size`` and in the memory-budget batches, and compares
each path's codes with float32's.

    python benchmarks/study/gpu_inference.py --out /tmp/gi
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_inference import batches_of_batch_size, timed_rounds  # noqa: E402

from sk_convae import ConvAutoEncoderTransformer  # noqa: E402
from sk_convae import _inference as inference_module  # noqa: E402
from sk_convae.datasets import fetch_mnist  # noqa: E402


def synchronize():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, rounds=10):
    """Best wall time of ``fn()`` over ``rounds``, the device synchronised."""
    best = float("inf")
    for _ in range(rounds):
        synchronize()
        start = time.perf_counter()
        fn()
        synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--out", type=Path, default=Path("/tmp/gpu-inference"))
    parser.add_argument("--device", default="cuda", help="'cpu' to try the script")
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args(argv)
    X = fetch_mnist(args.data_home, subset="test", return_X_y=True)[0][: args.rows]
    device = args.device
    kind = torch.device(device).type
    defaults = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    ae = ConvAutoEncoderTransformer(
        32, image_shape=(1, 28, 28), max_epochs=4, device=device, random_state=0
    ).fit(X)
    module = ae.net_.module_.eval()
    rows = torch.as_tensor(X, device=device).float() / 255  # (N, 784)

    def encode(dtype=None, tf32=False, batch=1024):
        def run():
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            out = []
            with (
                torch.inference_mode(),
                torch.autocast(
                    kind, dtype=dtype or torch.float32, enabled=dtype is not None
                ),
            ):
                for start in range(0, len(rows), batch):
                    out.append(module.encode(rows[start : start + batch]).float())
            return torch.cat(out)

        return run

    paths = {
        "float32": encode(),
        "float32, one batch": encode(batch=len(rows)),
        "TF32": encode(tf32=True),
        "bfloat16 autocast": encode(torch.bfloat16),
        "float16 autocast": encode(torch.float16),
        "float16 autocast, one batch": encode(torch.float16, batch=len(rows)),
    }
    reference = paths["float32"]()
    results = []
    for name, run in paths.items():
        codes = run()
        seconds = timed(run)
        diff = (codes - reference).abs()
        results.append(
            {
                "path": name,
                "rows_per_s": len(rows) / seconds,
                "max_diff": float(diff.max()),
                "rms_diff": float(diff.pow(2).mean().sqrt()),
            }
        )
    # transform below runs with torch's own defaults (cuDNN may use TF32), as a user's
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = defaults
    # transform from host rows: in batches of batch_size (no budget) and in
    # the inference batches of sk_convae._inference, every round timing both
    transforms = {
        "before": lambda: batches_of_batch_size()(ae.transform)(X),
        "now": lambda: ae.transform(X),
    }
    transform_rates, transform_codes = timed_rounds(transforms, len(X), 5)
    rows_now = inference_module.inference_batch_rows(module, device, ae.batch_size)
    base = results[0]["rows_per_s"]
    lines = [
        "| path | rows/s | vs float32 | largest / RMS code difference |",
        "|---|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['path']} | {r['rows_per_s']:,.0f} | "
            f"{r['rows_per_s'] / base:.2f}x | "
            f"{r['max_diff']:.1e} / {r['rms_diff']:.1e} |"
        )
    for name, label in [
        ("before", f"batches of {ae.batch_size}"),
        ("now", f"inference batches of {rows_now}"),
    ]:
        rate = transform_rates[name]
        diff = np.abs(transform_codes[name] - transform_codes["before"]).max()
        lines.append(
            f"| `transform` from host rows, {label} | {rate:,.0f} | "
            f"{rate / base:.2f}x | {diff:.1e} |"
        )
    results.append(
        {
            "transform_rows_per_s": transform_rates,
            "inference_rows": rows_now,
        }
    )
    codes = np.abs(reference.cpu().numpy())
    name = torch.cuda.get_device_name(device) if kind == "cuda" else device
    lines.append(
        f"\nCodes: RMS {np.sqrt((codes**2).mean()):.3f}, largest {codes.max():.2f}; "
        f"device {name}, torch {torch.__version__}, precision_ {ae.precision_}."
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
