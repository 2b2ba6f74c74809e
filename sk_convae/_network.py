"""The convolutional autoencoders, in plain PyTorch.

The file reads top to bottom as the architecture: building blocks first, then the three
networks the estimator can build. All take and return flat rows, ``(N, C*H*W)``, so
that the scikit-learn side only ever sees 2-D arrays; images exist only in here.

``ResidualConvAutoEncoder`` (the default)
    PCA as a linear path from the centred image to the code and back, with a
    convolutional encoder and decoder (as in ``DenseConvAutoEncoder``) added to it
    whose last layers start at zero: training starts from PCA's solution and adds
    what the convolutions explain. Outputs are on the data's scale.

``DenseConvAutoEncoder``
    Strided 3x3 convolutions with BatchNorm and ReLU halve the image at each stage,
    a linear layer maps the last feature map to ``n_components`` numbers, and a
    mirrored decoder of transposed convolutions draws the image back. The output is
    logits: a sigmoid turns them into intensities for binary cross-entropy.

``ConvCodeAutoEncoder`` (the Keras tutorial's network)
    3x3 'same' convolutions with ReLU, each followed by 2x2 max-pooling; the last
    feature map *is* the code (no dense bottleneck). The decoder mirrors it with
    nearest-neighbour 2x upsampling. With ``channels=(16, 8, 8)`` on 28x28 images
    this is exactly the seed: 28 -> 14 -> 7 -> 4, a 4x4x8 = 128-d code, and a
    decoder whose third convolution is 'valid' so that 16 -> 14 -> 28.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F


def downsampled_sizes(height, width, n_stages):
    """Spatial size after each stride-2 stage, ceil(size / 2), input size first."""
    sizes = [(height, width)]
    for _ in range(n_stages):
        h, w = sizes[-1]
        sizes.append((math.ceil(h / 2), math.ceil(w / 2)))
    return sizes


# ----------------------------------------------------------------------------------
# Building blocks


class GaussianNoise(nn.Module):
    """Corrupt the input with ``std * N(0, 1)`` noise, in training mode only.

    This is what makes a denoising autoencoder: the network sees the noisy input
    and is asked for the clean one. ``clip`` keeps intensities in [0, 1], as the
    tutorial's ``np.clip(x_noisy, 0.0, 1.0)`` did.
    """

    def __init__(self, *, std, clip):
        super().__init__()
        self.std = std
        self.clip = clip

    def forward(self, x):
        if not self.training or self.std == 0:
            return x
        x = x + self.std * torch.randn_like(x)
        return x.clamp(0.0, 1.0) if self.clip else x


class DownBlock(nn.Sequential):
    """Stride-2 3x3 convolution, BatchNorm, ReLU: (N, C, H, W) -> (N, C', H/2, W/2)."""

    def __init__(self, in_channels, out_channels):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        conv, norm, activation = self
        if x.shape[-2:] == (1, 1):
            # A 1x1 map meets only the kernel's centre (the rest is padding): the
            # same result as a 1x1 convolution with the centre tap, which is what is
            # computed. It also avoids non-finite bfloat16 gradients that oneDNN
            # gives the padded taps of a strided convolution on a 1x1 map.
            x = F.conv2d(
                x, conv.weight[:, :, 1:2, 1:2]
            )  # (N, C, 1, 1) -> (N, C', 1, 1)
        else:
            x = conv(x)
        return activation(norm(x))


class TransposedConv2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` that runs in float32 on maps one pixel high or wide.

    On such a map most kernel taps reach no output. oneDNN's bfloat16 kernel for
    the weight gradient (CPUs with AMX-BF16, torch 2.13) leaves those taps'
    gradients unwritten, so they hold whatever the memory held, now and then NaN,
    and one such step ruins the network. The maps are a pixel wide: float32 costs
    nothing there. Elsewhere it is the plain layer, under any autocast.
    """

    def forward(self, x, output_size=None):
        if min(x.shape[-2:]) > 1:
            return super().forward(x, output_size)
        with torch.autocast(x.device.type, enabled=False):
            return super().forward(x.float(), output_size)


class UpBlock(nn.Sequential):
    """Transposed 3x3 convolution with stride 2, BatchNorm, ReLU; doubles H and W.

    ``output_padding`` (0 or 1 per axis) picks between 2s - 1 and 2s, so that the
    decoder lands exactly on the encoder's sizes, odd or even.
    """

    def __init__(self, in_channels, out_channels, output_padding):
        super().__init__(
            TransposedConv2d(
                in_channels,
                out_channels,
                3,
                stride=2,
                padding=1,
                output_padding=output_padding,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


def _output_padding(small, large):
    """output_padding taking a stride-2 transposed conv from ``small`` to ``large``."""
    return tuple(big - (2 * s - 1) for s, big in zip(small, large))


class FlatImageAutoEncoder(nn.Module):
    """What both networks share: flat rows in and out, noise only in training.

    Subclasses build ``self.noise``, ``self.encoder`` (images to codes) and
    ``self.decoder`` (codes to image logits) and set ``self.image_shape``.
    """

    def encode(self, x):
        """(N, C*H*W) -> codes (N, n_components)."""
        x = x.view(x.shape[0], *self.image_shape)  # (N, C*H*W) -> (N, C, H, W)
        return self.encoder(x)

    def decode(self, z):
        """codes (N, n_components) -> logits (N, C*H*W)."""
        return self.decoder(z).flatten(1)  # (N, C, H, W) -> (N, C*H*W)

    def forward(self, x):
        return self.decode(self.encode(self.noise(x)))


# ----------------------------------------------------------------------------------
# The previous default: strided convolutions and a dense bottleneck


class DenseConvAutoEncoder(FlatImageAutoEncoder):
    """Convolutional encoder, linear bottleneck of ``n_components``, mirrored decoder.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of one image.
    n_components : int
        Width of the code.
    channels : tuple of int
        Encoder widths; one stride-2 stage per entry.
    noise_std : float
        Standard deviation of the training-time input noise (0 disables it).
    clip_noise : bool
        Clip noisy inputs to [0, 1].
    """

    def __init__(self, *, image_shape, n_components, channels, noise_std, clip_noise):
        super().__init__()
        self.image_shape = tuple(image_shape)
        c, h, w = self.image_shape
        sizes = downsampled_sizes(h, w, len(channels))
        self.code_map_shape = (channels[-1], *sizes[-1])
        code_map_size = math.prod(self.code_map_shape)

        self.noise = GaussianNoise(std=noise_std, clip=clip_noise)

        widths = (c, *channels)
        self.encoder = nn.Sequential(
            *(DownBlock(widths[i], widths[i + 1]) for i in range(len(channels))),
            nn.Flatten(),  # (N, C_L, H_L, W_L) -> (N, C_L * H_L * W_L)
            nn.Linear(code_map_size, n_components),
        )

        up_blocks = [
            UpBlock(widths[i + 1], widths[i], _output_padding(sizes[i + 1], sizes[i]))
            for i in reversed(range(1, len(channels)))
        ]
        self.decoder = nn.Sequential(
            nn.Linear(n_components, code_map_size),
            nn.ReLU(inplace=True),
            # (N, C_L*H_L*W_L) -> (N, C_L, H_L, W_L)
            nn.Unflatten(1, self.code_map_shape),
            *up_blocks,
            # last stage: back to the image's channels, no norm, no activation: logits
            TransposedConv2d(
                widths[1],
                c,
                3,
                stride=2,
                padding=1,
                output_padding=_output_padding(sizes[1], sizes[0]),
            ),
        )


# ----------------------------------------------------------------------------------
# The default network: PCA, plus convolutional corrections that start at zero


class ScaledParameter(nn.Module):
    """A tensor ``value = gain * raw`` whose ``raw`` is what the optimizer moves.

    Adam moves every number by about the learning rate per step, whatever its size.
    The linear path's numbers are small (a unit-norm principal axis of 3,072 pixels
    has entries near 0.02), so the step the convolutions need would wipe out its
    initialisation within a few steps; storing ``value / gain`` scales its steps by
    ``gain`` instead, without a second learning rate.
    """

    def __init__(self, *shape, gain):
        super().__init__()
        self.gain = gain
        self.raw = nn.Parameter(torch.zeros(*shape))

    def forward(self):
        return self.gain * self.raw

    @torch.no_grad()
    def set_(self, value):
        self.raw.copy_(torch.as_tensor(value, dtype=self.raw.dtype) / self.gain)


class ResidualConvAutoEncoder(DenseConvAutoEncoder):
    """PCA as a linear path, with a convolutional autoencoder added to it.

    ``encode(x) = (x - mean) @ W_enc.T + conv_encoder(x)`` and
    ``decode(z) = mean + z @ W_dec + conv_decoder(z)``. ``init_linear`` sets the
    linear path to the principal axes of the training data, and the last layer of
    each convolutional path starts at zero: the untrained network *is* PCA, and
    training adds what the convolutions can explain. The output is on the data's
    scale (no sigmoid); the squared error is its loss.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of one image.
    n_components : int
        Width of the code.
    channels : tuple of int
        Widths of the convolutional encoder; one stride-2 stage per entry.
    noise_std : float
        Standard deviation of the training-time input noise (0 disables it).
    clip_noise : bool
        Clip noisy inputs to [0, 1].
    linear_gain : float
        Step size of the linear path relative to the convolutions' (see
        ``ScaledParameter``).
    """

    def __init__(
        self,
        *,
        image_shape,
        n_components,
        channels,
        noise_std,
        clip_noise,
        linear_gain=0.03,
    ):
        super().__init__(
            image_shape=image_shape,
            n_components=n_components,
            channels=channels,
            noise_std=noise_std,
            clip_noise=clip_noise,
        )
        n_features = math.prod(self.image_shape)
        # the linear path: PCA's mean and axes once init_linear has run
        self.mean = ScaledParameter(n_features, gain=linear_gain)
        self.encoder_axes = ScaledParameter(n_components, n_features, gain=linear_gain)
        self.decoder_axes = ScaledParameter(n_components, n_features, gain=linear_gain)
        # the corrections start at zero
        for last in (self.encoder[-1], self.decoder[-1]):
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    @torch.no_grad()
    def init_linear(self, mean, components):
        """Start the linear path as PCA.

        ``mean`` has shape ``(C*H*W,)``; ``components`` ``(k, C*H*W)``, orthonormal
        rows, ``k <= n_components`` (code entries beyond ``k`` start at zero).
        """
        k = components.shape[0]
        axes = torch.zeros_like(self.encoder_axes())
        axes[:k] = torch.as_tensor(components, dtype=axes.dtype)
        self.mean.set_(mean)
        self.encoder_axes.set_(axes)
        self.decoder_axes.set_(axes)

    def encode(self, x):
        """(N, C*H*W) -> codes (N, n_components)."""
        # the linear path in float32 whatever the autocast: it carries most of the
        # signal, and bfloat16's 8-bit mantissa would cost more than it saves
        with torch.autocast(x.device.type, enabled=False):
            linear = (x.float() - self.mean()) @ self.encoder_axes().T
        image = x.view(x.shape[0], *self.image_shape)  # (N, C*H*W) -> (N, C, H, W)
        return linear + self.encoder(image).float()

    def decode(self, z):
        """codes (N, n_components) -> images (N, C*H*W), on the data's scale."""
        with torch.autocast(z.device.type, enabled=False):
            linear = self.mean() + z.float() @ self.decoder_axes()
        # (N, C, H, W) -> (N, C*H*W)
        return linear + self.decoder(z).flatten(1).float()


EXACT_PCA_FEATURES = 2048


def principal_axes(rows, k):
    """PCA of ``rows`` (N, D): their mean (D,) and up to ``k`` axes (k', D).

    Exact (the eigenvectors of the covariance, in float64) up to
    ``EXACT_PCA_FEATURES`` features; above, a randomized SVD of the centred rows
    (``torch.svd_lowrank``, seeded by torch's random state), which computes only
    the top ``k`` axes however large ``D`` is.
    """
    rows = rows.float()
    mean = rows.mean(dim=0)
    k = min(k, rows.shape[0] - 1, rows.shape[1])
    if k < 1:
        return mean, torch.zeros(0, rows.shape[1])
    centred = rows - mean
    if rows.shape[1] <= EXACT_PCA_FEATURES:
        covariance = centred.double().T @ centred.double()  # (D, D)
        _, vectors = torch.linalg.eigh(covariance)  # ascending eigenvalues
        return mean, vectors[:, -k:].flip(1).T.float()  # (D, k) -> (k, D)
    _, _, v = torch.svd_lowrank(centred, q=min(k + 10, *rows.shape), niter=6)
    return mean, v[:, :k].T  # (D, q) -> (k, D)


class ClippedMSELoss(nn.MSELoss):
    """Squared error of the prediction clipped to [0, 1], the range of intensities.

    A reconstruction below 0 of a black pixel is as good as 0 (``inverse_transform``
    clips it): the loss does not ask the network to land exactly on the boundary.
    """

    def forward(self, prediction, target):
        return super().forward(prediction.clamp(0.0, 1.0), target)


# ----------------------------------------------------------------------------------
# The tutorial's network: the conv feature map is the code


def conv_code_shape(image_shape, channels):
    """``(C_L, H_L, W_L)`` of the code map of a ``ConvCodeAutoEncoder``."""
    _, h, w = image_shape
    return (channels[-1], *downsampled_sizes(h, w, len(channels))[-1])


class ConvCodeAutoEncoder(FlatImageAutoEncoder):
    """Conv + max-pool encoder whose last feature map is the code; upsampling decoder.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of one image.
    channels : tuple of int
        Encoder widths; one conv + 2x2 max-pool stage per entry. The decoder uses
        them in reverse.
    noise_std : float
        Standard deviation of the training-time input noise (0 disables it).
    clip_noise : bool
        Clip noisy inputs to [0, 1].
    """

    def __init__(self, *, image_shape, channels, noise_std, clip_noise):
        super().__init__()
        self.image_shape = tuple(image_shape)
        c, h, w = self.image_shape
        sizes = downsampled_sizes(h, w, len(channels))
        self.code_map_shape = conv_code_shape(self.image_shape, channels)

        self.noise = GaussianNoise(std=noise_std, clip=clip_noise)

        widths = (c, *channels)
        encoder = []
        for i in range(len(channels)):
            encoder += [
                nn.Conv2d(widths[i], widths[i + 1], 3, padding=1),
                nn.ReLU(inplace=True),
                # ceil_mode is Keras' padding='same' pooling: 7 -> 4
                nn.MaxPool2d(2, ceil_mode=True),
            ]
        self.encoder = nn.Sequential(
            *encoder,
            nn.Flatten(),  # (N, C_L, H_L, W_L) -> (N, C_L * H_L * W_L)
        )

        # Keras' mirror: conv then 2x upsample, from the deepest stage out. A stage
        # whose 'same' output would overshoot the encoder size that the *next*
        # upsampling must reach, but that a 'valid' conv (which trims 2) hits
        # exactly, uses 'valid': on 28x28 that is the third conv, 16 -> 14 -> 28.
        decoder = []
        size = sizes[-1]
        in_width = channels[-1]
        for stage, out_width in enumerate(reversed(channels)):
            target = sizes[len(channels) - 1 - stage]
            trimmed = tuple(2 * (s - 2) for s in size)
            padding = 0 if trimmed == target and min(size) > 2 else 1
            size = tuple(2 * (s - 2 * (1 - padding)) for s in size)
            decoder += [
                nn.Conv2d(in_width, out_width, 3, padding=padding),
                nn.ReLU(inplace=True),
                nn.Upsample(scale_factor=2, mode="nearest"),
            ]
            in_width = out_width
        # A size that 2x steps cannot reach exactly (e.g. 1x1 images) is resized
        # with nearest-neighbour interpolation before the output conv.
        if size != sizes[0]:
            decoder.append(nn.Upsample(size=sizes[0], mode="nearest"))
        self.decoder = nn.Sequential(
            # (N, C_L*H_L*W_L) -> (N, C_L, H_L, W_L)
            nn.Unflatten(1, self.code_map_shape),
            *decoder,
            nn.Conv2d(in_width, c, 3, padding=1),  # logits; sigmoid lives in the loss
        )
