"""How the estimator brings any real input to the scale the network trains on.

Users pass pixels as floats in [0, 1], as raw 0..255 bytes, 16-bit counts, or
standardised data, and expect ``inverse_transform`` to answer on their own scale.
One global affine map ``x -> (x - offset) / scale``, learned in ``fit``, covers all:

- ``uint8`` input: offset 0, scale 255 (pixel intensities), whatever the rows hold;
- non-negative input within [0, 1]: unchanged;
- other non-negative input (counts, intensities up to some maximum): offset 0,
  scale = the training maximum, so the data lies in [0, 1];
- input with negative values (e.g. standardised): offset = mean, scale = std.

The first three are *intensities* in [0, 1], which binary cross-entropy can model;
the last is not, and only the squared error applies to it. A single global map, not
one per feature, keeps the relative brightness of pixels that convolutions rely on.

``data_range=(low, high)`` replaces what the data would show: ``low >= 0`` gives the
intensity map with scale ``max(high, 1)``, and a range with negative values maps
``[low, high]`` to ``[-1, 1]``. That is how a model streamed through ``partial_fit``
learns the right scale from its first chunk.

The statistics come from ``sk_convae._data.scan``, one streaming pass in float64.

Values beyond ``MAX_MAGNITUDE`` in absolute value (in the data or in ``data_range``)
are refused before training: codes and reconstructions are float32, whose largest
value is 3.4e38, and a reconstruction is the network's output times the scale plus
the offset. Below 1e30 that leaves eight orders of magnitude of headroom, and the
squares of the statistics pass stay far from float64's limit (1e308). Any data can
be divided by a constant first: the affine map makes the model the same.
"""

import numpy as np

INTENSITY = "intensity"
STANDARDIZED = "standardized"
MAX_MAGNITUDE = 1e30


def fit_scaling(dtype, stats, data_range=None):
    """Learn ``(offset, scale, kind)``.

    Parameters
    ----------
    dtype : numpy dtype
        The input's dtype: ``uint8`` is always read as 0..255.
    stats : sk_convae._data.Stats or None
        Min, max, mean and std of the training data (None only for ``uint8`` input
        or with ``data_range``).
    data_range : tuple of (float, float) or None
        The values the data can take, when known better than from ``stats``;
        within ``MAX_MAGNITUDE``.

    Returns
    -------
    offset : float
    scale : float
        Positive.
    kind : {'intensity', 'standardized'}
        Whether ``(X - offset) / scale`` lies in [0, 1].
    """
    if data_range is not None:
        low, high = (float(v) for v in data_range)
        if max(abs(low), abs(high)) > MAX_MAGNITUDE:
            raise ValueError(
                f"data_range ({low:.6g}, {high:.6g}) reaches beyond "
                f"{MAX_MAGNITUDE:.0e}, which is not supported: codes and "
                "reconstructions are float32 (at most 3.4e38). Divide X and "
                "data_range by a constant first."
            )
        if low >= 0.0:
            return 0.0, (high if high > 1.0 else 1.0), INTENSITY
        return (low + high) / 2, (high - low) / 2, STANDARDIZED
    if dtype == np.uint8:
        return 0.0, 255.0, INTENSITY
    if stats.min >= 0.0:
        return 0.0, (stats.max if stats.max > 1.0 else 1.0), INTENSITY
    return stats.mean, (stats.std if stats.std > 0.0 else 1.0), STANDARDIZED


def unscale_rows(rows, offset, scale):
    """Network-scale rows back on the caller's scale: ``rows * scale + offset``."""
    return np.asarray(rows, dtype=np.float32) * np.float32(scale) + np.float32(offset)
