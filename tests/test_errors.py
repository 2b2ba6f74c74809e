"""Bad input gets a clear error in the user's terms, before any training starts."""

import re

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import NotFittedError
from skorch import NeuralNet

from sk_convae import ConvAutoEncoderTransformer
from sk_convae._device import resolve_device
from tests.conftest import FAST

X_OK = np.random.default_rng(0).uniform(size=(20, 64))


@pytest.fixture
def no_training(monkeypatch):
    """Make any attempt to train fail loudly: errors must come before training."""

    def refuse(*args, **kwargs):
        raise AssertionError("training started before the input was validated")

    monkeypatch.setattr(NeuralNet, "fit", refuse)


def _with(value, row=0, col=0):
    X = X_OK.copy()
    X[row, col] = value
    return X


@pytest.mark.parametrize(
    "X, error, message",
    [
        (_with(np.nan), ValueError, "Input X contains NaN"),
        (_with(np.inf), ValueError, "Input X contains infinity"),
        (sp.csr_matrix(X_OK), TypeError, "Sparse data was passed"),
        (X_OK + 1j, ValueError, "Complex data not supported"),
        (X_OK[0], ValueError, "Expected 2D array, got 1D array"),
        (X_OK[:0], ValueError, "0 sample"),
        (X_OK[:1], ValueError, "1 sample"),
    ],
    ids=["nan", "inf", "sparse", "complex", "1-d", "empty", "one-row"],
)
def test_bad_input_to_fit(X, error, message, no_training):
    with pytest.raises(error, match=message):
        ConvAutoEncoderTransformer().fit(X)


@pytest.mark.parametrize(
    "params, error, message",
    [
        ({"n_components": 0}, ValueError, "'n_components' parameter"),
        ({"n_components": 2.5}, TypeError, "'n_components' parameter"),
        ({"loss": "l1"}, ValueError, "'loss' parameter"),
        ({"architecture": "vit"}, ValueError, "'architecture' parameter"),
        ({"noise_factor": -0.1}, ValueError, "'noise_factor' parameter"),
        ({"max_epochs": 0}, ValueError, "'max_epochs' parameter"),
        ({"batch_size": 0}, ValueError, "'batch_size' parameter"),
        ({"batch_size": 1}, ValueError, "batch_size=1 cannot train"),
        ({"lr": 0.0}, ValueError, "'lr' parameter"),
        ({"lr": "fast"}, ValueError, "'lr' parameter"),
        ({"channels": ()}, ValueError, "channels must be a non-empty tuple"),
        ({"channels": (8, 0)}, ValueError, "channels must be a non-empty tuple"),
        ({"image_shape": (8,)}, ValueError, "image_shape must be"),
        ({"image_shape": (0, 8)}, ValueError, "image_shape must be"),
        ({"image_shape": (7, 9)}, ValueError, r"image_shape \(7, 9\) needs 63 "),
        ({"device": "no-such-device"}, ValueError, "is not a torch device"),
        ({"callbacks": ["not a callback"]}, TypeError, "skorch callbacks, got str"),
    ],
)
def test_bad_parameters(params, error, message, no_training):
    with pytest.raises(error, match=message):
        ConvAutoEncoderTransformer(**params).fit(X_OK)


def test_image_shape_that_does_not_match_n_features(no_training):
    X = np.zeros((5, 783))
    X[0, 0] = 1
    with pytest.raises(
        ValueError, match=re.escape("image_shape (28, 28) needs 784 features, got 783.")
    ):
        ConvAutoEncoderTransformer(image_shape=(28, 28)).fit(X)


def test_bce_on_data_it_cannot_scale(no_training):
    with pytest.raises(ValueError, match="loss='bce' needs intensities"):
        ConvAutoEncoderTransformer(loss="bce", architecture="dense").fit(X_OK - 0.5)


def test_bce_needs_a_sigmoid_output(no_training):
    with pytest.raises(ValueError, match="architecture='residual'"):
        ConvAutoEncoderTransformer(loss="bce").fit(X_OK)


def test_conv_architecture_needs_the_feature_map_width(no_training):
    X = np.random.default_rng(0).uniform(size=(10, 784))
    message = re.escape(
        "8 channels x 4 x 4 = 128 numbers for image_shape (1, 28, 28) and channels "
        "(16, 8, 8); set n_components=128 (got 32)."
    )
    with pytest.raises(ValueError, match=message):
        ConvAutoEncoderTransformer(architecture="conv", channels=(16, 8, 8)).fit(X)


def test_cuda_requested_without_cuda(monkeypatch, no_training):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        ConvAutoEncoderTransformer(device="cuda").fit(X_OK)


@pytest.fixture(scope="module")
def fitted():
    return ConvAutoEncoderTransformer(n_components=4, **{**FAST, "max_epochs": 1}).fit(
        X_OK
    )


def test_wrong_number_of_features_at_transform(fitted):
    message = "X has 63 features, but ConvAutoEncoderTransformer is expecting 64"
    with pytest.raises(ValueError, match=message):
        fitted.transform(X_OK[:, :63])
    with pytest.raises(ValueError, match=message):
        fitted.score(X_OK[:, :63])


def test_wrong_code_width_at_inverse_transform(fitted):
    message = re.escape(
        "X has 5 columns, but inverse_transform expects codes with n_components_=4"
    )
    with pytest.raises(ValueError, match=message):
        fitted.inverse_transform(np.zeros((3, 5)))


@pytest.mark.parametrize("X", [_with(np.nan), X_OK[0]], ids=["nan", "1-d"])
def test_bad_input_to_transform(fitted, X):
    with pytest.raises(ValueError):
        fitted.transform(X)


@pytest.mark.parametrize("method", ["transform", "inverse_transform", "score"])
def test_use_before_fit(method):
    with pytest.raises(NotFittedError):
        getattr(ConvAutoEncoderTransformer(), method)(X_OK)


# ----------------------------------------------------------------------------------
# device resolution


def test_auto_device_is_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"


def test_auto_device_picks_cuda_when_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda:1") == "cuda:1"
    assert resolve_device(torch.device("cuda", 0)) == "cuda:0"
    with pytest.raises(ValueError, match="this machine has 2 CUDA device"):
        resolve_device("cuda:2")


def test_explicit_cpu_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("cpu") == "cpu"
    assert resolve_device(torch.device("cpu")) == "cpu"


def test_fitted_model_records_its_device():
    ae = ConvAutoEncoderTransformer(n_components=2, device="cpu", **FAST).fit(X_OK)
    assert ae.device_ == "cpu"
    assert ae.net_.device == "cpu"
