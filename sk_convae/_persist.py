"""Saving a fitted transformer without pickle: one ``.safetensors`` file.

``joblib.dump`` stores a pickle, and loading a pickle runs whatever code it names:
a model file from a colleague, a hub or an email must never be opened that way.
This module writes and reads a file that holds only data:

- the network's ``state_dict`` (weights and buffers, such as BatchNorm statistics),
  as safetensors tensors, copied to the CPU first, so that a model fitted on a GPU
  loads on a machine without one;
- in the safetensors header's string metadata, one JSON document: the
  constructor parameters, the fitted attributes (image shape, scaling, loss,
  feature names, ...), the training history as plain numbers, the library
  versions, under a format name and a format version; and a SHA-256 checksum of
  the document and of every tensor.

One file, not a zip or a folder: it is what users expect to copy, upload or attach,
any safetensors tool (or a model hub) can list its tensors and read its metadata
(``safetensors.safe_open(path, "pt").metadata()``), and the only parser of its raw
bytes is safetensors' own, which reads tensors and strings and nothing else. The
JSON has tagged values for what JSON lacks (tuples, arrays of a
fixed set of dtypes, non-finite floats), all decoded into plain Python and NumPy
data.

What makes loading a file from someone else safe is that nothing in it is ever
imported, called or executed; the checksum is no part of that. It has no key, so
it detects damage (a truncated download, a bad disk, a file changed by mistake),
not tampering: whoever edits a file can recompute it. The contents are therefore
checked as if hostile, and what ``load`` checks is that they are consistent, not
that they are authentic:

- the fitted attributes against an allow-list, ``FITTED_ATTRIBUTES`` (and the
  network's configuration against ``NET_CONFIG``): every name must be known,
  every required one present, each value of its type and range, and the values
  stored twice (scaling, loss, image shape) must agree;
- the network is first built on PyTorch's ``meta`` device, which allocates no
  memory, and its tensor names, shapes and dtypes are compared with the file's
  before the real network is built, so that a small file cannot make ``load``
  allocate more than its own tensors hold; a forward pass of zero rows then checks
  the widths of the codes and of the images.

A consistent file can still hold weights or settings that someone chose: load
files from sources you trust to give you a good model, as with any model file.

``save`` stores the allow-listed attributes only, and runs the same checks on what
it is about to write, so that it never writes a file that ``load`` refuses.
Loading rebuilds the network through the estimator's own ``_build_net``, so that
this module knows nothing about the architecture.

A new fitted attribute (set in ``ConvAutoEncoderTransformer._set_fitted``) or a new
key of its ``_net_config`` needs an entry in ``FITTED_ATTRIBUTES`` or ``NET_CONFIG``
below: ``save`` warns about attributes it does not store, and the round-trip tests
compare every attribute.
"""

import hashlib
import itertools
import json
import math
import os
import platform
import re
import reprlib
import secrets
import warnings
from collections.abc import Callable
from importlib import metadata as importlib_metadata
from numbers import Integral
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted
from skorch.history import History

from sk_convae._device import resolve_device
from sk_convae._precision import PRECISIONS
from sk_convae._scaling import INTENSITY, STANDARDIZED
from sk_convae._version import __version__
from sk_convae.exceptions import ModelFileError

FORMAT = "sk-convae"
# Bump when a file written now could be misread by an older reader; readers refuse
# files with a newer version than theirs.
FORMAT_VERSION = 1

# Fitted state kept elsewhere in the file: the network in tensors, the history in
# its own entry.
_NOT_ATTRIBUTES = ("net_", "history_")


class _Invalid(ValueError):
    """What is wrong with a model's contents; ``load`` and ``save`` say where."""


# ----------------------------------------------------------------------------------
# Validators: each returns the value (normalised) or raises ValueError saying what
# the value must be.


def _positive_int(value):
    if isinstance(value, Integral) and not isinstance(value, bool) and value >= 1:
        return int(value)
    raise ValueError("an int >= 1")


def _count(value):
    if isinstance(value, Integral) and not isinstance(value, bool) and value >= 0:
        return int(value)
    raise ValueError("an int >= 0")


def _seed(value):
    # torch.manual_seed takes up to 2**64 - 1; partial_fit's SeedSequence needs >= 0
    if isinstance(value, Integral) and not isinstance(value, bool):
        if 0 <= value < 2**64:
            return int(value)
    raise ValueError("an int from 0 to 2**64 - 1 (not a bool)")


