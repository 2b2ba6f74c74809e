"""On a CUDA machine: fit on the GPU, then load and transform on a CPU-only process.

Skipped without CUDA; run as is on a GPU machine with ``python -m pytest -m gpu``.
"""

import os
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from sk_convae import ConvAutoEncoderTransformer
from tests.conftest import FAST

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.fixture(scope="module")
def gpu_model(digits):
    X = digits[0]
    return ConvAutoEncoderTransformer(
        n_components=8, device="auto", **{**FAST, "max_epochs": 10}
    ).fit(X)


def test_auto_device_trains_on_cuda(gpu_model, digits):
    assert gpu_model.device_ == "cuda"
    assert next(gpu_model.net_.module_.parameters()).is_cuda
    codes = gpu_model.transform(digits[0])
    assert codes.dtype == np.float32 and codes.shape == (1797, 8)
    # a trained model, not noise: beats the mean image by far
    X = digits[0]
    assert -gpu_model.score(X) < 0.5 * np.mean((X - X.mean(axis=0)) ** 2)


def test_same_seed_same_codes_on_cuda(gpu_model, digits):
    X = digits[0]
    again = ConvAutoEncoderTransformer(
        n_components=8, device="cuda", **{**FAST, "max_epochs": 10}
    ).fit(X)
    assert_allclose(again.transform(X), gpu_model.transform(X), rtol=1e-4, atol=1e-4)


def test_gpu_model_loads_and_transforms_on_a_cpu_only_machine(
    gpu_model, digits, tmp_path
):
    X = digits[0]
    joblib.dump(gpu_model, tmp_path / "ae.joblib")
    np.save(tmp_path / "X.npy", X)
    script = textwrap.dedent(
        f"""
        import joblib, numpy as np, torch
        assert not torch.cuda.is_available()
        ae = joblib.load({str(tmp_path / "ae.joblib")!r})
        assert ae.net_.device == "cpu"
        X = np.load({str(tmp_path / "X.npy")!r})
        np.save({str(tmp_path / "codes.npy")!r}, ae.transform(X))
        np.save({str(tmp_path / "rec.npy")!r}, ae.inverse_transform(ae.transform(X)))
        """
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", script], check=True, env=env)
    codes = gpu_model.transform(X)
    assert_allclose(np.load(tmp_path / "codes.npy"), codes, rtol=1e-3, atol=1e-3)
    assert_allclose(
        np.load(tmp_path / "rec.npy"),
        gpu_model.inverse_transform(codes),
        rtol=1e-3,
        atol=1e-2,
    )
