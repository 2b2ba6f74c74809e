"""Dataset loaders in the style of ``sklearn.datasets.fetch_*``."""

from sk_convae.datasets._demo import load_demo_data
from sk_convae.datasets._mnist import fetch_fashion_mnist, fetch_mnist

__all__ = ["fetch_fashion_mnist", "fetch_mnist", "load_demo_data"]
