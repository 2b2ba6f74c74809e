"""MNIST and Fashion-MNIST in the style of ``sklearn.datasets.fetch_*``."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.datasets import get_data_home
from sklearn.utils import Bunch

from sk_convae.datasets._download import (
    DELAY_S,
    N_RETRIES,
    RemoteFile,
    check_retry_options,
    download,
    read_verified,
)
from sk_convae.datasets._idx import parse_idx

_SUBSETS = ("train", "test", "all")

# Decompressed sizes of the four files, the same for MNIST and Fashion-MNIST: the
# IDX header and 60,000 or 10,000 images of 28x28 bytes or labels of one byte.
# Decompression stops past them, so a damaged file never fills the memory.
_TRAIN_IMAGES = 16 + 60_000 * 28 * 28
_TRAIN_LABELS = 8 + 60_000
_TEST_IMAGES = 16 + 10_000 * 28 * 28
_TEST_LABELS = 8 + 10_000


@dataclass(frozen=True)
class IdxDataset:
    """A dataset published as four gzip-compressed IDX files, and where to get them."""

    folder: str
    mirrors: tuple
    train: tuple  # (images RemoteFile, labels RemoteFile)
    test: tuple
    target_names: tuple
    descr: str


MNIST = IdxDataset(
    folder="mnist",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    # Checksums of the decompressed files, so that any faithful re-compression of
    # the canonical files is accepted.
    train=(
        RemoteFile(
            "train-images-idx3-ubyte.gz",
            size=_TRAIN_IMAGES,
            md5="6bbc9ace898e44ae57da46a324031adb",
            sha256="ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ),
        RemoteFile(
            "train-labels-idx1-ubyte.gz",
            size=_TRAIN_LABELS,
            md5="a25bea736e30d166cdddb491f175f624",
            sha256="65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
    ),
    test=(
        RemoteFile(
            "t10k-images-idx3-ubyte.gz",
            size=_TEST_IMAGES,
            md5="2646ac647ad5339dbf082846283269ea",
            sha256="0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
        RemoteFile(
            "t10k-labels-idx1-ubyte.gz",
            size=_TEST_LABELS,
            md5="27ae3e4e09519cfbb04c329615203637",
            sha256="ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    ),
    target_names=tuple(str(d) for d in range(10)),
    descr="""\
MNIST handwritten digits
------------------------

70,000 grayscale images of handwritten digits, 28x28 pixels with values 0..255:
60,000 for training and 10,000 for testing, labels 0-9. By Yann LeCun, Corinna
Cortes and Christopher J.C. Burges; distributed under CC BY-SA 3.0.

``data`` holds the images flattened row by row, (n_samples, 784) uint8;
``images`` the same pixels as (n_samples, 28, 28); ``target`` the digits.
""",
)

FASHION_MNIST = IdxDataset(
    folder="fashion-mnist",
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    # Fashion-MNIST publishes the md5 of each .gz file.
    train=(
        RemoteFile(
            "train-images-idx3-ubyte.gz",
            size=_TRAIN_IMAGES,
            gz_md5="8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        ),
        RemoteFile(
            "train-labels-idx1-ubyte.gz",
            size=_TRAIN_LABELS,
            gz_md5="25c81989df183df01b3e8a0aad5dffbe",
        ),
    ),
    test=(
        RemoteFile(
            "t10k-images-idx3-ubyte.gz",
            size=_TEST_IMAGES,
            gz_md5="bef4ecab320f06d8554ea6380940ec79",
        ),
        RemoteFile(
            "t10k-labels-idx1-ubyte.gz",
            size=_TEST_LABELS,
            gz_md5="bb300cfdad3c16e7a12a480ee83cd310",
        ),
    ),
    target_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    descr="""\
Fashion-MNIST
-------------

70,000 grayscale images of Zalando's articles of clothing, 28x28 pixels with
values 0..255: 60,000 for training and 10,000 for testing, in 10 classes. By Han
Xiao, Kashif Rasul and Roland Vollgraf; distributed under the MIT licence. A
drop-in replacement for MNIST with the same sizes and splits.

