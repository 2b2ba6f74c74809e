"""Property-based tests (hypothesis): any image shape, dtype, scale and batch size.

Every example draws images of 1 to 4 channels and 1 to 40 pixels a side, 2 to 40 of
them, in one of the dtypes users pass (uint8, uint16, bool, float16/32/64) at a drawn
scale and offset, and trains a tiny network for one epoch. What must hold whatever
is drawn:

- ``transform`` gives ``(n_samples, n_components)`` float32 codes and
  ``inverse_transform`` ``(n_samples, n_features)`` float32 images, all finite;
- the codes do not depend on ``batch_size`` or on the order of the rows;
- reconstructions are on the caller's scale: intensities within ``[0, 255]`` for
  uint8 and within ``[0, max(1, X.max())]`` for other non-negative data (the
  network's output in [0, 1], scaled back), and a positive affine change of the
  data changes the reconstructions by the same map and leaves the codes as they
  were;
- data of any float64 magnitude gives finite output, or (beyond
  ``sk_convae._scaling.MAX_MAGNITUDE``, 1e30) a ``ValueError`` saying so;
- anything else is a ``ValueError`` or ``TypeError`` in the user's terms, raised
  before any training.

The examples are the same on every run (tests/conftest.py's "ci" profile);
``HYPOTHESIS_PROFILE=explore`` draws new ones, to hunt for bugs.
"""

import math
import re
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from skorch import NeuralNet

from sk_convae import ConvAutoEncoderTransformer
from sk_convae._scaling import MAX_MAGNITUDE
from tests.conftest import batches_of_batch_size

DTYPES = ("uint8", "uint16", "bool", "float16", "float32", "float64")
# every architecture the estimator offers (the default one included)
ARCHITECTURES = sorted(
    ConvAutoEncoderTransformer._parameter_constraints["architecture"][0].options
)
PATTERNS = ("uniform", "sparse", "binary", "constant")
# Tiny networks: one epoch, at most two narrow stages.
CHANNELS = ((4,), (4, 8))
TINY = dict(max_epochs=1, random_state=0)
# where a test needs one architecture's own errors (BatchNorm's batch of 2, ...)
DENSE = dict(architecture="dense", channels=(4,))


# ----------------------------------------------------------------------------------
# What is drawn


def _conv_code_width(image_shape, channels):
    """n_components that architecture='conv' needs: the last feature map's size."""
    _, h, w = image_shape
    for _ in channels:  # each stage halves the image, rounding up
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    return channels[-1] * h * w


def _unit_values(rng, pattern, shape):
    """float64 values in [0, 1] of one of a few kinds of images."""
    if pattern == "uniform":
        return rng.random(shape)
    if pattern == "sparse":  # mostly zero, like digits on black
        return np.where(rng.random(shape) < 0.2, rng.random(shape), 0.0)
    if pattern == "binary":
        return (rng.random(shape) < 0.5).astype(np.float64)
    return np.full(shape, rng.random())  # constant


@st.composite
def images(draw, dtypes=DTYPES, max_exponent=6):
    """``(X, image_shape)``: 2 to 40 flattened images of a drawn shape and dtype.

    Floats are ``unit * 10**e + offset`` with ``e`` in [-6, max_exponent] and an
    offset of 0 or within ``10**max_exponent`` (float16: within its range).
    """
    image_shape = (
        draw(st.integers(1, 4)),
        draw(st.integers(1, 40)),
        draw(st.integers(1, 40)),
    )
    n_rows = draw(st.integers(2, 40))
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    pattern = draw(st.sampled_from(PATTERNS))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    unit = _unit_values(rng, pattern, (n_rows, math.prod(image_shape)))
    if dtype == np.bool_:
        X = unit >= 0.5
    elif dtype.kind == "u":
        high = draw(st.integers(1, int(np.iinfo(dtype).max)))
        X = np.rint(unit * high).astype(dtype)
    else:
        top = min(max_exponent, 4) if dtype == np.float16 else max_exponent
        scale = 10.0 ** draw(st.floats(-6, top))
        offset = draw(st.just(0.0) | st.floats(-(10.0**top), 10.0**top))
        X = (unit * scale + offset).astype(dtype)
    return X, image_shape


