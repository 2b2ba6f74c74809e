"""
Swap PCA for an autoencoder in a Pipeline
=========================================

:class:`~sk_convae.ConvAutoEncoderTransformer` is a scikit-learn transformer, so it
takes the place of :class:`~sklearn.decomposition.PCA` in a
:class:`~sklearn.pipeline.Pipeline`. Here both reduce scikit-learn's 8x8 digits
to codes of 8 numbers, and we compare the reconstruction error on held-out
images, the accuracy of a k-nearest-neighbours classifier on the codes, and the
time each pipeline takes to fit.
"""

# %%
# The data
# --------
# 1,797 grey-level images of 8x8 pixels, one per row, as 64 values from 0 to 16.
# The transformer reads the images' shape from the 64 columns (a square) and
# learns the data's range from the training rows, so no scaling step is needed.
import tempfile
import time
from pathlib import Path

import joblib
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline

from sk_convae import ConvAutoEncoderTransformer
from sk_convae.plotting import ReconstructionDisplay, TrainingCurveDisplay

X, y = load_digits(return_X_y=True)  # (1797, 64), values 0..16
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

# %%
# Two pipelines, one reducer each
# -------------------------------
# The same classifier follows each reducer; only the first step differs.
# ``max_epochs=30`` keeps the fit to seconds on a CPU.
N_COMPONENTS = 8
reducers = {
    "PCA": PCA(n_components=N_COMPONENTS),
    "ConvAutoEncoder": ConvAutoEncoderTransformer(
        n_components=N_COMPONENTS, max_epochs=30, batch_size=64, random_state=0
    ),
}
pipelines = {}
print(f"8x8 digits, codes of width {N_COMPONENTS}, test set of {len(X_test)}\n")
print(f"| {'reducer':<16} | test MSE | kNN accuracy | fit time |")
print(f"|{'-' * 18}|----------|--------------|----------|")
for name, reducer in reducers.items():
    pipe = Pipeline([("reduce", reducer), ("knn", KNeighborsClassifier())])
    start = time.perf_counter()
    pipe.fit(X_train, y_train)
    fit_time = time.perf_counter() - start
    reconstruction = reducer.inverse_transform(reducer.transform(X_test))
    mse = np.mean((X_test - reconstruction) ** 2)
    accuracy = pipe.score(X_test, y_test)
    pipelines[name] = pipe
    print(f"| {name:<16} | {mse:8.3f} | {accuracy:12.3f} | {fit_time:6.1f} s |")

# %%
# At the same width, the autoencoder's codes keep more of each image than PCA's
# (a lower reconstruction error), and the classifier does at least as well on
# them. PCA fits in milliseconds; the network trains for a few seconds.
#
# What the codes keep
# -------------------
# Each test image above its reconstruction from 8 numbers, by each reducer.
ae = reducers["ConvAutoEncoder"]
fig, axes = plt.subplots(2, 1, figsize=(8, 3.6), layout="constrained")
ReconstructionDisplay.from_estimator(ae, X_test, n_images=12, ax=axes[0])
axes[0].set_title("autoencoder")
pca = reducers["PCA"]
ReconstructionDisplay(
    X_test[:12], pca.inverse_transform(pca.transform(X_test[:12])), (1, 8, 8)
).plot(ax=axes[1])
axes[1].set_title("PCA")
plt.show()

# %%
# How the training went
# ---------------------
# ``history_`` holds the loss of every epoch; a curve still falling at the end
# says more epochs would lower the error further.
TrainingCurveDisplay.from_estimator(ae)
plt.show()

# %%
# Save and reload
# ---------------
# The fitted pipeline pickles with joblib like any scikit-learn pipeline.
# (:meth:`~sk_convae.ConvAutoEncoderTransformer.save` writes the transformer
# alone without pickle, to a safetensors file.)
path = Path(tempfile.mkdtemp()) / "pipeline.joblib"
joblib.dump(pipelines["ConvAutoEncoder"], path)
print(f"Saved the autoencoder pipeline to {path}")
reloaded = joblib.load(path)
print(f"Reloaded, test accuracy {reloaded.score(X_test, y_test):.3f}")
