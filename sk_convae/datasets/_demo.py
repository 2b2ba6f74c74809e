"""Train/test splits ready for the examples and the demo."""

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch

from sk_convae.datasets._mnist import fetch_mnist

DEMO_DATASETS = ("digits", "mnist")


def load_demo_data(
    dataset="digits", *, data_home=None, n_train=None, n_test=None, progress=False
):
    """Load a train/test split of a small image dataset, for examples and the demo.

    The 8x8 digits are embedded in scikit-learn and need no network; MNIST is
    downloaded once into ``data_home`` by :func:`fetch_mnist`.

    Parameters
    ----------
    dataset : {'digits', 'mnist'}, default='digits'
        ``'digits'``: scikit-learn's embedded 8x8 digits (1797 images, values
        0..16), split 75/25 with a fixed seed; works offline. ``'mnist'``: the
        MNIST training and test sets through :func:`fetch_mnist`.
    data_home : str or path-like, default=None
        For ``'mnist'``: passed to :func:`fetch_mnist`.
    n_train, n_test : int, default=None
        Keep only the first rows of each split.
    progress : bool, default=False
        For ``'mnist'``: show a progress bar while downloading (see
        :func:`fetch_mnist`).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``X_train``, ``y_train``, ``X_test``, ``y_test``, ``image_shape`` ((H, W))
        and ``name``.

    See Also
    --------
    fetch_mnist : The whole MNIST dataset.
    sklearn.datasets.load_digits : The 8x8 digits.

    Examples
    --------
    >>> from sk_convae.datasets import load_demo_data
    >>> data = load_demo_data("digits")
    >>> data.X_train.shape, data.X_test.shape, data.image_shape
    ((1347, 64), (450, 64), (8, 8))
    """
    if dataset == "digits":
        X, y = load_digits(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.25, random_state=0, stratify=y
        )
        shape = (8, 8)
    elif dataset == "mnist":
        X_train, y_train = fetch_mnist(
            data_home, subset="train", return_X_y=True, progress=progress
        )
        X_test, y_test = fetch_mnist(
            data_home, subset="test", return_X_y=True, progress=progress
        )
        shape = (28, 28)
    else:
        raise ValueError(f"dataset must be one of {DEMO_DATASETS}, got {dataset!r}.")
    return Bunch(
        X_train=X_train[:n_train],
        y_train=y_train[:n_train],
        X_test=X_test[:n_test],
        y_test=y_test[:n_test],
        image_shape=shape,
        name=dataset,
    )