@st.composite
def settings_for(draw, image_shape, n_rows):
    """Parameters of a tiny network for images of ``image_shape``."""
    architecture = draw(st.sampled_from(ARCHITECTURES))
    channels = draw(st.sampled_from(CHANNELS))
    if architecture == "conv":
        n_components = _conv_code_width(image_shape, channels)
    else:
        n_components = draw(st.integers(1, 8))
    # the dense network's BatchNorm needs 2 rows per batch; the conv one has none
    batch_size = draw(st.integers(1 if architecture == "conv" else 2, n_rows + 8))
    return dict(
        architecture=architecture,
        channels=channels,
        n_components=n_components,
        image_shape=image_shape,
        batch_size=batch_size,
    )


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks train fastest on one thread, and a second one competing for a
    busy CI machine's cores can make them many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _close(actual, expected, scale):
    """Equal up to float32 rounding in the network, relative to ``scale``."""
    assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * max(1.0, scale))


# ----------------------------------------------------------------------------------
# Codes and reconstructions


@settings(max_examples=25)
@given(data=st.data())
def test_codes_and_reconstructions(data):
    X, image_shape = data.draw(images(), label="X, image_shape")
    n_rows, n_features = X.shape
    params = data.draw(settings_for(image_shape, n_rows), label="params")
    event(f"dtype {X.dtype}")  # seen with pytest --hypothesis-show-statistics
    event(f"architecture {params['architecture']}")
    ae = ConvAutoEncoderTransformer(**params, **TINY).fit(X)

    Z = ae.transform(X)
    assert Z.shape == (n_rows, params["n_components"]) and Z.dtype == np.float32
    assert np.isfinite(Z).all()
    R = ae.inverse_transform(Z)
    assert R.shape == (n_rows, n_features) and R.dtype == np.float32
    assert np.isfinite(R).all()

    # the codes depend on neither the batch size nor the order of the rows
    size = float(np.abs(Z).max())
    ae.set_params(batch_size=data.draw(st.integers(1, n_rows + 3), label="batch"))
    order = np.array(data.draw(st.permutations(range(n_rows)), label="order"))
    with batches_of_batch_size():  # batches of the drawn size, not the budget's
        _close(ae.transform(X), Z, size)
        _close(ae.transform(X[order]), Z[order], size)
        _close(ae.inverse_transform(Z[order]), R[order], float(np.abs(R).max()))

    # intensities come back as intensities on the caller's scale: the network's
    # output in [0, 1] (a sigmoid, or clipped) times the scale, so within [0, 255]
    # for uint8 and [0, max(1, max)] for other non-negative data (float32
    # rounding aside)
    if X.dtype == np.uint8 or X.min() >= 0:
        high = 255.0 if X.dtype == np.uint8 else max(1.0, float(X.max()))
        assert R.min() >= 0.0
        assert R.max() <= high * (1 + 1e-6)


@st.composite
def affine_changes(draw):
    """``(X, image_shape, a, b)``: float64 images and a map ``x -> a * x + b`` (a > 0)
    that keeps the data's kind: standardised data (with negative values) stays
    standardised, intensities above 1 stay intensities (``b = 0``)."""
    X, image_shape = draw(images(dtypes=("float64",), max_exponent=3))
    # constant data has no spread to learn a scale from (the scale is then 1)
    assume(X.max() > X.min())
    a = 10.0 ** draw(st.floats(-3, 3))
    if X.min() < 0:  # standardised: any shift that leaves a negative value
        spread = a * max(float(X.max() - X.min()), 1e-3)
        b = draw(st.floats(-1e3 * spread, -a * float(X.min()) - 1e-3 * spread))
    else:  # intensities: scaled by their maximum, which must stay above 1
        X = X + (1.5 - min(float(X.max()), 1.5))  # max >= 1.5
        a = max(a, 1.5 / float(X.max()))  # and a * max >= 1.5
        b = 0.0
    return X, image_shape, a, b


