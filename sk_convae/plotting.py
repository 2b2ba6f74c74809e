"""Figures of a fitted ConvAutoEncoderTransformer, in scikit-learn's Display style.

Each display is built with ``Display.from_estimator(estimator, X, ...)`` (or from
arrays with its constructor), draws with ``.plot(ax=...)`` and returns itself, with
the matplotlib objects it made as attributes (``ax_``, ``figure_``, ``image_``...).
Image grids are drawn as one mosaic in a single Axes, so that every display fits
in any ``ax`` a user gives it.

Needs matplotlib: ``pip install sk-convae[plot]``.
"""

import numpy as np
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_array, check_is_fitted

from sk_convae._data import scale_rows
from sk_convae._network import ConvCodeAutoEncoder
from sk_convae._scaling import unscale_rows

__all__ = [
    "CodeImagesDisplay",
    "EmbeddingDisplay",
    "InterpolationDisplay",
    "ReconstructionDisplay",
    "TrainingCurveDisplay",
    "add_noise",
    "as_images",
    "interpolate",
    "mosaic",
]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Plotting needs matplotlib: pip install 'sk-convae[plot]'"
        ) from exc
    return plt


def _axes(ax):
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots()
    return ax


def as_images(rows, image_shape):
    """Reshape flattened rows into images that matplotlib can show.

    Rows of one channel become ``(H, W)`` images, rows of three channels
    ``(H, W, 3)`` RGB images, and rows of any other number of channels the
    ``(H, W)`` mean of their channels.

    Parameters
    ----------
    rows : array-like of shape (n_images, n_features)
        Flattened images, channels first, as the transformer takes them.
    image_shape : tuple of int
        ``(C, H, W)`` or ``(H, W)`` of one image, such as the fitted
        transformer's ``image_shape_``.

    Returns
    -------
    images : ndarray of shape (n_images, H, W) or (n_images, H, W, 3)
        The images, as float64.

    See Also
    --------
    mosaic : Tile the images into one.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_convae.plotting import as_images
    >>> as_images(np.zeros((5, 64)), (8, 8)).shape
    (5, 8, 8)
    >>> as_images(np.zeros((5, 3 * 32 * 32)), (3, 32, 32)).shape
    (5, 32, 32, 3)
    """
    c, h, w = image_shape if len(image_shape) == 3 else (1, *image_shape)
    images = np.asarray(rows, dtype=np.float64).reshape(-1, c, h, w)
    if c == 1:
        return images[:, 0]  # (n, 1, H, W) -> (n, H, W)
    if c == 3:
        return images.transpose(0, 2, 3, 1)  # (n, 3, H, W) -> (n, H, W, 3)
    return images.mean(axis=1)  # other channel counts: their mean, (n, H, W)


def mosaic(rows_of_images, pad=1, fill=np.nan):
    """Tile rows of images into one image, to draw in a single Axes.

    Image ``j`` of row ``i`` goes to row ``i`` and column ``j`` of the grid,
    with ``pad`` pixels of ``fill`` between two images; rows shorter than the
    longest are padded with ``fill``.

    Parameters
    ----------
    rows_of_images : list of ndarray of shape (n, H, W) or (n, H, W, 3)
        One array of images per row of the grid, all of the same ``H`` and ``W``,
        as :func:`as_images` returns them.
    pad : int, default=1
        Pixels between two images.
    fill : float, default=np.nan
        Value of the padding; NaN is drawn transparent by ``imshow``.

    Returns
    -------
    mosaic : ndarray of shape (n_rows * (H + pad) - pad, n * (W + pad) - pad)
        The grid, with a last axis of 3 for RGB images; ``n`` is the length of
        the longest row.

    See Also
    --------
    as_images : Reshape flattened rows into images.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_convae.plotting import mosaic
    >>> images = np.ones((4, 8, 8))
    >>> mosaic([images, images[:2]]).shape
    (17, 35)
    """
    n_rows = len(rows_of_images)
    n = max(len(r) for r in rows_of_images)
    h, w = rows_of_images[0].shape[1:3]
    extra = rows_of_images[0].shape[3:]
    out = np.full((n_rows * (h + pad) - pad, n * (w + pad) - pad, *extra), fill)
    for i, images in enumerate(rows_of_images):
        for j, image in enumerate(images):
            out[
                i * (h + pad) : i * (h + pad) + h, j * (w + pad) : j * (w + pad) + w
            ] = image
    return out


