"""When a long fit goes wrong: Ctrl-C, training more (warm_start), resuming after a
crash (checkpoint_dir)."""

import copy
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.exceptions import NotFittedError
from skorch.callbacks import Callback, EarlyStopping

from sk_convae import ConvAutoEncoderTransformer
from sk_convae._checkpoint import CHECKPOINT_NAME
from tests.conftest import FAST

PARAMS = dict(n_components=6, **FAST)  # on digits_small: 7 batches per epoch


class Interrupt(Callback):
    """Raise ``error`` (``KeyboardInterrupt``, as Ctrl-C does) after ``batches``
    training batches (mid-epoch) or at the end of epoch ``epochs``, counted from the
    start of the call."""

    ended = 0  # on_train_end calls over all copies (the estimator copies callbacks)

    def __init__(self, *, batches=None, epochs=None, error=KeyboardInterrupt):
        self.batches = batches
        self.epochs = epochs
        self.error = error

    def initialize(self):
        self.batches_ = self.epochs_ = 0
        return self

    def on_batch_end(self, net, training=False, **kwargs):
        self.batches_ += training
        if self.batches_ == self.batches:
            raise self.error("interrupted")

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ += 1
        if self.epochs_ == self.epochs:
            raise self.error("interrupted")

    def on_train_end(self, net, **kwargs):
        type(self).ended += 1


class CountEpochs(Callback):
    """Count the epochs trained, over all copies."""

    epochs = 0

    def on_epoch_end(self, net, **kwargs):
        type(self).epochs += 1


def _prefetch_threads():
    return [t for t in threading.enumerate() if "_produce" in t.name]


def _tensors(state):
    """Every tensor of a (nested) state dict, in order, copied."""
    if isinstance(state, torch.Tensor):
        return [state.clone()]
    if isinstance(state, dict):
        return [t for key in sorted(state, key=str) for t in _tensors(state[key])]
    if isinstance(state, list | tuple):
        return [t for item in state for t in _tensors(item)]
    return []


def _snapshot(ae, X):
    """What an interrupted call must leave exactly as it was."""
    if not hasattr(ae, "net_"):
        return None
    return {
        "attributes": dict(vars(ae)),
        "codes": ae.transform(X),
        "history": copy.deepcopy(list(ae.history_)),
        "module": _tensors(ae.net_.module_.state_dict()),
        "optimizer": _tensors(ae.net_.optimizer_.state_dict()),
        "param_groups": copy.deepcopy(ae.net_.optimizer_.state_dict()["param_groups"]),
    }


def _assert_unchanged(ae, X, before):
    if before is None:
        assert not hasattr(ae, "net_") and not hasattr(ae, "n_features_in_")
        with pytest.raises(NotFittedError):
            ae.transform(X)
        return
    # the very same objects, and nothing in them changed
    assert vars(ae).keys() == before["attributes"].keys()
    params = ae.get_params()
    for name, value in before["attributes"].items():
        if name not in params:
            assert getattr(ae, name) is value, name
    assert_array_equal(ae.transform(X), before["codes"])  # bit-identical
    assert list(ae.history_) == before["history"]
    for key in ("module", "optimizer"):
        now = _tensors(getattr(ae.net_, key + "_").state_dict())
        assert len(now) == len(before[key])
        assert all(torch.equal(a, b) for a, b in zip(now, before[key])), key
    assert ae.net_.optimizer_.state_dict()["param_groups"] == before["param_groups"]


# ----------------------------------------------------------------------------------
# Ctrl-C


CALLS = {
    "fit": lambda ae, X: ae.fit(X),
    "partial_fit": lambda ae, X: ae.partial_fit(X),
    "warm fit": lambda ae, X: ae.set_params(warm_start=True).fit(X),
}


