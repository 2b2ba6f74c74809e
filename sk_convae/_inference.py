"""The encoder prepared for inference on a CPU, once per set of weights.

``transform`` runs the convolutional encoder over many rows of a model whose weights
no longer change. On a CPU, oneDNN (torch's MKLDNN backend) runs it faster when

- each BatchNorm is folded into the convolution before it (eval mode: an affine map
  of the convolution's output, so one convolution with a bias does both);
- the folded weights are packed once into oneDNN's blocked layout, instead of on
  every call;
- the feature maps stay in that layout from the first convolution to the last, with
  one conversion in and one out, instead of one per layer.

The codes agree with the module's own ``encode`` to float32 rounding: the
arithmetic is float32 throughout, and no precision is traded for the speed (the
Benchmarks page of the documentation measures it).

Only the strided encoders (``DownBlock`` stages, then ``Flatten`` and ``Linear``:
``architecture='residual'`` and ``'dense'``) are prepared; other networks, other
devices, a torch without MKLDNN (or whose oneDNN entry points fail on a probe) use
the module's ``encode`` unchanged. The prepared copy is cached beside the module
(weakly: it goes when the module goes) and rebuilt when any weight or buffer
changes (a refit, ``partial_fit``, loading a state dict), so callers never see a
stale encoder.
"""

import copy
import math
import threading
import weakref

import torch
from torch import nn

from sk_convae._network import DenseConvAutoEncoder, DownBlock, downsampled_sizes

_PREPARED = weakref.WeakKeyDictionary()  # module -> (weights' version, encode)
_LOCK = threading.Lock()

# transform's batches: as many rows as keep the largest feature map within the first
# budget and the float32 input within the second (per device type)
INFERENCE_BYTES = {"cpu": (16 * 2**20, 16 * 2**20), "cuda": (256 * 2**20, 16 * 2**20)}


