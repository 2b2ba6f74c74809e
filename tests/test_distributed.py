"""One fit in two processes: DDP through Accelerate, launched with torchrun (gloo)."""

import json
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone

from sk_convae import ConvAutoEncoderTransformer
from tests.conftest import FAST

pytest.importorskip("accelerate")

PARAMS = dict(n_components=8, **{**FAST, "max_epochs": 5})

SCRIPT = """
import atexit, json, os, sys
import joblib, numpy as np, torch
from sklearn.datasets import load_digits
from sk_convae import ConvAutoEncoderTransformer

out = sys.argv[1]


def report_at_exit():  # registered first, so it runs after the library's handler
    with open(f"{out}/exit-rank{os.environ['RANK']}.txt", "w") as f:
        f.write(str(torch.distributed.is_initialized()))
    tasks = f"/proc/{os.getpid()}/task"  # Linux: this process's threads, by name
    if os.path.isdir(tasks):
        names = [open(f"{tasks}/{t}/comm").read().strip() for t in os.listdir(tasks)]
        with open(f"{out}/threads-rank{os.environ['RANK']}.json", "w") as f:
            json.dump(names, f)


atexit.register(report_at_exit)
X, _ = load_digits(return_X_y=True)
rank = None
early = {"n_iter_no_change": 2, "tol": 0.005, "max_epochs": 30}
for name, extra, fit_params in [
    ("plain", {}, {}),
    ("early", {**early, "early_stopping": True, "validation_fraction": 0.2}, {}),
    # validation rows of the caller's: every process validates on its share
    ("xval", early, {"X_val": X[1500:]}),
]:
    rows = X[:1500] if fit_params else X
    ae = ConvAutoEncoderTransformer(**{**PARAMS, **extra}, distributed=True)
    ae.fit(rows, **fit_params)
    rank = torch.distributed.get_rank()
    torch.save(ae.net_.module_.state_dict(), f"{out}/{name}-rank{rank}.pt")
    with open(f"{out}/{name}-rank{rank}.json", "w") as f:
        json.dump({"train_loss": ae.history_[:, "train_loss"],
                   "valid_loss": [e.get("valid_loss") for e in ae.history_],
                   "n_iter": ae.n_iter_, "world": torch.distributed.get_world_size(),
                   "device": ae.device_}, f)
    if rank == 0:
        joblib.dump(ae, f"{out}/{name}.joblib")
        np.save(f"{out}/{name}-codes.npy", ae.transform(X))
try:  # fewer validation rows than processes
    ConvAutoEncoderTransformer(**{**PARAMS, **early}, distributed=True).fit(
        X[:1500], X_val=X[1500:1501])
except ValueError as error:
    with open(f"{out}/tiny-xval-rank{rank}.txt", "w") as f:
        f.write(str(error))
"""


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """Run SCRIPT in 2 processes with torchrun; its output folder."""
    out = tmp_path_factory.mktemp("ddp")
    script = out / "train.py"
    script.write_text(f"PARAMS = {PARAMS!r}\n" + textwrap.dedent(SCRIPT))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", str(script), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def _load(out, name, rank):
    with open(out / f"{name}-rank{rank}.json") as f:
        return json.load(f), torch.load(out / f"{name}-rank{rank}.pt")


def test_every_process_ends_with_the_same_model(ddp_run):
    for name in ("plain", "early"):
        (info0, state0), (info1, state1) = (
            _load(ddp_run, name, 0),
            _load(ddp_run, name, 1),
        )
        assert info0["world"] == 2
        assert info0["train_loss"] == info1["train_loss"]
        assert info0["n_iter"] == info1["n_iter"]
        assert state0.keys() == state1.keys()
        for key in state0:  # weights and BatchNorm statistics alike
            assert torch.equal(state0[key], state1[key]), key


def test_the_model_saved_by_rank_0_loads_in_a_plain_process(ddp_run, digits):
    ae = joblib.load(ddp_run / "plain.joblib")
    assert type(ae.net_).__name__ == "MixedPrecisionNet" and ae.device_ == "cpu"
    assert_array_equal(ae.transform(digits[0]), np.load(ddp_run / "plain-codes.npy"))
    assert np.isfinite(ae.score(digits[0]))


def test_two_processes_learn_as_one_does(ddp_run, digits):
    info, _ = _load(ddp_run, "plain", 0)
    single = ConvAutoEncoderTransformer(**PARAMS).fit(digits[0])
    # same steps, same schedule, each step over the same number of rows: the
    # curves differ only by which rows make up each batch
    assert_allclose(info["train_loss"], single.history_[:, "train_loss"], rtol=0.05)


def test_early_stopping_stops_all_processes_together(ddp_run):
    info, _ = _load(ddp_run, "early", 0)
    assert info["n_iter"] < 30


def test_x_val_stops_all_processes_together(ddp_run):
    (info0, state0), (info1, state1) = (_load(ddp_run, "xval", r) for r in (0, 1))
    assert info0["n_iter"] == info1["n_iter"] < 30
    # both processes saw the loss of all of X_val, not of their own share
    assert info0["valid_loss"] == info1["valid_loss"]
    assert None not in info0["valid_loss"]
    for key in state0:
        assert_array_equal(state0[key].cpu(), state1[key].cpu())


def test_fewer_x_val_rows_than_processes_is_an_error_before_training(ddp_run):
    for rank in (0, 1):
        message = (ddp_run / f"tiny-xval-rank{rank}.txt").read_text()
        assert "at least 2 rows (got 1)" in message


def test_distributed_in_one_process_trains_as_usual(digits_small):
    X = digits_small[0]
    ae = ConvAutoEncoderTransformer(**PARAMS, distributed=True)
    assert clone(ae).get_params()["distributed"] is True
    ae.fit(X)
    assert type(ae.net_).__name__ == "MixedPrecisionNet" and ae.n_iter_ == 5
    with pytest.raises(ValueError, match="distributed=True trains in fit only"):
        ae.partial_fit(X)


def test_a_clear_error_without_accelerate(digits_small, monkeypatch):
    monkeypatch.setitem(sys.modules, "accelerate", None)
    with pytest.raises(ImportError, match=r"sk-convae\[distributed\]"):
        ConvAutoEncoderTransformer(**PARAMS, distributed=True).fit(digits_small[0])


def test_the_process_group_ends_before_the_interpreter_does(ddp_run):
    # Accelerate started it inside fit; left to the interpreter's finalisation,
    # Gloo's threads abort about one exit in ten (SIGABRT)
    for rank in (0, 1):
        assert (ddp_run / f"exit-rank{rank}.txt").read_text() == "False"
        # and the group is gone, not only unregistered: no Gloo thread is left to
        # free tensors during the interpreter's finalisation
        threads = ddp_run / f"threads-rank{rank}.json"
        if threads.exists():  # Linux
            names = json.loads(threads.read_text())
            assert not [n for n in names if "gloo" in n], names