@pytest.mark.parametrize("fitted", [False, True], ids=["unfitted", "fitted"])
@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
@pytest.mark.parametrize(
    "where", [dict(batches=3), dict(epochs=1)], ids=["mid-epoch", "epoch end"]
)
def test_ctrl_c_reaches_the_caller_and_leaves_the_model_as_it_was(
    digits_small, fitted, call, where
):
    X = digits_small[0]
    ae = ConvAutoEncoderTransformer(**PARAMS)
    if fitted:
        ae.fit(X)
        ae.partial_fit(X)  # an optimizer state that partial_fit would go on from
    before = _snapshot(ae, X)
    ended = Interrupt.ended
    ae.set_params(callbacks=[Interrupt(**where)])
    with pytest.raises(KeyboardInterrupt, match="interrupted"):
        call(ae, X)
    _assert_unchanged(ae, X, before)
    assert Interrupt.ended == ended + 1  # the callbacks' on_train_end ran
    assert not _prefetch_threads()  # the data path's thread stopped
    # and the model is usable: the next call trains as usual
    call(ae.set_params(callbacks=None), X)
    assert np.isfinite(ae.score(X))


def test_ctrl_c_reaches_the_caller_of_a_distributed_fit(digits_small):
    pytest.importorskip("accelerate")
    ae = ConvAutoEncoderTransformer(
        **PARAMS, distributed=True, callbacks=[Interrupt(batches=3)]
    )
    with pytest.raises(KeyboardInterrupt):
        ae.fit(digits_small[0])
    assert not hasattr(ae, "net_")


@pytest.mark.parametrize("user_callback", [False, True])
def test_early_stopping_still_ends_training_normally(digits_small, user_callback):
    # skorch's EarlyStopping stops by raising KeyboardInterrupt: not an interrupt
    params = {**PARAMS, "max_epochs": 20}
    if user_callback:
        params["callbacks"] = [
            EarlyStopping("train_loss", patience=1, threshold=1.0, threshold_mode="abs")
        ]
    else:
        params.update(early_stopping=True, n_iter_no_change=1, tol=1.0)
    ae = ConvAutoEncoderTransformer(**params).fit(digits_small[0])
    assert ae.n_iter_ == 2
    # while Ctrl-C, with early stopping on, is still an interrupt
    with pytest.raises(KeyboardInterrupt):
        ae.set_params(callbacks=[*params.get("callbacks", []), Interrupt(batches=9)])
        ae.fit(digits_small[0])
    assert ae.n_iter_ == 2


# ----------------------------------------------------------------------------------
# warm_start


def _batch_rates(history):
    return [batch["event_lr"] for epoch in history for batch in epoch["batches"]]


def test_warm_start_trains_max_epochs_more_from_the_fitted_model(digits_small):
    X = digits_small[0]
    ae = ConvAutoEncoderTransformer(**PARAMS, warm_start=True).fit(X)
    first_loss, first_score = ae.history_[-1, "train_loss"], ae.score(X)
    first_rates = _batch_rates(ae.history_)
    scaling = (ae.data_offset_, ae.data_scale_, ae.loss_, ae.image_shape_)
    ae.fit(X)
    assert ae.n_iter_ == len(ae.history_) == 8 and ae.n_epochs_ == 4
    assert [row["epoch"] for row in ae.history_] == list(range(1, 9))
    assert ae.history_[-1, "train_loss"] < first_loss
    assert ae.score(X) > first_score
    assert (ae.data_offset_, ae.data_scale_, ae.loss_, ae.image_shape_) == scaling
    # a new one-cycle schedule over the new epochs (from lr / 25 up to lr and
    # down), and a new AdamW state: its step counts are this fit's 28 steps
    assert _batch_rates(ae.history_[4:]) == pytest.approx(first_rates)
    assert first_rates[0] == pytest.approx(ae.lr_ / 25)
    assert max(first_rates) == pytest.approx(ae.lr_, rel=0.01)
    steps = {
        float(s["step"]) for s in ae.net_.optimizer_.state_dict()["state"].values()
    }
    assert steps == {28.0}
    # the same calls give the same model
    again = ConvAutoEncoderTransformer(**PARAMS, warm_start=True).fit(X).fit(X)
    assert_array_equal(again.transform(X), ae.transform(X))
    # warm_start=False starts again
    assert ae.set_params(warm_start=False).fit(X).n_iter_ == 4


