"""Warnings and errors of sk-convae, as ``sklearn.exceptions`` has scikit-learn's."""

__all__ = ["InconsistentVersionWarning", "ModelFileError"]


class InconsistentVersionWarning(UserWarning):
    """A pickle (``joblib.dump``) made by another version of sk-convae was loaded.

    Like scikit-learn's :class:`~sklearn.exceptions.InconsistentVersionWarning`: the
    estimator's attributes may not mean what this version expects. Files written by
    :meth:`ConvAutoEncoderTransformer.save` carry a format version instead and load
    across versions without pickle.

    Parameters
    ----------
    estimator_name : str
        The class of the unpickled estimator.

    current_version : str
        The installed sk-convae version.

    original_version : str
        The version that pickled it (``'unknown'`` for pickles without one).
    """

    def __init__(self, *, estimator_name, current_version, original_version):
        self.estimator_name = estimator_name
        self.current_version = current_version
        self.original_version = original_version

    def __str__(self):
        return (
            f"Trying to unpickle estimator {self.estimator_name} from sk-convae "
            f"version {self.original_version} when using version "
            f"{self.current_version}. This might lead to breaking code or invalid "
            "results. Use at your own risk. A model saved with "
            f"{self.estimator_name}.save() loads in any version that reads its "
            "format, without pickle."
        )


class ModelFileError(ValueError):
    """A model file cannot be loaded: damaged, inconsistent, not sk-convae's, or newer.

    Raised by :meth:`ConvAutoEncoderTransformer.load`; the message names the file
    and what is wrong with it. Inconsistent: unknown or missing attributes, values
    of the wrong type or range, or values that disagree with one another or with
    the tensors, as in a file edited by hand (its checksum, which has no key,
    detects damage, not edits).
    """
