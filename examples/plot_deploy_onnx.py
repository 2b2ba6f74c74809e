"""
Ship a fitted Pipeline to ONNX Runtime
======================================

A fitted ``Pipeline([autoencoder, LogisticRegression])`` is converted to one ONNX
file with skl2onnx, after
:func:`~sk_convae.register_onnx_converter` has told skl2onnx how to convert the
autoencoder. The file then predicts with ONNX Runtime alone: the machine that
serves it needs ``pip install onnxruntime numpy``, not PyTorch, skorch or
scikit-learn. We check that ONNX Runtime gives the Pipeline's labels and
probabilities, and time both engines.

Needs ``pip install 'sk-convae[onnx]'``. From a checkout, the same runs on MNIST
with ``python examples/plot_deploy_onnx.py --dataset mnist``.
"""

# %%
# Settings
# --------
# The gallery runs with the defaults below; a script run can change them.
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import skl2onnx
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from sk_convae import ConvAutoEncoderTransformer, register_onnx_converter
from sk_convae.datasets import load_demo_data

parser = argparse.ArgumentParser(description="Deploy a Pipeline with ONNX Runtime.")
parser.add_argument("--dataset", choices=["digits", "mnist"], default="digits")
parser.add_argument("--data-home", default=None, help="where MNIST is kept")
parser.add_argument("--n-components", type=int, default=16)
parser.add_argument("--max-epochs", type=int, default=30)
parser.add_argument("--n-test", type=int, default=None, help="test rows to use")
parser.add_argument("--budget", type=float, default=1.0, help="seconds per timing")
parser.add_argument(
    "--threads", type=int, default=None, help="for both engines; default: PyTorch's"
)
parser.add_argument("--out", default=None, help="folder for the files written")
args = parser.parse_args()
out = Path(args.out or tempfile.mkdtemp())
if args.threads:
    torch.set_num_threads(args.threads)
threads = torch.get_num_threads()  # ONNX Runtime gets as many

# %%
# Fit the Pipeline
# ----------------
data = load_demo_data(args.dataset, data_home=args.data_home, n_test=args.n_test)
X_train, X_test = data.X_train, data.X_test
ae = ConvAutoEncoderTransformer(
    n_components=args.n_components,
    image_shape=data.image_shape,
    max_epochs=args.max_epochs,
    batch_size=64 if len(X_train) < 10_000 else 256,
    random_state=0,
)
clf = LogisticRegression(max_iter=2000)
pipe = Pipeline([("ae", ae), ("clf", clf)]).fit(X_train, data.y_train)
accuracy = pipe.score(X_test, data.y_test)
print(f"{data.name}: {len(X_test)} test rows ({X_test.dtype}), accuracy {accuracy:.3f}")

# %%
# Save it two ways
# ----------------
# :meth:`~sk_convae.ConvAutoEncoderTransformer.save` writes the autoencoder alone
# without pickle: its weights and settings in one safetensors file. skl2onnx
# converts the whole Pipeline into one ONNX graph, for rows of ``X_test``'s
# dtype; ``zipmap=False`` returns the probabilities as one array.
out.mkdir(parents=True, exist_ok=True)
ae.save(out / "ae.safetensors")
register_onnx_converter()
model = skl2onnx.to_onnx(pipe, X_test[:1], options={id(clf): {"zipmap": False}})
onnx_path = out / "pipeline.onnx"
onnx_path.write_bytes(model.SerializeToString())
for path in (out / "ae.safetensors", onnx_path):
    print(f"wrote {path.name} ({path.stat().st_size / 1e3:.0f} kB)")

# %%
# Predict with ONNX Runtime only
# ------------------------------
# This is all the serving side runs.


def onnx_predictor(path, threads=None):
    """``predict(X) -> (labels, probabilities)`` with ONNX Runtime only."""
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(
        path, options, providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name

    def predict(X):
        labels, probabilities = session.run(None, {name: X})
        return labels, probabilities

    return predict


predict = onnx_predictor(str(onnx_path), threads)
labels, probabilities = predict(X_test)
same_labels = int(np.sum(labels == pipe.predict(X_test)))
max_difference = float(np.max(np.abs(probabilities - pipe.predict_proba(X_test))))
print(
    f"ONNX Runtime: the Pipeline's labels for {same_labels}/{len(X_test)} rows, "
    f"probabilities within {max_difference:.1e}"
)
if same_labels != len(X_test) or max_difference > 1e-4:
    raise SystemExit("ONNX Runtime does not agree with the Pipeline")

# %%
# Throughput
# ----------
# Rows per second of each engine, on the whole test set at once and one row per
# call (as a service answering single requests would, on the first 1,000 rows);
# the median of repeated runs of about ``--budget`` seconds each, with the same
# number of threads for both.


def rows_per_second(predict, X, *, one_row, budget_s):
    """Median throughput of ``predict`` on all of ``X`` at once, or on its first
    1,000 rows one per call."""
    calls = [X[i : i + 1] for i in range(min(len(X), 1000))] if one_row else [X]
    timings = []
    deadline = time.perf_counter() + budget_s
    while len(timings) < 3 or time.perf_counter() < deadline:
        start = time.perf_counter()
        for rows in calls:
            predict(rows)
        timings.append(time.perf_counter() - start)
    return sum(len(rows) for rows in calls) / statistics.median(timings)


engines = {"Pipeline (PyTorch)": pipe.predict_proba, "ONNX Runtime": predict}
speed = {
    name: {
        mode: rows_per_second(
            engine, X_test, one_row=mode == "one row", budget_s=args.budget
        )
        for mode in ("batch", "one row")
    }
    for name, engine in engines.items()
}
print(f"{threads} thread(s) for each engine\n")
print("| engine             | whole test set, rows/s | one row per call, rows/s |")
print("|--------------------|------------------------|--------------------------|")
for name, rates in speed.items():
    print(f"| {name:<18} | {rates['batch']:>22,.0f} | {rates['one row']:>24,.0f} |")

# %%
# ONNX Runtime answers single rows much faster than the Pipeline, whose every
# call passes through scikit-learn's input checks and PyTorch's dispatch; on
# whole batches the gap is smaller. The numbers above come from the machine that
# built this page.
