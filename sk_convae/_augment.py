"""Training-time augmentation: random flips (and turns) of the images in a batch.

An autoencoder's target is its input, so an augmented row is both: the network
learns to reconstruct the flipped image. On a few thousand image patches this is
what lets the network learn structure rather than the rows themselves (the
Benchmarks page of the documentation compares the two on photos).
"""

import torch

AUGMENTATIONS = ("mirror", "dihedral")


class RandomFlips:
    """Flip each image of a batch at random, independently of the other rows.

    ``'mirror'``: left-right flips, for content whose up and down matter (photos
    of scenes, faces). ``'dihedral'``: left-right and up-down flips and, for square
    images, transposition: all 8 symmetries of the square (the 90-degree turns
    included), for content with no orientation (textures, microscopy, satellite or
    aerial images).

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of one image; rows are flattened images of this shape.
    kind : {'mirror', 'dihedral'}
        Which flips.
    """

    def __init__(self, image_shape, kind):
        if kind not in AUGMENTATIONS:
            raise ValueError(f"kind must be one of {AUGMENTATIONS}, got {kind!r}.")
        self.image_shape = tuple(image_shape)
        self.kind = kind

    def __call__(self, batch, rng):
        """``batch`` (N, C*H*W) -> a new tensor of the same shape; ``rng`` is a
        ``numpy.random.Generator`` that draws the flips."""
        n = batch.shape[0]
        _, h, w = self.image_shape
        images = batch.view(n, *self.image_shape)  # (N, C*H*W) -> (N, C, H, W)
        n_draws = 1 if self.kind == "mirror" else 3
        draws = torch.from_numpy(rng.random((n_draws, n)) < 0.5)
        draws = draws.to(batch.device).view(n_draws, n, 1, 1, 1)
        images = torch.where(draws[0], images.flip(-1), images)
        if self.kind == "dihedral":
            images = torch.where(draws[1], images.flip(-2), images)
            if h == w:
                images = torch.where(draws[2], images.transpose(-2, -1), images)
        return images.reshape(n, -1)  # (N, C, H, W) -> (N, C*H*W)