def test_warm_start_may_change_training_settings(digits_small):
    X = digits_small[0]
    ae = ConvAutoEncoderTransformer(**PARAMS).fit(X)
    ae.set_params(
        warm_start=True, lr=1e-3, batch_size=32, max_epochs=2, early_stopping=True
    ).fit(X)
    assert ae.n_iter_ == 6 and ae.n_epochs_ == 2
    assert "valid_loss" in ae.history_[-1]


WARM_MISMATCHES = {
    "n_components": (dict(n_components=4), "n_components is 4, the model's 6"),
    "image_shape": (
        dict(image_shape=(4, 16)),
        r"image_shape \(as C, H, W\) is \(1, 4, 16\), the model's \(1, 8, 8\)",
    ),
    "architecture": (
        dict(architecture="dense"),
        "architecture is 'dense', the model's 'residual'",
    ),
    "channels": (dict(channels=(8, 16)), r"channels is \(8, 16\), the model's"),
    "loss": (dict(loss="bce"), "loss is 'bce', the model's 'mse'"),
    "data_range": (
        dict(data_range=(0, 32)),
        r"the scaling \(offset, scale\) of data_range is \(0.0, 32.0\), the model's "
        r"\(0.0, 16.0\)",
    ),
}


def _refuse_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(ConvAutoEncoderTransformer, "_train", refuse)


@pytest.mark.parametrize("change, match", WARM_MISMATCHES.values(), ids=WARM_MISMATCHES)
def test_warm_start_refuses_another_network_before_training(
    digits_small, monkeypatch, change, match
):
    X = digits_small[0]
    ae = ConvAutoEncoderTransformer(**PARAMS, warm_start=True).fit(X)
    before = _snapshot(ae, X)
    _refuse_training(monkeypatch)
    original = ae.get_params()
    with pytest.raises(ValueError, match=f"warm_start=True continues .*{match}"):
        ae.set_params(**change).fit(X)
    ae.set_params(**{name: original[name] for name in change})
    _assert_unchanged(ae, X, before)


def test_warm_start_needs_the_fitted_features_and_scale(digits_small, monkeypatch):
    X = digits_small[0]
    ae = ConvAutoEncoderTransformer(**PARAMS, warm_start=True).fit(X)
    unit = ConvAutoEncoderTransformer(
        **PARAMS, architecture="dense", loss="bce", warm_start=True
    ).fit(X / 16)
    _refuse_training(monkeypatch)
    with pytest.raises(ValueError, match="X has 63 features, but .* expecting 64"):
        ae.fit(X[:, :63])
    with pytest.raises(ValueError, match="outside the scale learned"):
        unit.fit(X)  # 0..16 for a model of [0, 1] intensities


def test_warm_start_after_load_continues_the_saved_model(digits_small, tmp_path):
    X = digits_small[0]
    ae = ConvAutoEncoderTransformer(**PARAMS).fit(X)
    path = tmp_path / "ae.safetensors"
    ae.set_params(warm_start=True, checkpoint_dir=tmp_path / "checkpoints").save(path)
    loaded = ConvAutoEncoderTransformer.load(path)
    assert loaded.get_params()["warm_start"] is True
    assert loaded.get_params()["checkpoint_dir"] == str(tmp_path / "checkpoints")
    assert_array_equal(loaded.transform(X), ae.transform(X))
    loaded.set_params(checkpoint_dir=None).fit(X)
    assert loaded.n_iter_ == 8 and loaded.score(X) > ae.score(X)


# ----------------------------------------------------------------------------------
# checkpoint_dir


