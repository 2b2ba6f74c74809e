"""The sk-convae command: help and the demo end to end."""

import re
import subprocess
import sys

import pytest

from sk_convae.cli import main


def test_help_explains_the_demo_and_where_the_benchmarks_are(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["--help"])
    assert excinfo.value.code == 0
    out = capsys.readouterr().out
    assert "drop-in replacement for PCA" in out
    assert "demo" in out and "run from a checkout" in out


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "usage: sk-convae" in capsys.readouterr().out


def test_demo_runs_end_to_end_on_the_digits(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--max-epochs", "15", "--quiet"]) == 0
    printed = capsys.readouterr().out
    for name in (
        "reconstructions.png",
        "denoising.png",
        "codes.png",
        "embedding.png",
        "training_curve.png",
        "interpolation.png",
    ):
        assert (out / name).stat().st_size > 2000, name
    table = (out / "results.md").read_text()
    assert table in printed
    rows = {
        m.group(1).strip(): float(m.group(2))
        for m in re.finditer(r"\| ([\w ]+?)\s+\| +([\d.]+) \|", table)
    }
    assert set(rows) == {"PCA", "autoencoder", "denoising autoencoder"}
    assert rows["autoencoder"] < rows["PCA"]  # reconstructs better, even in 15 epochs


def test_demo_rejects_unknown_options(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--no-such-option"])


def test_console_script_is_installed():
    result = subprocess.run(
        [sys.executable, "-m", "sk_convae.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "sk-convae" in result.stdout
