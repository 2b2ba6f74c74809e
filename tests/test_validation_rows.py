"""``fit(X, X_val=...)``: early stopping watches validation rows the caller chose.

Patches cut at random from a few images overlap: rows held out at random share
their pixels with the training rows, so their loss keeps falling while the
network learns those images by heart. Rows from other images tell the two apart;
``X_val`` is how a user passes them (as in ``HistGradientBoostingRegressor.fit``).
"""

import pickle
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.pipeline import Pipeline

from sk_convae import ConvAutoEncoderTransformer
from tests.conftest import FAST

# float32 so that the validation loss and score() agree to float32 rounding
PARAMS = dict(n_components=4, precision="float32", **FAST)


@pytest.fixture(scope="module")
def split(digits):
    X = digits[0]
    return X[:600], X[600:800]


def test_x_val_is_watched_and_every_row_of_x_trains(split):
    X, X_val = split
    ae = ConvAutoEncoderTransformer(**PARAMS).fit(X, X_val=X_val)
    losses = ae.history_[:, "valid_loss"]
    assert len(losses) == ae.n_iter_ == 4
    # no row of X is held out: each epoch trains on all 600
    assert sum(ae.history_[-1, "batches", :, "train_batch_size"]) == 600
    # the weights kept are those of the epoch with the lowest loss on X_val (the
    # loss is on the network's scale, the digits' 0..16 divided by 16)
    assert -ae.score(X_val) / 16**2 == pytest.approx(min(losses), rel=1e-4)


def test_without_x_val_an_explicit_max_epochs_holds_nothing_out(split):
    X, _ = split
    ae = ConvAutoEncoderTransformer(**PARAMS).fit(X)
    assert "valid_loss" not in ae.history_[-1]
    assert sum(ae.history_[-1, "batches", :, "train_batch_size"]) == 600


def test_training_stops_on_the_x_val_loss(split):
    X, X_val = split
    # each epoch must improve the X_val loss by half: the second cannot
    params = {**PARAMS, "max_epochs": 10, "n_iter_no_change": 1, "tol": 0.5}
    ae = ConvAutoEncoderTransformer(**params).fit(X, X_val=X_val)
    assert ae.n_iter_ == 2 and ae.n_epochs_ == 10


def test_validation_fraction_is_not_used_with_x_val(split):
    X, X_val = split
    a = ConvAutoEncoderTransformer(**PARAMS, validation_fraction=0.1)
    b = ConvAutoEncoderTransformer(**PARAMS, validation_fraction=0.5)
    a.fit(X, X_val=X_val)
    b.fit(X, X_val=X_val)
    np.testing.assert_array_equal(a.transform(X_val), b.transform(X_val))


def _memmap(X, tmp_path):
    np.save(tmp_path / "val.npy", X)
    return np.load(tmp_path / "val.npy", mmap_mode="r")


def _dask(X, tmp_path):
    da = pytest.importorskip("dask.array")
    return da.from_array(X, chunks=64)


@pytest.mark.parametrize("make_lazy", [_memmap, _dask], ids=["memmap", "dask"])
def test_a_lazy_x_val_gives_the_same_fit(split, tmp_path, make_lazy):
    X, X_val = split
    lazy = make_lazy(X_val, tmp_path)
    a = ConvAutoEncoderTransformer(**PARAMS).fit(X, X_val=X_val)
    b = ConvAutoEncoderTransformer(**PARAMS).fit(X, X_val=lazy)
    assert a.history_[:, "valid_loss"] == b.history_[:, "valid_loss"]
    np.testing.assert_array_equal(a.transform(X), b.transform(X))


def test_a_list_x_val_is_accepted(split):
    X, X_val = split
    a = ConvAutoEncoderTransformer(**PARAMS).fit(X, X_val=X_val)
    b = ConvAutoEncoderTransformer(**PARAMS).fit(X, X_val=X_val.tolist())
    assert a.history_[:, "valid_loss"] == b.history_[:, "valid_loss"]


