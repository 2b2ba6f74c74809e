"""Warnings and errors of sk-convae, as ``sklearn.exceptions`` has scikit-learn's."""

__all__ = ["InconsistentVersionWarning", "ModelFileError"]


class InconsistentVersionWarning(UserWarning):
    """Warn that a pickle made by another version of sk-convae was loaded.

    Like scikit-learn's :class:`~sklearn.exceptions.InconsistentVersionWarning`,
    it is raised when an estimator pickled (with ``pickle`` or ``joblib.dump``)
    by one version of sk-convae is unpickled by another: its attributes may not
    mean what this version expects. Files written by
    :meth:`sk_convae.ConvAutoEncoderTransformer.save` carry a format version
    instead and load across versions without pickle.

    Parameters
    ----------
    estimator_name : str
        The class of the unpickled estimator.

    current_version : str
        The installed sk-convae version.

    original_version : str
        The version that pickled it (``'unknown'`` for pickles without one).

    See Also
    --------
    sklearn.exceptions.InconsistentVersionWarning : The warning of
        scikit-learn, for its own estimators.
    sk_convae.ConvAutoEncoderTransformer.save : Persistence without pickle.

    Examples
    --------
    Turn the warning into an error where a model from another version must not
    be used:

    >>> import pickle, warnings
    >>> from sk_convae import ConvAutoEncoderTransformer
    >>> from sk_convae.exceptions import InconsistentVersionWarning
    >>> data = pickle.dumps(ConvAutoEncoderTransformer(n_components=8))
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", InconsistentVersionWarning)
    ...     ae = pickle.loads(data)  # the same version: no warning
    >>> ae.n_components
    8
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
    """Raised when a model file cannot be loaded.

    Raised by :meth:`sk_convae.ConvAutoEncoderTransformer.load` when the file is
    damaged or truncated, is not a sk-convae model, was written in a newer
    format version, or is inconsistent: unknown or missing attributes, values of
    the wrong type or range, or values that disagree with one another or with
    the tensors, as in a file edited by hand (its checksum, which has no key,
    detects damage, not edits). The message names the file and what is wrong
    with it. A subclass of :class:`ValueError`.

    See Also
    --------
    sk_convae.ConvAutoEncoderTransformer.load : Read a model file.
    sk_convae.ConvAutoEncoderTransformer.save : Write one.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sk_convae import ConvAutoEncoderTransformer
    >>> from sk_convae.exceptions import ModelFileError
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "model.safetensors"
    ...     _ = path.write_bytes(b"not a model")
    ...     try:
    ...         ConvAutoEncoderTransformer.load(path)
    ...     except ModelFileError as exc:
    ...         print("not loaded:", "not a sk-convae model file" in str(exc))
    not loaded: True
    """