``data`` holds the images flattened row by row, (n_samples, 784) uint8;
``images`` the same pixels as (n_samples, 28, 28); ``target`` the class indices,
named in ``target_names``.
""",
)


def fetch_mnist(
    data_home=None,
    *,
    subset="train",
    download_if_missing=True,
    return_X_y=False,
    n_retries=N_RETRIES,
    delay=DELAY_S,
    progress=False,
):
    """Load the MNIST handwritten digits, downloading them once if needed.

    The four canonical IDX files live in ``<data_home>/mnist/``. When they are
    there, the network is never used; each file is checked against the published
    checksums of its decompressed bytes every time it is read.

    A missing file is downloaded from the first of three mirrors that serves it
    whole: each mirror is tried in turn, and when all of them fail (a dropped
    connection, 30 s without data, a server error, a truncated or corrupt body)
    the round is repeated up to ``n_retries`` times, after ``delay``,
    ``2 * delay``, ``4 * delay``, ... seconds. The bytes go to a temporary file
    that is renamed into place only once checked: an interrupted download never
    leaves a file behind.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder for the datasets. None uses scikit-learn's ``get_data_home()``:
        ``~/scikit_learn_data``, or the ``SCIKIT_LEARN_DATA`` environment variable.

    subset : {'train', 'test', 'all'}, default='train'
        The 60,000 training images, the 10,000 test images, or both (train first).

    download_if_missing : bool, default=True
        If False, raise an OSError when the files are not on disk instead of
        downloading them.

    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    n_retries : int, default=3
        Rounds over the mirrors after the first one, when every mirror failed.
        A mirror that says it does not have the file (HTTP 404, 403, ...) is not
        asked again.

    delay : float, default=1.0
        Seconds before the first retry round; each further round waits twice as
        long as the one before (at most 60 s).

    progress : bool, default=False
        Show a progress bar on stderr (tqdm) while downloading, and a line for
        each failed attempt. Nothing is shown when the files are on disk.

    Returns
    -------
    dataset : :class:`~sklearn.utils.Bunch`
        With ``data``, ndarray of shape (n_samples, 784), uint8 in 0..255;
        ``images``, ndarray of shape (n_samples, 28, 28), the same pixels;
        ``target``, ndarray of shape (n_samples,), int64 digits 0-9;
        ``feature_names``, ``target_names`` and ``DESCR``.

    (data, target) : tuple if ``return_X_y`` is True
        ``data`` of shape (n_samples, 784) and ``target`` of shape
        (n_samples,), as above.

    Raises
    ------
    OSError
        If a file is missing and cannot be downloaded; the message names each
        URL tried with its last error, and says where to put the file by hand.
    ValueError
        If a file on disk is corrupt or truncated; the message names it.

    See Also
    --------
    fetch_fashion_mnist : Fashion-MNIST, the same interface.
    load_demo_data : A train/test split of MNIST or of the 8x8 digits.
    sklearn.datasets.fetch_openml : MNIST from OpenML (``'mnist_784'``), as
        float64 by default.

    Examples
    --------
    >>> from sk_convae.datasets import fetch_mnist
    >>> mnist = fetch_mnist(subset="test")  # doctest: +SKIP
    >>> mnist.data.shape, mnist.images.shape  # doctest: +SKIP
    ((10000, 784), (10000, 28, 28))
    """
    return _fetch(
        MNIST,
        data_home,
        subset,
        download_if_missing,
        return_X_y,
        dict(n_retries=n_retries, delay=delay, progress=progress),
    )


def fetch_fashion_mnist(
    data_home=None,
    *,
    subset="train",
    download_if_missing=True,
    return_X_y=False,
    n_retries=N_RETRIES,
    delay=DELAY_S,
    progress=False,
):
    """Load Fashion-MNIST, downloading it once if needed.

    Same interface, downloads and return value as :func:`fetch_mnist`; the files
    live in ``<data_home>/fashion-mnist/`` and are checked against the md5
    checksums that Fashion-MNIST publishes for its .gz files.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder for the datasets; None uses scikit-learn's ``get_data_home()``.

    subset : {'train', 'test', 'all'}, default='train'
        The 60,000 training images, the 10,000 test images, or both.

    download_if_missing : bool, default=True
        If False, raise an OSError when the files are not on disk.

    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    n_retries : int, default=3
        Rounds over the mirrors after the first one, when every mirror failed.

    delay : float, default=1.0
        Seconds before the first retry round, doubling for each further round.

    progress : bool, default=False
        Show a progress bar on stderr while downloading.

    Returns
    -------
    dataset : :class:`~sklearn.utils.Bunch`
        ``data`` (n_samples, 784) uint8, ``images`` (n_samples, 28, 28),
        ``target`` (n_samples,) int64 class indices, ``feature_names``,
        ``target_names`` and ``DESCR``.

    (data, target) : tuple if ``return_X_y`` is True
        ``data`` of shape (n_samples, 784) and ``target`` of shape
        (n_samples,), as above.

    Raises
    ------
    OSError
        If a file is missing and cannot be downloaded.
    ValueError
        If a file on disk is corrupt or truncated.

    See Also
    --------
    fetch_mnist : The MNIST handwritten digits, the same interface.
    load_demo_data : A train/test split of a small image dataset.

    Examples
    --------
    >>> from sk_convae.datasets import fetch_fashion_mnist
    >>> X, y = fetch_fashion_mnist(subset="test", return_X_y=True)  # doctest: +SKIP
    >>> X.shape, y.shape  # doctest: +SKIP
    ((10000, 784), (10000,))
    """
    return _fetch(
        FASHION_MNIST,
        data_home,
        subset,
        download_if_missing,
        return_X_y,
        dict(n_retries=n_retries, delay=delay, progress=progress),
    )


def _fetch(spec, data_home, subset, download_if_missing, return_X_y, options):
    if subset not in _SUBSETS:
        raise ValueError(f"subset must be one of {_SUBSETS}, got {subset!r}.")
    check_retry_options(options["n_retries"], options["delay"])
    folder = Path(get_data_home(data_home)) / spec.folder
    splits = {"train": [spec.train], "test": [spec.test]}.get(
        subset, [spec.train, spec.test]
    )
    images, labels = [], []
    for image_file, label_file in splits:
        images.append(_load(spec, image_file, folder, download_if_missing, options))
        labels.append(_load(spec, label_file, folder, download_if_missing, options))
    images = np.concatenate(images) if len(images) > 1 else images[0]
    target = np.concatenate(labels).astype(np.int64)
    if images.ndim != 3 or target.shape != (images.shape[0],):
        raise ValueError(
            f"The files in {folder} do not match: images {images.shape}, "
            f"labels {target.shape}."
        )
    n, h, w = images.shape
    data = images.reshape(n, h * w)  # (n, 28, 28) -> (n, 784), a view
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        images=images,
        target=target,
        feature_names=[f"pixel_{i}_{j}" for i in range(h) for j in range(w)],
        target_names=list(spec.target_names),
        DESCR=spec.descr,
    )


def _load(spec, remote, folder, download_if_missing, options):
    path = folder / remote.filename
    if not path.exists():
        if not download_if_missing:
            raise OSError(
                f"{remote.filename} is not in {folder} and download_if_missing is "
                f"False. Put the four files {_filenames(spec)} (as published, "
                f"gzip-compressed) in {folder}, or pass data_home= pointing to the "
                "folder above one that has them."
            )
        download(remote, spec.mirrors, folder, **options)
    return parse_idx(read_verified(path, remote), name=str(path))


def _filenames(spec):
    return ", ".join(f.filename for f in (*spec.train, *spec.test))
