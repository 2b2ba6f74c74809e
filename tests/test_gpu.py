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


def test_auto_precision_is_bfloat16_on_a_bf16_gpu(gpu_model):
    expected = "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    assert gpu_model.precision_ == expected


def test_float16_trains_with_a_gradient_scaler_on_cuda(digits):
    X = digits[0]
    ae = ConvAutoEncoderTransformer(
        n_components=8, device="cuda", precision="float16", **{**FAST, "max_epochs": 10}
    ).fit(X)
    assert ae.precision_ == "float16"
    codes = ae.transform(X)
    assert codes.dtype == np.float32 and np.isfinite(codes).all()
    assert -ae.score(X) < 0.5 * np.mean((X - X.mean(axis=0)) ** 2)


def test_saved_gpu_model_loads_back_on_the_gpu(gpu_model, digits, tmp_path):
    # (a CPU-only process loading it: tests/test_persist.py, also marked gpu)
    X = digits[0]
    gpu_model.save(tmp_path / "ae.safetensors")
    again = ConvAutoEncoderTransformer.load(tmp_path / "ae.safetensors", device="cuda")
    assert next(again.net_.module_.parameters()).is_cuda
    assert_allclose(again.transform(X), gpu_model.transform(X), rtol=1e-5, atol=1e-5)


def test_onnx_export_of_a_gpu_model_matches_transform(gpu_model, digits, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    X = digits[0].astype(np.float32)
    model = gpu_model.to_onnx("encoder", dtype=np.float32)
    session = ort.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (codes,) = session.run(None, {session.get_inputs()[0].name: X})
    # the export is a float32 CPU copy: as exact as the model loaded on the CPU
    gpu_model.save(tmp_path / "ae.safetensors")
    on_cpu = ConvAutoEncoderTransformer.load(tmp_path / "ae.safetensors", device="cpu")
    assert_allclose(codes, on_cpu.transform(X), rtol=1e-4, atol=1e-4)
    # the GPU's float32 convolutions may use TF32: within 1e-3 of it
    assert_allclose(codes, gpu_model.transform(X), rtol=0, atol=1e-3)
    assert next(gpu_model.net_.module_.parameters()).is_cuda  # left on the GPU
