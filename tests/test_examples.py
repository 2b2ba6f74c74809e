"""The examples run, and say what they claim.

The examples are the gallery's scripts: sphinx-gallery runs them with their
defaults when the docs are built; here they run as scripts, with options that
keep them fast, and their variables are checked.
"""

import re
import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(autouse=True)
def _close_figures():
    pytest.importorskip("matplotlib")
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def run_example(name, argv, monkeypatch):
    """Run ``examples/<name>`` as a script with ``argv``; return its variables."""
    monkeypatch.setattr("sys.argv", [name, *argv])
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return runpy.run_path(str(EXAMPLES / name), run_name="__main__")


def test_gallery_examples_are_named_for_sphinx_gallery():
    names = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert names and all(name.startswith("plot_") for name in names)
    assert (EXAMPLES / "README.rst").exists()
    for path in EXAMPLES.glob("*.py"):
        # a docstring whose first line under the opening quotes is the title,
        # underlined with "=", and text cells marked "# %%"
        lines = path.read_text().splitlines()
        assert lines[0] == '"""' and set(lines[2]) == {"="}, path.name
        assert len(lines[2]) == len(lines[1]), path.name
        assert "# %%" in path.read_text(), path.name


def test_quickstart_autoencoder_beats_pca(monkeypatch, capsys):
    run_example("plot_quickstart.py", [], monkeypatch)
    out = capsys.readouterr().out
    rows = dict(
        (m.group(1), (float(m.group(2)), float(m.group(3))))
        for m in re.finditer(r"\| (\w+)\s+\| +([\d.]+) \| +([\d.]+) \|", out)
    )
    assert set(rows) == {"PCA", "ConvAutoEncoder"}
    assert rows["ConvAutoEncoder"][0] < rows["PCA"][0]  # reconstruction error
    assert rows["ConvAutoEncoder"][1] >= rows["PCA"][1]  # kNN accuracy
    assert "Saved the autoencoder pipeline" in out


def test_readme_example_runs(tmp_path, monkeypatch):
    readme = (EXAMPLES.parent / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["codes"].shape == (1797, 8)
    assert namespace["images"].shape == (1797, 64)
    assert (tmp_path / "model.joblib").exists()
    assert namespace["pipe"].score(namespace["X"], namespace["y"]) > 0.95


def test_similarity_search_compares_codes_pca_and_pixels(tmp_path, monkeypatch, capsys):
    out = tmp_path / "search.png"
    precision = run_example(
        "plot_similarity_search.py",
        ["--max-epochs", "20", "--out", str(out)],
        monkeypatch,
    )["precision"]
    assert out.stat().st_size > 2000
    names = list(precision)
    assert [n.split(" (")[0] for n in names] == [
        "autoencoder codes",
        "PCA codes",
        "raw pixels",
    ]
    assert all(0.5 < p <= 1 for p in precision.values())
    # at equal width, autoencoder codes retrieve at least as well as PCA codes
    assert precision[names[0]] >= precision[names[1]] - 0.01
    assert "precision@10" in capsys.readouterr().out


def test_generate_decodes_interpolations_and_samples(tmp_path, monkeypatch):
    out = tmp_path / "generated.png"
    result = run_example(
        "plot_generate.py", ["--max-epochs", "10", "--out", str(out)], monkeypatch
    )
    assert out.stat().st_size > 2000
    assert len(result["interpolations"]) == 3
    assert all(line.shape == (10, 64) for line in result["interpolations"])
    assert result["samples"].shape == (20, 64)
    # decoded samples are images on the digits' scale, not noise
    assert 0 <= result["samples"].min() and result["samples"].max() <= 16.5


def test_denoising_example_cleans_better_than_the_plain_model(tmp_path, monkeypatch):
    out = tmp_path / "denoising.png"
    errors = run_example(
        "plot_denoising.py", ["--max-epochs", "15", "--out", str(out)], monkeypatch
    )["errors"]
    assert out.stat().st_size > 2000
    plain, denoising = (errors[k] for k in errors if "autoencoder" in k)
    assert denoising < 0.8 * plain
    assert denoising < 0.5 * errors["noisy input itself"]
