"""Saving without pickle (``save`` / ``load``) and the joblib version warning."""

import copy
import json
import math
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import warnings

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from safetensors import safe_open
from safetensors.torch import save_file
from skorch import NeuralNet
from skorch.callbacks import Callback

import sk_convae
from sk_convae import ConvAutoEncoderTransformer, _persist
from sk_convae._persist import FITTED_ATTRIBUTES, NET_CONFIG, _decode, _digest, _encode
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
    # every attribute, fitted or not, comes back: an attribute missing from
    # FITTED_ATTRIBUTES fails here
    assert set(vars(loaded)) == set(vars(ae))
    for name in set(vars(ae)) - {"net_", "history_", "feature_names_in_"}:
        assert getattr(loaded, name) == getattr(ae, name), name
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
    assert document["attributes"]["loss_"] == ae.loss_
    assert document["versions"]["sk-convae"] == sk_convae.__version__
    assert {"torch", "scikit-learn", "skorch", "numpy"} <= set(document["versions"])
    assert len(document["history"]) == ae.n_iter_


def test_a_fresh_process_loads_without_pickle_and_gives_identical_outputs(
    fitted, saved, tmp_path
):
    ae, X = fitted
    np.save(tmp_path / "X.npy", X.to_numpy())
    # the audit hook, installed before any import, sees every global that any
    # unpickler resolves (Python or C, however it was imported, even where an
    # exception would be caught); torch.load is refused before sk_convae imports it
    script = textwrap.dedent(
        f"""
        import sys

        unpickled = []

        def audit(event, args):
            if event == "pickle.find_class":
                unpickled.append(args)
                raise AssertionError(f"pickle resolved {{args}}")

        sys.addaudithook(audit)

        import torch, torch.serialization

        def refuse(*args, **kwargs):
            raise AssertionError("torch.load was called")

        torch.load = torch.serialization.load = refuse

        import numpy as np
        from sk_convae import ConvAutoEncoderTransformer

        ae = ConvAutoEncoderTransformer.load({str(saved)!r})
        X = np.load({str(tmp_path / "X.npy")!r})
        codes = ae.transform(X)
        np.save({str(tmp_path / "codes.npy")!r}, codes)
        np.save({str(tmp_path / "rec.npy")!r}, ae.inverse_transform(codes))
        assert unpickled == [], unpickled

        # the hook works: unpickling a class is caught
        import pickle

        try:
            pickle.loads(pickle.dumps(np.float64))
        except AssertionError:
            pass
        assert unpickled, "the audit hook saw nothing"
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
        (dict(architecture="dense", channels=(4, 8), n_components=4), 0.0),
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


def test_a_fitted_model_saves_without_a_warning(fitted, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted[0].save(tmp_path / "ae.safetensors")


def test_attributes_that_are_not_fitted_state_are_left_out_with_a_warning(
    fitted, tmp_path
):
    ae = copy.deepcopy(fitted[0])
    ae.note = "trained on Tuesday"
    ae.extra_ = 1
    with pytest.warns(UserWarning, match=r"\['note', 'extra_'\] are not fitted state"):
        ae.save(tmp_path / "ae.safetensors")
    loaded = ConvAutoEncoderTransformer.load(tmp_path / "ae.safetensors")
    assert not hasattr(loaded, "note") and not hasattr(loaded, "extra_")


def test_the_output_configuration_and_the_input_dtype_round_trip(fitted, tmp_path):
    pytest.importorskip("pandas")
    ae, X = fitted
    ae = copy.deepcopy(ae).set_output(transform="pandas")
    ae._input_dtype = ">f8"  # what fit records (see to_onnx(dtype=None))
    ae.save(tmp_path / "ae.safetensors")
    loaded = ConvAutoEncoderTransformer.load(tmp_path / "ae.safetensors")
    assert loaded._sklearn_output_config == {"transform": "pandas"}
    assert loaded._input_dtype == ">f8"
    assert list(loaded.transform(X).columns) == list(ae.get_feature_names_out())


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda ae: setattr(ae, "data_scale_", -1.0), "'data_scale_' is -1.0"),
        (lambda ae: setattr(ae, "n_components_", 5), "does not map 64 features"),
        (lambda ae: delattr(ae, "loss_"), r"lack \['loss_'\]"),
        (lambda ae: ae.set_params(n_components=16), "tensors do not fit"),
    ],
)
def test_saving_what_would_not_load_is_an_error(fitted, tmp_path, change, match):
    ae = copy.deepcopy(fitted[0])
    change(ae)
    with pytest.raises(ValueError, match=f"cannot be saved: .*{match}"):
        ae.save(tmp_path / "ae.safetensors")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "where, error", [("fsync", OSError), ("replace", KeyboardInterrupt)]
)
def test_an_interrupted_save_leaves_the_old_file_and_nothing_else(
    fitted, saved, monkeypatch, where, error
):
    before = saved.read_bytes()

    def fail(*args, **kwargs):
        raise error("interrupted")

    monkeypatch.setattr(_persist.os, where, fail)
    with pytest.raises(error, match="interrupted"):
        fitted[0].save(saved)
    monkeypatch.undo()
    assert saved.read_bytes() == before
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


def test_saves_to_one_path_from_several_threads_do_not_collide(fitted, tmp_path):
    # temporary names unique per call, not per process
    path, errors = tmp_path / "ae.safetensors", []

    def save():
        try:
            fitted[0].save(path)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=save) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    ConvAutoEncoderTransformer.load(path)


def test_the_allow_list_names_only_fitted_state():
    for entries in (FITTED_ATTRIBUTES, NET_CONFIG):
        names = [entry.name for entry in entries]
        assert len(set(names)) == len(names)
    for entry in FITTED_ATTRIBUTES:
        assert entry.name.endswith("_") or entry.name.startswith("_")
        assert not entry.name.startswith("__")
        # nothing a file sets may shadow a method or a property
        assert not hasattr(ConvAutoEncoderTransformer, entry.name), entry.name


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


def test_loading_on_the_cpu_forks_no_cuda_random_state(saved, monkeypatch):
    forked = []
    fork_rng = torch.random.fork_rng

    def spy(devices=None, **kwargs):
        forked.append(list(devices))
        return fork_rng(devices=devices, **kwargs)

    monkeypatch.setattr(torch.random, "fork_rng", spy)
    ConvAutoEncoderTransformer.load(saved, device="cpu")
    assert forked == [[]]


def test_cuda_random_state_is_forked_for_the_target_device_only():
    assert _persist._cuda_devices("cpu") == []
    assert _persist._cuda_devices("cuda:3") == [3]


@pytest.mark.parametrize("device", ["meta", "tpu"])
def test_a_device_argument_that_cannot_run_the_model_is_an_error(saved, device):
    with pytest.raises(ValueError, match=f"device='{device}'"):
        ConvAutoEncoderTransformer.load(saved, device=device)


# ----------------------------------------------------------------------------------
# Files that are damaged, edited, not ours or newer


def _edit_scale(document):
    document["attributes"]["data_scale_"] = 1.0


def _attributes(**changes):
    """An edit of the document's fitted attributes (a None value removes one)."""

    def edit(document):
        for name, value in changes.items():
            if value is None:
                document["attributes"].pop(name)
            else:
                document["attributes"][name] = value

    return edit


def _config(**changes):
    """An edit of the '_net_config' entries (a None value removes one)."""

    def edit(document):
        config = document["attributes"]["_net_config"]
        for name, value in changes.items():
            if value is None:
                config.pop(name)
            else:
                config[name] = value

    return edit


def _both(**changes):
    """The same edit of a fitted attribute and of its '_net_config' twin."""
    twins = {"image_shape": "image_shape_", "offset": "data_offset_"}
    twins.update(scale="data_scale_", loss="loss_")

    def edit(document):
        _config(**changes)(document)
        _attributes(**{twins[k]: v for k, v in changes.items()})(document)

    return edit


def _params(**changes):
    return lambda document: document["params"].update(changes)


def _shape(*values):
    return {"__tuple__": list(values)}


def _other_loss(document):
    loss = document["attributes"]["loss_"]
    document["attributes"]["loss_"] = "bce" if loss == "mse" else "mse"


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
        (dict(text="{not json"), "metadata is invalid"),
        (dict(text='{"params": {}}'), "metadata is invalid: it needs the entries"),
        (
            dict(document=lambda d: d["params"].update(n_components={"__pickle__": 1})),
            r"metadata is invalid \(unknown tagged value \['__pickle__'\]\)",
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
            dict(document=lambda d: d.update(estimator="PCA")),
            "holds a 'PCA', not a ConvAutoEncoderTransformer",
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
        (dict(header=lambda h: h.update(format_version="²")), "invalid format"),
        (dict(header=lambda h: h.update(format_version="١")), "invalid format"),
        (dict(header=lambda h: h.update(format_version="0")), "invalid format"),
        (dict(header=lambda h: h.update(format_version="9" * 5000)), "invalid format"),
    ],
)
def test_a_tampered_file_is_refused_with_the_reason(saved, tmp_path, edit, match):
    bad = _rewrite(saved, tmp_path / "bad.safetensors", **edit)
    with pytest.raises(ModelFileError, match=match) as info:
        ConvAutoEncoderTransformer.load(bad)
    assert str(bad) in str(info.value)


