"""ONNX export of a fitted transformer, and its converter for skl2onnx.

ONNX Runtime runs a model where PyTorch, skorch and scikit-learn are not installed:
in a service, on a phone, in a browser. Two ways out:

- ``to_onnx(estimator, part)``: the encoder or the decoder alone, each with the
  transformer's input scaling folded in, so that it speaks the caller's scale as
  ``transform`` and ``inverse_transform`` do;
- ``register_onnx_converter()``: teaches skl2onnx the transformer, so that
  ``skl2onnx.to_onnx(pipeline, X)`` converts a whole ``Pipeline`` whose steps
  skl2onnx knows (a classifier, a clusterer, ... after the autoencoder). The
  converter exports the encoder at the opset skl2onnx targets and copies its nodes
  and initializers, renamed to be unique, into skl2onnx's graph.

The network is exported through its ``encode`` and ``decode`` methods, wrapped in
small modules that add the scaling, with ``torch.onnx.export(dynamo=True)``: this
module knows nothing about the layers. Needs ``pip install 'sk-convae[onnx]'``.
"""

import contextlib
import copy
import logging
import warnings
from numbers import Integral

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from sk_convae._version import __version__

# The lowest opset torch's exporter has its own implementations for, and the
# default: ONNX Runtime reads it since version 1.14. Lower ones would go through
# ONNX's version converter, which fails on common operators: refused.
MIN_OPSET = 18

_EXTRA = "pip install 'sk-convae[onnx]'"


def _require(module):
    """Import ``module`` (onnx, skl2onnx), or raise an ImportError naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"ONNX export needs the packages onnx, onnxscript and skl2onnx "
            f"({module} is missing): {_EXTRA}"
        ) from exc


# ----------------------------------------------------------------------------------
# The two halves with the scaling folded in


class ScaledEncoder(nn.Module):
    """Rows on the caller's scale -> codes: ``encode((X - offset) / scale)``.

    ``transform`` scales in float64 and rounds to float32. So do float64 rows and
    integers too wide for float32 (int32, int64, ...). Other rows (uint8, uint16,
    float32, ...) are scaled in float32, which keeps the graph free of doubles for
    runtimes without them (phones, browsers). For 8- and 16-bit integers that
    gives exactly ``transform``'s scaled rows when the offset is an integer and
    the scale a float32 number, as for intensities (uint8 pixels; counts scaled
    by their maximum or by an integer ``data_range``): one float32 division of
    exact numbers, correctly rounded. With other offsets and scales (the mean and
    standard deviation of standardised data) the float32 subtraction and division
    round twice and the offset and scale are rounded to float32 first: the rows
    differ from ``transform``'s by float32 rounding (about 1e-7 relative).
    """

    def __init__(self, module, *, offset, scale, dtype):
        super().__init__()
        self.module = module
        self.offset = float(offset)
        self.scale = float(scale)
        wide = dtype == np.float64 or (dtype.kind in "iu" and dtype.itemsize > 2)
        self.work_dtype = torch.float64 if wide else torch.float32

    def forward(self, X):
        rows = (X.to(self.work_dtype) - self.offset) / self.scale
        return self.module.encode(rows.to(torch.float32))  # (N, n_components)


class ScaledDecoder(nn.Module):
    """Codes -> rows on the caller's scale: ``out(decode(Z)) * scale + offset``,
    in float32, as ``inverse_transform`` does; ``out`` is a sigmoid (``sigmoid``),
    clipping to [0, 1] (``clip``) or nothing."""

    def __init__(self, module, *, offset, scale, sigmoid, clip=False):
        super().__init__()
        self.module = module
        self.offset = float(np.float32(offset))
        self.scale = float(np.float32(scale))
        self.sigmoid = sigmoid
        self.clip = clip

    def forward(self, Z):
        out = self.module.decode(Z.to(torch.float32))  # (N, n_features)
        if self.sigmoid:
            out = torch.sigmoid(out)
        elif self.clip:
            out = out.clamp(0.0, 1.0)
        return out * self.scale + self.offset


# ----------------------------------------------------------------------------------
# Export


def _model_dtype(estimator, part, dtype):
    """The input dtype of the model: ``dtype`` checked, or None's default."""
    if dtype is None:
        # the encoder: the rows fit saw (which fit records as ``_input_dtype``)
        # where it takes them, else float32; the decoder: float32, as the codes
        # that transform returns
        fitted = getattr(estimator, "_input_dtype", None) if part == "encoder" else None
        try:
            return _checked_dtype(part, "float32" if fitted is None else fitted)
        except ValueError:
            return np.dtype(np.float32)
    return _checked_dtype(part, dtype)