def test_the_fitted_model_keeps_no_reference_to_x_val(split, tmp_path):
    """An HDF5 dataset cannot be pickled, and the validation rows are the
    caller's data: neither may end up in a joblib file of the model."""
    h5py = pytest.importorskip("h5py")
    X, X_val = split
    with h5py.File(tmp_path / "val.h5", "w") as f:
        f["rows"] = X_val
    with h5py.File(tmp_path / "val.h5", "r") as f:
        ae = ConvAutoEncoderTransformer(**PARAMS).fit(X, X_val=f["rows"])
    assert ae.net_.train_split is None
    without = ConvAutoEncoderTransformer(**PARAMS).fit(X)
    size, size_without = len(pickle.dumps(ae)), len(pickle.dumps(without))
    assert abs(size - size_without) < 2_000  # not X_val's 100 kB
    copy = pickle.loads(pickle.dumps(ae))
    np.testing.assert_array_equal(copy.transform(X), ae.transform(X))


def test_x_val_of_another_kind_of_dtype_than_x_warns(split):
    X, X_val = split
    X8 = X.astype(np.uint8)  # the digits are 0..16: uint8 reads them as 0..255
    with pytest.warns(UserWarning, match=r"X_val is float64 and X is uint8"):
        ConvAutoEncoderTransformer(**PARAMS).fit(X8, X_val=X_val / 255)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ConvAutoEncoderTransformer(**PARAMS).fit(X8, X_val=X_val.astype(np.uint8))


def test_x_val_is_not_modified(split):
    X, X_val = split
    X_val = X_val.copy()
    before = X_val.copy()
    ConvAutoEncoderTransformer(**PARAMS).fit(X, X_val=X_val)
    np.testing.assert_array_equal(X_val, before)


def test_warm_start_continues_on_x_val(split):
    X, X_val = split
    ae = ConvAutoEncoderTransformer(**PARAMS).fit(X)
    ae.set_params(warm_start=True).fit(X, X_val=X_val)
    assert ae.n_iter_ == 8
    assert all("valid_loss" in epoch for epoch in ae.history_[4:])


def test_x_val_reaches_the_transformer_inside_a_pipeline(split):
    X, X_val = split
    pipe = Pipeline([("ae", ConvAutoEncoderTransformer(**PARAMS))])
    pipe.fit(X, ae__X_val=X_val)
    assert len(pipe["ae"].history_[:, "valid_loss"]) == 4


def test_x_val_is_routed_with_metadata_routing(split):
    X, X_val = split
    with sklearn.config_context(enable_metadata_routing=True):
        ae = ConvAutoEncoderTransformer(**PARAMS).set_fit_request(X_val=True)
        pipe = Pipeline([("ae", ae)]).fit(X, X_val=X_val)
    assert len(pipe["ae"].history_[:, "valid_loss"]) == 4


@pytest.mark.parametrize(
    "make_bad, params, message",
    [
        (lambda V: V[:, :63], {}, r"X_val has 63 features per row and X has 64"),
        (lambda V: V * 2.0, {}, r"X_val has values from 0 to 32, outside the scale"),
        (
            lambda V: np.where(np.arange(64) == 5, np.nan, V),
            {},
            r"X_val contains NaN in row 0",
        ),
        (lambda V: V, {"early_stopping": False}, r"while early_stopping=False"),
        (
            lambda V: V - 1.0,
            {"data_range": (0, 16)},
            r"X_val has values from -1 to 15, outside data_range",
        ),
    ],
    ids=["features", "scale", "nan", "early-stopping-off", "data-range"],
)
def test_bad_x_val_is_refused_before_training(split, make_bad, params, message):
    X, X_val = split
    fitted = ConvAutoEncoderTransformer(**PARAMS).fit(X)
    codes = fitted.transform(X)
    history = len(fitted.history_)
    fitted.set_params(warm_start=False, **params)
    with pytest.raises(ValueError, match=message):
        fitted.fit(X, X_val=make_bad(X_val))
    # the fitted model is left as it was
    assert len(fitted.history_) == history
    np.testing.assert_array_equal(fitted.transform(X), codes)
    with pytest.raises(ValueError, match=message):
        ConvAutoEncoderTransformer(**PARAMS, **params).fit(X, X_val=make_bad(X_val))