def _finite_float(value):
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value):
            return float(value)
    raise ValueError("a finite float")


def _positive_float(value):
    if _finite_float(value) > 0:
        return float(value)
    raise ValueError("a finite float > 0")


def _boolean(value):
    if isinstance(value, bool):
        return value
    raise ValueError("true or false")


def _one_of(*options):
    def check(value):
        if isinstance(value, str) and value in options:
            return value
        raise ValueError(f"one of {list(options)}")

    return check


# what the network may run on: not 'meta' (nothing to compute with) or others
_DEVICE_NAME = re.compile(r"cpu|mps|cuda(:[0-9]{1,4})?")


def _device_name(value):
    if isinstance(value, str) and _DEVICE_NAME.fullmatch(value):
        return value
    raise ValueError("'cpu', 'cuda', 'cuda:N' or 'mps'")


def _positive_ints(value):
    if isinstance(value, tuple) and value:
        return tuple(_positive_int(v) for v in value)
    raise ValueError("a non-empty tuple of ints >= 1")


def _image_shape(value):
    try:
        if len(value) == 3:
            return _positive_ints(value)
    except (TypeError, ValueError):
        pass
    raise ValueError("a tuple (C, H, W) of ints >= 1")


def _channels(value):
    try:
        return _positive_ints(value)
    except ValueError:
        raise ValueError("a non-empty tuple of ints >= 1") from None


def _feature_names(value):
    if (
        isinstance(value, np.ndarray)
        and value.ndim == 1
        and value.dtype.kind in "OU"
        and all(isinstance(v, str) for v in value.tolist())
    ):
        return value.astype(object)
    raise ValueError("a 1-D array of strings")


# the dtype of X seen in fit, for to_onnx(dtype=None): a numeric NumPy dtype's str
_DTYPE_STR = re.compile(r"[<>|=]?[buif][0-9]{1,2}")


def _input_dtype(value):
    if isinstance(value, str) and _DTYPE_STR.fullmatch(value):
        try:
            return np.dtype(value).str
        except TypeError:
            pass
    raise ValueError("the str of a numeric NumPy dtype, such as '|u1' or '<f8'")


def _output_config(value):
    # what ``set_output(transform=...)`` stores
    if (
        isinstance(value, dict)
        and set(value) == {"transform"}
        and value["transform"] in ("default", "pandas", "polars")
    ):
        return dict(value)
    raise ValueError("{'transform': 'default', 'pandas' or 'polars'}")


class Entry(NamedTuple):
    """One name a model file may hold: whether it must, and how to check it."""

    name: str
    required: bool
    check: Callable


# The keys of ``_net_config`` (what rebuilds the network: ``_configure`` in
# _estimator.py, without the callbacks).
NET_CONFIG = (
    Entry("image_shape", True, _image_shape),
    Entry("channels", True, _channels),
    Entry("offset", True, _finite_float),
    Entry("scale", True, _positive_float),
    Entry("kind", True, _one_of(INTENSITY, STANDARDIZED)),
    Entry("loss", True, _one_of("bce", "mse")),
    Entry("device", True, _device_name),
    Entry("precision", True, _one_of(*PRECISIONS)),
    Entry("clip_output", True, _boolean),
)


def _net_config(value):
    if not isinstance(value, dict):
        raise ValueError("an object")
    return _check_entries(value, NET_CONFIG, "the entries of '_net_config'")


# Every fitted attribute a file may hold: those set by ``_set_fitted`` in
# _estimator.py and by scikit-learn (``validate_data``, ``set_output``), less
# ``net_`` and ``history_``, which the file keeps in its own way. Files holding
# any other name are refused; ``save`` leaves other attributes out, with a warning.
FITTED_ATTRIBUTES = (
    Entry("n_features_in_", True, _positive_int),
    Entry("feature_names_in_", False, _feature_names),  # X with string column names
    Entry("n_iter_", True, _count),
    Entry("n_components_", True, _positive_int),
    Entry("image_shape_", True, _image_shape),
    Entry("loss_", True, _one_of("bce", "mse")),
    Entry("device_", True, _device_name),
    Entry("precision_", True, _one_of(*PRECISIONS)),
    Entry("n_epochs_", True, _positive_int),
    Entry("lr_", False, _positive_float),  # files written before lr='auto' lack it
    Entry("data_offset_", True, _finite_float),
    Entry("data_scale_", True, _positive_float),
    Entry("_train_seed", True, _seed),
    Entry("_net_config", True, _net_config),
    Entry("_input_dtype", False, _input_dtype),  # X.dtype.str in fit: to_onnx
    Entry("_sklearn_output_config", False, _output_config),  # set_output
)


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60


