"""What users rely on when they put ConvAutoEncoderTransformer where PCA was."""

import pickle
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import normalized_mutual_info_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from sk_convae import ConvAutoEncoderTransformer
from tests.conftest import FAST, batches_of_batch_size


def test_pipeline_with_knn_classifies_and_persists(digits, tmp_path):
    X, y = digits
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    pipe = Pipeline(
        [
            ("ae", ConvAutoEncoderTransformer(n_components=16, **FAST)),
            ("knn", KNeighborsClassifier()),
        ]
    )
    pipe.fit(X_train, y_train)
    assert pipe.score(X_test, y_test) > 0.93

    joblib.dump(pipe, tmp_path / "model.joblib")
    reloaded = joblib.load(tmp_path / "model.joblib")
    assert_array_equal(reloaded.predict(X_test), pipe.predict(X_test))


def test_pipeline_with_kmeans_finds_digit_clusters(digits):
    X, y = digits
    pipe = Pipeline(
        [
            ("ae", ConvAutoEncoderTransformer(n_components=10, **FAST)),
            ("kmeans", KMeans(n_clusters=10, n_init=4, random_state=0)),
        ]
    )
    labels = pipe.fit_predict(X)
    assert normalized_mutual_info_score(y, labels) > 0.6


def test_grid_search_over_n_components_uses_score(digits_small):
    X, _ = digits_small
    # 200 rows per fold: 20 epochs give both widths enough steps to train
    search = GridSearchCV(
        ConvAutoEncoderTransformer(**{**FAST, "max_epochs": 20}),
        {"n_components": [1, 16]},
        cv=2,
    )
    search.fit(X)
    # The score is minus the reconstruction error: a wider code reconstructs better.
    assert search.best_params_ == {"n_components": 16}
    assert np.all(search.cv_results_["mean_test_score"] < 0)


def test_score_is_negative_reconstruction_mse(digits_small):
    X, _ = digits_small
    ae = ConvAutoEncoderTransformer(n_components=8, **FAST).fit(X)
    expected = -np.mean((X - ae.inverse_transform(ae.transform(X))) ** 2)
    assert ae.score(X) == pytest.approx(expected, rel=1e-6)


def test_clone_gives_an_unfitted_copy_with_the_same_parameters():
    ae = ConvAutoEncoderTransformer(n_components=7, channels=(4, 8), random_state=3)
    copy = clone(ae)
    assert copy.get_params() == ae.get_params()
    assert not hasattr(copy, "net_")


def test_set_output_pandas_names_the_codes(digits_small):
    pd = pytest.importorskip("pandas")
    X, _ = digits_small
    frame = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(64)])
    ae = ConvAutoEncoderTransformer(n_components=3, **FAST).set_output(
        transform="pandas"
    )
    codes = ae.fit_transform(frame)
    assert isinstance(codes, pd.DataFrame)
    assert list(codes.columns) == [f"convautoencodertransformer{i}" for i in range(3)]
    assert_array_equal(ae.feature_names_in_, frame.columns)
    assert_array_equal(codes.index, frame.index)


