"""Write the intersphinx inventories that the docs build reads, without network.

Sphinx links ``sklearn.decomposition.PCA``, ``torch.nn.Module``,
``skorch.net.NeuralNet``, ``numpy.ndarray``, ``pathlib.Path``,
``matplotlib.axes.Axes`` or ``pandas.DataFrame`` to their projects' pages through
each project's ``objects.inv``. Instead of downloading those files on every
build, this script writes small ones by introspecting the installed packages and
following each project's page layout, and the docs build reads the committed
files (``intersphinx_mapping`` in ``docs/conf.py``). Run it again after upgrading
one of these packages, from the repository root::

    python docs/_inventories/make_inventories.py

The files are Sphinx inventories (version 2): a four-line header, then one line
per object, ``name domain:role priority uri display-name``, compressed with zlib.
Check one with ``python -m sphinx.ext.intersphinx docs/_inventories/sklearn.inv``.
"""

import builtins
import importlib
import inspect
import warnings
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent


def write_inventory(path, project, version, entries):
    """Write ``entries`` (name -> (role, uri)) as a zlib-compressed inventory."""
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    lines = []
    for name in sorted(entries):
        role, uri = entries[name]
        # an anchor equal to the name is written as "$", as Sphinx does
        if uri.endswith("#" + name):
            uri = uri[: -len(name)] + "$"
        lines.append(f"{name} {role} {-1 if role.startswith('std:') else 1} {uri} -")
    body = zlib.compress(("\n".join(lines) + "\n").encode(), 9)
    path.write_bytes(header.encode() + body)
    print(f"{path.name}: {len(entries)} objects, {path.stat().st_size / 1e3:.0f} kB")


def public_members(module, *, owner_prefix):
    """(name, object) for the public classes and functions of ``module``: those
    defined in it, and those its ``__all__`` lists (defined under
    ``owner_prefix``) or, without ``__all__``, those defined below it."""
    names = getattr(module, "__all__", None)
    defined_here = [
        n
        for n, obj in vars(module).items()
        if not n.startswith("_") and getattr(obj, "__module__", "") == module.__name__
    ]
    if names is None:
        owner_prefix = module.__name__
        names = [n for n in dir(module) if not n.startswith("_")]
    for name in dict.fromkeys([*names, *defined_here]):
        try:
            obj = getattr(module, name, None)
        except ImportError:  # e.g. sklearn's experimental estimators
            continue
        if not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        if not getattr(obj, "__module__", "").startswith(owner_prefix):
            continue
        yield name, obj


def role_of(obj):
    if inspect.isclass(obj):
        return "py:exception" if issubclass(obj, BaseException) else "py:class"
    return "py:function"


def add_class_members(entries, fullname, cls, page):
    """The public methods and properties ``cls`` defines itself, on ``page``."""
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            role = "py:property"
        elif isinstance(member, (staticmethod, classmethod)) or inspect.isfunction(
            member
        ):
            role = "py:method"
        else:
            continue
        entries.setdefault(f"{fullname}.{name}", (role, f"{page}#{fullname}.{name}"))


