"""Data beyond memory: lazy arrays, the streaming data path and partial_fit."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

import sk_convae._data as data
from sk_convae import ConvAutoEncoderTransformer
from tests.conftest import DATA_HOME, FAST, needs_mnist


class LazyRows:
    """A 2-D array that can only be sliced by rows, remembering every read.

    Anything that converts it whole (``np.asarray``) fails, like a store that is
    larger than memory.
    """

    def __init__(self, X):
        self._X = X
        self.shape = X.shape
        self.dtype = X.dtype
        self.reads = []

    def __getitem__(self, index):
        assert isinstance(index, slice), "only row slices are read"
        rows = self._X[index]
        self.reads.append(len(rows))
        return rows

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole array was converted")


@pytest.fixture
def digits_uint8(digits):
    """The digits as 8-bit pixels, (1797, 64) uint8."""
    return (digits[0] * 15).astype(np.uint8)


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 64 rows of uint8 digits and buffers of 4 blocks."""
    monkeypatch.setattr(data, "BLOCK_BYTES", 64 * 64)
    monkeypatch.setattr(data, "BUFFER_BYTES", 4 * 64 * 64)


def _memmap(X, tmp_path):
    np.save(tmp_path / "X.npy", X)
    return np.load(tmp_path / "X.npy", mmap_mode="r")


# ----------------------------------------------------------------------------------
# The statistics pass


@pytest.mark.parametrize("positions", [None, np.array([0, 3, 4, 5, 90, 150])])
def test_scan_gives_numpy_statistics_from_small_blocks(positions, monkeypatch):
    monkeypatch.setattr(data, "BLOCK_BYTES", 5 * 64 * 8)  # 5 rows per block
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(200, 64))
    stats = data.scan(X, positions)
    expected = X if positions is None else X[positions]
    assert stats.min == expected.min() and stats.max == expected.max()
    assert_allclose([stats.mean, stats.std], [expected.mean(), expected.std()])


@pytest.mark.parametrize("value, word", [(np.nan, "NaN"), (np.inf, "infinity")])
def test_the_first_bad_row_is_named_before_training(value, word, tmp_path, monkeypatch):
    monkeypatch.setattr(data, "BLOCK_BYTES", 10 * 64 * 8)
    X = np.random.default_rng(0).random((300, 64))
    X[137, 5] = X[250, 0] = value
    for source in (X, _memmap(X, tmp_path)):
        with pytest.raises(ValueError, match=f"contains {word} in row 137"):
            ConvAutoEncoderTransformer(**FAST).fit(source)


# ----------------------------------------------------------------------------------
# Batches


def _rows_seen(loader):
    """Row ids of every batch of one epoch (column 0 holds each row's id)."""
    return [batch[:, 0].numpy().astype(int) for batch, _ in loader]


@pytest.mark.parametrize("lazy", [False, True])
def test_every_row_once_per_epoch_in_full_batches(lazy, small_blocks, tmp_path):
    ids = np.repeat(np.arange(1000), 64).reshape(1000, 64).astype(np.float64)
    X = _memmap(ids, tmp_path) if lazy else ids
    # float64 rows: 8 rows per 4 KiB block, 4 blocks per buffer
    loader = data.BatchLoader(
        data.RowSource(X, 0.0, 1.0), batch_size=48, shuffle=True, seed=1
    )
    first, second = _rows_seen(loader), _rows_seen(loader)
    for epoch in (first, second):
        assert [len(b) for b in epoch] == [48] * 20 + [40]
        assert sorted(np.concatenate(epoch)) == list(range(1000))
        if not lazy:  # read from X in increasing row order
            assert all(np.all(np.diff(b) > 0) for b in epoch)
    assert not np.array_equal(np.concatenate(first), np.concatenate(second))
    again = data.BatchLoader(
        data.RowSource(X, 0.0, 1.0), batch_size=48, shuffle=True, seed=1
    )
    assert all(np.array_equal(a, b) for a, b in zip(_rows_seen(again), first))