WIDTHS = "does not map 64 features"

# Edits with the checksum recomputed, as anyone can: what load validates.
EDITS = {
    # names: only known fitted state, the required ones present
    "unknown attribute": (_attributes(note_=1), r"does not know: \['note_'\]"),
    "a method's name": (_attributes(transform=1), r"does not know: \['transform'\]"),
    "a private method's name": (
        _attributes(_encode=1),
        r"does not know: \['_encode'\]",
    ),
    "dunder attribute": (
        _attributes(__class__="PCA"),
        r"unknown tagged value \['__class__'",
    ),
    "dunder attribute, a tag's name": (
        _attributes(__tuple__=[1]),
        r"unknown tagged value \['__tuple__'",
    ),
    "data_scale_ removed": (_attributes(data_scale_=None), r"lack \['data_scale_'\]"),
    "_net_config removed": (_attributes(_net_config=None), r"lack \['_net_config'\]"),
    "_train_seed removed": (_attributes(_train_seed=None), r"lack \['_train_seed'\]"),
    "config key removed": (_config(kind=None), r"'_net_config' lack \['kind'\]"),
    "unknown config key": (_config(hook="x"), r"does not know: \['hook'\]"),
    # types and ranges
    "data_scale_ zero": (_both(scale=0.0), "'scale' is 0.0, it must be a finite"),
    "data_scale_ negative": (_both(scale=-2.0), "'scale' is -2.0"),
    "data_scale_ NaN": (_both(scale={"__float__": "nan"}), "'scale' is nan"),
    "data_scale_ a bool": (_both(scale=True), "'scale' is True"),
    "data_offset_ infinite": (_both(offset={"__float__": "inf"}), "'offset' is inf"),
    "loss_ unknown": (_both(loss="hinge"), "'loss' is 'hinge', it must be one of"),
    "n_components_ a string": (
        _attributes(n_components_="8"),
        "'n_components_' is '8'",
    ),
    "n_components_ zero": (_attributes(n_components_=0), "'n_components_' is 0"),
    "n_iter_ negative": (_attributes(n_iter_=-1), "'n_iter_' is -1"),
    "_train_seed a bool": (_attributes(_train_seed=True), "'_train_seed' is True"),
    "_train_seed negative": (_attributes(_train_seed=-1), "'_train_seed' is -1"),
    "_train_seed too big": (_attributes(_train_seed=2**64), "'_train_seed' is 1844"),
    "image_shape_ of two": (_both(image_shape=_shape(8, 8)), r"a tuple \(C, H, W\)"),
    "image_shape_ a list": (_both(image_shape=[1, 8, 8]), r"a tuple \(C, H, W\)"),
    "negative channels": (_config(channels=_shape(-4, 8)), "'channels' is \\(-4, 8\\)"),
    "device meta": (_config(device="meta"), "'device' is 'meta', it must be 'cpu'"),
    "device_ a tpu": (_attributes(device_="tpu"), "'device_' is 'tpu'"),
    "precision_ unknown": (_attributes(precision_="int4"), "'precision_' is 'int4'"),
    "lr_ zero": (_attributes(lr_=0.0), "'lr_' is 0.0"),
    "clip_output a string": (_config(clip_output="no"), "'clip_output' is 'no'"),
    "output config": (
        _attributes(_sklearn_output_config={"transform": "pickle"}),
        "'_sklearn_output_config' is",
    ),
    "output config, more keys": (
        _attributes(_sklearn_output_config={"transform": "pandas", "x": 1}),
        "'_sklearn_output_config' is",
    ),
    "input dtype an object": (_attributes(_input_dtype="|O"), "'_input_dtype' is"),
    "input dtype huge": (_attributes(_input_dtype="<U1000000000"), "'_input_dtype' is"),
    "feature names as ints": (
        _attributes(feature_names_in_={"__ndarray__": [1] * 64, "dtype": "<i8"}),
        "'feature_names_in_' is",
    ),
    "feature names, too few": (
        _attributes(feature_names_in_={"__ndarray__": ["a"], "dtype": "|O"}),
        "'feature_names_in_' has 1 names for 64 features",
    ),
    # values stored twice, or sizes, that disagree
    "data_scale_ alone": (_edit_scale, "'data_scale_' is 1.0 but the '_net_config'"),
    "data_offset_ alone": (_attributes(data_offset_=3.0), "'data_offset_' is 3.0 but"),
    "loss_ alone": (_other_loss, "'loss_' is '(bce|mse)' but the '_net_config'"),
    "image_shape_ alone": (
        _attributes(image_shape_=_shape(1, 4, 16)),
        r"'image_shape_' is \(1, 4, 16\) but",
    ),
    "n_features_in_": (_attributes(n_features_in_=65), "not the product"),
    "n_iter_": (_attributes(n_iter_=1), r"'n_iter_' is 1 but the history has \d+"),
    "bce on standardised data": (
        lambda d: _both(loss="bce")(d) or _config(kind="standardized")(d),
        "the loss 'bce' needs intensities",
    ),
    "n_components_": (_attributes(n_components_=5), WIDTHS),
    # the network the metadata describes must be the file's: compared on the meta
    # device before anything is allocated
    "a huge image": (
        lambda d: (
            _both(image_shape=_shape(1, 30000, 30000))(d)
            or _attributes(n_features_in_=30000**2, feature_names_in_=None)(d)
        ),
        "tensors do not fit",
    ),
    "a huge width": (
        _config(channels=_shape(4, 10**6)),
        r"'encoder.0.0.weight' has shape \(32, 1, 3, 3\), the network needs \(4,",
    ),
    "a thousand stages": (
        _config(channels=_shape(*[4] * 1000)),
        "'channels' has 1000 stages for",
    ),
    "n_components": (_params(n_components=16), "tensors do not fit"),
    # parameters: validated, and what save writes
    "callbacks": (_params(callbacks=["print_log"]), "'callbacks' must be null"),
    "random_state a bool": (_params(random_state=True), "'random_state'"),
    "device parameter meta": (_params(device="meta"), "'device' is 'meta'"),
}