def sklearn_entries():
    """scikit-learn: one page per object, ``modules/generated/<name>.html``."""
    import sklearn
    from sklearn.experimental import (  # noqa: F401
        enable_halving_search_cv,
        enable_iterative_imputer,
    )

    modules = [m for m in sklearn.__all__ if not m.startswith("_")]
    modules = [f"sklearn.{m}" for m in modules if m not in {"show_versions"}]
    modules += [
        "sklearn.base",
        "sklearn.utils",
        "sklearn.feature_extraction.image",
        "sklearn.feature_extraction.text",
        "sklearn.utils.validation",
        "sklearn.utils.multiclass",
        "sklearn.utils.extmath",
        "sklearn.utils.estimator_checks",
        "sklearn.utils.metaestimators",
        "sklearn.utils.parallel",
        "sklearn.utils.discovery",
        "sklearn.metrics.pairwise",
    ]
    entries = {}
    for modname in modules:
        try:
            module = importlib.import_module(modname)
        except ImportError:
            continue
        entries[modname] = ("py:module", f"api/{modname}.html#module-{modname}")
        for name, obj in public_members(module, owner_prefix="sklearn"):
            fullname = f"{modname}.{name}"
            page = f"modules/generated/{fullname}.html"
            entries[fullname] = (role_of(obj), f"{page}#{fullname}")
            if inspect.isclass(obj):
                for klass in reversed(obj.__mro__):
                    if klass.__module__.startswith("sklearn"):
                        add_class_members(entries, fullname, klass, page)
    for name in (
        "clone",
        "config_context",
        "get_config",
        "set_config",
        "show_versions",
    ):
        fullname = f"sklearn.{name}"
        page = f"modules/generated/{fullname}.html"
        entries[fullname] = ("py:function", f"{page}#{fullname}")
    # the glossary terms and user-guide sections that docstrings point to
    for term in (
        "estimator",
        "fit",
        "fit_transform",
        "inverse_transform",
        "meta-estimator",
        "metadata routing",
        "n_jobs",
        "partial_fit",
        "random_state",
        "transform",
        "transformer",
        "warm_start",
    ):
        entries[term] = ("std:term", f"glossary.html#term-{term.replace(' ', '-')}")
    labels = {
        "df_output_transform": "auto_examples/miscellaneous/plot_set_output.html",
        "glossary": "glossary.html#glossary",
        "metadata_routing": "metadata_routing.html#metadata-routing",
        "pipeline": "modules/compose.html#pipeline",
        "model_persistence": "model_persistence.html#model-persistence",
        "sphx_glr_auto_examples_miscellaneous_plot_set_output.py": (
            "auto_examples/miscellaneous/plot_set_output.html"
            "#sphx-glr-auto-examples-miscellaneous-plot-set-output-py"
        ),
    }
    for label, uri in labels.items():
        entries[label] = ("std:label", uri)
    return "scikit-learn", version_of(sklearn), entries


def numpy_entries():
    """NumPy: ``reference/generated/numpy.<name>.html``, scalars on one page."""
    import numpy as np

    entries = {}
    for name in np.__all__:
        obj = getattr(np, name, None)
        fullname = f"numpy.{name}"
        if inspect.isclass(obj) and issubclass(obj, np.generic):
            entries[fullname] = (
                "py:class",
                f"reference/arrays.scalars.html#{fullname}",
            )
        elif isinstance(obj, np.ufunc):
            page = f"reference/generated/{fullname}.html"
            entries[fullname] = ("py:data", f"{page}#{fullname}")
        elif inspect.isclass(obj) or callable(obj):
            page = f"reference/generated/{fullname}.html"
            entries[fullname] = (role_of(obj), f"{page}#{fullname}")
            if inspect.isclass(obj):
                for member in dir(obj):
                    if member.startswith("_"):
                        continue
                    attr = getattr(obj, member, None)
                    role = "py:method" if callable(attr) else "py:attribute"
                    member_name = f"{fullname}.{member}"
                    entries[member_name] = (
                        role,
                        f"reference/generated/{member_name}.html#{member_name}",
                    )
    entries["numpy.random.Generator"] = (
        "py:class",
        "reference/random/generator.html#numpy.random.Generator",
    )
    entries["numpy.random.default_rng"] = (
        "py:function",
        "reference/random/generator.html#numpy.random.default_rng",
    )
    entries["numpy.random.RandomState"] = (
        "py:class",
        "reference/random/legacy.html#numpy.random.RandomState",
    )
    entries["numpy.typing.ArrayLike"] = (
        "py:data",
        "reference/typing.html#numpy.typing.ArrayLike",
    )
    entries["numpy.typing.DTypeLike"] = (
        "py:data",
        "reference/typing.html#numpy.typing.DTypeLike",
    )
    for name in ("inf", "nan", "newaxis", "pi"):
        entries[f"numpy.{name}"] = ("py:data", f"reference/constants.html#numpy.{name}")
    # what numpydoc's links for parameter types point to ("array_like", "scalar")
    entries["array_like"] = ("std:term", "glossary.html#term-array_like")
    entries["arrays.scalars"] = ("std:label", "reference/arrays.scalars.html")
    entries["arrays.memmap"] = ("std:label", "reference/arrays.classes.html#memmap")
    return "NumPy", version_of(np), entries