def _short(value):
    """``repr(value)``, shortened: for messages about values read from a file."""
    return _REPR.repr(value)


def _check_entries(values, entries, what):
    """``values`` (a dict) checked against ``entries``: known names only, every
    required one present, each value valid; the normalised values."""
    known = {entry.name: entry for entry in entries}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise _Invalid(f"{what} hold names that sk-convae does not know: {unknown}")
    missing = [e.name for e in entries if e.required and e.name not in values]
    if missing:
        raise _Invalid(f"{what} lack {missing}")
    checked = {}
    for name, value in values.items():
        try:
            checked[name] = known[name].check(value)
        except _Invalid:
            raise
        except ValueError as exc:
            raise _Invalid(
                f"{what}: {name!r} is {_short(value)}, it must be {exc}"
            ) from None
    return checked


# ----------------------------------------------------------------------------------
# save


def _library_versions():
    versions = {"sk-convae": __version__, "python": platform.python_version()}
    for name in ("torch", "scikit-learn", "skorch", "numpy", "safetensors"):
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:  # pragma: no cover
            versions[name] = "unknown"
    return versions


def save(estimator, path):
    """Write a fitted transformer to ``path``; see ``ConvAutoEncoderTransformer.save``.

    The file is written under a new name next to ``path`` first, synced to disk,
    and then renamed over it, so that an interrupted save never leaves half a file
    under the name, nor anything else behind.
    """
    check_is_fitted(estimator)
    if not hasattr(estimator, "_net_config"):
        raise ValueError(
            "This model was unpickled from a file made before sk-convae could save "
            "without pickle, and lacks the network's configuration: fit it again "
            "to save it."
        )
    from safetensors.torch import save as serialize

    params = _stored_params(estimator)
    document = {
        "estimator": type(estimator).__name__,
        "params": params,
        "attributes": _stored_attributes(estimator, params),
        "history": list(estimator.history_),
        "versions": _library_versions(),
    }
    text = json.dumps(
        _encode(document, "the model"),
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=False,
    )
    # CPU copies (clone: no two tensors share memory, which safetensors refuses)
    tensors = {
        name: tensor.detach().to("cpu", copy=True).contiguous()
        for name, tensor in estimator.net_.module_.state_dict().items()
    }
    # what load will check, checked now: save never writes a file load refuses
    try:
        state = _validated(type(estimator), _parse(text), tensors)
        _check_widths(estimator.net_.module_, state["attributes"])
    except _Invalid as exc:
        raise ValueError(
            f"This {type(estimator).__name__} cannot be saved: {exc}. Was a fitted "
            "attribute changed by hand, or a parameter that shapes the network "
            "(n_components, architecture) changed with set_params after fit? Set "
            "it back or fit again."
        ) from None
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "sk_convae": text,
        "sha256": _digest(text, tensors),
    }
    _write_atomically(Path(os.fspath(path)), serialize(tensors, metadata=header))


def _stored_params(estimator):
    """``get_params(deep=False)``; training-time objects dropped with a warning, a
    path-like ``checkpoint_dir`` as a string."""
    params = estimator.get_params(deep=False)
    if isinstance(params.get("checkpoint_dir"), os.PathLike):
        params["checkpoint_dir"] = os.fspath(params["checkpoint_dir"])
    dropped = []
    if params.get("callbacks"):
        dropped.append("callbacks")
    random_state = params.get("random_state")
    if random_state is not None and not (
        isinstance(random_state, Integral) and not isinstance(random_state, bool)
    ):
        dropped.append("random_state")
    for name in dropped:
        params[name] = None
    if dropped:
        warnings.warn(
            f"{', '.join(dropped)} hold Python objects (callbacks, random "
            "generators), which a pickle-free file does not store: the loaded model "
            f"has {' and '.join(f'{name}=None' for name in dropped)}. It transforms "
            "the same; set them again with set_params before fitting it again.",
            UserWarning,
            stacklevel=4,
        )
    return params


