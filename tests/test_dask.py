"""Dask end to end, on a LocalCluster with 2 worker processes."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sk_convae import ConvAutoEncoderTransformer
from tests.conftest import FAST

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
dask_ml_wrappers = pytest.importorskip("dask_ml.wrappers")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
        yield client


@pytest.fixture(scope="module")
def digits_dask(digits):
    X = (digits[0] * 15).astype(np.uint8)
    return X, da.from_array(X, chunks=(400, 64))


def test_fit_streams_the_chunks_of_a_dask_array(client, digits_dask):
    X, X_dask = digits_dask
    params = dict(n_components=8, **FAST)
    ae = ConvAutoEncoderTransformer(**params).fit(X_dask)
    reference = ConvAutoEncoderTransformer(**params).fit(X)
    assert_array_equal(ae.transform(X), reference.transform(X))


def test_transform_and_inverse_transform_of_dask_arrays_stay_lazy(client, digits_dask):
    X, X_dask = digits_dask
    ae = ConvAutoEncoderTransformer(n_components=8, **FAST).fit(X)
    codes = ae.transform(X_dask)
    assert isinstance(codes, da.Array) and codes.shape == (1797, 8)
    assert codes.chunks[0] == X_dask.chunks[0]
    assert_array_equal(codes.compute(), ae.transform(X))  # on the 2 workers
    images = ae.inverse_transform(codes)
    assert isinstance(images, da.Array) and images.shape == (1797, 64)
    # blocks cut the batches elsewhere: equal up to float32 rounding, as for any
    # batch size (test_transform_is_independent_of_batch_size_and_row_order)
    expected = ae.inverse_transform(ae.transform(X))
    assert_allclose(images.compute(), expected, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="n_components_=8"):
        ae.inverse_transform(da.zeros((10, 7), chunks=5))


def test_dask_ml_incremental_trains_through_partial_fit(client, digits_dask):
    X, X_dask = digits_dask
    incremental = dask_ml_wrappers.Incremental(
        ConvAutoEncoderTransformer(n_components=8, **FAST), scoring=None
    )
    incremental.fit(X_dask)
    ae = incremental.estimator_
    assert ae.n_iter_ == X_dask.numblocks[0]  # one partial_fit call per block
    assert ae.score(X) > ConvAutoEncoderTransformer(
        n_components=8, **{**FAST, "max_epochs": 1}
    ).fit(X[:400]).score(X)


def test_parallel_post_fit_transforms_on_the_workers(client, digits_dask):
    X, X_dask = digits_dask
    ae = ConvAutoEncoderTransformer(n_components=8, **FAST).fit(X)
    wrapped = dask_ml_wrappers.ParallelPostFit(ae)
    assert_array_equal(wrapped.transform(X_dask).compute(), ae.transform(X))