def _checked_dtype(part, dtype):
    try:
        # native byte order: ONNX has none, and torch takes only native arrays
        dtype = np.dtype(dtype).newbyteorder("=")
    except TypeError:
        raise ValueError(f"dtype={dtype!r} is not a NumPy dtype.") from None
    allowed = "uif" if part == "encoder" else "f"
    if dtype.kind not in allowed or dtype == np.float16 or dtype.itemsize > 8:
        what = (
            "numeric rows (uint8, uint16, int..., float32, float64)"
            if part == "encoder"
            else "codes as float32 or float64"
        )
        raise ValueError(f"The {part} takes {what}; got dtype={dtype}.")
    return dtype


def to_onnx(estimator, part="encoder", *, dtype=None, target_opset=None):
    """See ``ConvAutoEncoderTransformer.to_onnx``."""
    check_is_fitted(estimator)
    if part not in ("encoder", "decoder"):
        raise ValueError(f"part must be 'encoder' or 'decoder', got {part!r}.")
    dtype = _model_dtype(estimator, part, dtype)
    opset = MIN_OPSET if target_opset is None else target_opset
    if not isinstance(opset, Integral) or isinstance(opset, bool) or opset < MIN_OPSET:
        raise ValueError(
            f"target_opset must be an int of at least {MIN_OPSET} (the lowest that "
            f"torch's ONNX exporter writes), got {target_opset!r}; with skl2onnx, "
            f"pass target_opset={MIN_OPSET} or more to skl2onnx.to_onnx."
        )
    opset = int(opset)
    onnx = _require("onnx")
    _require("onnxscript")  # torch's exporter builds the graph with it
    if torch.__version__ < (2, 6):  # pragma: no cover - tested with torch 2.13
        raise ImportError(
            "ONNX export needs torch 2.6 or later (its torch.export-based "
            f"exporter); this is torch {torch.__version__}."
        )

    # a float32 CPU copy in eval mode: the fitted network is left as it is
    module = copy.deepcopy(estimator.net_.module_).to("cpu", torch.float32).eval()
    offset, scale = estimator.data_offset_, estimator.data_scale_
    if part == "encoder":
        wrapper = ScaledEncoder(module, offset=offset, scale=scale, dtype=dtype)
        names = ("X", "codes")
        width = estimator.n_features_in_
    else:
        sigmoid = estimator.loss_ == "bce"
        wrapper = ScaledDecoder(
            module,
            offset=offset,
            scale=scale,
            sigmoid=sigmoid,
            clip=estimator._clips_output,
        )
        names = ("codes", "X")
        width = estimator.n_components_
    example = torch.zeros((2, width), dtype=_torch_dtype(dtype))
    model = _export(wrapper.eval(), example, names, opset)

    found = {o.domain: o.version for o in model.opset_import}
    if found.get("", opset) != opset:
        raise ValueError(  # pragma: no cover - depends on torch's exporter
            f"torch's ONNX exporter could not produce opset {opset} (it made "
            f"{found.get('')})."
        )
    if set(found) != {""} or model.functions:
        raise ValueError(  # pragma: no cover - depends on torch's exporter
            "the exported graph uses operators outside the standard ONNX domain "
            f"({sorted(found)}), which this export does not support."
        )
    model.producer_name = "sk-convae"
    model.producer_version = __version__
    model.doc_string = (
        f"The {part} of a {type(estimator).__name__} "
        f"(n_components={estimator.n_components_}, "
        f"image_shape={tuple(estimator.image_shape_)}), on the caller's scale."
    )
    onnx.checker.check_model(model)
    return model


def _torch_dtype(dtype):
    return torch.from_numpy(np.zeros(0, dtype=dtype)).dtype


def _export(wrapper, example, names, opset):
    """``torch.onnx.export`` with a dynamic batch axis, as an ``onnx.ModelProto``."""
    batch = torch.export.Dim("batch", min=1)
    with _quiet_exporter():
        program = torch.onnx.export(
            wrapper,
            (example,),
            dynamo=True,
            input_names=[names[0]],
            output_names=[names[1]],
            dynamic_shapes=({0: batch},),
            opset_version=opset,
            optimize=True,
            verbose=False,
        )
    return program.model_proto


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter without its noise: torch 2.13's own export deep-copies a pytree
    ``LeafSpec`` that it deprecated (a FutureWarning from inside torch, about
    nothing we call), and logs that optional torchvision operators are missing."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore",
                message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                category=FutureWarning,
            )
            yield
    finally:
        registration.setLevel(level)


# ----------------------------------------------------------------------------------
# skl2onnx