def _stored_attributes(estimator, params):
    """The allow-listed fitted attributes; any other attribute (set by the user,
    ``ae.note = ...``) is left out with a warning."""
    known = {entry.name for entry in FITTED_ATTRIBUTES}
    stored, left_out = {}, []
    for name, value in vars(estimator).items():
        if name in params or name in _NOT_ATTRIBUTES:
            continue
        if name in known:
            stored[name] = value
        else:
            left_out.append(name)
    if left_out:
        warnings.warn(
            f"The attributes {left_out} are not fitted state of a "
            f"{type(estimator).__name__}: they are not stored in the file, and the "
            "loaded model lacks them.",
            UserWarning,
            stacklevel=4,
        )
    return stored


def _digest(text, tensors):
    """SHA-256 of the JSON document and of every tensor's name, dtype, shape, bytes.

    No key: it detects damage, not tampering (see the module's docstring).
    """
    sha = hashlib.sha256(text.encode("utf-8"))
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        sha.update(f"\0{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        sha.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return sha.hexdigest()


def _write_atomically(path, data):
    """``data`` to ``path``: all of it, or nothing changed and nothing left behind.

    A temporary file of a random name next to ``path``, created exclusively (so
    that no other process or thread writes it too) with the permissions any new
    file gets (``mkstemp``'s would be 0600), written, synced, renamed over
    ``path``; the directory is synced after that where the system allows it.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:  # pragma: no cover - 64 random bits
            continue
    else:  # pragma: no cover
        raise FileExistsError(f"no free temporary name next to {path}")
    try:
        with open(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)


def _sync_directory(directory):
    """Make a rename in ``directory`` durable (POSIX; elsewhere nothing to do)."""
    if not hasattr(os, "O_DIRECTORY"):  # pragma: no cover - Windows
        return
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems that cannot
        pass
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------------
# load


def load(cls, path, *, device=None):
    """Read a file written by ``save``; see ``ConvAutoEncoderTransformer.load``."""
    path = os.fspath(path)
    if device is not None:
        device = _device_argument(device)
    header, tensors = _read(path)
    text = _check_header(header, tensors, path)
    try:
        state = _validated(cls, _parse(text), tensors)
    except _Invalid as exc:
        raise ModelFileError(f"{path} cannot be loaded: {exc}.") from None
    estimator, attributes = state["estimator"], state["attributes"]
    config = attributes["_net_config"]
    device = _load_device(config["device"], device)
    net = _rebuild_net(estimator, attributes, device, tensors, path)
    net.history = History(state["history"])
    for name, value in attributes.items():
        setattr(estimator, name, value)
    estimator._net_config = {**config, "device": device}
    estimator.net_ = net
    estimator.history_ = net.history
    return estimator


def _read(path):
    """The safetensors metadata and tensors (on the CPU), or a ModelFileError."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt", device="cpu") as handle:
            header = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except SafetensorError as exc:
        raise ModelFileError(
            f"{path} is not a sk-convae model file, or it is damaged: it cannot be "
            f"read as safetensors ({exc}). A truncated download or copy gives this; "
            "so does a joblib file, which only joblib.load opens (it runs code: "
            "only for files you trust)."
        ) from None
    return header, tensors


def _check_header(header, tensors, path):
    """The JSON text, once the format, its version and the checksum are right."""
    if header.get("format") != FORMAT or "sk_convae" not in header:
        raise ModelFileError(
            f"{path} is a safetensors file but not a sk-convae model: its metadata "
            f"has no format {FORMAT!r} (weights saved by another tool?)."
        )
    version = header.get("format_version", "")
    # ASCII digits only ("²".isdigit() is true), and no version 0
    if not re.fullmatch(r"[0-9]{1,9}", version) or int(version) == 0:
        raise ModelFileError(
            f"{path} has an invalid format version {_short(version)}: it must be "
            "a positive integer."
        )
    if int(version) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} was written in sk-convae's file format version {version}, "
            f"newer than this sk-convae reads (up to version {FORMAT_VERSION}): "
            "upgrade sk-convae (pip install -U sk-convae) to load it."
        )
    text = header["sk_convae"]
    if header.get("sha256") != _digest(text, tensors):
        raise ModelFileError(
            f"{path} is damaged, or was changed after it was saved: its checksum "
            "does not match its contents (a truncated or corrupted copy?)."
        )
    return text