def test_batches_mix_rows_from_all_over_the_data(small_blocks, tmp_path):
    # rows sorted by "class": a batch drawn from few blocks would hold one class
    ids = np.repeat(np.arange(4096), 64).reshape(4096, 64).astype(np.uint8)
    X = _memmap(ids, tmp_path)  # 64 rows per block, 4 blocks per buffer
    loader = data.BatchLoader(data.RowSource(X, 0.0, 1.0), batch_size=64, shuffle=True)
    spans = [np.ptp(batch) for batch in _rows_seen(loader)]
    assert np.median(spans) > 0  # not one block per batch


def test_shards_of_several_processes_split_the_rows(tmp_path):
    ids = np.repeat(np.arange(101), 64).reshape(101, 64).astype(np.float64)
    seen = []
    for rank in (0, 1):
        loader = data.BatchLoader(
            data.RowSource(ids, 0.0, 1.0),
            batch_size=16,
            shuffle=True,
            rank=rank,
            world_size=2,
        )
        seen.append(np.concatenate(_rows_seen(loader)))
    assert sorted(seen[0]) == list(range(50))
    assert sorted(seen[1]) == list(range(50, 100))
    assert data.epoch_plan(101, 32, world_size=2) == (16, False, 4)


def test_holdout_rows_are_a_few_runs_of_the_asked_size():
    train, valid = data.holdout_rows(10_000, 0.1, seed=0)
    assert len(valid) == 1000 and len(train) == 9000
    assert np.intersect1d(train, valid).size == 0
    assert np.sum(np.diff(valid) > 1) < 64  # at most 64 contiguous runs


# ----------------------------------------------------------------------------------
# fit, transform and score on lazy arrays


def test_fit_reads_a_lazy_array_in_blocks_never_whole(digits_uint8, small_blocks):
    X = LazyRows(digits_uint8)
    ae = ConvAutoEncoderTransformer(n_components=8, **FAST).fit(X)
    assert ae.n_features_in_ == 64 and not hasattr(ae, "feature_names_in_")
    codes = ae.transform(X)
    assert codes.shape == (1797, 8)
    assert ae.score(X) < 0
    assert max(X.reads) <= 64  # one block at a time, never the whole array
    with pytest.raises(ValueError, match="X has 63 features"):
        ae.transform(LazyRows(digits_uint8[:, :63]))


def _lazy_copies(X, tmp_path):
    import dask.array as da
    import h5py
    import zarr

    memmap = _memmap(X, tmp_path)
    h5 = h5py.File(tmp_path / "X.h5", "w")
    h5.create_dataset("X", data=X, chunks=(100, X.shape[1]))
    z = zarr.create_array(
        tmp_path / "X.zarr", shape=X.shape, chunks=(128, X.shape[1]), dtype=X.dtype
    )
    z[:] = X
    return {
        "memmap": memmap,
        "h5py": h5["X"],
        "zarr": zarr.open_array(tmp_path / "X.zarr", mode="r"),
        "dask": da.from_array(memmap, chunks=(300, X.shape[1])),
    }


def test_every_storage_gives_the_model_of_the_in_memory_array(digits_uint8, tmp_path):
    params = dict(n_components=8, **FAST)
    reference = ConvAutoEncoderTransformer(**params).fit(digits_uint8)
    expected = reference.transform(digits_uint8)
    for name, X in _lazy_copies(digits_uint8, tmp_path).items():
        ae = ConvAutoEncoderTransformer(**params).fit(X)
        codes = ae.transform(X)
        if name == "dask":
            codes = codes.compute()
        assert_array_equal(codes, expected, err_msg=name)
        assert ae.score(X) == pytest.approx(reference.score(digits_uint8), rel=1e-6)


def test_block_shuffling_trains_as_well_as_a_full_permutation(
    digits_uint8, small_blocks, tmp_path
):
    # sorted by label: the hardest order for a block-wise shuffle
    digits_sorted = digits_uint8[np.argsort(np.arange(1797) % 10, kind="stable")]
    params = dict(n_components=8, **{**FAST, "max_epochs": 8})
    in_memory = ConvAutoEncoderTransformer(**params).fit(digits_sorted)
    streamed = ConvAutoEncoderTransformer(**params).fit(
        _memmap(digits_sorted, tmp_path)
    )
    assert streamed.score(digits_sorted) > 1.1 * in_memory.score(digits_sorted)


# ----------------------------------------------------------------------------------
# partial_fit