@settings(max_examples=15)
@given(change=affine_changes(), data=st.data())
def test_a_positive_affine_change_of_the_data_carries_over(change, data):
    """Fitting ``a * X + b`` gives the same codes and ``a * R + b`` as
    reconstructions: ``inverse_transform`` answers on the caller's scale."""
    X, image_shape, a, b = change
    params = data.draw(settings_for(image_shape, X.shape[0]), label="params")
    X2 = a * X + b
    ae = ConvAutoEncoderTransformer(**params, **TINY).fit(X)
    ae2 = ConvAutoEncoderTransformer(**params, **TINY).fit(X2)
    assert ae2.loss_ == ae.loss_

    Z, Z2 = ae.transform(X), ae2.transform(X2)
    # the network's inputs agree up to float64 rounding of the scaling, so the
    # one epoch of training sees the same numbers up to float32 rounding
    assert_allclose(Z2, Z, rtol=1e-3, atol=1e-3 * max(1.0, float(np.abs(Z).max())))
    R, R2 = ae.inverse_transform(Z), ae2.inverse_transform(Z)
    spread = a * max(float(X.max() - X.min()), float(np.abs(R).max()), 1e-3)
    assert_allclose(R2, a * R.astype(np.float64) + b, rtol=1e-3, atol=1e-3 * spread)