def _parse(text):
    """The decoded JSON document, with its top-level entries of the right types."""
    try:
        document = _decode(json.loads(text, parse_constant=_refuse_constant))
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise _Invalid(f"its metadata is invalid ({exc})") from None
    expected = {"estimator", "params", "attributes", "history", "versions"}
    if not isinstance(document, dict) or not expected <= set(document):
        raise _Invalid(
            f"its metadata is invalid: it needs the entries {sorted(expected)}"
        )
    if not isinstance(document["params"], dict) or not isinstance(
        document["attributes"], dict
    ):
        raise _Invalid("its 'params' and 'attributes' must be objects")
    history = document["history"]
    if not isinstance(history, list) or not all(isinstance(e, dict) for e in history):
        raise _Invalid("its 'history' must be a list of objects")
    return document


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON (non-finite floats are tagged values)")


def _validated(cls, document, tensors):
    """The estimator with the stored parameters, and the checked attributes and
    history; raises ``_Invalid`` saying what is wrong. Shared by load and save."""
    if document["estimator"] != cls.__name__:
        raise _Invalid(
            f"it holds a {_short(document['estimator'])}, not a {cls.__name__}"
        )
    estimator = _estimator_from(cls, document["params"])
    attributes = _check_entries(
        document["attributes"], FITTED_ATTRIBUTES, "its fitted attributes"
    )
    history = document["history"]
    _check_consistency(attributes, history, tensors)
    _check_structure(estimator, attributes, tensors)
    return {"estimator": estimator, "attributes": attributes, "history": history}


def _estimator_from(cls, params):
    unknown = sorted(set(params) - set(cls._get_param_names()))
    if unknown:
        raise _Invalid(
            f"it sets parameters that this version of {cls.__name__} does not "
            f"have: {unknown}. It was written by sk-convae with other parameters; "
            "upgrade sk-convae to load it"
        )
    estimator = cls(**params)
    try:
        estimator._validate_params()
    except InvalidParameterError as exc:
        raise _Invalid(f"it holds an invalid parameter: {exc}") from None
    # what save stores, and nothing that could make a later fit do something else
    if params.get("callbacks") is not None:
        raise _Invalid("its parameter 'callbacks' must be null (not stored)")
    random_state = params.get("random_state")
    if random_state is not None and (
        not isinstance(random_state, int) or isinstance(random_state, bool)
    ):
        raise _Invalid("its parameter 'random_state' must be an int or null")
    device = params.get("device", "auto")
    if device != "auto":
        try:
            _device_name(device)
        except ValueError as exc:
            raise _Invalid(
                f"its parameter 'device' is {_short(device)}, it must be 'auto', {exc}"
            ) from None
    return estimator


def _check_consistency(attributes, history, tensors):
    """Values stored twice must agree, and sizes must fit one another."""
    config = attributes["_net_config"]
    problems = []
    for attribute, key in (
        ("image_shape_", "image_shape"),
        ("data_offset_", "offset"),
        ("data_scale_", "scale"),
        ("loss_", "loss"),
    ):
        if attributes[attribute] != config[key]:
            problems.append(
                f"{attribute!r} is {_short(attributes[attribute])} but the "
                f"'_net_config' has {key!r} {_short(config[key])}"
            )
    n_features = attributes["n_features_in_"]
    if math.prod(attributes["image_shape_"]) != n_features:
        problems.append(
            f"'n_features_in_' is {n_features}, not the product of 'image_shape_' "
            f"{attributes['image_shape_']}"
        )
    names = attributes.get("feature_names_in_")
    if names is not None and len(names) != n_features:
        problems.append(
            f"'feature_names_in_' has {len(names)} names for {n_features} features"
        )
    if attributes["n_iter_"] != len(history):
        problems.append(
            f"'n_iter_' is {attributes['n_iter_']} but the history has "
            f"{len(history)} epochs"
        )
    if config["loss"] == "bce" and config["kind"] != INTENSITY:
        problems.append("the loss 'bce' needs intensities ('kind')")
    # every encoder stage has at least one tensor: this bounds the modules that
    # the checks below build, whatever 'channels' says
    if len(config["channels"]) > len(tensors):
        problems.append(
            f"'channels' has {len(config['channels'])} stages for "
            f"{len(tensors)} tensors"
        )
    if problems:
        raise _Invalid("its values do not agree: " + "; ".join(problems))


