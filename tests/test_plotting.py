"""Each display renders to PNG and holds what it claims to show."""

import matplotlib
import numpy as np
import pytest

from sk_convae import ConvAutoEncoderTransformer
from sk_convae.plotting import (
    CodeImagesDisplay,
    EmbeddingDisplay,
    InterpolationDisplay,
    ReconstructionDisplay,
    TrainingCurveDisplay,
    add_noise,
    interpolate,
    mosaic,
)
from tests.conftest import FAST

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(scope="module")
def fitted(digits):
    X = digits[0]
    return ConvAutoEncoderTransformer(n_components=8, early_stopping=True, **FAST).fit(
        X
    )


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _render(display, tmp_path):
    path = tmp_path / "figure.png"
    display.figure_.savefig(path)
    assert path.stat().st_size > 1000
    image = plt.imread(path)
    # something is drawn: not a blank canvas
    assert image[..., :3].std() > 0.01


def test_mosaic_tiles_images_with_padding():
    tiles = mosaic([np.zeros((3, 2, 4)), np.ones((3, 2, 4))], pad=1)
    assert tiles.shape == (2 * 3 - 1, 3 * 5 - 1)
    assert np.isnan(tiles[2]).all()  # the padding row
    assert (tiles[3:5, 0:4] == 1).all()


def test_reconstruction_display(fitted, digits, tmp_path):
    X = digits[0]
    display = ReconstructionDisplay.from_estimator(fitted, X, n_images=6)
    assert len(display.figure_.axes) == 1
    # two rows of six 8x8 images with 1-pixel gaps
    assert display.image_.get_array().shape == (2 * 9 - 1, 6 * 9 - 1)
    assert [t.get_text() for t in display.ax_.get_yticklabels()] == [
        "original",
        "reconstruction",
    ]
    np.testing.assert_array_equal(display.originals, X[:6])
    _render(display, tmp_path)


def test_reconstruction_display_with_noisy_inputs(fitted, digits, tmp_path):
    _, ax = plt.subplots()
    display = ReconstructionDisplay.from_estimator(
        fitted, digits[0], n_images=5, noise_factor=0.3, ax=ax
    )
    assert display.ax_ is ax
    assert display.image_.get_array().shape == (3 * 9 - 1, 5 * 9 - 1)
    assert display.noisy.shape == (5, 64)
    assert not np.allclose(display.noisy, digits[0][:5])
    _render(display, tmp_path)


def test_add_noise_matches_training_corruption(fitted, digits):
    X = digits[0][:50]
    noisy = add_noise(fitted, X, 0.5, random_state=0)
    assert noisy.min() >= 0 and noisy.max() <= 16  # clipped on the caller's scale
    np.testing.assert_array_equal(noisy, add_noise(fitted, X, 0.5, random_state=0))
    assert np.abs(noisy - X).mean() > 1


def test_code_images_display(fitted, digits, tmp_path):
    display = CodeImagesDisplay.from_estimator(fitted, digits[0], n_images=7)
    assert display.code_shape == (2, 4)  # the most square layout of 8 numbers
    assert display.image_.get_array().shape == (2, 7 * 5 - 1)
    _render(display, tmp_path)


def test_code_images_of_the_seed_architecture_are_4_by_32(mnist_like):
    seed = ConvAutoEncoderTransformer(
        n_components=128,
        architecture="conv",
        channels=(16, 8, 8),
        max_epochs=1,
        random_state=0,
    ).fit(mnist_like)
    display = CodeImagesDisplay.from_estimator(seed, mnist_like, n_images=10)
    assert display.code_shape == (4, 32)
    assert display.image_.get_array().shape == (4, 10 * 33 - 1)
    # row i of a code image holds pixel row i of the 4x4 map, its 8 channels side
    # by side for each pixel, as the tutorial's reshape(4, 4 * 8) of a
    # channels-last code did
    code = seed.transform(mnist_like[:1]).reshape(8, 4, 4)  # (C, H, W)
    np.testing.assert_allclose(
        display.image_.get_array()[:, :32],
        code.transpose(1, 2, 0).reshape(4, 32),
        rtol=1e-5,
        atol=1e-6,  # encoded in a batch of 10 above, of 1 here
    )


def test_embedding_display(fitted, digits, tmp_path):
    X, y = digits
    display = EmbeddingDisplay.from_estimator(fitted, X, y)
    assert display.scatter_.get_offsets().shape == (len(X), 2)
    assert display.ax_.get_xlabel() == "PC 1 of the codes"  # 8-d codes projected
    assert display.ax_.get_legend() is not None
    _render(display, tmp_path)


def test_embedding_display_of_2d_codes(digits):
    X, y = digits
    two = ConvAutoEncoderTransformer(n_components=2, **FAST).fit(X)
    display = EmbeddingDisplay.from_estimator(two, X, y)
    np.testing.assert_allclose(display.scatter_.get_offsets(), two.transform(X))
    assert display.ax_.get_xlabel() == "code 0"


def test_training_curve_display(fitted, tmp_path):
    display = TrainingCurveDisplay.from_estimator(fitted)
    assert set(display.lines_) == {"train_loss", "valid_loss"}
    x, y = display.lines_["train_loss"].get_data()
    assert list(x) == list(range(1, fitted.n_iter_ + 1))
    np.testing.assert_allclose(y, fitted.history_[:, "train_loss"])
    _render(display, tmp_path)


def test_interpolation_display(fitted, digits, tmp_path):
    X = digits[0]
    display = InterpolationDisplay.from_estimator(fitted, X[0], X[1], n_steps=7)
    assert display.image_.get_array().shape == (8, 7 * 9 - 1)
    # the ends are the reconstructions of the two images
    ends = fitted.inverse_transform(fitted.transform(X[:2]))
    np.testing.assert_allclose(display.images[[0, -1]], ends, rtol=1e-4, atol=1e-3)
    _render(display, tmp_path)


def test_interpolate_walks_a_straight_line_in_code_space(fitted, digits):
    X = digits[0]
    images = interpolate(fitted, X[0], X[1], n_steps=3)
    z = fitted.transform(X[:2])
    middle = fitted.inverse_transform(((z[0] + z[1]) / 2)[None])
    np.testing.assert_allclose(images[1], middle[0], rtol=1e-4, atol=1e-3)
