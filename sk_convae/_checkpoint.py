"""Checkpoints: a fit that survives the death of its process.

``ConvAutoEncoderTransformer(checkpoint_dir=DIR)`` makes ``fit`` write, after every
epoch, one file ``DIR/checkpoint.pt`` holding everything the fit needs to go on:

- the network's weights and buffers, AdamW's state, the position of the one-cycle
  learning-rate schedule, early stopping's counters and best weights, the
  float16 gradient scaler's state;
- ``history_``, as JSON text (the codec of ``sk_convae._persist``);
- the training seed (the shuffling of epoch ``k`` follows from the seed and ``k``,
  the held-out rows from the seed) and torch's random state (the denoising noise),
  so that a resumed fit draws what the uninterrupted fit would have drawn;
- a fingerprint of the fit: the parameters that change what it computes, the
  data (rows, features, dtype, a SHA-256 of 16 rows sampled at fixed places), the
  scaling learned from it and, for a warm start, the starting weights.

``fit`` with the same directory reads the file first: a fingerprint that differs
is an error naming what differs (resuming must never mix two runs), a complete
epoch ``k`` is resumed at epoch ``k + 1``, and a finished fit (marked so once
``fit`` has succeeded) is loaded without training. The file is kept after a
successful fit: delete it, or change ``checkpoint_dir``, to train afresh.

Each write goes to a temporary file in the same directory, is synced to disk and
renamed over the checkpoint (``sk_convae._persist._write_atomically``): a process
killed at any moment leaves the previous checkpoint or the new one, never a torn
file. The file is a ``torch.save`` of plain containers and tensors, read with
``torch.load(weights_only=True)``, which builds nothing but those.

skorch's ``Checkpoint`` and ``LoadInitState`` are not used: they write the
weights, the optimizer and the history as separate files, each in place (a kill
between two writes leaves a mixed set, a kill during one a torn file), keep no
learning-rate schedule, early stopping or random state, and ``LRScheduler``
resumes a schedule stepped every batch at the wrong step (it counts epochs).
"""

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import Callback
from skorch.history import History

from sk_convae._data import read_rows
from sk_convae._persist import _decode, _digest, _encode, _write_atomically

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = "sk-convae-checkpoint"
FORMAT_VERSION = 1
# rows of X hashed into the fingerprint, at fixed, evenly spaced places
SAMPLED_ROWS = 16
# parameters a resuming fit may change: how the fit runs, not what it computes
FREE_PARAMS = frozenset(
    {"callbacks", "checkpoint_dir", "device", "distributed", "verbose", "warm_start"}
)
_KEYS = (
    "format", "format_version", "fingerprint", "seed", "epochs", "epochs_done",
    "finished", "module", "optimizer", "lr_schedule", "early_stopping",
    "grad_scaler", "history", "rng",
)  # fmt: skip


# ----------------------------------------------------------------------------------
# What a fit is


def fingerprint(estimator, X, config, start=None, X_val=None):
    """What must be the same for a fit to continue another: a JSON-ready dict.

    ``config`` is the estimator's configuration for ``X`` (its scaling and loss);
    ``start`` the module whose weights a warm start begins from, or None;
    ``X_val`` the validation rows given to ``fit``, or None.
    """
    params = {
        name: _plain(value)
        for name, value in sorted(estimator.get_params(deep=False).items())
        if name not in FREE_PARAMS
    }
    fields = {
        "params": params,
        "data": data_fingerprint(X),
        "scaling": {
            "offset": float(config["offset"]),
            "scale": float(config["scale"]),
            "loss": config["loss"],
        },
        "start": None if start is None else weights_digest(start),
    }
    if X_val is not None:  # absent otherwise: checkpoints from before X_val match
        fields["validation"] = data_fingerprint(X_val)
    return fields