@pytest.mark.parametrize("edit, match", EDITS.values(), ids=EDITS.keys())
def test_an_edited_file_is_refused_unless_consistent(
    saved, tmp_path, monkeypatch, edit, match
):
    bad = _rewrite(saved, tmp_path / "bad.safetensors", document=edit)

    def refuse(self):
        raise AssertionError("the real network was built before the checks")

    # only the widths are checked on the real network (zero rows through it)
    if match != WIDTHS:
        monkeypatch.setattr(NeuralNet, "initialize", refuse)
    with pytest.raises(ModelFileError, match=match) as info:
        ConvAutoEncoderTransformer.load(bad)
    assert str(bad) in str(info.value)


def test_a_consistent_edit_loads_the_checksum_authenticates_nothing(
    fitted, saved, tmp_path
):
    # the documented limit: an edit that keeps the file consistent loads
    ae, X = fitted
    edited = _rewrite(saved, tmp_path / "edited.safetensors", document=_both(scale=1))
    loaded = ConvAutoEncoderTransformer.load(edited)
    assert loaded.data_scale_ == loaded._net_config["scale"] == 1.0
    assert not np.array_equal(loaded.transform(X), ae.transform(X))


def test_files_written_before_lr_auto_load_without_lr_(fitted, saved, tmp_path):
    # lr_ came with lr='auto': older files lack it (and store the lr of then)
    ae, X = fitted
    old = _rewrite(
        saved,
        tmp_path / "old.safetensors",
        document=lambda document: (
            _attributes(lr_=None)(document),
            _params(lr=3e-3)(document),
        ),
    )
    loaded = ConvAutoEncoderTransformer.load(old)
    assert not hasattr(loaded, "lr_") and loaded.lr == 3e-3
    np.testing.assert_array_equal(loaded.transform(X), ae.transform(X))