STOPS = {
    "ctrl-c at the end of epoch 3": (dict(epochs=3), KeyboardInterrupt, 2),
    "crash in epoch 4": (dict(batches=3 * 7 + 2, error=RuntimeError), RuntimeError, 3),
}
CONFIGS = {
    "residual": {},
    "dense, noise, early stopping": dict(
        architecture="dense", noise_factor=0.2, early_stopping=True, n_iter_no_change=3
    ),
}


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS)
@pytest.mark.parametrize("stop, error, done", STOPS.values(), ids=STOPS)
def test_a_stopped_fit_resumes_to_the_uninterrupted_model(
    digits_small, tmp_path, config, stop, error, done
):
    X = digits_small[0]
    params = {**PARAMS, "max_epochs": 6, **config}
    reference = ConvAutoEncoderTransformer(**params).fit(X)
    ae = ConvAutoEncoderTransformer(
        **params, checkpoint_dir=tmp_path, callbacks=[Interrupt(**stop)]
    )
    with pytest.raises(error):
        ae.fit(X)
    assert not hasattr(ae, "net_")
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert state["epochs_done"] == done and not state["finished"]
    CountEpochs.epochs = 0
    ae.set_params(callbacks=[CountEpochs()]).fit(X)
    # the last epochs only, and exactly the model of the uninterrupted fit
    assert CountEpochs.epochs == reference.n_iter_ - done
    assert ae.n_iter_ == reference.n_iter_ and ae.n_epochs_ == 6
    assert_array_equal(ae.transform(X), reference.transform(X))
    assert ae.history_[:, "train_loss"] == reference.history_[:, "train_loss"]
    assert ae._train_seed == reference._train_seed
    # a finished checkpoint: fit loads the model without training
    assert torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)["finished"]
    CountEpochs.epochs = 0
    again = ConvAutoEncoderTransformer(
        **params, checkpoint_dir=tmp_path, callbacks=[CountEpochs()]
    ).fit(X)
    assert CountEpochs.epochs == 0
    assert_array_equal(again.transform(X), reference.transform(X))
    assert list(again.history_) == list(ae.history_)
    assert again.n_iter_ == reference.n_iter_
    # training continues from the checkpoint's optimizer, as from the reference's
    assert_array_equal(
        again.partial_fit(X).transform(X), reference.partial_fit(X).transform(X)
    )


def test_a_stopped_fit_with_x_val_resumes_to_the_uninterrupted_model(digits, tmp_path):
    X, X_val = digits[0][:400], digits[0][400:600]
    # stops after epoch 3: neither epoch 2 nor 3 improves on epoch 1 by 3%, so the
    # resumed fit must remember epoch 2
    params = {**PARAMS, "max_epochs": 8, "n_iter_no_change": 2, "tol": 0.03}
    reference = ConvAutoEncoderTransformer(**params).fit(X, X_val=X_val)
    assert reference.n_iter_ == 3
    ae = ConvAutoEncoderTransformer(
        **params, checkpoint_dir=tmp_path, callbacks=[Interrupt(epochs=2)]
    )
    with pytest.raises(KeyboardInterrupt):
        ae.fit(X, X_val=X_val)
    # other validation rows make another fit: its checkpoint is not resumed
    with pytest.raises(ValueError, match="X_val holds other rows"):
        ConvAutoEncoderTransformer(**params, checkpoint_dir=tmp_path).fit(
            X, X_val=X_val[::-1]
        )
    with pytest.raises(ValueError, match="X_val is not given here"):
        ConvAutoEncoderTransformer(**params, checkpoint_dir=tmp_path).fit(X)
    ae.set_params(callbacks=None).fit(X, X_val=X_val)
    assert ae.history_[:, "valid_loss"] == reference.history_[:, "valid_loss"]
    assert ae.n_iter_ == reference.n_iter_
    assert_array_equal(ae.transform(X), reference.transform(X))