def _build_net(estimator, config, seed, device):
    """The skorch net for ``config``, as ``fit`` builds it, not yet initialised."""
    config = {**config, "device": device, "callbacks": []}
    try:
        return estimator._build_net(
            config, max(2, estimator.batch_size), seed, one_cycle=False
        )
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise _Invalid(
            "the network cannot be built from the stored configuration "
            f"({type(exc).__name__}: {exc})"
        ) from None


def _check_structure(estimator, attributes, tensors):
    """The network the file describes, built on the meta device (no memory), must
    have exactly the file's tensor names, shapes and dtypes."""
    config = attributes["_net_config"]
    net = _build_net(estimator, config, attributes["_train_seed"], "cpu")
    try:
        with torch.device("meta"):
            module = net.initialized_instance(net.module, net.get_params_for("module"))
        expected = module.state_dict()
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise _Invalid(
            "the network cannot be built from the stored configuration "
            f"({type(exc).__name__}: {exc})"
        ) from None
    problems = []
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing:
        problems.append(f"missing tensors {_short(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors {_short(unexpected)}")
    for name in sorted(set(expected) & set(tensors)):
        want, got = expected[name], tensors[name]
        if tuple(got.shape) != tuple(want.shape):
            problems.append(
                f"tensor {name!r} has shape {tuple(got.shape)}, the network needs "
                f"{tuple(want.shape)}"
            )
        elif got.dtype != want.dtype:
            problems.append(
                f"tensor {name!r} has dtype {got.dtype}, the network needs {want.dtype}"
            )
    if problems:
        raise _Invalid(
            "its tensors do not fit the network that its metadata describes: "
            + "; ".join(problems)
        )


def _check_widths(module, attributes):
    """``n_components_`` and ``n_features_in_`` must be the widths the network
    takes and gives: one forward pass of zero rows each way (no memory)."""
    n_features, n_components = attributes["n_features_in_"], attributes["n_components_"]
    first = next(itertools.chain(module.parameters(), module.buffers()), None)
    device = first.device if first is not None else torch.device("cpu")
    training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            codes = module.encode(torch.zeros((0, n_features), device=device))
            images = module.decode(torch.zeros((0, n_components), device=device))
        widths = (tuple(codes.shape), tuple(images.shape))
    except RuntimeError as exc:
        widths = str(exc).splitlines()[0]
    finally:
        module.train(training)
    if widths != ((0, n_components), (0, n_features)):
        raise _Invalid(
            f"the network does not map {n_features} features ('n_features_in_') to "
            f"{n_components} numbers ('n_components_') and back ({widths})"
        )


def _device_argument(device):
    """The ``device`` argument of load, resolved: an error in the caller's terms."""
    resolved = resolve_device(device)
    try:
        return _device_name(resolved)
    except ValueError:
        raise ValueError(
            f"device={device!r} cannot run a loaded model: use 'cpu', 'cuda', "
            "'cuda:N' or 'mps'."
        ) from None


def _load_device(fitted_device, device):
    """``device``, or the one it was fitted on when present here, else the CPU."""
    if device is not None:
        return device
    try:
        return resolve_device(fitted_device)
    except ValueError:
        warnings.warn(
            f"The model was fitted on {fitted_device!r}, which this machine does "
            "not have; it is loaded on 'cpu'. Pass device='cpu' to load() to choose "
            "that yourself.",
            UserWarning,
            stacklevel=4,
        )
        return "cpu"


def _rebuild_net(estimator, attributes, device, tensors, path):
    """The skorch net of the file, on ``device``, with the file's tensors.

    Its structure was checked on the meta device (``_check_structure``): what is
    allocated here is what the file's tensors hold.
    """
    config, seed = attributes["_net_config"], attributes["_train_seed"]
    try:
        net = _build_net(estimator, config, seed, device)
        # initialisation draws random weights, about to be replaced: keep the
        # caller's random state as it was, of the target CUDA device only
        # (forking every device's would start a CUDA context on each)
        with torch.random.fork_rng(devices=_cuda_devices(device)):
            torch.manual_seed(seed)
            net.initialize()
        try:
            net.module_.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:  # pragma: no cover - compared on meta first
            raise _Invalid(f"its tensors do not load ({exc})") from None
        net.module_.eval()
        _check_widths(net.module_, attributes)
    except _Invalid as exc:
        raise ModelFileError(f"{path} cannot be loaded: {exc}.") from None
    return net