# Malformed tagged values, anywhere in the document
TAGS = {
    "void array": ({"__ndarray__": [1], "dtype": "|V8"}, "dtype '|V8' is not data"),
    "datetime array": ({"__ndarray__": [1], "dtype": "<M8[s]"}, "'<M8\\[s\\]'"),
    "object array of ints": (
        {"__ndarray__": [1], "dtype": "|O"},
        "dtype object holds other values",
    ),
    "huge strings": ({"__ndarray__": ["a"], "dtype": "<U1000000000"}, "not data"),
    "array, extra key": (
        {"__ndarray__": [1], "dtype": "<i8", "code": "x"},
        "unknown tagged value",
    ),
    "array of strings as floats": (
        {"__ndarray__": ["1.5"], "dtype": "<f8"},
        "float64 holds other values",
    ),
    "array out of range": ({"__ndarray__": [300], "dtype": "|u1"}, "out of bounds"),
    "float, finite": ({"__float__": "1.0"}, "'1.0' is not a non-finite float"),
    "float, a number": ({"__float__": 1}, "1 is not a non-finite float"),
    "tuple of a dict": ({"__tuple__": {"a": 1}}, "__tuple__ must hold a list"),
    "torch dtype": ({"__torch_dtype__": "onnx"}, "unknown tagged value"),
    "two tags": ({"__tuple__": [], "__float__": "nan"}, "unknown tagged value"),
}