def test_the_checkpoint_is_one_file_of_data_written_after_every_epoch(
    digits_small, tmp_path, monkeypatch
):
    from sk_convae import _checkpoint

    writes = []
    real = _checkpoint._write_atomically
    monkeypatch.setattr(
        _checkpoint,
        "_write_atomically",
        lambda path, data: writes.append(path) or real(path, data),
    )
    stale = tmp_path / f".{CHECKPOINT_NAME}.0123456789abcdef.tmp"  # a killed write
    stale.write_bytes(b"half a file")
    ConvAutoEncoderTransformer(**PARAMS, checkpoint_dir=tmp_path).fit(digits_small[0])
    assert writes == [tmp_path / CHECKPOINT_NAME] * 5  # 4 epochs, then finished
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME]
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)  # data only
    assert state["format"] == "sk-convae-checkpoint" and state["epochs_done"] == 4
    fingerprint = json.loads(state["fingerprint"])
    assert fingerprint["data"]["n_samples"] == 400
    assert "verbose" not in fingerprint["params"]


def test_another_fit_is_refused_before_training(digits_small, tmp_path, monkeypatch):
    X = digits_small[0]
    ConvAutoEncoderTransformer(**PARAMS, checkpoint_dir=tmp_path).fit(X)
    _refuse_training(monkeypatch)
    changed = X.copy()
    changed[-1, 10] += 1.0
    for data, change, match in [
        (changed, {}, "X holds other values"),
        (X[:300], {}, "the number of rows of X is 300 here but 400"),
        (X, {"lr": 1e-3}, "lr is 0.001 here but 'auto' in the checkpoint"),
        (X, {"max_epochs": 5}, "max_epochs is 5 here but 4"),
    ]:
        ae = ConvAutoEncoderTransformer(**{**PARAMS, **change}, checkpoint_dir=tmp_path)
        with pytest.raises(ValueError, match=f"written by another fit: .*{match}"):
            ae.fit(data)
        assert not hasattr(ae, "net_")
    # other settings of how the fit runs are no other fit
    monkeypatch.undo()
    CountEpochs.epochs = 0
    ae = ConvAutoEncoderTransformer(**PARAMS, checkpoint_dir=str(tmp_path), verbose=1)
    ae.set_params(device="cpu", callbacks=[CountEpochs()]).fit(X)
    assert CountEpochs.epochs == 0 and ae.n_iter_ == 4


