"""transform's prepared CPU encoder: the module's codes, faster, never stale."""

import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

import sk_convae._inference as inference
from sk_convae import ConvAutoEncoderTransformer
from sk_convae._inference import (
    PreparedEncoder,
    inference_batch_rows,
    inference_encoder,
)
from sk_convae._network import ConvCodeAutoEncoder, ResidualConvAutoEncoder
from tests.conftest import batches_of_batch_size

needs_mkldnn = pytest.mark.skipif(
    not torch.backends.mkldnn.is_available(), reason="torch built without MKLDNN"
)


def eager_codes(ae, X):
    """The module's own encode, as transform computed codes before."""
    module = ae.net_.module_.eval()
    rows = torch.from_numpy(
        ((np.asarray(X, dtype=np.float64) - ae.data_offset_) / ae.data_scale_).astype(
            np.float32
        )
    )
    with torch.inference_mode():
        return module.encode(rows).numpy()


def fitted(image_shape, architecture="residual", n_rows=120, seed=0, **params):
    params.setdefault("n_components", 3)
    rng = np.random.default_rng(seed)
    X = rng.random((n_rows, int(np.prod(image_shape)))).astype(np.float32)
    ae = ConvAutoEncoderTransformer(
        image_shape=image_shape,
        architecture=architecture,
        max_epochs=2,
        batch_size=32,
        random_state=seed,
        device="cpu",
        **params,
    )
    return ae.fit(X), X


@needs_mkldnn
@pytest.mark.parametrize("architecture", ["residual", "dense"])
@pytest.mark.parametrize(
    "image_shape",
    [(1, 8, 8), (3, 7, 5), (2, 1, 1), (1, 2, 3)],
    ids=["8x8", "3ch-odd", "1x1", "2x3"],
)
def test_prepared_codes_match_the_modules(architecture, image_shape):
    # folded BatchNorm and oneDNN's layout: the same float32 arithmetic, reordered
    ae, X = fitted(image_shape, architecture)
    encode = inference_encoder(ae.net_.module_, "cpu")
    assert isinstance(encode.__self__.encoder, PreparedEncoder)
    reference = eager_codes(ae, X)
    codes = ae.transform(X)
    scale = np.abs(reference).max()
    assert_allclose(codes, reference, rtol=0, atol=1e-5 * max(scale, 1.0))


@needs_mkldnn
def test_codes_do_not_depend_on_the_batch_size():
    ae, X = fitted((1, 8, 8))
    codes = ae.transform(X)
    ae.set_params(batch_size=7)
    with batches_of_batch_size():
        assert_allclose(ae.transform(X), codes, rtol=0, atol=1e-5)
        assert_allclose(ae.transform(X[:1]), codes[:1], rtol=0, atol=1e-5)


@needs_mkldnn
def test_prepared_once_per_set_of_weights():
    ae, X = fitted((1, 8, 8))
    module = ae.net_.module_
    first = inference_encoder(module, "cpu")
    assert inference_encoder(module, "cpu") is first
    ae.transform(X)
    assert inference_encoder(module, "cpu") is first  # transform changed nothing


@needs_mkldnn
def test_codes_follow_the_weights_after_partial_fit_and_refit():
    ae, X = fitted((1, 8, 8))
    before = ae.transform(X)
    ae.partial_fit(X)
    after = ae.transform(X)
    assert np.abs(after - before).max() > 1e-4  # the weights moved
    assert_allclose(after, eager_codes(ae, X), rtol=0, atol=1e-5)
    ae.set_params(random_state=1).fit(X[::-1])
    assert_allclose(ae.transform(X), eager_codes(ae, X), rtol=0, atol=1e-5)


@needs_mkldnn
def test_codes_follow_a_loaded_state_dict():
    ae, X = fitted((1, 8, 8))
    other, _ = fitted((1, 8, 8), seed=1)
    ae.transform(X)  # prepares, and caches, the encoder of ae's weights
    ae.net_.module_.load_state_dict(other.net_.module_.state_dict())
    assert_allclose(ae.transform(X), other.transform(X), rtol=0, atol=1e-5)


def test_other_networks_and_devices_use_the_modules_encode():
    ae, _ = fitted((1, 8, 8), architecture="conv", channels=(4, 3), n_components=12)
    module = ae.net_.module_
    assert inference_encoder(module, "cpu") == module.encode
    residual, _ = fitted((1, 8, 8))
    module = residual.net_.module_
    assert inference_encoder(module, "meta") == module.encode


