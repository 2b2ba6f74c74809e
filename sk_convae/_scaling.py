"""How the estimator brings any real input to the scale the network trains on.

Users pass pixels as floats in [0, 1], as raw 0..255 bytes, or standardised data,
and expect ``inverse_transform`` to answer on their own scale. One global affine map
``x -> (x - offset) / scale``, learned in ``fit``, covers all three:

- ``uint8`` input: offset 0, scale 255 (pixel intensities);
- non-negative input within [0, 1]: unchanged;
- other non-negative input (counts, intensities up to some maximum): offset 0,
  scale = the training maximum, so the data lies in [0, 1];
- input with negative values (e.g. standardised): offset = mean, scale = std.

The first three are *intensities* in [0, 1], which binary cross-entropy can model;
the last is not, and only the squared error applies to it. A single global map, not
one per feature, keeps the relative brightness of pixels that convolutions rely on.
"""

import numpy as np

INTENSITY = "intensity"
STANDARDIZED = "standardized"

# Rows converted at a time, so that no float64 copy of a large input is ever made.
_CHUNK_ROWS = 4096


def fit_scaling(X):
    """Learn ``(offset, scale, kind)`` from the training data.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Finite numeric data, any dtype.

    Returns
    -------
    offset : float
    scale : float
        Positive.
    kind : {'intensity', 'standardized'}
        Whether ``(X - offset) / scale`` lies in [0, 1].
    """
    if X.dtype == np.uint8:
        return 0.0, 255.0, INTENSITY
    low, high = float(X.min()), float(X.max())
    if low >= 0.0:
        return 0.0, (high if high > 1.0 else 1.0), INTENSITY
    mean = float(np.mean(X, dtype=np.float64))
    std = float(np.std(X, dtype=np.float64))
    return mean, (std if std > 0.0 else 1.0), STANDARDIZED


def unscale_rows(rows, offset, scale):
    """Network-scale rows back on the caller's scale: ``rows * scale + offset``."""
    return np.asarray(rows, dtype=np.float32) * np.float32(scale) + np.float32(offset)


def scale_rows(X, offset, scale):
    """``(X - offset) / scale`` as a new float32 array; ``X`` is left untouched.

    The arithmetic is done in float64 chunk by chunk, so that ``uint8`` pixels and the
    same pixels divided by 255 give bit-identical network inputs.
    """
    out = np.empty(X.shape, dtype=np.float32)
    for start in range(0, X.shape[0], _CHUNK_ROWS):
        chunk = np.asarray(X[start : start + _CHUNK_ROWS], dtype=np.float64)
        out[start : start + _CHUNK_ROWS] = (chunk - offset) / scale
    return out