def register_onnx_converter():
    """Teach skl2onnx to convert ``ConvAutoEncoderTransformer``, in Pipelines too.

    Call it once before ``skl2onnx.to_onnx``; calling it again does nothing more.
    The transformer converts to its encoder, the input scaling included, with the
    input type skl2onnx gives it (``X``'s dtype for ``to_onnx(model, X)``) and
    float32 codes. Needs ``pip install 'sk-convae[onnx]'``.

    See Also
    --------
    sk_convae.ConvAutoEncoderTransformer.to_onnx : The encoder or the decoder
        alone, without skl2onnx.
    skl2onnx.update_registered_converter : How skl2onnx learns converters for
        estimators it does not know.

    Examples
    --------
    >>> import numpy as np, skl2onnx
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sk_convae import ConvAutoEncoderTransformer, register_onnx_converter
    >>> X, y = load_digits(return_X_y=True)
    >>> ae = ConvAutoEncoderTransformer(8, image_shape=(8, 8), max_epochs=1)
    >>> pipe = make_pipeline(ae, LogisticRegression(max_iter=500)).fit(X, y)
    >>> register_onnx_converter()
    >>> onx = skl2onnx.to_onnx(pipe, X[:1].astype(np.float32))
    >>> [o.name for o in onx.graph.output]
    ['output_label', 'output_probability']
    """
    skl2onnx = _require("skl2onnx")
    _require("onnxscript")
    from sk_convae._estimator import ConvAutoEncoderTransformer

    skl2onnx.update_registered_converter(
        ConvAutoEncoderTransformer,
        "SkConvAEConvAutoEncoderTransformer",
        _shape_calculator,
        _converter,
    )


def _shape_calculator(operator):
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    if len(operator.inputs) != 1 or len(operator.outputs) != 1:
        raise RuntimeError(
            "ConvAutoEncoderTransformer converts with one input and one output, "
            f"got {len(operator.inputs)} and {len(operator.outputs)}."
        )
    estimator = operator.raw_operator
    n_rows = operator.inputs[0].get_first_dimension()
    # skl2onnx keeps doubles in double from step to step (as scikit-learn would
    # convert the float32 codes for the next step): the codes are cast
    double = isinstance(operator.inputs[0].type, DoubleTensorType)
    codes_type = DoubleTensorType if double else FloatTensorType
    operator.outputs[0].type = codes_type([n_rows, estimator.n_components_])


def _converter(scope, operator, container):
    """The encoder's graph inlined into skl2onnx's: every name made unique."""
    import onnx
    from onnx import helper, numpy_helper

    estimator = operator.raw_operator
    source = operator.inputs[0]
    elem_type = source.type.to_onnx_type().tensor_type.elem_type
    dtype = helper.tensor_dtype_to_np_dtype(elem_type)
    opset = container.target_opset_any_domain("")
    graph = to_onnx(estimator, "encoder", dtype=dtype, target_opset=opset).graph
    _check_no_subgraphs(graph)

    target = operator.outputs[0]
    codes_type = target.type.to_onnx_type().tensor_type.elem_type
    names = {graph.input[0].name: source.full_name, "": ""}  # "": omitted input
    if codes_type == onnx.TensorProto.FLOAT:
        names[graph.output[0].name] = target.full_name

    def rename(name):
        if name not in names:
            names[name] = scope.get_unique_variable_name(f"{operator.full_name}_{name}")
        return names[name]

    for tensor in graph.initializer:
        array = numpy_helper.to_array(tensor)
        container.add_initializer(
            rename(tensor.name),
            tensor.data_type,
            list(array.shape),
            numpy_helper.from_array(array),
        )
    for node in graph.node:
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        container.add_node(
            node.op_type,
            [rename(name) for name in node.input],
            [rename(name) for name in node.output],
            op_domain=node.domain,
            name=scope.get_unique_operator_name(f"{operator.full_name}_{node.name}"),
            **attributes,
        )
    if codes_type != onnx.TensorProto.FLOAT:
        container.add_node(
            "Cast",
            [rename(graph.output[0].name)],
            [target.full_name],
            name=scope.get_unique_operator_name(f"{operator.full_name}_Cast"),
            to=codes_type,
        )


def _check_no_subgraphs(graph):
    """Refuse graphs with control flow: their subgraphs' names are not renamed."""
    import onnx

    kinds = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type in kinds:
                raise RuntimeError(
                    f"The exported encoder has a {node.op_type} node ({node.name!r}) "
                    f"with a subgraph (attribute {attribute.name!r}), which the "
                    "skl2onnx converter of ConvAutoEncoderTransformer cannot inline: "
                    "it renames the names of the main graph only. Export the "
                    "encoder with ae.to_onnx() and join the graphs with "
                    "onnx.compose.merge_models instead."
                )