def _cuda_devices(device):
    """The CUDA device index that ``device`` names, as a list (empty for others)."""
    device = torch.device(device)
    if device.type != "cuda":
        return []
    return [torch.cuda.current_device() if device.index is None else device.index]


# ----------------------------------------------------------------------------------
# JSON for what JSON lacks: tuples, arrays, non-finite floats


# Arrays a file may hold: numbers and booleans of the usual sizes in either byte
# order, strings as objects, and fixed-width strings up to _MAX_STR characters
_ARRAY_DTYPES = frozenset(
    np.dtype(f"{order}{code}").str
    for order in "<>"
    for code in ("b1", "u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8")
    + ("f2", "f4", "f8", "O")
)
_MAX_STR = 1024
_UNICODE = re.compile(r"[<>]U([0-9]{1,4})")


def _array_dtype(text):
    """The NumPy dtype named ``text`` if arrays of it are data here; else ValueError."""
    if isinstance(text, str):
        if text in _ARRAY_DTYPES:
            return np.dtype(text)
        match = _UNICODE.fullmatch(text)
        if match and 1 <= int(match.group(1)) <= _MAX_STR:
            return np.dtype(text)
    raise ValueError(f"an array of dtype {_short(text)} is not data")


def _leaves(items):
    """The scalars of a nested list, depth first."""
    stack = [items]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        else:
            yield item


def _leaf_check(kind):
    if kind == "b":
        return lambda v: isinstance(v, bool)
    if kind in "ui":
        return lambda v: isinstance(v, int) and not isinstance(v, bool)
    if kind == "f":
        return lambda v: isinstance(v, int | float) and not isinstance(v, bool)
    return lambda v: isinstance(v, str)  # "O", "U"


def _encode(value, where):
    """``value`` as JSON-ready data; tagged objects ``{"__tag__": ...}`` for the rest.

    Raises ``TypeError`` naming ``where`` for anything that is not data.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, where) for v in value]}
    if isinstance(value, list):
        return [_encode(v, where) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) and not k.startswith("__") for k in value):
            raise TypeError(f"{where}: dict keys must be strings not starting '__'.")
        return {k: _encode(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, np.ndarray):
        try:
            dtype = _array_dtype(value.dtype.str)
        except ValueError:
            dtype = None
        items = value.tolist()
        if dtype is None or not all(map(_leaf_check(dtype.kind), _leaves(items))):
            raise TypeError(f"{where}: an array of dtype {value.dtype} is not data.")
        return {"__ndarray__": _encode(items, where), "dtype": dtype.str}
    if isinstance(value, torch.device):
        return str(value)
    raise TypeError(
        f"{where} is a {type(value).__name__}, which a model file cannot store."
    )


# the tags, each with the keys of its object
_TAGS = {
    "__tuple__": {"__tuple__"},
    "__float__": {"__float__"},
    "__ndarray__": {"__ndarray__", "dtype"},
}


def _decode(value):
    """The inverse of ``_encode``: plain data only; ``ValueError`` when malformed."""
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    tags = [k for k in value if k.startswith("__")]
    if not tags:
        return {k: _decode(v) for k, v in value.items()}
    tag = tags[0]
    if len(tags) > 1 or tag not in _TAGS or set(value) != _TAGS[tag]:
        raise ValueError(f"unknown tagged value {_short(sorted(value))}")
    content = value[tag]
    if tag == "__tuple__":
        if not isinstance(content, list):
            raise ValueError("a __tuple__ must hold a list")
        return tuple(_decode(content))
    if tag == "__float__":
        if content not in ("nan", "inf", "-inf"):
            raise ValueError(f"{_short(content)} is not a non-finite float")
        return float(content)
    # __ndarray__
    dtype = _array_dtype(value["dtype"])
    items = _decode(content)
    if isinstance(items, dict | tuple) or not all(
        map(_leaf_check(dtype.kind), _leaves(items))
    ):
        raise ValueError(f"an array of dtype {dtype} holds other values")
    return np.array(items, dtype=dtype)