def torch_entries():
    """PyTorch: ``generated/<name>.html`` for most objects, with the exceptions
    its docs make (tensors, tensor attributes, ``torch.utils.data``)."""
    import torch
    import torch.nn
    import torch.nn.functional
    import torch.optim
    import torch.optim.lr_scheduler
    import torch.utils.data

    entries = {}

    def add(fullname, obj, page):
        entries[fullname] = (role_of(obj), f"{page}#{fullname}")
        if inspect.isclass(obj):
            add_class_members(entries, fullname, obj, page)

    for modname, module in [
        ("torch", torch),
        ("torch.nn", torch.nn),
        ("torch.nn.functional", torch.nn.functional),
        ("torch.optim", torch.optim),
        ("torch.optim.lr_scheduler", torch.optim.lr_scheduler),
        ("torch.cuda", torch.cuda),
    ]:
        entries[modname] = ("py:module", f"{modname.split('.', 1)[-1]}.html")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            members = list(public_members(module, owner_prefix="torch"))
        for name, obj in members:
            fullname = f"{modname}.{name}"
            add(fullname, obj, f"generated/{fullname}.html")
    for name in ("Dataset", "DataLoader", "TensorDataset", "Subset", "Sampler"):
        fullname = f"torch.utils.data.{name}"
        add(fullname, getattr(torch.utils.data, name), "data.html")
    add("torch.Tensor", torch.Tensor, "tensors.html")
    for name in ("device", "dtype", "layout", "memory_format"):
        entries[f"torch.{name}"] = (
            "py:class",
            f"tensor_attributes.html#torch.{name}",
        )
    entries["torch.autocast"] = ("py:class", "amp.html#torch.autocast")
    entries["torch.export.export"] = ("py:function", "export.html#torch.export.export")
    entries["torch.onnx.export"] = ("py:function", "onnx.html#torch.onnx.export")
    entries["torch.nn.Module"] = (
        "py:class",
        "generated/torch.nn.Module.html#torch.nn.Module",
    )
    entries["torch.nn"] = ("py:module", "nn.html#module-torch.nn")
    entries["torch"] = ("py:module", "torch.html#module-torch")
    return "PyTorch", version_of(torch).split("+")[0], entries


def skorch_entries():
    """skorch: one page per module (``net.html``, ``callbacks.html``...), made
    with ``automodule :members:``; the top-level aliases point there too."""
    import skorch

    entries = {}
    pages = [
        "net",
        "classifier",
        "regressor",
        "callbacks",
        "dataset",
        "helper",
        "history",
        "exceptions",
        "scoring",
        "toy",
        "utils",
    ]
    for page in pages:
        modname = f"skorch.{page}"
        try:
            module = importlib.import_module(modname)
        except ImportError:
            continue
        entries[modname] = ("py:module", f"{page}.html#module-{modname}")
        for name, obj in public_members(module, owner_prefix="skorch"):
            # automodule documents what the module defines (or lists in __all__)
            if not hasattr(module, "__all__") and obj.__module__ != modname:
                continue
            fullname = f"{modname}.{name}"
            entries[fullname] = (role_of(obj), f"{page}.html#{fullname}")
            if inspect.isclass(obj):
                add_class_members(entries, fullname, obj, f"{page}.html")
    for name in skorch.__all__:
        obj = getattr(skorch, name)
        if not inspect.isclass(obj):
            continue
        target = f"{obj.__module__}.{name}"
        if target in entries:
            entries[f"skorch.{name}"] = entries[target]
    return "skorch", version_of(skorch), entries