@pytest.mark.parametrize("value, match", TAGS.values(), ids=TAGS.keys())
def test_malformed_tagged_values_are_refused(saved, tmp_path, value, match):
    bad = _rewrite(saved, tmp_path / "bad.safetensors", document=_params(lr=value))
    with pytest.raises(ModelFileError, match=f"metadata is invalid.*{match}"):
        ConvAutoEncoderTransformer.load(bad)


def test_json_constants_for_non_finite_floats_are_refused(saved, tmp_path):
    with safe_open(saved, "pt") as handle:
        text = handle.metadata()["sk_convae"]
    text = text.replace('"weight_decay":0.0001', '"weight_decay":NaN')
    assert '"weight_decay":NaN' in text
    bad = _rewrite(saved, tmp_path / "bad.safetensors", text=text)
    with pytest.raises(ModelFileError, match="NaN is not JSON"):
        ConvAutoEncoderTransformer.load(bad)


def test_the_codec_stores_data_only():
    assert _decode({"__float__": "-inf"}) == -math.inf
    names = np.array(["a", "b"], dtype=object)
    assert_array_equal(_decode(json.loads(json.dumps(_encode(names, "x")))), names)
    with pytest.raises(ValueError, match="unknown tagged value"):
        _decode({"__torch_dtype__": "float32"})  # no longer a tag
    for value in (torch.float32, np.array([1 + 2j]), np.zeros(1, dtype="M8[s]")):
        with pytest.raises(TypeError, match="not data|cannot store"):
            _encode(value, "x")


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
    # the version a pickle records is the one _estimator imported
    monkeypatch.setattr(sk_convae._estimator, "__version__", "0.0.1")
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