def data_fingerprint(X):
    """Rows, features, dtype and a SHA-256 of ``SAMPLED_ROWS`` rows of ``X``, read
    one by one (a lazy array is never read whole)."""
    n_samples, n_features = X.shape
    sha = hashlib.sha256()
    places = np.unique(np.linspace(0, n_samples - 1, SAMPLED_ROWS).astype(np.intp))
    for row in places:
        sha.update(np.ascontiguousarray(read_rows(X, row, row + 1)).tobytes())
    return {
        "n_samples": int(n_samples),
        "n_features": int(n_features),
        "dtype": np.dtype(X.dtype).str,
        "sampled_rows_sha256": sha.hexdigest(),
    }


def weights_digest(module):
    """SHA-256 of a module's weights and buffers."""
    return _digest("", {k: v.detach().cpu() for k, v in module.state_dict().items()})


def _plain(value):
    """A parameter's value as JSON data: sequences as lists, a random generator as
    its type (a resumed fit takes its seed from the checkpoint)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return type(value).__name__


def _differences(expected, found):
    """What differs between two fingerprints, in words."""
    labels = {
        "n_samples": "the number of rows of X",
        "n_features": "the number of features of X",
        "dtype": "the dtype of X",
        "offset": "the offset of the scaling learned from X",
        "scale": "the scale learned from X",
        "loss": "the loss",
    }
    problems = []
    for section in ("params", "data", "scaling"):
        here, there = expected.get(section, {}), found.get(section, {})
        for key in sorted(set(here) | set(there)):
            if here.get(key, "unset") == there.get(key, "unset"):
                continue
            if key == "sampled_rows_sha256":
                problems.append("X holds other values (rows sampled from it differ)")
                continue
            what = labels.get(key, key) if section != "params" else key
            problems.append(
                f"{what} is {here.get(key, 'unset')!r} here but "
                f"{there.get(key, 'unset')!r} in the checkpoint"
            )
    if expected.get("start") != found.get("start"):
        problems.append(
            "the fit starts from other weights (warm_start=True continues the "
            "fitted model; the checkpoint began from another one, or from scratch)"
        )
    here, there = expected.get("validation"), found.get("validation")
    if here != there:
        problems.append(
            "X_val is given here but not in the checkpoint's fit"
            if there is None
            else "X_val is not given here but was in the checkpoint's fit"
            if here is None
            else "X_val holds other rows than in the checkpoint's fit"
        )
    return problems


# ----------------------------------------------------------------------------------
# The callback that writes, and the reading


class EpochCheckpoint(Callback):
    """Write ``directory/checkpoint.pt`` after every epoch (skorch callback, last in
    the list, so that the history holds every callback's entries for the epoch).

    Parameters
    ----------
    directory : str or path-like
        Created if missing.
    fingerprint : dict
        What the fit is (``fingerprint``).
    history_start : int
        Epochs in the history before this fit (a warm start's earlier epochs).
    """

    def __init__(self, directory, fingerprint, history_start=0):
        self.directory = directory
        self.fingerprint = fingerprint
        self.history_start = history_start
        self.seed = None
        self.resume = None

    @property
    def path(self):
        return Path(os.fspath(self.directory)) / CHECKPOINT_NAME

    def read(self):
        """The checkpoint of the same fit, or None when there is none.

        Creates the directory and removes temporary files left by a killed write
        (one fit per directory). Raises ``ValueError`` for a checkpoint that cannot
        be read, or that another fit wrote (naming what differs).
        """
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".{CHECKPOINT_NAME}.*.tmp"):
            stale.unlink(missing_ok=True)
        if not path.exists():
            return None
        state = _load(path)
        stored = json.loads(state["fingerprint"])
        problems = _differences(self.fingerprint, stored)
        if problems:
            raise ValueError(
                f"The checkpoint {path} was written by another fit: "
                + "; ".join(problems)
                + ". Resume with the same data and parameters, or delete the file "
                "(or choose another checkpoint_dir) to start afresh."
            )
        self.resume = state
        return state

    def on_train_begin(self, net, **kwargs):
        """Put back what the callbacks' own ``on_train_begin`` have just reset: the
        optimizer (after the schedule set its rates), the schedule's position and
        early stopping's counters."""
        state, self.resume = self.resume, None
        if state is None:
            return
        callbacks = dict(net.callbacks_)
        net.optimizer_.load_state_dict(state["optimizer"])
        schedule = callbacks.get("lr_schedule")
        if state["lr_schedule"] is not None and schedule is not None:
            schedule.lr_scheduler_.load_state_dict(state["lr_schedule"])
        stopping = callbacks.get("early_stopping")
        if state["early_stopping"] is not None and stopping is not None:
            vars(stopping).update(state["early_stopping"])

    def on_epoch_end(self, net, **kwargs):
        self.write(net, finished=False)

    def finish(self, net):
        """Mark the fit finished: the final weights, which ``fit`` then loads."""
        self.write(net, finished=True)

    def write(self, net, *, finished):
        callbacks = dict(net.callbacks_)
        schedule = getattr(callbacks.get("lr_schedule"), "lr_scheduler_", None)
        stopping = callbacks.get("early_stopping")
        scaler = getattr(net, "grad_scaler_", None)
        device = torch.device(net.device)
        training = {"lr_schedule": None, "early_stopping": None}  # none once finished
        if schedule is not None and not finished:
            training["lr_schedule"] = schedule.state_dict()
        if stopping is not None and not finished:
            training["early_stopping"] = {
                "misses_": int(stopping.misses_),
                "dynamic_threshold_": float(stopping.dynamic_threshold_),
                "best_epoch_": int(stopping.best_epoch_),
                "best_model_weights_": stopping.best_model_weights_,
            }
        history = _encode(list(net.history), "the history")
        state = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "fingerprint": json.dumps(self.fingerprint, sort_keys=True),
            "seed": int(self.seed),
            "epochs": int(net.max_epochs),
            "epochs_done": len(net.history) - self.history_start,
            "finished": finished,
            "module": net.module_.state_dict(),
            "optimizer": net.optimizer_.state_dict(),
            **training,
            "grad_scaler": None if scaler is None else scaler.state_dict(),
            "history": json.dumps(history, allow_nan=False),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": (
                    torch.cuda.get_rng_state(device) if device.type == "cuda" else None
                ),
            },
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        _write_atomically(self.path, buffer.getbuffer())


