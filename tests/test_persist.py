"""Saving without pickle (``save`` / ``load``) and the joblib version warning."""

import copy
import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from safetensors import safe_open
from safetensors.torch import save_file
from skorch.callbacks import Callback

import sk_convae
from sk_convae import ConvAutoEncoderTransformer
from sk_convae._persist import _digest
from sk_convae.exceptions import InconsistentVersionWarning, ModelFileError
from tests.conftest import FAST


@pytest.fixture(scope="module")
def fitted(digits_small):
    """A model fitted on a DataFrame (feature names) with early stopping (history
    with validation losses), and its file."""
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(digits_small[0], columns=[f"px{i}" for i in range(64)])
    ae = ConvAutoEncoderTransformer(
        n_components=8, early_stopping=True, **{**FAST, "max_epochs": 3}
    ).fit(X)
    return ae, X


@pytest.fixture
def saved(fitted, tmp_path):
    ae, _ = fitted
    path = tmp_path / "ae.safetensors"
    ae.save(path)
    return path


def _rewrite(
    path,
    out,
    *,
    document=None,
    tensors=None,
    header=None,
    text=None,
    fix_checksum=True,
):
    """Copy the file at ``path`` to ``out`` with edits, as a tamperer would: each
    callable gets the decoded JSON, the tensors or the header and changes it."""
    with safe_open(path, "pt") as handle:
        meta = dict(handle.metadata())
        weights = {name: handle.get_tensor(name) for name in handle.keys()}
    if document is not None:
        data = json.loads(meta["sk_convae"])
        document(data)
        meta["sk_convae"] = json.dumps(data)
    if text is not None:
        meta["sk_convae"] = text
    if tensors is not None:
        tensors(weights)
    if fix_checksum:
        meta["sha256"] = _digest(meta["sk_convae"], weights)
    if header is not None:
        header(meta)
    save_file(weights, out, metadata=meta)
    return out


def _assert_same_model(loaded, ae, X):
    assert loaded.get_params() == ae.get_params()
    codes = ae.transform(X)
    assert_array_equal(loaded.transform(X), codes)
    assert_array_equal(loaded.inverse_transform(codes), ae.inverse_transform(codes))


# ----------------------------------------------------------------------------------
# What is stored


def test_round_trip_keeps_parameters_attributes_and_history(fitted, saved):
    ae, X = fitted
    loaded = ConvAutoEncoderTransformer.load(saved)
    _assert_same_model(loaded, ae, X)
    for name in (
        "n_components_",
        "image_shape_",
        "loss_",
        "device_",
        "data_offset_",
        "data_scale_",
        "n_iter_",
        "n_features_in_",
    ):
        assert getattr(loaded, name) == getattr(ae, name), name
    assert isinstance(loaded.image_shape_, tuple)
    assert_array_equal(loaded.feature_names_in_, ae.feature_names_in_)
    assert_array_equal(loaded.get_feature_names_out(), ae.get_feature_names_out())
    assert list(loaded.history_) == list(ae.history_)
    assert loaded.history_[-1, "valid_loss"] == ae.history_[-1, "valid_loss"]
    assert loaded.score(X) == ae.score(X)
    # the network is the estimator's own, in eval mode, with every buffer
    state, expected = loaded.net_.module_.state_dict(), ae.net_.module_.state_dict()
    assert list(state) == list(expected)
    assert all(torch.equal(state[k], expected[k]) for k in state)
    assert not loaded.net_.module_.training


def test_the_file_is_one_safetensors_file_with_json_metadata(fitted, saved):
    ae, _ = fitted
    with safe_open(saved, "pt") as handle:
        meta = handle.metadata()
        names = set(handle.keys())
    assert names == set(ae.net_.module_.state_dict())
    assert meta["format"] == "sk-convae" and meta["format_version"] == "1"
    document = json.loads(meta["sk_convae"])
    assert document["estimator"] == "ConvAutoEncoderTransformer"
    assert document["params"]["n_components"] == 8
    assert document["attributes"]["loss_"] == "bce"
    assert document["versions"]["sk-convae"] == sk_convae.__version__
    assert {"torch", "scikit-learn", "skorch", "numpy"} <= set(document["versions"])
    assert len(document["history"]) == ae.n_iter_