def test_joblib_round_trip_in_a_fresh_process(digits_small, tmp_path):
    X, _ = digits_small
    ae = ConvAutoEncoderTransformer(n_components=8, **FAST).fit(X)
    joblib.dump(ae, tmp_path / "ae.joblib")
    np.save(tmp_path / "X.npy", X)
    script = textwrap.dedent(
        f"""
        import joblib, numpy as np
        ae = joblib.load({str(tmp_path / "ae.joblib")!r})
        X = np.load({str(tmp_path / "X.npy")!r})
        np.save({str(tmp_path / "codes.npy")!r}, ae.transform(X))
        np.save({str(tmp_path / "rec.npy")!r}, ae.inverse_transform(ae.transform(X)))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    assert_array_equal(np.load(tmp_path / "codes.npy"), ae.transform(X))
    assert_array_equal(
        np.load(tmp_path / "rec.npy"), ae.inverse_transform(ae.transform(X))
    )


def test_seed_architecture_gives_a_128_d_code_on_28x28(mnist_like):
    ae = ConvAutoEncoderTransformer(
        n_components=128,
        architecture="conv",
        channels=(16, 8, 8),
        max_epochs=1,
        random_state=0,
    ).fit(mnist_like)
    assert ae.image_shape_ == (1, 28, 28)
    assert ae.loss_ == "bce"
    assert ae.transform(mnist_like).shape == (200, 128)
    assert ae.inverse_transform(ae.transform(mnist_like)).shape == (200, 784)


def test_uint8_and_unit_interval_inputs_give_the_same_model(mnist_like):
    X_uint8 = mnist_like
    X_unit = X_uint8 / 255.0
    params = dict(n_components=6, max_epochs=2, batch_size=64, random_state=0)
    ae_uint8 = ConvAutoEncoderTransformer(**params).fit(X_uint8)
    ae_unit = ConvAutoEncoderTransformer(**params).fit(X_unit)

    assert_array_equal(ae_uint8.transform(X_uint8), ae_unit.transform(X_unit))
    # Each reconstructs on its caller's scale.
    rec_uint8 = ae_uint8.inverse_transform(ae_uint8.transform(X_uint8))
    rec_unit = ae_unit.inverse_transform(ae_unit.transform(X_unit))
    assert rec_uint8.max() > 1.5
    assert rec_unit.max() <= 1.0
    assert_allclose(rec_uint8, rec_unit * 255.0, rtol=1e-5, atol=1e-4)


def _digits_on_scale(X, scale):
    if scale == "unit":
        return X / 16.0
    if scale == "uint8":
        return np.round(X * 255.0 / 16.0).astype(np.uint8)
    return StandardScaler().fit_transform(X)


@pytest.mark.parametrize("scale", ["unit", "uint8", "standardized"])
def test_any_input_scale_trains_well_without_a_scaler(digits, scale):
    """Each scale reconstructs better than PCA at the same width, on its own scale."""
    X = _digits_on_scale(digits[0], scale)
    ae = ConvAutoEncoderTransformer(n_components=8, **{**FAST, "max_epochs": 10})
    ae.fit(X)
    pca = PCA(n_components=8).fit(X)
    X_float = X.astype(np.float64)
    pca_mse = np.mean((X_float - pca.inverse_transform(pca.transform(X_float))) ** 2)
    assert -ae.score(X) < pca_mse
    assert ae.loss_ == "mse"  # architecture='residual' trains on the squared error
    reconstructions = ae.inverse_transform(ae.transform(X))
    if scale != "standardized":  # intensities come back within their range
        assert reconstructions.min() >= 0.0
        assert reconstructions.max() <= (255.0 if scale == "uint8" else 1.0)


@pytest.mark.parametrize("scale", ["unit", "uint8", "standardized"])
def test_the_dense_network_picks_its_loss_from_the_scale(digits_small, scale):
    X = _digits_on_scale(digits_small[0], scale)
    params = {**FAST, "max_epochs": 1}
    ae = ConvAutoEncoderTransformer(4, architecture="dense", **params).fit(X)
    assert ae.loss_ == ("mse" if scale == "standardized" else "bce")


def test_inputs_are_never_modified(digits_small):
    X = np.array(digits_small[0])
    X_before = X.copy()
    ae = ConvAutoEncoderTransformer(n_components=4, noise_factor=0.3, **FAST).fit(X)
    codes = ae.transform(X)
    codes_before = codes.copy()
    ae.inverse_transform(codes)
    ae.score(X)
    assert_array_equal(X, X_before)
    assert_array_equal(codes, codes_before)


def test_accepts_dataframes_memmaps_and_lists(digits_small, tmp_path):
    pd = pytest.importorskip("pandas")
    X = digits_small[0][:100]
    ae = ConvAutoEncoderTransformer(n_components=4, **FAST).fit(X)
    expected = ae.transform(X)

    path = tmp_path / "X.npy"
    np.save(path, X)
    memmap = np.load(path, mmap_mode="r")
    assert_array_equal(ae.transform(memmap), expected)
    assert_array_equal(ae.transform(X.tolist()), expected)
    assert_array_equal(ae.transform(pd.DataFrame(X)), expected)

    # and fitting on them gives the same model
    refit = ConvAutoEncoderTransformer(n_components=4, **FAST).fit(memmap)
    assert_array_equal(refit.transform(X), expected)
    refit = ConvAutoEncoderTransformer(n_components=4, **FAST).fit(X.tolist())
    assert_array_equal(refit.transform(X), expected)


@pytest.mark.parametrize(
    "image_shape, n_features",
    [
        ((1, 1), 1),
        (None, 64),  # 8x8
        ((3, 32, 32), 3 * 32 * 32),  # colour patches
        ((5, 7), 35),  # non-square
        ((2, 4, 6), 48),
        (None, 10),  # not a square: a 1 x 10 strip
    ],
)
def test_images_of_any_size_and_channels(image_shape, n_features):
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(40, n_features))
    ae = ConvAutoEncoderTransformer(
        n_components=3, image_shape=image_shape, max_epochs=2, random_state=0
    ).fit(X)
    codes = ae.transform(X)
    assert codes.shape == (40, 3) and codes.dtype == np.float32
    reconstruction = ae.inverse_transform(codes)
    assert reconstruction.shape == X.shape and reconstruction.dtype == np.float32
    assert len(ae.image_shape_) == 3 and np.prod(ae.image_shape_) == n_features


def test_transform_is_independent_of_batch_size_and_row_order(digits_small):
    X = digits_small[0]
    ae = ConvAutoEncoderTransformer(n_components=8, **FAST).fit(X)
    codes = ae.transform(X)
    reconstruction = ae.inverse_transform(codes)

    order = np.random.default_rng(0).permutation(len(X))
    ae.set_params(batch_size=7)
    with batches_of_batch_size():  # 58 batches of 7 rows, where 8x8 rows take one
        assert_allclose(ae.transform(X), codes, rtol=1e-5, atol=1e-6)
        assert_allclose(ae.transform(X[order]), codes[order], rtol=1e-5, atol=1e-6)
        assert_allclose(
            ae.inverse_transform(codes[order]), reconstruction[order], atol=1e-5
        )


def test_transform_runs_in_eval_mode_without_autograd(digits_small):
    X = digits_small[0]
    ae = ConvAutoEncoderTransformer(n_components=4, noise_factor=0.5, **FAST).fit(X)
    assert not ae.net_.module_.training
    # noise is a training-time corruption: transform is deterministic
    assert_array_equal(ae.transform(X), ae.transform(X))


def test_same_seed_same_codes_other_seed_other_model(digits_small):
    X = digits_small[0]
    codes = [
        ConvAutoEncoderTransformer(n_components=4, **{**FAST, "random_state": seed})
        .fit(X)
        .transform(X)
        for seed in (0, 0, 1)
    ]
    assert_array_equal(codes[0], codes[1])
    assert not np.allclose(codes[0], codes[2])
    # a RandomState instance is accepted too
    rs = np.random.RandomState(0)
    params = {**FAST, "random_state": rs}
    ConvAutoEncoderTransformer(n_components=4, **params).fit(X)


@pytest.mark.parametrize("random_state", [0, None])
def test_global_random_states_are_left_untouched(digits_small, random_state):
    X = digits_small[0][:100]
    torch.manual_seed(123)
    np.random.seed(123)
    torch_state = torch.get_rng_state()
    numpy_state = np.random.get_state()
    ConvAutoEncoderTransformer(
        n_components=2, noise_factor=0.1, **{**FAST, "random_state": random_state}
    ).fit(X)
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()
    assert after[0] == numpy_state[0]
    assert_array_equal(after[1], numpy_state[1])
    assert after[2:] == numpy_state[2:]


def test_denoising_model_trains_on_noisy_inputs(digits_small):
    X = digits_small[0]
    ae = ConvAutoEncoderTransformer(n_components=8, noise_factor=0.5, **FAST).fit(X)
    assert ae.net_.module_.noise.std == 0.5
    assert ae.net_.module_.noise.clip  # intensities stay in [0, 1]


def test_extra_callbacks_are_used_on_a_copy(digits_small):
    class CountEpochs(Callback):
        def __init__(self):
            self.epochs = 0

        def on_epoch_end(self, net, **kwargs):
            self.epochs += 1

    counter = CountEpochs()
    ae = ConvAutoEncoderTransformer(n_components=2, callbacks=[counter], **FAST)
    ae.fit(digits_small[0])
    assert counter.epochs == 0  # the object passed in is untouched
    copies = [cb for _, cb in ae.net_.callbacks_ if isinstance(cb, CountEpochs)]
    assert [cb.epochs for cb in copies] == [FAST["max_epochs"]]


def test_verbose_controls_printing(digits_small, capsys):
    X = digits_small[0][:100]
    ConvAutoEncoderTransformer(n_components=2, **FAST).fit(X)
    assert capsys.readouterr().out == ""
    ConvAutoEncoderTransformer(n_components=2, verbose=1, **FAST).fit(X)
    out = capsys.readouterr().out
    assert "train_loss" in out
    assert len([line for line in out.splitlines() if line.strip()[:1].isdigit()]) == 4


def test_overcomplete_codes_are_allowed(digits_small):
    X = digits_small[0][:100]
    ae = ConvAutoEncoderTransformer(n_components=100, **FAST).fit(X)
    assert ae.transform(X).shape == (100, 100)


def test_fitted_estimator_pickles(digits_small):
    X = digits_small[0][:100]
    ae = ConvAutoEncoderTransformer(n_components=2, **FAST).fit(X)
    assert_array_equal(pickle.loads(pickle.dumps(ae)).transform(X), ae.transform(X))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_model_pickled_on_cuda_unpickles_on_a_cpu_only_machine(digits_small):
    X = digits_small[0][:100]
    ae = ConvAutoEncoderTransformer(n_components=2, **FAST).fit(X)
    codes = ae.transform(X)
    ae.net_.device = "cuda"  # as if fitted on a GPU: skorch maps it back to the CPU
    with pytest.warns(UserWarning, match="not available"):
        loaded = pickle.loads(pickle.dumps(ae))
    assert loaded.net_.device == "cpu"
    assert_array_equal(loaded.transform(X), codes)


def test_dataframe_in_fit_then_score_and_transform_without_warnings(digits_small):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(digits_small[0], columns=[f"p{i}" for i in range(64)])
    ae = ConvAutoEncoderTransformer(n_components=3, **FAST).fit(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ae.score(frame)
        ae.transform(frame)


def test_fitted_model_keeps_no_training_only_tensors(digits_small):
    """The LR scheduler's optimizer and early stopping's weight copy are dropped:
    pickled outside skorch's device-aware path, CUDA tensors there would not load
    on a CPU-only machine."""
    X = digits_small[0]
    ae = ConvAutoEncoderTransformer(n_components=2, early_stopping=True, **FAST).fit(X)
    callbacks = dict(ae.net_.callbacks_)
    assert callbacks["lr_schedule"].lr_scheduler_ is None
    assert callbacks["early_stopping"].best_model_weights_ is None
    assert len(pickle.dumps(ae.net_.callbacks_)) < 20_000


def test_auto_epochs_follow_a_step_budget(digits_small, monkeypatch):
    from sk_convae import _estimator

    X = digits_small[0]  # 400 rows: 7 batches of 64 per epoch, the last one short
    monkeypatch.setattr(_estimator, "AUTO_STEPS", 20)
    params = {**FAST, "max_epochs": "auto"}
    ae = ConvAutoEncoderTransformer(n_components=4, **params).fit(X)
    assert ae.n_epochs_ == 3 == len(ae.history_)  # round(20 / 7)
    monkeypatch.setattr(_estimator, "AUTO_MAX_EPOCHS", 2)
    assert ConvAutoEncoderTransformer(4, **params).fit(X).n_epochs_ == 2
    # an explicit number of epochs is kept
    assert ConvAutoEncoderTransformer(4, **FAST).fit(X).n_epochs_ == FAST["max_epochs"]


def test_auto_lr_is_higher_where_the_step_budget_makes_few_passes(
    digits_small, monkeypatch
):
    from sk_convae import _estimator

    X = digits_small[0]  # 400 rows, 7 batches of 64: 100 passes of 'auto', small
    ae = ConvAutoEncoderTransformer(4, **FAST).fit(X)
    # the one-cycle schedule peaks at the rate lr_ reports
    assert ae.lr_ == 3e-3 == dict(ae.net_.callbacks_)["lr_schedule"].max_lr
    # a step budget of 20 is 3 passes over these rows: treated as large data
    monkeypatch.setattr(_estimator, "AUTO_STEPS", 20)
    ae = ConvAutoEncoderTransformer(4, **FAST).fit(X)
    assert ae.lr_ == 1e-2 == dict(ae.net_.callbacks_)["lr_schedule"].max_lr
    # an explicit rate is kept, whatever the data
    assert ConvAutoEncoderTransformer(4, lr=5e-4, **FAST).fit(X).lr_ == 5e-4
    # partial_fit never sees the whole data: the small-data rate, or the user's
    online = ConvAutoEncoderTransformer(4, **FAST).partial_fit(X)
    assert online.lr_ == 3e-3
    assert [g["lr"] for g in online.net_.optimizer_.param_groups] == [3e-3]
    assert online.set_params(lr=1e-3).partial_fit(X).lr_ == 1e-3
