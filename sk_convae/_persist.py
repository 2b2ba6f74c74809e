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
(``safetensors.safe_open(path, "pt").metadata()``), and the safetensors header
parser is the only thing that reads untrusted bytes before the checksum is
verified. The JSON has tagged values for what JSON lacks (tuples, arrays, ...),
all decoded into plain Python and NumPy data: nothing in the file is ever imported
or called.

Loading rebuilds the network through the estimator's own ``_build_net`` from the
stored configuration and loads the tensors with ``strict=True``, so that this
module knows nothing about the architecture.
"""

import hashlib
import json
import math
import os
import platform
import warnings
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np
import torch
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted
from skorch.history import History

from sk_convae._device import resolve_device
from sk_convae.exceptions import ModelFileError

FORMAT = "sk-convae"
# Bump when a file written now could be misread by an older reader; readers refuse
# files with a newer version than theirs.
FORMAT_VERSION = 1

# Fitted state kept elsewhere in the file: the network in tensors, the history in
# its own entry.
_NOT_ATTRIBUTES = ("net_", "history_")


def _library_versions():
    from sk_convae import __version__

    versions = {"sk-convae": __version__, "python": platform.python_version()}
    for name in ("torch", "scikit-learn", "skorch", "numpy", "safetensors"):
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:  # pragma: no cover
            versions[name] = "unknown"
    return versions


# ----------------------------------------------------------------------------------
# save


def save(estimator, path):
    """Write a fitted transformer to ``path``; see ``ConvAutoEncoderTransformer.save``.

    The file is written next to ``path`` first and then renamed over it, so that
    an interrupted save never leaves half a file under the name.
    """
    check_is_fitted(estimator)
    if not hasattr(estimator, "_net_config"):
        raise ValueError(
            "This model was unpickled from a file made before sk-convae could save "
            "without pickle, and lacks the network's configuration: fit it again "
            "to save it."
        )
    from safetensors.torch import save_file

    params = _stored_params(estimator)
    attributes = {
        name: value
        for name, value in vars(estimator).items()
        if name not in params and name not in _NOT_ATTRIBUTES
    }
    document = {
        "estimator": type(estimator).__name__,
        "params": params,
        "attributes": attributes,
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
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "sk_convae": text,
        "sha256": _digest(text, tensors),
    }
    path = Path(os.fspath(path))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, tmp, metadata=header)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _stored_params(estimator):
    """``get_params(deep=False)``; training-time objects dropped with a warning."""
    params = estimator.get_params(deep=False)
    dropped = []
    if params.get("callbacks"):
        dropped.append("callbacks")
    random_state = params.get("random_state")
    if random_state is not None and not isinstance(random_state, int | np.integer):
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


def _digest(text, tensors):
    """SHA-256 of the JSON document and of every tensor's name, dtype, shape, bytes."""
    sha = hashlib.sha256(text.encode("utf-8"))
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        sha.update(f"\0{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        sha.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return sha.hexdigest()


# ----------------------------------------------------------------------------------
# load


def load(cls, path, *, device=None):
    """Read a file written by ``save``; see ``ConvAutoEncoderTransformer.load``."""
    path = os.fspath(path)
    header, tensors = _read(path)
    document = _check_document(header, tensors, path)
    if document.get("estimator") != cls.__name__:
        raise ModelFileError(
            f"{path} holds a {document.get('estimator')!r}, not a {cls.__name__}."
        )
    estimator = _estimator_from(cls, document["params"], path)
    attributes = document["attributes"]
    _check_attributes(cls, attributes, path)
    config = attributes.get("_net_config")
    if not isinstance(config, dict) or not isinstance(
        attributes.get("_train_seed"), int
    ):
        raise ModelFileError(
            f"{path} lacks the network's configuration ('_net_config' and "
            "'_train_seed' in its attributes)."
        )
    device = _load_device(config.get("device"), device)
    net = _rebuild_net(estimator, config, attributes["_train_seed"], device, path)
    _load_tensors(net.module_, tensors, path)
    net.history = History(document["history"])
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


def _check_document(header, tensors, path):
    """The JSON document, once the format, its version and the checksum are right."""
    if header.get("format") != FORMAT or "sk_convae" not in header:
        raise ModelFileError(
            f"{path} is a safetensors file but not a sk-convae model: its metadata "
            f"has no format {FORMAT!r} (weights saved by another tool?)."
        )
    version = header.get("format_version", "")
    if not version.isdigit():
        raise ModelFileError(f"{path} has an invalid format version {version!r}.")
    if int(version) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} was written in sk-convae's file format version {version}, "
            f"newer than this sk-convae reads (up to version {FORMAT_VERSION}): "
            "upgrade sk-convae (pip install -U sk-convae) to load it."
        )
    text = header["sk_convae"]
    if header.get("sha256") != _digest(text, tensors):
        raise ModelFileError(
            f"{path} was changed or damaged after it was saved: its checksum does "
            "not match its contents (edited metadata or tensors?)."
        )
    try:
        document = _decode(json.loads(text))
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise ModelFileError(f"{path} has invalid metadata: {exc}.") from None
    expected = {"estimator", "params", "attributes", "history", "versions"}
    if not isinstance(document, dict) or not expected <= set(document):
        raise ModelFileError(
            f"{path} has invalid metadata: it needs the entries {sorted(expected)}."
        )
    if not isinstance(document["params"], dict) or not isinstance(
        document["attributes"], dict
    ):
        raise ModelFileError(f"{path}: 'params' and 'attributes' must be objects.")
    history = document["history"]
    if not isinstance(history, list) or not all(isinstance(e, dict) for e in history):
        raise ModelFileError(f"{path}: 'history' must be a list of objects.")
    return document