def test_partial_fit_trains_one_epoch_per_call_at_a_constant_rate(digits_uint8):
    ae = ConvAutoEncoderTransformer(n_components=8, lr=2e-3, **FAST)
    scores = []
    for epoch in range(3):
        for chunk in np.array_split(digits_uint8, 4):
            ae.partial_fit(chunk)
        scores.append(ae.score(digits_uint8))
    assert ae.n_iter_ == 12 and len(ae.history_) == 12
    assert scores[0] < scores[1] < scores[2]
    assert (ae.data_offset_, ae.data_scale_, ae.loss_) == (0.0, 255.0, "mse")
    assert [g["lr"] for g in ae.net_.optimizer_.param_groups] == [2e-3]
    ae.set_params(lr=5e-4).partial_fit(digits_uint8[:100])
    assert [g["lr"] for g in ae.net_.optimizer_.param_groups] == [5e-4]


def test_partial_fit_after_fit_continues_from_the_fitted_weights(digits_uint8):
    ae = ConvAutoEncoderTransformer(
        n_components=8, early_stopping=True, **{**FAST, "max_epochs": 6}
    ).fit(digits_uint8)
    fitted = ae.score(digits_uint8)
    n_fit = ae.n_iter_
    for _ in range(3):
        ae.set_params(lr=1e-4).partial_fit(digits_uint8)
    assert ae.n_iter_ == n_fit + 3
    assert ae.score(digits_uint8) > fitted
    assert "early_stopping" not in dict(ae.net_.callbacks_)


def test_partial_fit_keeps_the_first_calls_shape_and_scale(digits):
    X = digits[0]  # 0..16 floats
    ae = ConvAutoEncoderTransformer(n_components=4, **FAST)
    ae.partial_fit(X[:100])
    assert ae.data_scale_ == X[:100].max()
    with pytest.raises(ValueError, match="X has 63 features"):
        ae.partial_fit(X[:100, :63])
    brighter = X[:100] * 2
    with pytest.raises(ValueError, match="outside the scale learned by the first"):
        ae.partial_fit(brighter)
    ranged = ConvAutoEncoderTransformer(n_components=4, data_range=(0, 32), **FAST)
    ranged.partial_fit(X[:100]).partial_fit(brighter)
    assert ranged.data_scale_ == 32.0 and ranged.n_iter_ == 2
    with pytest.raises(ValueError, match="at least 2 rows per call"):
        ranged.partial_fit(X[:1])


def test_data_range_sets_the_scale_for_fit_too(digits):
    X = digits[0]
    ae = ConvAutoEncoderTransformer(n_components=4, data_range=(0, 20), **FAST).fit(X)
    assert (ae.data_offset_, ae.data_scale_, ae.loss_) == (0.0, 20.0, "mse")
    signed = ConvAutoEncoderTransformer(n_components=4, data_range=(-20, 20), **FAST)
    assert signed.fit(X - 8).loss_ == "mse" and signed.data_scale_ == 20.0
    with pytest.raises(ValueError, match="outside data_range"):
        ConvAutoEncoderTransformer(data_range=(0, 10), **FAST).fit(X)
    with pytest.raises(ValueError, match="data_range must be"):
        ConvAutoEncoderTransformer(data_range=(5, 1), **FAST).fit(X)


@needs_mnist
def test_partial_fit_over_memmap_chunks_of_mnist_beats_pca(tmp_path):
    from sklearn.decomposition import PCA

    from sk_convae.datasets import fetch_mnist

    X = fetch_mnist(DATA_HOME, subset="train", download_if_missing=False).data
    X = X[:20_000]
    X_test = fetch_mnist(DATA_HOME, subset="test", download_if_missing=False).data
    X_test = X_test[:2_000]
    memmap = _memmap(X, tmp_path)
    ae = ConvAutoEncoderTransformer(n_components=16, random_state=0)
    # four passes in chunks of 5,000 rows; the last one at a tenth of the rate
    for lr in (3e-3, 3e-3, 3e-3, 3e-4):
        ae.set_params(lr=lr)
        for start in range(0, len(memmap), 5_000):
            ae.partial_fit(memmap[start : start + 5_000])
    pca = PCA(n_components=16).fit(X / 255.0)
    reconstruction = pca.inverse_transform(pca.transform(X_test / 255.0))
    pca_mse = np.mean((reconstruction - X_test / 255.0) ** 2)
    ae_mse = -ae.score(X_test) / 255.0**2
    assert ae.n_iter_ == 16
    assert ae_mse < 0.7 * pca_mse, (ae_mse, pca_mse)  # measured: 0.0140 vs 0.0275


