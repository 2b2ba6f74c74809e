"""Ship a fitted Pipeline to ONNX Runtime, and time it against scikit-learn.

Fits ``Pipeline([autoencoder, LogisticRegression])``, saves the autoencoder without
pickle (``ae.save``), converts the whole Pipeline to one ONNX file with skl2onnx,
then predicts the test set with ONNX Runtime alone (no PyTorch, skorch or
scikit-learn needed there) and checks it against the Pipeline: the labels, and the
probabilities within 1e-4. Prints both engines' throughput, on the whole test set
at once and one row per call (as a service answering single requests would; the
first 1,000 rows).

    python examples/deploy_onnx.py                    # 8x8 digits, offline, ~30 s
    python examples/deploy_onnx.py --dataset mnist --data-home ../shared/data

Needs ``pip install 'sk-convae[onnx]'``. Sample output (``--threads 1``, on a 2-vCPU
AMD EPYC whose other core was busy):

    digits: 450 test rows (float64), test accuracy 0.960
    ONNX Runtime: the Pipeline's labels for 450/450 rows, probabilities within 6.9e-07
    wrote deploy-onnx/ae.safetensors (833 kB) and deploy-onnx/pipeline.onnx (385 kB)

    threads: 1

    | engine             | whole test set, rows/s | one row per call, rows/s |
    |--------------------|------------------------|--------------------------|
    | Pipeline (PyTorch) |                 71,378 |                      431 |
    | ONNX Runtime       |                320,133 |                   59,567 |
"""

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from sk_convae import ConvAutoEncoderTransformer, register_onnx_converter
from sk_convae.datasets import load_demo_data


def onnx_predictor(path, threads=None):
    """``predict(X) -> (labels, probabilities)`` with ONNX Runtime only: all that the
    machine serving the model needs is ``pip install onnxruntime numpy``."""
    import onnxruntime

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


def rows_per_second(predict, X, *, one_row, budget_s):
    """Median throughput of ``predict`` over repeated runs of about ``budget_s``:
    on all of ``X`` at once, or on its first 1,000 rows one per call."""
    calls = [X[i : i + 1] for i in range(min(len(X), 1000))] if one_row else [X]
    timings = []
    deadline = time.perf_counter() + budget_s
    while len(timings) < 3 or time.perf_counter() < deadline:
        start = time.perf_counter()
        for rows in calls:
            predict(rows)
        timings.append(time.perf_counter() - start)
    return sum(len(rows) for rows in calls) / statistics.median(timings)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=["digits", "mnist"], default="digits")
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--n-components", type=int, default=16)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--n-test", type=int, default=None, help="test rows to use")
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per timing")
    parser.add_argument(
        "--threads", type=int, default=None, help="for PyTorch and ONNX Runtime both"
    )
    parser.add_argument("--out", type=Path, default=Path("deploy-onnx"))
    args = parser.parse_args(argv)

    import skl2onnx
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
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

    # 1. the autoencoder alone, without pickle: weights + JSON in one file
    args.out.mkdir(parents=True, exist_ok=True)
    ae.save(args.out / "ae.safetensors")
    # 2. the whole Pipeline as one ONNX graph, for rows of X_test's dtype
    register_onnx_converter()
    model = skl2onnx.to_onnx(pipe, X_test[:1], options={id(clf): {"zipmap": False}})
    onnx_path = args.out / "pipeline.onnx"
    onnx_path.write_bytes(model.SerializeToString())

    # 3. predict with ONNX Runtime only, and check it against the Pipeline
    predict = onnx_predictor(str(onnx_path), args.threads)
    labels, probabilities = predict(X_test)
    same_labels = int(np.sum(labels == pipe.predict(X_test)))
    max_difference = float(np.max(np.abs(probabilities - pipe.predict_proba(X_test))))
    if same_labels != len(X_test) or max_difference > 1e-4:
        raise SystemExit("ONNX Runtime does not agree with the Pipeline")
    print(
        f"{data.name}: {len(X_test)} test rows ({X_test.dtype}), test accuracy "
        f"{accuracy:.3f}\nONNX Runtime: the Pipeline's labels for "
        f"{same_labels}/{len(X_test)} rows, probabilities within "
        f"{max_difference:.1e}\nwrote {args.out / 'ae.safetensors'} "
        f"({(args.out / 'ae.safetensors').stat().st_size / 1e3:.0f} kB) and "
        f"{onnx_path} ({onnx_path.stat().st_size / 1e3:.0f} kB)\n"
    )

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
    threads = args.threads or f"default ({torch.get_num_threads()} for PyTorch)"
    print(f"threads: {threads}\n")
    print("| engine             | whole test set, rows/s | one row per call, rows/s |")
    print("|--------------------|------------------------|--------------------------|")
    for name, rates in speed.items():
        print(f"| {name:<18} | {rates['batch']:>22,.0f} | {rates['one row']:>24,.0f} |")
    return {
        "accuracy": accuracy,
        "same_labels": same_labels,
        "n_test": len(X_test),
        "max_difference": max_difference,
        "rows_per_second": speed,
    }


if __name__ == "__main__":
    main()