@needs_mkldnn
def test_the_estimator_keeps_nothing_of_it():
    # transform leaves __dict__ as it was; pickles and copies carry no prepared state
    ae, X = fitted((1, 8, 8))
    state = dict(vars(ae))
    codes = ae.transform(X)
    assert vars(ae) == state
    restored = pickle.loads(pickle.dumps(ae))
    assert_allclose(restored.transform(X), codes, rtol=0, atol=1e-6)


@needs_mkldnn
def test_a_torch_without_the_oneDNN_entry_points_falls_back(monkeypatch):
    ae, X = fitted((1, 8, 8))

    def moved(*args, **kwargs):
        raise RuntimeError("no such op")

    monkeypatch.setattr(torch, "mkldnn_convolution", moved)
    module = ae.net_.module_
    assert inference_encoder(module, "cpu") == module.encode
    assert_allclose(ae.transform(X), eager_codes(ae, X), rtol=0, atol=0)


@pytest.mark.parametrize(
    "image_shape, cpu, cuda",
    # largest feature map (the first: 32 x ceil(H/2) x ceil(W/2)) per row: 16 MiB of it
    # on a CPU, 256 MiB on CUDA, and 16 MiB of float32 rows, never under 256 rows
    [((1, 8, 8), 8192, 65536), ((1, 28, 28), 668, 5349), ((3, 32, 32), 512, 1365),
     ((3, 64, 64), 256, 341)],
    ids=["8x8", "28x28", "rgb32", "rgb64"],
)  # fmt: skip
def test_inference_batches_hold_more_rows_where_the_rows_are_small(
    image_shape, cpu, cuda
):
    module = ResidualConvAutoEncoder(
        image_shape=image_shape, n_components=8, channels=(32, 64, 128),
        noise_std=0.0, clip_noise=False,
    )  # fmt: skip
    assert inference_batch_rows(module, "cpu", 256) == cpu
    assert inference_batch_rows(module, torch.device("cuda", 0), 256) == cuda
    assert inference_batch_rows(module, "cpu", 100_000) == 100_000  # the least
    assert inference_batch_rows(module, "mps", 256) == 256  # no budget: batch_size


def test_a_full_resolution_first_convolution_counts_at_full_size():
    # the tutorial network's first convolution keeps 28x28: 16 x 28 x 28 float32s
    module = ConvCodeAutoEncoder(
        image_shape=(1, 28, 28), channels=(16, 8, 8), noise_std=0.0, clip_noise=False
    )
    assert inference_batch_rows(module, "cpu", 64) == 16 * 2**20 // (4 * 16 * 28 * 28)


@pytest.mark.parametrize(
    "architecture, params",
    [("residual", {}), ("conv", {"channels": (4, 4), "n_components": 16})],
    ids=["residual", "conv"],
)
def test_transform_batches_are_the_inference_rows_and_change_no_code(
    architecture, params, monkeypatch
):
    ae, X = fitted((1, 8, 8), architecture, n_rows=150, **params)
    codes, reconstruction = ae.transform(X), ae.inverse_transform(ae.transform(X))
    seen = []
    encode = inference_encoder(ae.net_.module_, "cpu")

    def spy(rows):
        seen.append(len(rows))
        return encode(rows)

    monkeypatch.setattr(
        "sk_convae._estimator.inference_encoder", lambda module, device: spy
    )
    assert_allclose(ae.transform(X), codes, rtol=0, atol=1e-5)
    assert seen == [150]  # one batch: 8x8 rows take thousands per batch
    # a tiny budget: batches of batch_size, the same codes and reconstructions
    monkeypatch.setitem(inference.INFERENCE_BYTES, "cpu", (1, 1))
    seen.clear()
    assert_allclose(ae.transform(X), codes, rtol=0, atol=1e-5)
    assert seen == [32] * 4 + [22]
    assert_allclose(ae.inverse_transform(codes), reconstruction, rtol=0, atol=1e-5)


def test_the_largest_feature_map_sets_the_batch_not_the_first():
    # channels (4, 64) on 28x28: 4 x 14 x 14 first, 64 x 7 x 7 = 3,136 values next
    module = ResidualConvAutoEncoder(
        image_shape=(1, 28, 28), n_components=8, channels=(4, 64),
        noise_std=0.0, clip_noise=False,
    )  # fmt: skip
    assert inference_batch_rows(module, "cpu", 2) == 16 * 2**20 // (4 * 3136)