def inference_batch_rows(module, device, batch_size):
    """Rows per batch for ``transform`` and ``inverse_transform``.

    Inference keeps no activations for a backward pass, so a batch can hold more
    rows than a training step; per-batch costs (a kernel launch per layer, a copy
    to the device, a conversion of the rows) then weigh less. More is not always
    faster on a CPU: once its feature maps outgrow the caches a convolution slows
    down, the sooner the larger the images. The batch therefore holds as many rows
    as keep the encoder's largest feature map within ``INFERENCE_BYTES[device][0]``
    and the float32 rows within ``[1]``, and never fewer than ``batch_size``. With the
    default ``channels=(32, 64, 128)`` that is, on a CPU (16 MiB each), 8,192 rows
    of 8x8 images and 668 of 28x28; on CUDA (256 MiB and 16 MiB), 5,349 of 28x28.
    Rows are independent in eval mode: the codes depend on it only through
    float32 rounding.

    Parameters
    ----------
    module : torch.nn.Module
        A network of ``sk_convae._network``.
    device : str or torch.device
        Where the rows are encoded; device types without a budget use
        ``batch_size``.
    batch_size : int
        The estimator's ``batch_size``: the fewest rows per batch.

    Returns
    -------
    rows : int
    """
    budgets = INFERENCE_BYTES.get(torch.device(device).type)
    map_size = _largest_feature_map(module)
    if budgets is None or map_size == 0:
        return batch_size
    activation_budget, input_budget = budgets
    row_bytes = 4 * math.prod(module.image_shape)
    rows = min(activation_budget // (4 * map_size), input_budget // row_bytes)
    return max(batch_size, rows)


def _largest_feature_map(module):
    """Values per row of the encoder's largest convolution output (0: none).

    Follows the image through the encoder's convolutions and poolings in order.
    """
    _, height, width = module.image_shape
    largest = 0
    for layer in module.encoder.modules():
        if isinstance(layer, nn.Conv2d):
            (kh, kw), (sh, sw), (ph, pw) = (
                layer.kernel_size,
                layer.stride,
                layer.padding,
            )
            # a 1x1 map meets only the kernel's centre (DownBlock.forward): 1x1 out
            height = max(1, (height + 2 * ph - kh) // sh + 1)
            width = max(1, (width + 2 * pw - kw) // sw + 1)
            largest = max(largest, layer.out_channels * height * width)
        elif isinstance(layer, nn.MaxPool2d):  # 2x2, ceil_mode: 7 -> 4
            height, width = math.ceil(height / 2), math.ceil(width / 2)
    return largest


def inference_encoder(module, device):
    """``module.encode``, or an equivalent prepared for fast inference on ``device``.

    Parameters
    ----------
    module : torch.nn.Module
        A fitted network of ``sk_convae._network``, in eval mode when called.
    device : str
        Where the rows will be: ``'cpu'`` may get a prepared encoder.

    Returns
    -------
    encode : callable
        Flat float32 rows ``(N, C*H*W)`` -> codes ``(N, n_components)``.
    """
    if not _preparable(module, device):
        return module.encode
    version = _weights_version(module)
    with _LOCK:
        cached = _PREPARED.get(module)
    if cached is not None and cached[0] == version:
        return cached[1]
    try:
        encode = _prepare(module).encode
        with torch.inference_mode():
            encode(torch.zeros(2, math.prod(module.image_shape)))  # a probe
    except (AttributeError, NotImplementedError, RuntimeError):
        # a torch whose oneDNN entry points moved or refuse these shapes: the
        # module's own encode is as right, only slower
        encode = module.encode
    with _LOCK:
        _PREPARED[module] = (version, encode)
    return encode


def _preparable(module, device):
    return (
        torch.device(device).type == "cpu"
        and torch.backends.mkldnn.is_available()
        and isinstance(module, DenseConvAutoEncoder)
        and all(p.dtype == torch.float32 for p in module.parameters())
    )


def _weights_version(module):
    """Changes whenever a parameter or buffer is written to or replaced."""
    tensors = [*module.parameters(), *module.buffers()]
    return tuple((t.data_ptr(), t._version) for t in tensors)


def _prepare(module):
    """A copy of ``module`` sharing its weights, whose ``encoder`` is prepared.

    The copy runs the module's own ``encode`` (the linear path of the residual
    network included); only the convolutional encoder is swapped.
    """
    *blocks, flatten, linear = module.encoder
    assert all(isinstance(b, DownBlock) for b in blocks), module.encoder
    _, height, width = module.image_shape
    sizes = downsampled_sizes(height, width, len(blocks))
    stages = []
    for block, size in zip(blocks, sizes):
        stages += [
            MkldnnConv2d(_folded_convolution(block, size)),
            nn.ReLU(inplace=True),
        ]
    encoder = PreparedEncoder(nn.Sequential(*stages), flatten, linear)
    prepared = copy.copy(module)  # shares parameters, buffers and submodules
    prepared._modules = {**module._modules, "encoder": encoder}
    prepared.training = False
    return prepared


@torch.no_grad()
def _folded_convolution(block, in_size):
    """One convolution with a bias equal to ``block``'s convolution and BatchNorm.

    ``in_size`` is the block's input (H, W): a 1x1 map meets only the kernel's
    centre, as ``DownBlock.forward`` computes it.
    """
    conv, norm, _ = block
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)  # (C',)
    weight = conv.weight * scale[:, None, None, None]  # (C', C, 3, 3)
    if tuple(in_size) == (1, 1):
        folded = nn.Conv2d(conv.in_channels, conv.out_channels, 1)
        folded.weight.copy_(weight[:, :, 1:2, 1:2])  # (C', C, 1, 1)
    else:
        folded = nn.Conv2d(conv.in_channels, conv.out_channels, 3, stride=2, padding=1)
        folded.weight.copy_(weight)
    folded.bias.copy_(norm.bias - norm.running_mean * scale)
    return folded.eval()


class MkldnnConv2d(nn.Module):
    """A ``Conv2d`` whose weights are packed once into oneDNN's layout.

    Takes and returns oneDNN tensors (``Tensor.to_mkldnn()``), float32.
    """

    def __init__(self, conv):
        super().__init__()
        self.stride, self.padding = conv.stride, conv.padding
        self.dilation, self.groups = conv.dilation, conv.groups
        weight = conv.weight.detach().to_mkldnn()
        # packed for these strides and paddings; torch.utils.mkldnn does the same
        # through torch.jit, which warns "deprecated" in torch 2.13
        self.weight = torch._C._nn.mkldnn_reorder_conv2d_weight(
            weight, self.padding, self.stride, self.dilation, self.groups
        )
        self.bias = conv.bias.detach().to_mkldnn()

    def forward(self, x):
        return torch.mkldnn_convolution(
            x,
            self.weight,
            self.bias,
            self.padding,
            self.stride,
            self.dilation,
            self.groups,
        )


class PreparedEncoder(nn.Module):
    """Folded convolutions in oneDNN's layout, then the module's own head."""

    def __init__(self, stages, flatten, linear):
        super().__init__()
        self.stages = stages
        self.flatten = flatten
        self.linear = linear

    def forward(self, image):
        # (N, C, H, W) -> oneDNN layout -> (N, C_L, H_L, W_L), dense again
        features = self.stages(image.contiguous().to_mkldnn()).to_dense()
        return self.linear(self.flatten(features))  # -> (N, n_components)