def _head(X, n):
    """The first ``n`` rows of ``X``, keeping its type (DataFrame column names)."""
    return X.iloc[:n] if hasattr(X, "iloc") else X[:n]


def _show_mosaic(ax, tiles, row_labels, vmin, vmax, cmap="gray"):
    if tiles.ndim == 3:
        # colour: matplotlib ignores vmin/vmax for RGB, so bring it to [0, 1] here;
        # padding (NaN) becomes white
        tiles = np.nan_to_num((tiles - vmin) / (vmax - vmin or 1.0), nan=1.0)
        tiles = tiles.clip(0.0, 1.0)
    image = ax.imshow(tiles, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    n_rows = len(row_labels)
    row_height = (tiles.shape[0] + 1) / n_rows
    ax.set_yticks([row_height * (i + 0.5) - 1 for i in range(n_rows)], row_labels)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return image


def _scale_limits(*arrays):
    low = min(float(np.nanmin(a)) for a in arrays)
    high = max(float(np.nanmax(a)) for a in arrays)
    return low, high


class ReconstructionDisplay:
    """Visualization of images above their reconstructions.

    Use :meth:`from_estimator` to reconstruct rows with a fitted transformer and
    draw them; the constructor takes arrays computed elsewhere. With noisy
    inputs, a denoising check, they are drawn between the originals and the
    reconstructions. The images are drawn as one mosaic in a single Axes, on
    the originals' grey scale.

    Parameters
    ----------
    originals : ndarray of shape (n_images, n_features)
        The images, as flattened rows.
    reconstructions : ndarray of shape (n_images, n_features)
        Their reconstructions, such as ``inverse_transform(transform(originals))``.
    image_shape : tuple of int
        ``(C, H, W)`` or ``(H, W)`` of one image.
    noisy : ndarray of shape (n_images, n_features), default=None
        The corrupted inputs that were reconstructed, drawn between the two.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The Axes drawn in.
    figure_ : matplotlib Figure
        The figure of ``ax_``.
    image_ : matplotlib AxesImage
        The mosaic; ``image_.get_array()`` has shape
        ``(n_rows * (H + 1) - 1, n_images * (W + 1) - 1)``.

    See Also
    --------
    add_noise : Corrupt rows as the training of a denoising autoencoder does.
    InterpolationDisplay : Images decoded between two codes.
    sk_convae.ConvAutoEncoderTransformer.score : The mean squared
        reconstruction error, as a number.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_convae import ConvAutoEncoderTransformer
    >>> X, y = load_digits(return_X_y=True)
    >>> ae = ConvAutoEncoderTransformer(
    ...     8, image_shape=(8, 8), channels=(4, 8), max_epochs=1, random_state=0
    ... ).fit(X)
    >>> from sk_convae.plotting import ReconstructionDisplay
    >>> display = ReconstructionDisplay.from_estimator(ae, X, n_images=8)
    >>> display.image_.get_array().shape
    (17, 71)
    """

    def __init__(self, originals, reconstructions, image_shape, *, noisy=None):
        self.originals = originals
        self.reconstructions = reconstructions
        self.image_shape = image_shape
        self.noisy = noisy

    @classmethod
    def from_estimator(
        cls, estimator, X, *, n_images=10, noise_factor=None, random_state=0, ax=None
    ):
        """Reconstruct the first ``n_images`` rows of ``X`` and plot them.

        Parameters
        ----------
        estimator : ConvAutoEncoderTransformer
            A fitted transformer.
        X : array-like of shape (n_samples, n_features)
            Flattened images on the scale the transformer was fitted on.
        n_images : int, default=10
            How many of the first rows to draw.
        noise_factor : float, default=None
            If given, corrupt the inputs with Gaussian noise of this standard
            deviation (on the network's scale, clipped as in training) and show
            the noisy inputs and the reconstructions of them: a denoising check.
        random_state : int, default=0
            Seed of the noise.
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.

        Returns
        -------
        display : ReconstructionDisplay
            The display, with the matplotlib objects it drew.
        """
        check_is_fitted(estimator)
        X = _head(X, n_images)
        originals = check_array(X, dtype="numeric")
        noisy = None
        if noise_factor is not None:
            noisy = add_noise(estimator, X, noise_factor, random_state=random_state)
        codes = estimator.transform(X if noisy is None else noisy)
        reconstructions = estimator.inverse_transform(codes)
        display = cls(originals, reconstructions, estimator.image_shape_, noisy=noisy)
        return display.plot(ax=ax)

    def plot(self, ax=None):
        """Draw the mosaic.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.

        Returns
        -------
        display : ReconstructionDisplay
            The display, with ``ax_``, ``figure_`` and ``image_`` set.
        """
        ax = _axes(ax)
        rows = [("original", self.originals)]
        if self.noisy is not None:
            rows.append(("noisy input", self.noisy))
        rows.append(("reconstruction", self.reconstructions))
        images = [as_images(r, self.image_shape) for _, r in rows]
        vmin, vmax = _scale_limits(images[0])
        self.image_ = _show_mosaic(
            ax, mosaic(images), [label for label, _ in rows], vmin, vmax
        )
        self.ax_, self.figure_ = ax, ax.figure
        return self


def add_noise(estimator, X, noise_factor, *, random_state=0):
    """Corrupt ``X`` as the training of a denoising autoencoder does.

    Gaussian noise of standard deviation ``noise_factor`` is added on the
    network's scale (pixels in [0, 1] for intensities) and clipped to [0, 1] for
    intensities, as the training-time corruption of ``noise_factor`` does; the
    result is on the caller's scale, ready for ``transform``.

    Parameters
    ----------
    estimator : ConvAutoEncoderTransformer
        A fitted transformer, whose scaling is used.
    X : array-like of shape (n_samples, n_features)
        Flattened images on the scale the transformer was fitted on.
    noise_factor : float
        Standard deviation of the noise, on the network's scale.
    random_state : int, default=0
        Seed of the noise.

    Returns
    -------
    X_noisy : ndarray of shape (n_samples, n_features)
        The corrupted rows, float32.

    See Also
    --------
    ReconstructionDisplay.from_estimator : Draw noisy inputs and their
        reconstructions, with ``noise_factor``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_convae import ConvAutoEncoderTransformer
    >>> X, y = load_digits(return_X_y=True)
    >>> ae = ConvAutoEncoderTransformer(
    ...     8, image_shape=(8, 8), channels=(4, 8), max_epochs=1, random_state=0
    ... ).fit(X)
    >>> from sk_convae.plotting import add_noise
    >>> X_noisy = add_noise(ae, X[:5], noise_factor=0.3)
    >>> X_noisy.shape, bool(X_noisy.min() >= 0 and X_noisy.max() <= 16)
    ((5, 64), True)
    """
    check_is_fitted(estimator)
    scaling = estimator.data_offset_, estimator.data_scale_
    scaled = scale_rows(check_array(X, dtype="numeric"), *scaling)
    rng = np.random.default_rng(random_state)
    scaled += noise_factor * rng.standard_normal(scaled.shape, dtype=np.float32)
    if estimator.net_.module_.noise.clip:  # intensities stay in [0, 1]
        np.clip(scaled, 0.0, 1.0, out=scaled)
    return unscale_rows(scaled, *scaling)


class CodeImagesDisplay:
    """Visualization of codes, each drawn as a small image.

    Each code is reshaped to ``code_shape`` and the codes are drawn side by side,
    as the Keras tutorial on autoencoders drew its 4x32 codes. Use
    :meth:`from_estimator` to encode rows with a fitted transformer.

    Parameters
    ----------
    codes : ndarray of shape (n_images, n_components)
        The codes, as ``transform`` returns them.
    code_shape : tuple of int
        ``(rows, cols)`` that each code is reshaped to.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The Axes drawn in.
    figure_ : matplotlib Figure
        The figure of ``ax_``.
    image_ : matplotlib AxesImage
        The mosaic; ``image_.get_array()`` has shape
        ``(rows, n_images * (cols + 1) - 1)``.

    See Also
    --------
    EmbeddingDisplay : The codes as points in 2-D.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_convae import ConvAutoEncoderTransformer
    >>> X, y = load_digits(return_X_y=True)
    >>> ae = ConvAutoEncoderTransformer(
    ...     8, image_shape=(8, 8), channels=(4, 8), max_epochs=1, random_state=0
    ... ).fit(X)
    >>> from sk_convae.plotting import CodeImagesDisplay
    >>> display = CodeImagesDisplay.from_estimator(ae, X, n_images=5)
    >>> display.code_shape, display.image_.get_array().shape
    ((2, 4), (2, 24))
    """

    def __init__(self, codes, code_shape):
        self.codes = codes
        self.code_shape = code_shape

    @classmethod
    def from_estimator(cls, estimator, X, *, n_images=10, code_shape=None, ax=None):
        """Encode the first ``n_images`` rows of ``X`` and draw the codes.

        Parameters
        ----------
        estimator : ConvAutoEncoderTransformer
            A fitted transformer.
        X : array-like of shape (n_samples, n_features)
            Flattened images on the scale the transformer was fitted on.
        n_images : int, default=10
            How many of the first rows to encode.
        code_shape : tuple of int, default=None
            ``(rows, cols)`` that each code is reshaped to. None is the feature
            map's layout for ``architecture='conv'`` (the tutorial's 4 x 32 for
            its 4x4x8 code: height by width times channels, the channels of a
            pixel side by side) and the most square factorisation of
            ``n_components`` otherwise.
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.

        Returns
        -------
        display : CodeImagesDisplay
            The display, with the matplotlib objects it drew.
        """
        codes = estimator.transform(_head(X, n_images))
        module = estimator.net_.module_
        if code_shape is None and isinstance(module, ConvCodeAutoEncoder):
            c, h, w = module.code_map_shape
            # (n, C*H*W) channels first -> (n, H, W, C) -> (n, H, W*C)
            codes = (
                codes.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(-1, h * w * c)
            )
            code_shape = (h, w * c)
        if code_shape is None:
            code_shape = _default_code_shape(estimator)
        return cls(codes, code_shape).plot(ax=ax)

    def plot(self, ax=None):
        """Draw the codes side by side.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.

        Returns
        -------
        display : CodeImagesDisplay
            The display, with ``ax_``, ``figure_`` and ``image_`` set.
        """
        ax = _axes(ax)
        rows, cols = self.code_shape
        codes = np.asarray(self.codes).reshape(-1, rows, cols)
        vmin, vmax = _scale_limits(codes)
        self.image_ = _show_mosaic(ax, mosaic([codes]), ["code"], vmin, vmax, "viridis")
        self.ax_, self.figure_ = ax, ax.figure
        return self


def _default_code_shape(estimator):
    """The most square (rows, cols) that holds ``n_components`` numbers."""
    d = estimator.n_components_
    rows = max(r for r in range(1, int(np.sqrt(d)) + 1) if d % r == 0)
    return (rows, d // rows)


class EmbeddingDisplay:
    """Visualization of codes as a scatter plot in 2-D, coloured by label.

    Use :meth:`from_estimator` to encode rows with a fitted transformer; codes
    wider than 2 are then projected on their first two principal components,
    and codes of width 1 drawn on a line.

    Parameters
    ----------
    embedding : ndarray of shape (n_samples, 2)
        The points to draw.
    y : array-like of shape (n_samples,), default=None
        Labels that colour the points, with a legend; None draws them in one
        colour.
    axis_labels : tuple of str, default=("code 0", "code 1")
        Labels of the x and y axes.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The Axes drawn in.
    figure_ : matplotlib Figure
        The figure of ``ax_``.
    scatter_ : matplotlib PathCollection
        The points; ``scatter_.get_offsets()`` is the embedding.

    See Also
    --------
    CodeImagesDisplay : Each code drawn as a small image.
    sklearn.manifold.TSNE : A non-linear 2-D embedding, for wider codes.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_convae import ConvAutoEncoderTransformer
    >>> X, y = load_digits(return_X_y=True)
    >>> ae = ConvAutoEncoderTransformer(
    ...     8, image_shape=(8, 8), channels=(4, 8), max_epochs=1, random_state=0
    ... ).fit(X)
    >>> from sk_convae.plotting import EmbeddingDisplay
    >>> display = EmbeddingDisplay.from_estimator(ae, X, y)
    >>> display.scatter_.get_offsets().shape
    (1797, 2)
    """

    def __init__(self, embedding, y=None, *, axis_labels=("code 0", "code 1")):
        self.embedding = embedding
        self.y = y
        self.axis_labels = axis_labels

    @classmethod
    def from_estimator(cls, estimator, X, y=None, *, ax=None):
        """Encode ``X`` and scatter the codes (their 2-D PCA if wider than 2).

        Parameters
        ----------
        estimator : ConvAutoEncoderTransformer
            A fitted transformer.
        X : array-like of shape (n_samples, n_features)
            Flattened images on the scale the transformer was fitted on.
        y : array-like of shape (n_samples,), default=None
            Labels that colour the points.
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.

        Returns
        -------
        display : EmbeddingDisplay
            The display, with the matplotlib objects it drew.
        """
        codes = estimator.transform(X)
        labels = ("code 0", "code 1")
        if codes.shape[1] > 2:
            codes = PCA(n_components=2, random_state=0).fit_transform(codes)
            labels = ("PC 1 of the codes", "PC 2 of the codes")
        elif codes.shape[1] == 1:
            codes = np.column_stack([codes[:, 0], np.zeros(len(codes))])
        return cls(codes, y, axis_labels=labels).plot(ax=ax)

    def plot(self, ax=None):
        """Draw the scatter plot.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.

        Returns
        -------
        display : EmbeddingDisplay
            The display, with ``ax_``, ``figure_`` and ``scatter_`` set.
        """
        ax = _axes(ax)
        emb = np.asarray(self.embedding)
        kwargs = {"s": 4, "alpha": 0.7}
        if self.y is not None:
            kwargs.update(c=np.asarray(self.y), cmap="tab10")
        self.scatter_ = ax.scatter(emb[:, 0], emb[:, 1], **kwargs)
        if self.y is not None:
            ax.legend(*self.scatter_.legend_elements(), title="label", fontsize=7)
        ax.set_xlabel(self.axis_labels[0])
        ax.set_ylabel(self.axis_labels[1])
        self.ax_, self.figure_ = ax, ax.figure
        return self


class TrainingCurveDisplay:
    """Visualization of the training (and validation) loss per epoch.

    Use :meth:`from_estimator` to draw a fitted transformer's ``history_``: the
    training loss and, with early stopping, the loss of the validation rows.

    Parameters
    ----------
    history : list of dict
        The history of skorch: one dict per epoch with ``epoch``,
        ``train_loss`` and, when rows were held out, ``valid_loss``.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The Axes drawn in.
    figure_ : matplotlib Figure
        The figure of ``ax_``.
    lines_ : dict of str to matplotlib Line2D
        One line per loss that the history has (``'train_loss'``,
        ``'valid_loss'``).

    See Also
    --------
    sk_convae.callbacks.TensorBoard : The losses and reconstructions during
        training, in TensorBoard.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_convae import ConvAutoEncoderTransformer
    >>> X, y = load_digits(return_X_y=True)
    >>> ae = ConvAutoEncoderTransformer(
    ...     8, image_shape=(8, 8), channels=(4, 8), max_epochs=1, random_state=0
    ... ).fit(X)
    >>> from sk_convae.plotting import TrainingCurveDisplay
    >>> display = TrainingCurveDisplay.from_estimator(ae)
    >>> sorted(display.lines_)
    ['train_loss']
    """

    def __init__(self, history):
        self.history = history

    @classmethod
    def from_estimator(cls, estimator, *, ax=None):
        """Plot the fitted transformer's ``history_``.

        Parameters
        ----------
        estimator : ConvAutoEncoderTransformer
            A fitted transformer.
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.

        Returns
        -------
        display : TrainingCurveDisplay
            The display, with the matplotlib objects it drew.
        """
        check_is_fitted(estimator)
        return cls(estimator.history_).plot(ax=ax)

    def plot(self, ax=None):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.

        Returns
        -------
        display : TrainingCurveDisplay
            The display, with ``ax_``, ``figure_`` and ``lines_`` set.
        """
        ax = _axes(ax)
        epochs = [row["epoch"] for row in self.history]
        self.lines_ = {}
        for key in ("train_loss", "valid_loss"):
            if all(key in row for row in self.history):
                (self.lines_[key],) = ax.plot(
                    epochs, [row[key] for row in self.history], marker=".", label=key
                )
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.legend()
        self.ax_, self.figure_ = ax, ax.figure
        return self


class InterpolationDisplay:
    """Visualization of images decoded along the line between two codes.

    Use :meth:`from_estimator` to encode two images with a fitted transformer
    and decode evenly spaced points between their codes: a smooth passage from
    one image to the other shows a code space without holes.

    Parameters
    ----------
    images : ndarray of shape (n_steps, n_features)
        Decoded images, first to last.
    image_shape : tuple of int
        ``(C, H, W)`` or ``(H, W)`` of one image.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The Axes drawn in.
    figure_ : matplotlib Figure
        The figure of ``ax_``.
    image_ : matplotlib AxesImage
        The mosaic; ``image_.get_array()`` has shape
        ``(H, n_steps * (W + 1) - 1)``.

    See Also
    --------
    interpolate : The decoded images, without drawing them.
    ReconstructionDisplay : Images above their reconstructions.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_convae import ConvAutoEncoderTransformer
    >>> X, y = load_digits(return_X_y=True)
    >>> ae = ConvAutoEncoderTransformer(
    ...     8, image_shape=(8, 8), channels=(4, 8), max_epochs=1, random_state=0
    ... ).fit(X)
    >>> from sk_convae.plotting import InterpolationDisplay
    >>> display = InterpolationDisplay.from_estimator(ae, X[0], X[1], n_steps=6)
    >>> display.image_.get_array().shape
    (8, 53)
    """

    def __init__(self, images, image_shape):
        self.images = images
        self.image_shape = image_shape

    @classmethod
    def from_estimator(cls, estimator, x_start, x_end, *, n_steps=10, ax=None):
        """Encode two images, walk the line between their codes, decode each step.

        Parameters
        ----------
        estimator : ConvAutoEncoderTransformer
            A fitted transformer.
        x_start, x_end : array-like of shape (n_features,)
            The first and the last image, flattened.
        n_steps : int, default=10
            Images to decode, both ends included.
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.

        Returns
        -------
        display : InterpolationDisplay
            The display, with the matplotlib objects it drew.
        """
        images = interpolate(estimator, x_start, x_end, n_steps=n_steps)
        return cls(images, estimator.image_shape_).plot(ax=ax)

    def plot(self, ax=None):
        """Draw the decoded steps in a row.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.

        Returns
        -------
        display : InterpolationDisplay
            The display, with ``ax_``, ``figure_`` and ``image_`` set.
        """
        ax = _axes(ax)
        images = as_images(self.images, self.image_shape)
        vmin, vmax = _scale_limits(images)
        self.image_ = _show_mosaic(ax, mosaic([images]), ["decoded"], vmin, vmax)
        self.ax_, self.figure_ = ax, ax.figure
        return self


def interpolate(estimator, x_start, x_end, *, n_steps=10):
    """Decode ``n_steps`` evenly spaced points between the codes of two images.

    The two images are encoded, the straight line between their codes is cut
    into ``n_steps - 1`` equal parts, and each point is decoded with
    ``inverse_transform``.

    Parameters
    ----------
    estimator : ConvAutoEncoderTransformer
        A fitted transformer.
    x_start, x_end : array-like of shape (n_features,)
        The first and the last image, flattened.
    n_steps : int, default=10
        Images to decode, both ends included.

    Returns
    -------
    images : ndarray of shape (n_steps, n_features)
        The decoded images, on the caller's scale, first to last.

    See Also
    --------
    InterpolationDisplay : Draw them.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_convae import ConvAutoEncoderTransformer
    >>> X, y = load_digits(return_X_y=True)
    >>> ae = ConvAutoEncoderTransformer(
    ...     8, image_shape=(8, 8), channels=(4, 8), max_epochs=1, random_state=0
    ... ).fit(X)
    >>> from sk_convae.plotting import interpolate
    >>> interpolate(ae, X[0], X[1], n_steps=5).shape
    (5, 64)
    """
    pair = np.vstack([np.ravel(x_start), np.ravel(x_end)])
    z_start, z_end = estimator.transform(pair)
    t = np.linspace(0.0, 1.0, n_steps)[:, None]
    return estimator.inverse_transform((1 - t) * z_start + t * z_end)
