"""sk-convae: convolutional autoencoders as scikit-learn transformers."""

from sk_convae._estimator import ConvAutoEncoderTransformer
from sk_convae._onnx import register_onnx_converter
from sk_convae._version import __version__

__all__ = ["ConvAutoEncoderTransformer", "__version__", "register_onnx_converter"]
