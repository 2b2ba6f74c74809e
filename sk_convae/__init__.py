"""sk-convae: convolutional autoencoders as scikit-learn transformers."""

from sk_convae._estimator import ConvAutoEncoderTransformer

__version__ = "0.1.0"

__all__ = ["ConvAutoEncoderTransformer", "__version__"]