def _load(path):
    """The checkpoint at ``path``, read as data only; ``ValueError`` if it is not
    one this version reads."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"{path} cannot be read as a sk-convae checkpoint ({type(exc).__name__}: "
            f"{exc}). Delete it to start afresh."
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a sk-convae checkpoint. Delete it, or choose another "
            "checkpoint_dir."
        )
    if state.get("format_version") != FORMAT_VERSION or set(state) != set(_KEYS):
        raise ValueError(
            f"{path} is a checkpoint of another sk-convae version (format "
            f"{state.get('format_version')!r}); this one reads format "
            f"{FORMAT_VERSION}. Resume with that version, or delete the file to "
            "start afresh."
        )
    return state


def restore(net, state):
    """Load a checkpoint's weights, history, gradient scaler and random state into
    ``net``, just initialised (the rest follows in ``EpochCheckpoint``'s
    ``on_train_begin``)."""
    net.module_.load_state_dict(state["module"])
    net.history = History(_decode(json.loads(state["history"])))
    scaler = getattr(net, "grad_scaler_", None)
    if scaler is not None and state["grad_scaler"] is not None:
        scaler.load_state_dict(state["grad_scaler"])
    torch.set_rng_state(state["rng"]["torch"])
    device = torch.device(net.device)
    if device.type == "cuda" and state["rng"]["cuda"] is not None:
        torch.cuda.set_rng_state(state["rng"]["cuda"], device)