def python_entries():
    """Python: the builtins and the few standard-library names docstrings use."""
    entries = {}
    for name in dir(builtins):
        obj = getattr(builtins, name)
        if name.startswith("_"):
            continue
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            entries[name] = ("py:exception", f"library/exceptions.html#{name}")
        elif inspect.isclass(obj):
            page = "stdtypes" if name in STDTYPES else "functions"
            entries[name] = ("py:class", f"library/{page}.html#{name}")
        elif callable(obj):
            entries[name] = ("py:function", f"library/functions.html#{name}")
    for name in ("None", "True", "False", "NotImplemented", "Ellipsis"):
        entries[name] = ("py:data", f"library/constants.html#{name}")
    stdlib = {
        "pathlib.Path": ("py:class", "library/pathlib.html"),
        "pathlib.PurePath": ("py:class", "library/pathlib.html"),
        "os.PathLike": ("py:class", "library/os.html"),
        "os.environ": ("py:data", "library/os.html"),
        "io.BytesIO": ("py:class", "library/io.html"),
        "io.IOBase": ("py:class", "library/io.html"),
        "pickle": ("py:module", "library/pickle.html"),
        "json": ("py:module", "library/json.html"),
        "warnings.warn": ("py:function", "library/warnings.html"),
        "signal.SIGINT": ("py:data", "library/signal.html"),
        "tempfile.mkdtemp": ("py:function", "library/tempfile.html"),
        "typing.Any": ("py:data", "library/typing.html"),
        "collections.abc.Callable": ("py:class", "library/collections.abc.html"),
        "collections.abc.Iterable": ("py:class", "library/collections.abc.html"),
        "collections.abc.Sequence": ("py:class", "library/collections.abc.html"),
    }
    for name, (role, page) in stdlib.items():
        anchor = f"module-{name}" if role == "py:module" else name
        entries[name] = (role, f"{page}#{anchor}")
    stdlib_functions = {
        "contextlib.contextmanager": "library/contextlib.html",
        "collections.namedtuple": "library/collections.html",
    }
    for name, page in stdlib_functions.items():
        entries[name] = ("py:function", f"{page}#{name}")
    terms = (
        "callable",
        "file-like object",
        "generator",
        "iterable",
        "path-like object",
        "sequence",
    )
    for term in terms:
        entries[term] = ("std:term", f"glossary.html#term-{term.replace(' ', '-')}")
    # numpydoc links the type "bool" to this label
    entries["bltin-boolean-values"] = (
        "std:label",
        "library/stdtypes.html#boolean-type-bool",
    )
    return "Python", "3", entries


def matplotlib_entries():
    """matplotlib: the few classes the Displays' docstrings name."""
    import matplotlib

    pages = {
        "matplotlib.axes.Axes": "api/_as_gen/matplotlib.axes.Axes.html",
        "matplotlib.figure.Figure": "api/_as_gen/matplotlib.figure.Figure.html",
        "matplotlib.image.AxesImage": "api/image_api.html",
        "matplotlib.lines.Line2D": "api/_as_gen/matplotlib.lines.Line2D.html",
        "matplotlib.collections.PathCollection": "api/collections_api.html",
        "matplotlib.pyplot.show": "api/_as_gen/matplotlib.pyplot.show.html",
        "matplotlib.pyplot.subplots": "api/_as_gen/matplotlib.pyplot.subplots.html",
    }
    entries = {name: ("py:class", f"{page}#{name}") for name, page in pages.items()}
    for name in ("matplotlib.pyplot.show", "matplotlib.pyplot.subplots"):
        entries[name] = ("py:function", entries[name][1])
    return "Matplotlib", version_of(matplotlib), entries


def pandas_entries():
    """pandas: its two containers."""
    import pandas

    entries = {
        f"pandas.{name}": (
            "py:class",
            f"reference/api/pandas.{name}.html#pandas.{name}",
        )
        for name in ("DataFrame", "Series")
    }
    return "pandas", version_of(pandas), entries


STDTYPES = {
    "bytearray",
    "bytes",
    "dict",
    "float",
    "frozenset",
    "int",
    "list",
    "memoryview",
    "range",
    "set",
    "str",
    "tuple",
}
# int, float and bool are documented among the built-in functions
STDTYPES -= {"int", "float"}


def version_of(module):
    version = getattr(module, "__version__", "")
    return ".".join(version.split(".")[:2])


def main():
    for filename, make in [
        ("sklearn.inv", sklearn_entries),
        ("numpy.inv", numpy_entries),
        ("torch.inv", torch_entries),
        ("skorch.inv", skorch_entries),
        ("python.inv", python_entries),
        ("matplotlib.inv", matplotlib_entries),
        ("pandas.inv", pandas_entries),
    ]:
        project, version, entries = make()
        write_inventory(HERE / filename, project, version, entries)


if __name__ == "__main__":
    main()
