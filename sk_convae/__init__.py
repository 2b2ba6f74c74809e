"""sk-convae: convolutional autoencoders as scikit-learn transformers."""

from sk_convae._estimator import ConvAutoEncoderTransformer
from sk_convae._onnx import register_onnx_converter

__version__ = "0.1.0"

__all__ = ["ConvAutoEncoderTransformer", "__version__", "register_onnx_converter"]
