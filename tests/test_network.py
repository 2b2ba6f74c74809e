"""The torch networks on their own: shapes, the exact seed, training-only noise."""

import math
import pathlib

import pytest
import torch

from sk_convae._network import (
    ConvCodeAutoEncoder,
    DenseConvAutoEncoder,
    GaussianNoise,
    downsampled_sizes,
)

IMAGE_SHAPES = [(1, 28, 28), (1, 8, 8), (3, 32, 32), (1, 1, 1), (1, 5, 7), (2, 1, 9)]


@pytest.mark.parametrize("image_shape", IMAGE_SHAPES)
@pytest.mark.parametrize("channels", [(8,), (8, 16), (4, 8, 8)])
def test_dense_autoencoder_shapes(image_shape, channels):
    n_features = math.prod(image_shape)
    net = DenseConvAutoEncoder(
        image_shape=image_shape,
        n_components=5,
        channels=channels,
        noise_std=0.0,
        clip_noise=True,
    )
    x = torch.rand(3, n_features)
    assert net.encode(x).shape == (3, 5)
    assert net.decode(net.encode(x)).shape == (3, n_features)
    assert net(x).shape == (3, n_features)


@pytest.mark.parametrize("image_shape", IMAGE_SHAPES)
def test_conv_code_autoencoder_shapes(image_shape):
    net = ConvCodeAutoEncoder(
        image_shape=image_shape, channels=(4, 6), noise_std=0.0, clip_noise=False
    )
    _, h, w = image_shape
    code_size = 6 * math.prod(downsampled_sizes(h, w, 2)[-1])
    x = torch.rand(2, math.prod(image_shape))
    assert net.encode(x).shape == (2, code_size)
    assert net(x).shape == x.shape


def test_seed_architecture_is_the_keras_tutorial():
    """Conv 16-8-8 + 'same' max-pooling: 28 -> 14 -> 7 -> 4, a 4x4x8 = 128-d code;
    decoder conv 8-8-16, 2x upsampling, third conv 'valid': 4 -> 8 -> 16 -> 14 -> 28.
    """
    net = ConvCodeAutoEncoder(
        image_shape=(1, 28, 28), channels=(16, 8, 8), noise_std=0.0, clip_noise=True
    )
    assert net.code_map_shape == (8, 4, 4)

    encoder_convs = [m for m in net.encoder if isinstance(m, torch.nn.Conv2d)]
    decoder_convs = [m for m in net.decoder if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in encoder_convs] == [16, 8, 8]
    assert [c.out_channels for c in decoder_convs] == [8, 8, 16, 1]
    assert all(c.kernel_size == (3, 3) for c in encoder_convs + decoder_convs)
    assert [c.padding for c in decoder_convs] == [(1, 1), (1, 1), (0, 0), (1, 1)]
    # The Keras model's parameter count.
    assert sum(p.numel() for p in net.parameters()) == 4385

    sizes = []
    for m in net.encoder:
        if isinstance(m, torch.nn.MaxPool2d):
            m.register_forward_hook(lambda mod, i, o: sizes.append(o.shape[-1]))
    for m in net.decoder:
        if isinstance(m, (torch.nn.Upsample, torch.nn.Conv2d)):
            m.register_forward_hook(lambda mod, i, o: sizes.append(o.shape[-1]))
    z = net.encode(torch.rand(1, 784))
    assert z.shape == (1, 128)
    net.decode(z)
    # encoder pools, then decoder conv/upsample pairs and the output conv
    assert sizes == [14, 7, 4, 4, 8, 8, 16, 14, 28, 28]


def test_noise_only_in_training_mode():
    noise = GaussianNoise(std=0.5, clip=True)
    x = torch.full((4, 10), 0.5)
    noise.eval()
    assert torch.equal(noise(x), x)
    noise.train()
    noisy = noise(x)
    assert not torch.equal(noisy, x)
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0


def test_network_file_has_no_sklearn():
    import sk_convae._network as network

    source = pathlib.Path(network.__file__).read_text()
    assert "sklearn" not in source
