"""Every public module names its public objects in a sorted, literal ``__all__``."""

import importlib
import inspect

import pytest

import sk_convae

PUBLIC_MODULES = [
    "sk_convae",
    "sk_convae.callbacks",
    "sk_convae.cli",
    "sk_convae.datasets",
    "sk_convae.exceptions",
    "sk_convae.plotting",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_sorted_and_lists_the_public_objects(name):
    module = importlib.import_module(name)
    assert module.__all__ == sorted(module.__all__)
    for attribute in module.__all__:
        assert hasattr(module, attribute), attribute
    # functions and classes defined in the module (or its private submodules)
    # without a leading underscore are public, and listed
    defined_here = {
        attribute
        for attribute, value in vars(module).items()
        if not attribute.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__.startswith(name)
    }
    assert defined_here <= set(module.__all__)


def test_version_is_defined_once():
    from sk_convae._version import __version__

    assert sk_convae.__version__ is __version__
