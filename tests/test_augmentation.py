"""augmentation: random flips of the training images, as input and as target."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal

from sk_convae import ConvAutoEncoderTransformer
from sk_convae._augment import RandomFlips
from sk_convae._data import BatchLoader, RowSource
from tests.conftest import FAST


def _images(n, shape, seed=0):
    return torch.from_numpy(
        np.random.default_rng(seed).uniform(size=(n, *shape)).astype(np.float32)
    )


def _symmetries(image, square):
    """The images a flip of ``image`` (C, H, W) may give."""
    out = []
    for t in (False, True) if square else (False,):
        base = image.transpose(-2, -1) if t else image
        for a in (False, True):
            for b in (False, True):
                x = base.flip(-1) if a else base
                out.append(x.flip(-2) if b else x)
    return out


@pytest.mark.parametrize(
    "kind, shape, n_kinds",
    [("mirror", (3, 5, 5), 2), ("dihedral", (3, 5, 5), 8), ("dihedral", (2, 4, 6), 4)],
)
def test_each_row_becomes_one_of_its_flips_drawn_per_row(kind, shape, n_kinds):
    images = _images(400, shape)
    flips = RandomFlips(shape, kind)
    out = flips(images.flatten(1), np.random.default_rng(0))
    assert out.shape == (400, np.prod(shape)) and out.dtype == torch.float32
    seen = set()
    for image, flipped in zip(images, out.view(400, *shape)):
        candidates = _symmetries(image, square=shape[1] == shape[2])
        if kind == "mirror":
            candidates = [image, image.flip(-1)]
        matches = [i for i, c in enumerate(candidates) if torch.equal(c, flipped)]
        assert matches, "a row became something other than a flip of itself"
        seen.add(matches[0])
    assert len(seen) == n_kinds  # every symmetry is drawn, row by row
    # the batch itself is left as it was
    assert torch.equal(images, _images(400, shape))


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        RandomFlips((1, 4, 4), "rotate")


def test_loader_augments_the_same_rows_it_would_give_without():
    X = np.random.default_rng(0).integers(0, 256, size=(100, 16), dtype=np.uint8)
    source = RowSource(X, offset=0.0, scale=255.0)

    def loader(augment=None):
        return BatchLoader(source, batch_size=32, shuffle=True, seed=3, augment=augment)

    flips = RandomFlips((1, 4, 4), "dihedral")
    n_changed = 0
    for (a, _), (b, target) in zip(loader(), loader(flips)):
        assert b is target  # the flipped image is the target too
        for row_a, row_b in zip(a.view(-1, 1, 4, 4), b.view(-1, 1, 4, 4)):
            assert any(torch.equal(row_b, c) for c in _symmetries(row_a, True))
            n_changed += not torch.equal(row_a, row_b)
    assert n_changed > 50
    # the same seed and epoch, the same flips; the next epoch, new ones
    first, again = loader(flips), loader(flips)
    epoch_0 = [b for b, _ in first]
    assert all(torch.equal(b, c) for b, (c, _) in zip(epoch_0, again))
    epoch_1 = [b for b, _ in first]
    assert not all(torch.equal(b, c) for b, c in zip(epoch_0, epoch_1))


def _left_bars(n, seed):
    """8x8 images, a bright vertical bar somewhere in the left half."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, 8, 8))
    for image, column, level in zip(X, rng.integers(0, 4, n), rng.uniform(0.5, 1, n)):
        image[:, column] = level
    return X.reshape(n, 64)


def test_mirror_teaches_the_mirrored_images():
    X_train = _left_bars(600, seed=0)
    X_mirrored = _left_bars(200, seed=1).reshape(200, 8, 8)[:, :, ::-1].reshape(200, 64)
    params = dict(n_components=4, data_range=(0, 1), **{**FAST, "max_epochs": 15})
    plain = ConvAutoEncoderTransformer(**params).fit(X_train)
    mirror = ConvAutoEncoderTransformer(augmentation="mirror", **params).fit(X_train)
    # bars on the right were never seen without the flips
    assert -mirror.score(X_mirrored) < 0.5 * -plain.score(X_mirrored)


def test_augmented_fit_is_reproducible_and_transform_never_flips(digits_small):
    X = digits_small[0]
    params = dict(n_components=4, augmentation="dihedral", **FAST)
    a = ConvAutoEncoderTransformer(**params).fit(X)
    b = ConvAutoEncoderTransformer(**params).fit(X)
    assert_array_equal(a.transform(X), b.transform(X))
    assert_array_equal(a.transform(X), a.transform(X))
    plain = ConvAutoEncoderTransformer(**{**params, "augmentation": None}).fit(X)
    assert not np.array_equal(a.transform(X), plain.transform(X))


def test_augmentation_is_validated_before_training(digits_small):
    with pytest.raises(ValueError, match="augmentation"):
        ConvAutoEncoderTransformer(augmentation="flip", **FAST).fit(digits_small[0])


def test_augmented_model_pickles_and_partial_fit_keeps_flipping(digits_small):
    import pickle

    X = digits_small[0]
    ae = ConvAutoEncoderTransformer(n_components=4, augmentation="mirror", **FAST)
    ae.fit(X)
    restored = pickle.loads(pickle.dumps(ae))
    assert_array_equal(restored.transform(X), ae.transform(X))
    loader = dict(restored.net_.get_params())["iterator_train__augment"]
    assert isinstance(loader, RandomFlips) and loader.kind == "mirror"
    restored.partial_fit(X)  # trains on flipped rows too, and still encodes
    assert np.isfinite(restored.transform(X)).all()
