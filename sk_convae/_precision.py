"""Mixed precision: which one the hardware runs fast, and a net that trains in it.

``precision='auto'`` trains in bfloat16 autocast where the hardware has bfloat16
arithmetic (CUDA devices that support it; CPUs with AVX512-BF16 or AMX-BF16, read
from the CPU's flags) and in float32 elsewhere. Under autocast the convolutions run
in the low precision while the weights, the optimizer, the loss and the outputs stay
float32. ``'float16'`` adds a gradient scaler, which float16's narrow exponent needs.
"""

import contextlib
from pathlib import Path

import torch
from skorch import NeuralNet
from skorch.dataset import unpack_data

from sk_convae._interrupt import InterruptMixin

PRECISIONS = ("float32", "bfloat16", "float16")
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def cpu_flags():
    """The CPU features that decide bfloat16 speed, as ``{name: bool}``."""
    names = ("avx512_bf16", "amx_bf16", "amx_tile")
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    if get_capabilities is not None:
        capabilities = get_capabilities()
        return {name: bool(capabilities.get(name, False)) for name in names}
    # older torch: the kernel's list of flags
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return dict.fromkeys(names, False)
    flags = set(text.split())
    return {name: name in flags for name in names}


def bf16_is_fast(device):
    """Whether ``device`` has bfloat16 arithmetic (not an emulation)."""
    device = torch.device(device)
    if device.type == "cuda":
        try:
            return torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # torch < 2.4 has no emulation to exclude
            return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        flags = cpu_flags()
        return flags["avx512_bf16"] or flags["amx_bf16"]
    return False


def resolve_precision(precision, device):
    """``'auto'`` made concrete for ``device``; a clear error for what it cannot run."""
    if precision == "auto":
        return "bfloat16" if bf16_is_fast(device) else "float32"
    if precision == "bfloat16" and torch.device(device).type == "mps":
        raise ValueError("precision='bfloat16' is not available on 'mps'.")
    return precision


def autocast(device, precision):
    """The autocast context of ``precision`` on ``device`` (none for float32)."""
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=DTYPES[precision])


class MixedPrecisionNet(InterruptMixin, NeuralNet):
    """A skorch ``NeuralNet`` whose forward passes run under autocast.

    ``precision`` is one of ``PRECISIONS``. The module's outputs are cast back to
    float32 before the loss, and with ``'float16'`` the loss is scaled before the
    backward pass (``torch.amp.GradScaler``) and the optimizer steps through the
    scaler, which skips steps whose gradients overflowed. ``KeyboardInterrupt``
    during training reaches the caller (``sk_convae._interrupt``).
    """

    def __init__(self, *args, precision="float32", **kwargs):
        super().__init__(*args, **kwargs)
        self.precision = precision

    def initialize(self):
        super().initialize()
        self.grad_scaler_ = None
        if self.precision == "float16":
            device_type = torch.device(self.device).type
            self.grad_scaler_ = torch.amp.GradScaler(device_type)
        return self

    def infer(self, x, **fit_params):
        with autocast(self.device, self.precision):
            out = super().infer(x, **fit_params)
        return out.float()

    def train_step_single(self, batch, **fit_params):
        if self.grad_scaler_ is None:
            return super().train_step_single(batch, **fit_params)
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        self.grad_scaler_.scale(loss).backward()
        return {"loss": loss, "y_pred": y_pred}

    def _step_optimizer(self, step_fn):
        if self.grad_scaler_ is None:
            return super()._step_optimizer(step_fn)
        step_fn()  # the scaled backward pass, once
        for name in self._optimizers:
            self.grad_scaler_.step(getattr(self, name + "_"))
        self.grad_scaler_.update()
        return None
