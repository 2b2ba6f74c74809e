"""Shared fixtures: small, fast data and settings."""

import os
from pathlib import Path

# scikit-learn's array-API checks run only with this set before scipy is imported;
# without it they are skipped, and we want every estimator check to run.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

try:
    from hypothesis import settings
except ImportError:  # the [test] extra installs it (tests/test_properties.py needs it)
    pass
else:
    # CI: the same examples on every run (derandomize), no example database written
    # into the checkout, no per-example deadline (an example trains a network).
    # HYPOTHESIS_PROFILE=explore draws new examples on every run, to hunt for bugs.
    settings.register_profile("ci", derandomize=True, database=None, deadline=None)
    settings.register_profile("explore", database=None, deadline=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Settings that train a usable model on the 8x8 digits in about a second.
FAST = dict(image_shape=(8, 8), max_epochs=4, batch_size=64, random_state=0)

# scikit-learn's data home, as sklearn.datasets.get_data_home() names it (the
# SCIKIT_LEARN_DATA environment variable, else ~/scikit_learn_data) but without
# creating it. Tests that need the real MNIST files read them from DATA_HOME/mnist
# and never download them: CI sets SCIKIT_LEARN_DATA to a folder that holds them.
DATA_HOME = Path(
    os.environ.get("SCIKIT_LEARN_DATA", os.path.join("~", "scikit_learn_data"))
).expanduser()
needs_mnist = pytest.mark.skipif(
    not (DATA_HOME / "mnist").is_dir(),
    reason="needs MNIST in $SCIKIT_LEARN_DATA/mnist",
)


def batches_of_batch_size():
    """``transform`` and ``inverse_transform`` in batches of ``batch_size`` rows
    (no inference budget): for tests that cut the rows into several batches."""
    from unittest import mock

    import sk_convae._inference

    return mock.patch.dict(sk_convae._inference.INFERENCE_BYTES, clear=True)


@pytest.fixture(scope="session")
def digits():
    """The 8x8 digits as (X, y): X float64 in 0..16, shape (1797, 64)."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X, y


@pytest.fixture(scope="session")
def digits_small(digits):
    """The first 400 digits, for tests that fit several models."""
    X, y = digits
    return X[:400], y[:400]


@pytest.fixture(scope="session")
def mnist_like():
    """200 synthetic 28x28 uint8 images (blobs of light on black), (200, 784)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:28, 0:28]
    centres = rng.uniform(6, 22, size=(200, 2))
    blobs = np.exp(
        -((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2) / 18.0
    )
    return (blobs * 255).astype(np.uint8).reshape(200, 784)
