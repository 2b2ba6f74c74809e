"""Swap PCA for ConvAutoEncoderTransformer in a Pipeline, on scikit-learn's 8x8 digits.

Runs offline in about half a minute on 2 CPU cores and prints, for both reducers at
the same code width: the test reconstruction error, the accuracy of a kNN classifier
on the codes, and the fit time. The fitted pipeline is saved with joblib.

    python examples/quickstart.py
"""

import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline

from sk_convae import ConvAutoEncoderTransformer

N_COMPONENTS = 8


def main():
    X, y = load_digits(return_X_y=True)  # (1797, 64): 8x8 images, values 0..16
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    reducers = {
        "PCA": PCA(n_components=N_COMPONENTS),
        "ConvAutoEncoder": ConvAutoEncoderTransformer(
            n_components=N_COMPONENTS, max_epochs=30, batch_size=64, random_state=0
        ),
    }
    print(f"8x8 digits, codes of width {N_COMPONENTS}, test set of {len(X_test)}\n")
    print(f"| {'reducer':<16} | test MSE | kNN accuracy | fit time |")
    print(f"|{'-' * 18}|----------|--------------|----------|")
    for name, reducer in reducers.items():
        pipe = Pipeline([("reduce", reducer), ("knn", KNeighborsClassifier())])
        start = time.perf_counter()
        pipe.fit(X_train, y_train)
        fit_time = time.perf_counter() - start
        reduce = pipe.named_steps["reduce"]
        reconstruction = reduce.inverse_transform(reduce.transform(X_test))
        mse = np.mean((X_test - reconstruction) ** 2)
        accuracy = pipe.score(X_test, y_test)
        print(f"| {name:<16} | {mse:8.3f} | {accuracy:12.3f} | {fit_time:6.1f} s |")

    path = Path(tempfile.mkdtemp()) / "pipeline.joblib"
    joblib.dump(pipe, path)
    print(f"\nSaved the autoencoder pipeline to {path}")


if __name__ == "__main__":
    main()
