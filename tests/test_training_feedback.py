"""Progress, early stopping, history_ and TensorBoard."""

import pickle

import numpy as np
import pytest

from sk_convae import ConvAutoEncoderTransformer
from sk_convae.callbacks import TensorBoard
from tests.conftest import FAST


def test_verbose_shows_progress_and_one_line_per_epoch(digits_small, capsys):
    X = digits_small[0]
    ConvAutoEncoderTransformer(
        n_components=2, verbose=1, early_stopping=True, **FAST
    ).fit(X)
    captured = capsys.readouterr()
    assert "train_loss" in captured.out and "valid_loss" in captured.out
    epoch_lines = [
        line for line in captured.out.splitlines() if line.strip()[:1].isdigit()
    ]
    assert len(epoch_lines) == FAST["max_epochs"]
    assert "it/s" in captured.err  # tqdm's progress bar


def test_verbose_zero_prints_nothing(digits_small, capsys):
    ConvAutoEncoderTransformer(
        n_components=2, early_stopping=True, n_iter_no_change=1, tol=10.0, **FAST
    ).fit(digits_small[0])
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_history_records_every_epoch_and_pickles(digits_small):
    ae = ConvAutoEncoderTransformer(n_components=2, **FAST).fit(digits_small[0])
    assert ae.n_iter_ == FAST["max_epochs"] == len(ae.history_)
    losses = ae.history_[:, "train_loss"]
    assert len(losses) == FAST["max_epochs"] and losses[-1] < losses[0]
    assert all(row["dur"] > 0 for row in ae.history_)
    assert "valid_loss" not in ae.history_[-1]
    restored = pickle.loads(pickle.dumps(ae))
    assert restored.history_[:, "train_loss"] == losses


def test_early_stopping_holds_out_rows_and_restores_the_best_epoch(digits_small):
    import torch

    from sk_convae._data import holdout_rows, scale_rows

    X = digits_small[0]
    ae = ConvAutoEncoderTransformer(
        n_components=4,
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=2,
        tol=0.005,  # relative: gains under 0.5% do not count, so it stops early
        **{**FAST, "max_epochs": 60},
    ).fit(X)
    valid = ae.history_[:, "valid_loss"]
    assert ae.n_iter_ < 60
    stopper = dict(ae.net_.callbacks_)["early_stopping"]
    best_epoch = stopper.best_epoch_
    assert ae.n_iter_ == best_epoch + 2  # stopped n_iter_no_change epochs later

    # The weights kept are the best epoch's: their loss on the held-out rows is the
    # one recorded at that epoch, not the last epoch's.
    X_net = scale_rows(X, ae.data_offset_, ae.data_scale_)
    _, held_out = holdout_rows(len(X), 0.2, seed=0)  # random_state=0
    rows = torch.from_numpy(X_net[held_out])
    with torch.no_grad():
        loss = ae.net_.criterion_(ae.net_.module_(rows), rows)
    assert float(loss) == pytest.approx(valid[best_epoch - 1], rel=1e-4)
    assert valid[best_epoch - 1] != pytest.approx(valid[-1], rel=1e-4)
    assert len(held_out) == 80  # 20% of the 400 rows


def test_auto_early_stopping_holds_out_rows_where_auto_epochs_are_many(digits):
    # 1,797 rows: max_epochs='auto' would make 100 passes over them
    X = digits[0]
    ae = ConvAutoEncoderTransformer(
        n_components=4, image_shape=(8, 8), random_state=0
    ).fit(X)
    assert "early_stopping" in dict(ae.net_.callbacks_)
    assert np.isfinite(ae.history_[:, "valid_loss"]).all()
    assert ae.n_iter_ < 100  # it stopped before the step budget was spent
    # an explicit max_epochs leaves the length to the user: no rows held out
    fixed = ConvAutoEncoderTransformer(n_components=4, **FAST).fit(X)
    assert "early_stopping" not in dict(fixed.net_.callbacks_)
    assert "valid_loss" not in fixed.history_[-1]


@pytest.mark.parametrize(
    "n_samples, expected, auto_lr",
    [
        (400, False, 3e-3),  # 40 rows held out: too few to judge by
        (1_797, True, 3e-3),
        (30_000, True, 3e-3),  # 27,000 rows: 35 epochs of 'auto'
        (45_000, True, 3e-3),  # 40,500 rows: 24 epochs
        (55_000, False, 1e-2),  # 49,500 rows: 19 epochs
        (60_000, False, 1e-2),  # MNIST: 18 epochs of 54,000 rows (16 of 60,000)
    ],
)
def test_auto_early_stopping_is_on_for_small_data_only(n_samples, expected, auto_lr):
    assert ConvAutoEncoderTransformer()._stops_early(n_samples, 1) is expected
    # lr='auto' follows the same line: the lower peak rate on small data
    lr = ConvAutoEncoderTransformer()._peak_lr(n_samples, 1, one_cycle=True)
    assert lr == auto_lr
    assert not ConvAutoEncoderTransformer(max_epochs=50)._stops_early(n_samples, 1)
    assert ConvAutoEncoderTransformer(early_stopping=True)._stops_early(n_samples, 1)


def test_early_stopping_needs_enough_rows():
    X = np.random.default_rng(0).uniform(size=(3, 4))
    with pytest.raises(ValueError, match="leaves 1 of 3 rows for training"):
        ConvAutoEncoderTransformer(early_stopping=True, validation_fraction=0.5).fit(X)


def test_early_stopping_is_reproducible(digits_small):
    X = digits_small[0]
    params = dict(n_components=4, early_stopping=True, **FAST)
    a = ConvAutoEncoderTransformer(**params).fit(X).transform(X)
    b = ConvAutoEncoderTransformer(**params).fit(X).transform(X)
    np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------------
# TensorBoard


def _events(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    accumulator = EventAccumulator(str(log_dir), size_guidance={"images": 0})
    accumulator.Reload()
    return accumulator


def test_tensorboard_writes_scalars_and_reconstruction_images(digits_small, tmp_path):
    pytest.importorskip("tensorboard")
    X = digits_small[0]
    board = TensorBoard(tmp_path / "runs", n_images=4, images_every=2)
    ae = ConvAutoEncoderTransformer(
        n_components=4,
        early_stopping=True,
        callbacks=[board],
        **{**FAST, "max_epochs": 5},
    ).fit(X)

    events = _events(tmp_path / "runs")
    scalars = set(events.Tags()["scalars"])
    assert {"loss/train_loss", "loss/valid_loss", "lr", "epoch_seconds"} <= scalars
    train_loss = [e.value for e in events.Scalars("loss/train_loss")]
    np.testing.assert_allclose(train_loss, ae.history_[:, "train_loss"], rtol=1e-6)
    assert [e.step for e in events.Scalars("lr")] == [1, 2, 3, 4, 5]

    assert set(events.Tags()["images"]) >= {"originals", "reconstructions"}
    # every 2 epochs, and after the last one
    assert [e.step for e in events.Images("reconstructions")] == [2, 4, 5]
    snapshot = events.Images("reconstructions")[-1]
    # the 4 followed 8x8 digits side by side
    assert (snapshot.height, snapshot.width) == (8, 4 * 8)
    original = events.Images("originals")[0]
    assert (original.step, original.height, original.width) == (0, 8, 32)
    assert snapshot.encoded_image_string != original.encoded_image_string

    # the object passed in never opened a writer; the fitted model pickles
    assert not hasattr(board, "writer_")
    restored = pickle.loads(pickle.dumps(ae))
    np.testing.assert_array_equal(restored.transform(X), ae.transform(X))
