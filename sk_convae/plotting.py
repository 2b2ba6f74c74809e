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
    """(n, C*H*W) -> (n, H, W) for one channel, (n, H, W, C) for three.

    ``image_shape`` is ``(C, H, W)`` or ``(H, W)``.
    """
    c, h, w = image_shape if len(image_shape) == 3 else (1, *image_shape)
    images = np.asarray(rows, dtype=np.float64).reshape(-1, c, h, w)
    if c == 1:
        return images[:, 0]  # (n, 1, H, W) -> (n, H, W)
    if c == 3:
        return images.transpose(0, 2, 3, 1)  # (n, 3, H, W) -> (n, H, W, 3)
    return images.mean(axis=1)  # other channel counts: their mean, (n, H, W)


def mosaic(rows_of_images, pad=1, fill=np.nan):
    """Tile ``rows_of_images`` (a list of (n, H, W[, 3]) arrays) into one image.

    Returns
    -------
    mosaic : ndarray of shape (n_rows * (H + pad) - pad, n * (W + pad) - pad[, 3])
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
    """Originals above their reconstructions (and optionally the noisy inputs).

    Parameters
    ----------
    originals : ndarray of shape (n_images, n_features)
    reconstructions : ndarray of shape (n_images, n_features)
    image_shape : tuple of int
        ``(C, H, W)`` of one image.
    noisy : ndarray of shape (n_images, n_features), default=None
        The corrupted inputs that were reconstructed, drawn between the two.

    Attributes
    ----------
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure
    image_ : matplotlib AxesImage
        The mosaic; ``image_.get_array()`` has shape
        ``(n_rows * (H + 1) - 1, n_images * (W + 1) - 1)``.
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
        estimator : fitted ConvAutoEncoderTransformer
        X : array-like of shape (n_samples, n_features)
        n_images : int, default=10
        noise_factor : float, default=None
            If given, corrupt the inputs with Gaussian noise of this standard
            deviation (on the network's scale, clipped like in training) and show
            the noisy inputs and the reconstructions of them: a denoising check.
        random_state : int, default=0
            Seed of the noise.
        ax : matplotlib Axes, default=None

        Returns
        -------
        display : ReconstructionDisplay
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
    """``X`` corrupted as in training with ``noise_factor``, on the caller's scale.

    Gaussian noise of standard deviation ``noise_factor`` is added on the network's
    scale (pixels in [0, 1] for intensities) and clipped to [0, 1] for intensities,
    as the training-time corruption does.

    Returns
    -------
    X_noisy : ndarray of shape (n_samples, n_features), float32
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
    """Each code drawn as a small image, as the Keras tutorial drew its 4x32 codes.

    Parameters
    ----------
    codes : ndarray of shape (n_images, n_components)
    code_shape : tuple of int
        ``(rows, cols)`` that each code is reshaped to.

    Attributes
    ----------
    ax_, figure_, image_ : matplotlib objects
        ``image_.get_array()`` has shape ``(rows, n_images * (cols + 1) - 1)``.
    """

    def __init__(self, codes, code_shape):
        self.codes = codes
        self.code_shape = code_shape

    @classmethod
    def from_estimator(cls, estimator, X, *, n_images=10, code_shape=None, ax=None):
        """Encode the first ``n_images`` rows of ``X`` and draw the codes.

        ``code_shape`` defaults to the feature map's layout for
        ``architecture='conv'`` (the tutorial's 4 x 32 for its 4x4x8 code: height by
        width times channels, the channels of a pixel side by side) and to the most
        square factorisation of ``n_components`` otherwise.
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
        """Draw the codes side by side; returns the display."""
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
    """Scatter of the codes in 2-D, coloured by label.

    Codes wider than 2 are projected on their first two principal components.

    Parameters
    ----------
    embedding : ndarray of shape (n_samples, 2)
    y : array-like of shape (n_samples,), default=None
    axis_labels : tuple of str, default=("code 0", "code 1")

    Attributes
    ----------
    ax_, figure_ : matplotlib objects
    scatter_ : matplotlib PathCollection
        ``scatter_.get_offsets()`` is the embedding.
    """

    def __init__(self, embedding, y=None, *, axis_labels=("code 0", "code 1")):
        self.embedding = embedding
        self.y = y
        self.axis_labels = axis_labels

    @classmethod
    def from_estimator(cls, estimator, X, y=None, *, ax=None):
        """Encode ``X`` and scatter the codes (their 2-D PCA if wider than 2)."""
        codes = estimator.transform(X)
        labels = ("code 0", "code 1")
        if codes.shape[1] > 2:
            codes = PCA(n_components=2, random_state=0).fit_transform(codes)
            labels = ("PC 1 of the codes", "PC 2 of the codes")
        elif codes.shape[1] == 1:
            codes = np.column_stack([codes[:, 0], np.zeros(len(codes))])
        return cls(codes, y, axis_labels=labels).plot(ax=ax)

    def plot(self, ax=None):
        """Draw the scatter; returns the display."""
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
    """Training (and validation) loss per epoch, from ``history_``.

    Parameters
    ----------
    history : list of dict
        skorch's history: one dict per epoch with ``train_loss`` and, when a
        validation split was used, ``valid_loss``.

    Attributes
    ----------
    ax_, figure_ : matplotlib objects
    lines_ : dict of str to matplotlib Line2D
        One line per loss that the history has.
    """

    def __init__(self, history):
        self.history = history

    @classmethod
    def from_estimator(cls, estimator, *, ax=None):
        """Plot the fitted estimator's ``history_``."""
        check_is_fitted(estimator)
        return cls(estimator.history_).plot(ax=ax)

    def plot(self, ax=None):
        """Draw the curves; returns the display."""
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
    """Images decoded along the straight line between two codes.

    Parameters
    ----------
    images : ndarray of shape (n_steps, n_features)
        Decoded images, first to last.
    image_shape : tuple of int

    Attributes
    ----------
    ax_, figure_, image_ : matplotlib objects
        ``image_.get_array()`` has shape ``(H, n_steps * (W + 1) - 1)``.
    """

    def __init__(self, images, image_shape):
        self.images = images
        self.image_shape = image_shape

    @classmethod
    def from_estimator(cls, estimator, x_start, x_end, *, n_steps=10, ax=None):
        """Encode two images, walk the line between their codes, decode each step."""
        images = interpolate(estimator, x_start, x_end, n_steps=n_steps)
        return cls(images, estimator.image_shape_).plot(ax=ax)

    def plot(self, ax=None):
        """Draw the decoded steps in a row; returns the display."""
        ax = _axes(ax)
        images = as_images(self.images, self.image_shape)
        vmin, vmax = _scale_limits(images)
        self.image_ = _show_mosaic(ax, mosaic([images]), ["decoded"], vmin, vmax)
        self.ax_, self.figure_ = ax, ax.figure
        return self


def interpolate(estimator, x_start, x_end, *, n_steps=10):
    """Decode ``n_steps`` evenly spaced points between the codes of two images.

    Parameters
    ----------
    estimator : fitted ConvAutoEncoderTransformer
    x_start, x_end : array-like of shape (n_features,)
    n_steps : int, default=10
        Includes both ends.

    Returns
    -------
    images : ndarray of shape (n_steps, n_features)
    """
    pair = np.vstack([np.ravel(x_start), np.ravel(x_end)])
    z_start, z_end = estimator.transform(pair)
    t = np.linspace(0.0, 1.0, n_steps)[:, None]
    return estimator.inverse_transform((1 - t) * z_start + t * z_end)
