"""The examples run, and say what they claim."""

import re
import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_autoencoder_beats_pca(capsys):
    runpy.run_path(str(EXAMPLES / "quickstart.py"), run_name="__main__")
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