def _estimator_from(cls, params, path):
    try:
        estimator = cls(**params)
    except TypeError:
        unknown = sorted(set(params) - set(cls._get_param_names()))
        raise ModelFileError(
            f"{path} sets parameters that this version of {cls.__name__} does not "
            f"have: {unknown}. It was written by sk-convae "
            "with other parameters; upgrade sk-convae to load it."
        ) from None
    try:
        estimator._validate_params()
    except InvalidParameterError as exc:
        raise ModelFileError(f"{path} holds an invalid parameter: {exc}") from None
    return estimator


def _check_attributes(cls, attributes, path):
    """Only names of fitted state: nothing may shadow a method or a property."""
    for name in attributes:
        if (
            not name.isidentifier()
            or name.startswith("__")
            or not (name.endswith("_") or name.startswith("_"))
            or hasattr(cls, name)
        ):
            raise ModelFileError(
                f"{path} has an attribute {name!r} that is not fitted state of a "
                f"{cls.__name__}."
            )


def _load_device(fitted_device, device):
    """``device``, or the one it was fitted on when present here, else the CPU."""
    if device is not None:
        return resolve_device(device)
    try:
        return resolve_device(fitted_device if fitted_device is not None else "cpu")
    except ValueError:
        warnings.warn(
            f"The model was fitted on {fitted_device!r}, which this machine does "
            "not have; it is loaded on 'cpu'. Pass device='cpu' to load() to choose "
            "that yourself.",
            UserWarning,
            stacklevel=4,
        )
        return "cpu"


def _rebuild_net(estimator, config, seed, device, path):
    """The skorch net for ``config``, built and initialised as ``fit`` would."""
    config = {**config, "device": device, "callbacks": []}
    try:
        net = estimator._build_net(
            config, max(2, estimator.batch_size), seed, one_cycle=False
        )
        # initialisation draws random weights, about to be replaced: keep the
        # caller's random state as it was
        with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
            torch.manual_seed(seed)
            net.initialize()
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(
            f"{path}: the network cannot be built from the stored configuration "
            f"({type(exc).__name__}: {exc})."
        ) from None
    return net


def _load_tensors(module, tensors, path):
    """``load_state_dict(strict=True)``, after checks that name what differs."""
    expected = module.state_dict()
    problems = []
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing:
        problems.append(f"missing tensors {missing}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected}")
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
        raise ModelFileError(
            f"{path} does not fit the network its metadata describes: "
            + "; ".join(problems)
            + "."
        )
    module.load_state_dict(tensors, strict=True)
    module.eval()


# ----------------------------------------------------------------------------------
# JSON for what JSON lacks: tuples, arrays, NumPy scalars, non-finite floats


def _encode(value, where):
    """``value`` as JSON-ready data; tagged objects ``{"__tag__": ...}`` for the rest.

    Raises ``TypeError`` naming ``where`` for anything that is not data.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
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
        if value.dtype.kind in "biuf":
            items = value.tolist()
        elif value.dtype.kind in "UO" and all(isinstance(v, str) for v in value.flat):
            items = value.tolist()
        else:
            raise TypeError(f"{where}: an array of dtype {value.dtype} is not data.")
        return {"__ndarray__": _encode(items, where), "dtype": value.dtype.str}
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, torch.dtype):
        return {"__torch_dtype__": str(value).removeprefix("torch.")}
    raise TypeError(
        f"{where} is a {type(value).__name__}, which a model file cannot store."
    )


def _decode(value):
    """The inverse of ``_encode``: plain data only; ``ValueError`` when malformed."""
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tuple__" in value:
        return tuple(_decode(value["__tuple__"]))
    if "__float__" in value:
        text = value["__float__"]
        if text not in ("nan", "inf", "-inf"):
            raise ValueError(f"{text!r} is not a non-finite float")
        return float(text)
    if "__ndarray__" in value:
        dtype = np.dtype(str(value.get("dtype")))
        items = _decode(value["__ndarray__"])
        if dtype.kind not in "biufUO" or (
            dtype.kind == "O" and not all(isinstance(v, str) for v in items)
        ):
            raise ValueError(f"an array of dtype {dtype} is not data")
        return np.array(items, dtype=dtype)
    if "__torch_dtype__" in value:
        dtype = getattr(torch, str(value["__torch_dtype__"]), None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"{value['__torch_dtype__']!r} is not a torch dtype")
        return dtype
    if any(k.startswith("__") for k in value):
        raise ValueError(f"unknown tagged value {sorted(value)}")
    return {k: _decode(v) for k, v in value.items()}
