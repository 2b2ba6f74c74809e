"""Mixed precision: what 'auto' picks, and training in each precision."""

import numpy as np
import pytest
import torch

from sk_convae import ConvAutoEncoderTransformer, _precision
from sk_convae._precision import cpu_flags, resolve_precision

from .conftest import FAST


def test_cpu_flags_are_read_from_the_machine():
    flags = cpu_flags()
    assert set(flags) == {"avx512_bf16", "amx_bf16", "amx_tile"}
    assert all(isinstance(v, bool) for v in flags.values())


@pytest.mark.parametrize(
    "flags, expected",
    [
        ({"avx512_bf16": True, "amx_bf16": False, "amx_tile": False}, "bfloat16"),
        ({"avx512_bf16": False, "amx_bf16": True, "amx_tile": True}, "bfloat16"),
        ({"avx512_bf16": False, "amx_bf16": False, "amx_tile": False}, "float32"),
    ],
)
def test_auto_uses_bfloat16_only_on_cpus_that_compute_in_it(
    monkeypatch, flags, expected
):
    monkeypatch.setattr(_precision, "cpu_flags", lambda: flags)
    assert resolve_precision("auto", "cpu") == expected
    # an explicit choice is kept
    assert resolve_precision("float32", "cpu") == "float32"


@pytest.mark.parametrize("precision", ["float32", "bfloat16", "float16"])
def test_each_precision_trains_with_float32_outputs(digits_small, precision):
    X = digits_small[0]
    params = {**FAST, "max_epochs": 3, "precision": precision}
    ae = ConvAutoEncoderTransformer(n_components=6, **params).fit(X)
    assert ae.precision_ == precision
    codes = ae.transform(X)
    assert codes.dtype == np.float32 and np.isfinite(codes).all()
    assert ae.inverse_transform(codes).dtype == np.float32
    losses = ae.history_[:, "train_loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    # the weights stay float32: only the arithmetic is lower precision
    assert all(p.dtype == torch.float32 for p in ae.net_.module_.parameters())


def test_float16_scales_the_loss(digits_small):
    params = {**FAST, "max_epochs": 1, "precision": "float16"}
    ae = ConvAutoEncoderTransformer(n_components=6, **params).fit(digits_small[0])
    assert ae.net_.grad_scaler_ is not None
    assert ae.net_.grad_scaler_.get_scale() > 1.0


def test_auto_is_recorded(digits_small):
    ae = ConvAutoEncoderTransformer(n_components=6, **{**FAST, "max_epochs": 1})
    ae.fit(digits_small[0])
    assert ae.precision_ == resolve_precision("auto", "cpu")