def test_a_warm_start_resumes_from_its_own_checkpoint(digits_small, tmp_path):
    X = digits_small[0]
    reference = ConvAutoEncoderTransformer(**PARAMS).fit(X)
    reference.set_params(warm_start=True).fit(X)
    ae = ConvAutoEncoderTransformer(**PARAMS).fit(X)
    ae.set_params(warm_start=True, checkpoint_dir=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        ae.set_params(callbacks=[Interrupt(epochs=2)]).fit(X)
    assert ae.n_iter_ == 4
    # a cold fit (or a warm start from other weights) cannot take it over
    with pytest.raises(ValueError, match="the fit starts from other weights"):
        ConvAutoEncoderTransformer(**PARAMS, checkpoint_dir=tmp_path).fit(X)
    ae.set_params(callbacks=None).fit(X)
    assert ae.n_iter_ == 8
    assert_array_equal(ae.transform(X), reference.transform(X))


def test_a_damaged_checkpoint_is_an_error(digits_small, tmp_path):
    X = digits_small[0]
    ConvAutoEncoderTransformer(**PARAMS, checkpoint_dir=tmp_path).fit(X)
    path = tmp_path / CHECKPOINT_NAME
    for damaged in (path.read_bytes()[:-1000], b"not a checkpoint"):
        path.write_bytes(damaged)  # a disk that filled up, another program's file
        with pytest.raises(ValueError, match="cannot be read as a sk-convae check"):
            ConvAutoEncoderTransformer(**PARAMS, checkpoint_dir=tmp_path).fit(X)
    torch.save({"weights": torch.zeros(1)}, tmp_path / CHECKPOINT_NAME)
    with pytest.raises(ValueError, match="is not a sk-convae checkpoint"):
        ConvAutoEncoderTransformer(**PARAMS, checkpoint_dir=tmp_path).fit(
            digits_small[0]
        )


def test_distributed_refuses_what_it_does_not_support(digits_small, tmp_path):
    ae = ConvAutoEncoderTransformer(**PARAMS, distributed=True, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="supports neither warm_start=True nor"):
        ae.fit(digits_small[0])


# ----------------------------------------------------------------------------------
# A process killed mid-training, resumed in another


SCRIPT = """
import json, sys, time
import numpy as np, torch
from sklearn.datasets import load_digits
from skorch.callbacks import Callback
from sk_convae import ConvAutoEncoderTransformer

torch.set_num_threads(1)
out, checkpoint_dir, pause = sys.argv[1], sys.argv[2] or None, float(sys.argv[3])
X, _ = load_digits(return_X_y=True)
train, test = X[:1500], X[1500:]

class Pause(Callback):  # slow epochs, so that the parent kills mid-training
    epochs = 0
    def on_epoch_end(self, net, **kwargs):
        type(self).epochs += 1
        time.sleep(pause)

ae = ConvAutoEncoderTransformer(
    n_components=8, image_shape=(8, 8), channels=(8, 16), max_epochs=8,
    batch_size=64, random_state=0, checkpoint_dir=checkpoint_dir,
    callbacks=[Pause()],
).fit(train)
mse = float(np.mean((ae.inverse_transform(ae.transform(test)) - test) ** 2))
with open(out, "w") as f:
    json.dump({"mse": mse, "n_iter": ae.n_iter_, "epochs_here": Pause.epochs}, f)
"""


def _start(script, out, checkpoint_dir="", pause=0.0):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(script), str(out), str(checkpoint_dir), str(pause)]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _finish(process):
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output.decode()[-3000:]


def test_a_killed_fit_resumes_in_a_new_process(tmp_path):
    script = tmp_path / "fit.py"
    script.write_text(textwrap.dedent(SCRIPT))
    checkpoints = tmp_path / "checkpoints"
    path = checkpoints / CHECKPOINT_NAME
    child = _start(script, tmp_path / "killed.json", checkpoints, pause=0.4)
    reference = _start(script, tmp_path / "reference.json")
    try:
        # watch the checkpoint while it is rewritten: every read finds a whole file
        done, reads, deadline = 0, 0, time.monotonic() + 90
        while done < 2:
            if child.poll() is not None or time.monotonic() > deadline:
                pytest.fail(child.communicate()[0].decode()[-3000:])
            if path.exists():
                done = torch.load(path, weights_only=True)["epochs_done"]
                reads += 1
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)  # mid-training: epoch 3 of 8
        child.wait()
        state = torch.load(path, weights_only=True)  # what the kill left: whole
        assert 2 <= state["epochs_done"] < 8 and not state["finished"]
        assert not (tmp_path / "killed.json").exists()
        resumed = _start(script, tmp_path / "resumed.json", checkpoints)
        _finish(resumed)
        _finish(reference)
    finally:
        for process in (child, reference):
            if process.poll() is None:
                process.kill()
                process.wait()
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    reference = json.loads((tmp_path / "reference.json").read_text())
    assert resumed["n_iter"] == reference["n_iter"] == 8
    assert resumed["epochs_here"] == 8 - state["epochs_done"]
    assert resumed["mse"] == pytest.approx(reference["mse"], rel=0.02)
    print(
        f"test MSE: resumed {resumed['mse']:.6f}, uninterrupted "
        f"{reference['mse']:.6f}; killed after {state['epochs_done']} epochs; "
        f"{reads} reads of the checkpoint while it was written"
    )
