"""The torch networks on their own: shapes, the exact seed, training-only noise."""

import math
import pathlib

import pytest
import torch

from sk_convae._network import (
    ClippedMSELoss,
    ConvCodeAutoEncoder,
    DenseConvAutoEncoder,
    GaussianNoise,
    ResidualConvAutoEncoder,
    TransposedConv2d,
    downsampled_sizes,
    principal_axes,
)

IMAGE_SHAPES = [(1, 28, 28), (1, 8, 8), (3, 32, 32), (1, 1, 1), (1, 5, 7), (2, 1, 9)]


@pytest.mark.parametrize("image_shape", IMAGE_SHAPES)
@pytest.mark.parametrize("channels", [(8,), (8, 16), (4, 8, 8)])
@pytest.mark.parametrize("network", [DenseConvAutoEncoder, ResidualConvAutoEncoder])
def test_dense_and_residual_autoencoder_shapes(image_shape, channels, network):
    n_features = math.prod(image_shape)
    net = network(
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


def test_principal_axes_are_pca():
    from sklearn.decomposition import PCA

    torch.manual_seed(0)
    # a low-rank signal plus noise: well separated axes
    rows = torch.randn(500, 6) @ torch.randn(6, 40) + 0.01 * torch.randn(500, 40)
    mean, axes = principal_axes(rows, 6)
    pca = PCA(6).fit(rows.numpy())
    assert torch.allclose(mean, torch.as_tensor(pca.mean_), atol=1e-5)
    # the same axes up to sign
    overlap = (axes @ torch.as_tensor(pca.components_).T).abs()
    assert torch.allclose(overlap, torch.eye(6), atol=1e-3)
    # more axes asked than the rows can give: as many as there are
    assert principal_axes(rows[:4], 6)[1].shape == (3, 40)


def test_untrained_residual_autoencoder_is_pca():
    """The convolutional corrections start at zero: the network is PCA at first."""
    from sklearn.decomposition import PCA

    torch.manual_seed(0)
    rows = torch.rand(300, 64)
    net = ResidualConvAutoEncoder(
        image_shape=(1, 8, 8),
        n_components=8,
        channels=(4, 8),
        noise_std=0.0,
        clip_noise=True,
    ).eval()
    net.init_linear(*principal_axes(rows, 8))
    pca = PCA(8).fit(rows.numpy())
    pca_rec = pca.inverse_transform(pca.transform(rows.numpy()))
    with torch.no_grad():
        rec = net.decode(net.encode(rows))
    assert torch.allclose(rec, torch.as_tensor(pca_rec, dtype=torch.float32), atol=1e-4)
    # only the linear path's steps are scaled down, not its values
    assert torch.allclose(net.mean(), rows.mean(dim=0), atol=1e-6)


def test_clipped_mse_ignores_overshoot_beyond_the_range():
    loss = ClippedMSELoss()
    target = torch.tensor([[0.0, 1.0, 0.5]])
    assert loss(torch.tensor([[-3.0, 2.0, 0.5]]), target).item() == 0.0
    assert loss(torch.tensor([[0.0, 1.0, 0.0]]), target).item() == pytest.approx(
        0.25 / 3
    )


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


def test_a_1x1_map_meets_only_the_kernel_centre():
    """Same values as the strided convolution, and finite bfloat16 gradients (oneDNN
    gives non-finite ones to the padded taps of a strided conv on a 1x1 map)."""
    from sk_convae._network import DownBlock

    torch.manual_seed(0)
    block = DownBlock(64, 128).eval()
    x = torch.randn(5, 64, 1, 1)
    conv, norm, activation = block
    assert torch.allclose(block(x), activation(norm(conv(x))), atol=1e-5)
    block.train()
    for _ in range(20):
        block.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = block(torch.randn(7, 64, 1, 1))
        out.float().sum().backward()
        assert torch.isfinite(conv.weight.grad).all()


def test_transposed_conv_on_one_pixel_maps_has_exact_gradients():
    # oneDNN's bfloat16 weight gradient leaves the taps a 1x1 map never reaches
    # unwritten on CPUs with AMX-BF16 (garbage, now and then NaN): such maps run
    # in float32, where those taps get their true gradient, zero
    torch.manual_seed(0)
    layer = TransposedConv2d(64, 32, 3, stride=2, padding=1, bias=False)
    for _ in range(50):
        x = torch.relu(torch.randn(36, 64, 1, 1))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = layer(x)
        assert y.dtype == torch.float32 and y.shape == (36, 32, 1, 1)
        y.square().sum().backward()
        grad = layer.weight.grad  # (in, out, 3, 3); only the centre tap is used
        assert torch.isfinite(grad).all()
        centre = torch.zeros(3, 3, dtype=torch.bool)
        centre[1, 1] = True
        assert (grad[:, :, ~centre] == 0).all() and grad[:, :, 1, 1].abs().sum() > 0
        layer.zero_grad()


def test_transposed_conv_on_larger_maps_is_the_plain_layer():
    torch.manual_seed(0)
    layer = TransposedConv2d(8, 4, 3, stride=2, padding=1, output_padding=1)
    plain = torch.nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(5, 8, 3, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(x).dtype == torch.bfloat16
        assert torch.equal(layer(x), plain(x))
    assert torch.equal(layer(x), plain(x))
