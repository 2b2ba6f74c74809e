"""numpydoc validation of the public API, as scikit-learn's ``test_docstrings.py``.

Every public class and function of the public modules is validated with
``numpydoc.validate.validate``, and so is every public method of the classes:
those we define and those inherited from scikit-learn (the API reference shows
them), not those whose documentation belongs to another project (skorch's
``Callback`` hooks we do not override, the methods of Python's exceptions). One
test per object, named by its import path:
``python -m pytest tests/test_docstrings.py -k plot``.
"""

import importlib
import inspect

import pytest

numpydoc_validation = pytest.importorskip("numpydoc.validate")

PUBLIC_MODULES = (
    "sk_convae",
    "sk_convae.callbacks",
    "sk_convae.datasets",
    "sk_convae.exceptions",
    "sk_convae.plotting",
)

# Checks ignored everywhere; docs/conf.py validates with
# numpydoc_validation_checks = {"all", *NUMPYDOC_IGNORED_CHECKS}.
NUMPYDOC_IGNORED_CHECKS = {
    # "Returns" names what it returns (``self : object``, ``display : ...``), as
    # scikit-learn writes it, so that the text can refer to it.
    "RT02",
    # No extended summary, See Also or Examples: allowed for methods only (below);
    # the test still asks classes and functions for them.
    "ES01",
    "EX01",
    "SA01",
}

# Of the above, the checks that classes and functions must pass all the same, as in
# scikit-learn: a method's summary, parameters and returns are enough, as its class
# carries the narrative, the See Also and the examples.
METHOD_ONLY_IGNORED_CHECKS = {"ES01", "EX01", "SA01"}


def _documented_elsewhere(klass, name):
    """Whether the method comes unchanged from neither us nor scikit-learn."""
    owner = next(k for k in klass.__mro__ if name in vars(k))
    return owner.__module__.split(".")[0] not in ("sk_convae", "sklearn")


def _public_objects():
    """``(import path, is_method)`` of every object the API reference shows."""
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in sorted(module.__all__):  # checked by test_public_api
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue  # __version__
            path = f"{module_name}.{name}"
            yield path, False
            if inspect.isclass(obj):
                for attr in sorted(dir(obj)):
                    if attr.startswith("_") or _documented_elsewhere(obj, attr):
                        continue
                    member = getattr(obj, attr)
                    if callable(member) or isinstance(member, property):
                        yield f"{path}.{attr}", True


PUBLIC_OBJECTS = list(_public_objects())


def _errors(path, is_method):
    result = numpydoc_validation.validate(path)
    ignored = NUMPYDOC_IGNORED_CHECKS
    if not is_method:
        ignored = ignored - METHOD_ONLY_IGNORED_CHECKS
    return result, [
        (code, msg) for code, msg in result["errors"] if code not in ignored
    ]


@pytest.mark.parametrize(
    "path, is_method", PUBLIC_OBJECTS, ids=[path for path, _ in PUBLIC_OBJECTS]
)
def test_docstring(path, is_method):
    result, errors = _errors(path, is_method)
    if errors:
        listed = "\n".join(f" - {code}: {message}" for code, message in errors)
        pytest.fail(
            f"{path} ({result['file']}:{result['file_line']}):\n{listed}",
            pytrace=False,
        )


def test_public_api_is_covered():
    # the objects the issue names, so that a module losing its __all__ entries
    # cannot make the test pass by validating nothing
    paths = {path for path, _ in PUBLIC_OBJECTS}
    for expected in [
        "sk_convae.ConvAutoEncoderTransformer",
        "sk_convae.ConvAutoEncoderTransformer.fit",
        "sk_convae.ConvAutoEncoderTransformer.to_onnx",
        "sk_convae.register_onnx_converter",
        "sk_convae.callbacks.TensorBoard",
        "sk_convae.datasets.fetch_mnist",
        "sk_convae.exceptions.ModelFileError",
        "sk_convae.plotting.ReconstructionDisplay.from_estimator",
        "sk_convae.plotting.TrainingCurveDisplay.plot",
    ]:
        assert expected in paths