# ----------------------------------------------------------------------------------
# Errors leave the estimator as it was


def test_a_bad_later_chunk_is_refused_before_training(digits, digits_uint8):
    X = digits[0] - 8  # standardised-like data: squared error, no intensity scale
    ae = ConvAutoEncoderTransformer(n_components=4, **FAST).partial_fit(X)
    weights = [p.detach().clone() for p in ae.net_.module_.parameters()]
    bad = X[:50].copy()
    bad[30, 5] = np.nan
    with pytest.raises(ValueError, match="contains NaN in row 30"):
        ae.partial_fit(bad)
    unit = ConvAutoEncoderTransformer(n_components=4, **FAST)
    unit.partial_fit(digits[0][:50] / 16)  # [0, 1]: BCE on intensities
    with pytest.raises(ValueError, match="outside the scale learned"):
        unit.partial_fit(digits_uint8[:50])  # 0..255 after a [0, 1] first chunk
    assert ae.n_iter_ == 1
    for before, after in zip(weights, ae.net_.module_.parameters()):
        assert torch.equal(before, after)


def test_a_failed_fit_keeps_the_previous_fit(digits_uint8):
    from sklearn.exceptions import NotFittedError

    ae = ConvAutoEncoderTransformer(n_components=4, **FAST).fit(digits_uint8)
    codes = ae.transform(digits_uint8)
    with pytest.raises(ValueError, match="contains NaN"):
        ae.set_params(image_shape=None).fit(np.full((10, 100), np.nan))
    assert ae.n_features_in_ == 64
    assert_array_equal(ae.set_params(image_shape=(8, 8)).transform(digits_uint8), codes)
    fresh = ConvAutoEncoderTransformer(**FAST)
    with pytest.raises(ValueError):
        fresh.fit(digits_uint8[:, :63])  # image_shape (8, 8) needs 64 features
    with pytest.raises(NotFittedError):
        fresh.transform(digits_uint8)


def test_held_out_rows_are_read_run_by_run(digits_uint8, small_blocks):
    X = LazyRows(digits_uint8)
    ConvAutoEncoderTransformer(
        n_components=4, early_stopping=True, **{**FAST, "max_epochs": 2}
    ).fit(X)
    assert max(X.reads) <= 64  # never the training rows between two held-out runs


def test_transform_checks_a_dask_array_when_called(digits_uint8):
    da = pytest.importorskip("dask.array")
    ae = ConvAutoEncoderTransformer(n_components=4, **FAST).fit(digits_uint8)
    with pytest.raises(ValueError, match="X has 63 features"):
        ae.transform(da.zeros((10, 63), chunks=5))


def test_too_few_rows_for_the_processes_is_an_error_before_training(digits_uint8):
    class FourProcesses:
        num_processes = 4

    ae = ConvAutoEncoderTransformer(n_components=4, **{**FAST, "batch_size": 6})
    with pytest.raises(ValueError, match="must be at least 8"):
        ae._build_net({}, 1797, 0, one_cycle=True, accelerator=FourProcesses())


def test_scale_rows_converts_large_batches_in_pieces_with_the_same_result(
    monkeypatch,
):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (1000, 49), dtype=np.uint8)
    before = X.copy()
    whole = ((X.astype(np.float64) - 3.0) / 255.0).astype(np.float32)
    monkeypatch.setattr(data, "SCALE_CHUNK_BYTES", 8 * 49 * 3)  # 3 rows at a time
    assert_array_equal(data.scale_rows(X, 3.0, 255.0), whole)
    big = np.array([[1e300, -1e300, 1.0]])  # beyond float32: inf, no warning
    with np.errstate(all="raise"):
        assert_array_equal(data.scale_rows(big, 0.0, 1.0), [[np.inf, -np.inf, 1.0]])
    assert data.scale_rows(X[:0], 0.0, 1.0).shape == (0, 49)
    assert_array_equal(X, before)  # the caller's rows untouched