@settings(max_examples=20)
@given(
    exponent=st.floats(-300, 300),
    negative=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_float64_magnitude_gives_finite_output_or_a_clear_error(
    exponent, negative, seed
):
    """Data beyond what float32 codes and reconstructions can hold is refused by
    ``fit`` with a message saying so, never trained on into inf or NaN."""
    rng = np.random.default_rng(seed)
    X = (rng.random((6, 8)) - 0.5 * negative) * 10.0**exponent
    ae = ConvAutoEncoderTransformer(
        n_components=2, image_shape=(2, 4), batch_size=4, **DENSE, **TINY
    )
    try:
        ae.fit(X)
    except ValueError as exc:
        assert np.abs(X).max() > MAX_MAGNITUDE
        assert "magnitude" in str(exc) and "row" in str(exc)
        return
    Z = ae.transform(X)
    R = ae.inverse_transform(Z)
    assert np.isfinite(Z).all() and np.isfinite(R).all()


# ----------------------------------------------------------------------------------
# Anything else is a clear ValueError or TypeError, before any training


def _refuse(*args, **kwargs):
    raise AssertionError("training started before the input was validated")


def _bad_fits(draw, X, image_shape):
    """``(X, params, exception, message)`` for one kind of bad input to ``fit``."""
    n_rows, n_features = X.shape
    row = draw(st.integers(0, n_rows - 1))
    col = draw(st.integers(0, n_features - 1))
    kind = draw(
        st.sampled_from(
            [
                "nan",
                "inf",
                "one-row",
                "1-d",
                "3-d",
                "complex",
                "strings",
                "image-shape",
                "batch-size-1",
                "bce-on-negatives",
                "conv-width",
                "channels",
            ]
        )
    )
    X = X.astype(np.float64)
    params = dict(image_shape=image_shape, batch_size=8, **DENSE)
    if kind in ("nan", "inf"):
        X[row, col] = np.nan if kind == "nan" else -np.inf
        what = "NaN" if kind == "nan" else "infinity"
        return X, params, ValueError, f"Input X contains {what} in row {row},"
    if kind == "one-row":
        return X[:1], params, ValueError, "1 sample"
    if kind == "1-d":
        return X[0], params, ValueError, "Expected 2D array"
    if kind == "3-d":
        return X[:, :, None], params, ValueError, "dim 3"
    if kind == "complex":
        return X + 1j, params, ValueError, "Complex data not supported"
    if kind == "strings":
        return X.astype(str), params, ValueError, "string|convert"
    if kind == "image-shape":
        wrong = (image_shape[0], image_shape[1], image_shape[2] + 1)
        message = re.escape(f"image_shape {wrong} needs {math.prod(wrong)} features")
        return X, {**params, "image_shape": wrong}, ValueError, message
    if kind == "batch-size-1":
        return X, {**params, "batch_size": 1}, ValueError, "batch_size=1 cannot train"
    if kind == "bce-on-negatives":
        X[row, col] = -1.0
        return X, {**params, "loss": "bce"}, ValueError, "loss='bce' needs intensities"
    if kind == "conv-width":
        width = _conv_code_width(image_shape, (4,))
        params = {**params, "architecture": "conv", "n_components": width + 1}
        return X, params, ValueError, f"set n_components={width} "
    return X, {**params, "channels": (4, 0)}, ValueError, "channels must be"


@settings(max_examples=30)
@given(data=st.data())
def test_bad_input_to_fit_is_a_clear_error_before_training(data):
    X, image_shape = data.draw(images(dtypes=("uint8", "float32")), label="X")
    X, params, error, message = _bad_fits(data.draw, X, image_shape)
    with mock.patch.object(NeuralNet, "fit_loop", _refuse):
        with pytest.raises(error, match=message):
            ConvAutoEncoderTransformer(**params, **TINY).fit(X)


@pytest.fixture(scope="module")
def fitted():
    """A tiny model of 3x5x7 images and its training data."""
    X = np.random.default_rng(0).random((12, 105))
    ae = ConvAutoEncoderTransformer(
        n_components=3, image_shape=(3, 5, 7), batch_size=4, **DENSE, **TINY
    )
    return ae.fit(X), X


@settings(max_examples=30)
@given(data=st.data())
def test_bad_input_after_fit_is_a_clear_error(fitted, data):
    ae, X = fitted
    n_rows = data.draw(st.integers(1, 12), label="rows")
    row = data.draw(st.integers(0, n_rows - 1), label="row")
    kind = data.draw(
        st.sampled_from(["features", "nan", "inf", "codes", "code-nan", "strings"])
    )
    rows = X[:n_rows].copy()
    if kind == "features":
        width = data.draw(st.integers(1, 200).filter(lambda w: w != 105))
        call, arg, message = ae.transform, np.zeros((n_rows, width)), "features"
    elif kind in ("nan", "inf"):
        rows[row, 0] = np.nan if kind == "nan" else np.inf
        call, arg, message = ae.transform, rows, "NaN|infinity"
    elif kind == "codes":
        width = data.draw(st.integers(1, 10).filter(lambda w: w != 3))
        call, arg = ae.inverse_transform, np.zeros((n_rows, width))
        message = "expects codes with n_components_=3"
    elif kind == "code-nan":
        codes = np.zeros((n_rows, 3))
        codes[row, 0] = np.nan
        call, arg, message = ae.inverse_transform, codes, "NaN"
    else:
        call, arg, message = ae.transform, rows.astype(str), "string|convert"
    with pytest.raises((ValueError, TypeError), match=message):
        call(arg)


def test_a_data_range_beyond_the_supported_magnitude_is_refused():
    X = np.random.default_rng(0).random((6, 8))
    ae = ConvAutoEncoderTransformer(data_range=(0, 1e35), image_shape=(2, 4), **DENSE)
    with mock.patch.object(NeuralNet, "fit_loop", _refuse):
        with pytest.raises(ValueError, match=r"data_range \(0, 1e\+35\) reaches"):
            ae.fit(X)


def test_rows_too_large_for_the_fitted_scale_are_named_as_such(fitted):
    """Finite values that overflow float32 once scaled are not called NaN."""
    ae, X = fitted
    with pytest.raises(ValueError, match="values too large for this model"):
        ae.transform(X * 1e300)