def test_a_fresh_process_loads_without_pickle_and_gives_identical_outputs(
    fitted, saved, tmp_path
):
    ae, X = fitted
    np.save(tmp_path / "X.npy", X.to_numpy())
    script = textwrap.dedent(
        f"""
        import pickle, numpy as np, torch
        from sk_convae import ConvAutoEncoderTransformer

        def refuse(*args, **kwargs):
            raise AssertionError("pickle was used")

        class Refused(pickle.Unpickler):
            __init__ = refuse

        pickle.load = pickle.loads = torch.load = refuse
        pickle.Unpickler = Refused
        ae = ConvAutoEncoderTransformer.load({str(saved)!r})
        X = np.load({str(tmp_path / "X.npy")!r})
        codes = ae.transform(X)
        np.save({str(tmp_path / "codes.npy")!r}, codes)
        np.save({str(tmp_path / "rec.npy")!r}, ae.inverse_transform(codes))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    codes = ae.transform(X)
    assert_array_equal(np.load(tmp_path / "codes.npy"), codes)
    assert_array_equal(np.load(tmp_path / "rec.npy"), ae.inverse_transform(codes))


@pytest.mark.parametrize(
    "params, shift",
    [
        (dict(architecture="conv", channels=(4, 8), n_components=32), 0.0),
        (dict(n_components=4, noise_factor=0.2), -8.0),  # standardised: mse
    ],
)
def test_round_trip_of_other_networks_and_scales(digits_small, tmp_path, params, shift):
    X = digits_small[0] + shift
    ae = ConvAutoEncoderTransformer(**{**FAST, "max_epochs": 1}, **params).fit(X)
    ae.save(tmp_path / "ae.safetensors")
    loaded = ConvAutoEncoderTransformer.load(tmp_path / "ae.safetensors")
    _assert_same_model(loaded, ae, X)
    assert loaded.loss_ == ("bce" if shift == 0 else "mse")


def test_uint8_images_round_trip(mnist_like, tmp_path):
    ae = ConvAutoEncoderTransformer(
        n_components=4, channels=(4, 8), max_epochs=1, random_state=0
    ).fit(mnist_like)
    ae.save(tmp_path / "ae.safetensors")
    loaded = ConvAutoEncoderTransformer.load(tmp_path / "ae.safetensors")
    _assert_same_model(loaded, ae, mnist_like)
    assert (loaded.data_offset_, loaded.data_scale_) == (0.0, 255.0)


def test_a_loaded_model_trains_on_with_partial_fit(fitted, saved):
    ae, X = fitted
    loaded = ConvAutoEncoderTransformer.load(saved)
    loaded.partial_fit(X)
    assert loaded.n_iter_ == ae.n_iter_ + 1
    assert not np.array_equal(loaded.transform(X), ae.transform(X))


def test_loading_leaves_the_global_random_state_as_it_was(saved):
    before = torch.get_rng_state()
    ConvAutoEncoderTransformer.load(saved)
    assert torch.equal(torch.get_rng_state(), before)


def test_saving_replaces_a_file_and_changes_nothing(fitted, saved):
    ae, X = fitted
    params, codes = ae.get_params(), ae.transform(X)
    ae.save(saved)  # over the existing file
    assert ae.get_params() == params
    assert_array_equal(ae.transform(X), codes)
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


def test_saving_an_unfitted_model_is_an_error(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ConvAutoEncoderTransformer().save(tmp_path / "ae.safetensors")


def test_callbacks_and_random_generators_are_not_stored(digits_small, tmp_path):
    class Counter(Callback):
        def on_epoch_end(self, net, **kwargs):
            pass

    callbacks = [("counter", Counter())]
    params = {**FAST, "max_epochs": 1, "random_state": np.random.RandomState(0)}
    ae = ConvAutoEncoderTransformer(4, callbacks=callbacks, **params)
    ae.fit(digits_small[0])
    with pytest.warns(UserWarning, match="callbacks, random_state hold Python"):
        ae.save(tmp_path / "ae.safetensors")
    assert ae.callbacks is callbacks  # the model saved is left as it was
    loaded = ConvAutoEncoderTransformer.load(tmp_path / "ae.safetensors")
    assert loaded.callbacks is None and loaded.random_state is None
    assert_array_equal(loaded.transform(digits_small[0]), ae.transform(digits_small[0]))


# ----------------------------------------------------------------------------------
# Devices


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_cuda_fitted_model_loads_on_the_cpu(fitted, tmp_path):
    ae, X = fitted
    # what a CUDA fit writes: the same CPU tensors, under a CUDA device name
    gpu_fitted = copy.deepcopy(ae)
    gpu_fitted._net_config["device"] = "cuda:0"
    gpu_fitted.device_ = "cuda:0"
    gpu_fitted.save(tmp_path / "gpu.safetensors")
    with pytest.warns(UserWarning, match="fitted on 'cuda:0'.*loaded on 'cpu'"):
        loaded = ConvAutoEncoderTransformer.load(tmp_path / "gpu.safetensors")
    assert loaded.net_.device == "cpu" and loaded.device_ == "cuda:0"
    _assert_same_model(loaded, ae, X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explicit = ConvAutoEncoderTransformer.load(
            tmp_path / "gpu.safetensors", device="cpu"
        )
    assert explicit.net_.device == "cpu"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_file_saved_on_cuda_loads_in_a_cpu_only_process(digits_small, tmp_path):
    X = digits_small[0]
    ae = ConvAutoEncoderTransformer(8, device="cuda", **FAST).fit(X)
    ae.save(tmp_path / "ae.safetensors")
    np.save(tmp_path / "X.npy", X)
    script = textwrap.dedent(
        f"""
        import numpy as np, torch
        from sk_convae import ConvAutoEncoderTransformer
        assert not torch.cuda.is_available()
        ae = ConvAutoEncoderTransformer.load({str(tmp_path / "ae.safetensors")!r})
        assert ae.net_.device == "cpu"
        np.save({str(tmp_path / "codes.npy")!r},
                ae.transform(np.load({str(tmp_path / "X.npy")!r})))
        """
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", script], check=True, env=env)
    cpu = ConvAutoEncoderTransformer.load(tmp_path / "ae.safetensors", device="cpu")
    assert_array_equal(np.load(tmp_path / "codes.npy"), cpu.transform(X))
    np.testing.assert_allclose(cpu.transform(X), ae.transform(X), atol=1e-3)


# ----------------------------------------------------------------------------------
# Files that are damaged, edited, not ours or newer


def _edit_scale(document):
    document["attributes"]["data_scale_"] = 1.0


@pytest.mark.parametrize(
    "edit, match",
    [
        # edited after saving: the checksum no longer matches
        (dict(document=_edit_scale, fix_checksum=False), "checksum does not match"),
        (
            dict(tensors=lambda w: w["encoder.0.0.weight"].mul_(2), fix_checksum=False),
            "checksum does not match",
        ),
        (dict(header=lambda h: h.pop("sha256")), "checksum does not match"),
        # consistent files (checksum recomputed) whose contents are wrong
        (
            dict(tensors=lambda w: w.update(x=w.pop("encoder.4.weight"))),
            r"missing tensors \['encoder.4.weight'\]; unexpected tensors \['x'\]",
        ),
        (
            dict(tensors=lambda w: w.update({"encoder.4.bias": torch.zeros(5)})),
            r"tensor 'encoder.4.bias' has shape \(5,\), the network needs \(8,\)",
        ),
        (
            dict(tensors=lambda w: w.update({"encoder.4.bias": torch.zeros(8).half()})),
            "tensor 'encoder.4.bias' has dtype torch.float16",
        ),
        (dict(text="{not json"), "invalid metadata"),
        (dict(text='{"params": {}}'), "invalid metadata: it needs the entries"),
        (
            dict(document=lambda d: d["params"].update(n_components={"__pickle__": 1})),
            r"invalid metadata: unknown tagged value \['__pickle__'\]",
        ),
        (
            dict(document=lambda d: d["params"].update(colour="red")),
            r"does not have: \['colour'\]",
        ),
        (
            dict(document=lambda d: d["params"].update(architecture="resnet")),
            "invalid parameter: The 'architecture' parameter",
        ),
        (
            dict(document=lambda d: d["attributes"].update(transform=1)),
            "attribute 'transform' that is not fitted state",
        ),
        (
            dict(document=lambda d: d["attributes"].update(_encode=1)),
            "attribute '_encode' that is not fitted state",
        ),
        (
            dict(document=lambda d: d.update(estimator="PCA")),
            "holds a 'PCA', not a ConvAutoEncoderTransformer",
        ),
        (
            dict(document=lambda d: d["attributes"].pop("_net_config")),
            "lacks the network's configuration",
        ),
        # not one of ours
        (dict(header=lambda h: h.clear()), "not a sk-convae model"),
        (dict(header=lambda h: h.update(format="gguf")), "not a sk-convae model"),
        # newer, or nonsense, format versions
        (
            dict(header=lambda h: h.update(format_version="2")),
            "format version 2, newer than this sk-convae reads.*upgrade",
        ),
        (dict(header=lambda h: h.update(format_version="1.x")), "invalid format"),
    ],
)
def test_a_tampered_file_is_refused_with_the_reason(saved, tmp_path, edit, match):
    bad = _rewrite(saved, tmp_path / "bad.safetensors", **edit)
    with pytest.raises(ModelFileError, match=match) as info:
        ConvAutoEncoderTransformer.load(bad)
    assert str(bad) in str(info.value)


def test_truncated_and_foreign_files_are_refused(fitted, saved, tmp_path):
    data = saved.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) - 1000])
    pickled = tmp_path / "model.joblib"
    joblib.dump(fitted[0], pickled)
    text = tmp_path / "notes.txt"
    text.write_text("these are not weights")
    for path in (truncated, pickled, text):
        with pytest.raises(ModelFileError, match="cannot be read as safetensors"):
            ConvAutoEncoderTransformer.load(path)
    with pytest.raises(FileNotFoundError):
        ConvAutoEncoderTransformer.load(tmp_path / "missing.safetensors")


def test_model_file_error_is_a_value_error():
    assert issubclass(ModelFileError, ValueError)


# ----------------------------------------------------------------------------------
# joblib: a warning for pickles of another version


def test_joblib_still_works_without_a_warning(fitted, tmp_path):
    ae, X = fitted
    joblib.dump(ae, tmp_path / "ae.joblib")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = joblib.load(tmp_path / "ae.joblib")
    assert_array_equal(loaded.transform(X), ae.transform(X))


def test_a_pickle_of_another_version_warns(fitted, monkeypatch):
    ae, _ = fitted
    monkeypatch.setattr(sk_convae, "__version__", "0.0.1")
    data = pickle.dumps(ae)
    monkeypatch.undo()
    with pytest.warns(InconsistentVersionWarning) as record:
        pickle.loads(data)
    (warning,) = [w.message for w in record if w.category is InconsistentVersionWarning]
    assert warning.original_version == "0.0.1"
    assert warning.current_version == sk_convae.__version__
    assert warning.estimator_name == "ConvAutoEncoderTransformer"
    assert "from sk-convae version 0.0.1 when using version" in str(warning)


def test_a_pickle_without_a_version_warns(fitted):
    state = fitted[0].__getstate__()
    state.pop("_sk_convae_version")
    restored = ConvAutoEncoderTransformer.__new__(ConvAutoEncoderTransformer)
    with pytest.warns(InconsistentVersionWarning, match="version unknown"):
        restored.__setstate__(state)
    assert "_sk_convae_version" not in vars(restored)
