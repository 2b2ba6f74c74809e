"""skorch callbacks made for autoencoders; pass them with ``callbacks=[...]``."""

import numpy as np
import torch
from skorch.callbacks import Callback

from sk_convae._network import ClippedMSELoss

__all__ = ["TensorBoard", "reconstruct"]


def reconstruct(net, rows):
    """Reconstruct rows on the network's scale with a fitted skorch network.

    The network runs in eval mode and without autograd, and its output is
    brought to the data's range as ``inverse_transform`` does: through a sigmoid
    for binary cross-entropy, clipped to [0, 1] for the clipped squared error.
    The module's training mode is restored afterwards, so that a callback can
    call it in the middle of training.

    Parameters
    ----------
    net : skorch.net.NeuralNet
        An initialised network, such as ``ConvAutoEncoderTransformer.net_`` or the
        network a callback is given.
    rows : torch.Tensor of shape (n_samples, n_features)
        Flattened images on the network's scale, ``(X - data_offset_) /
        data_scale_``.

    Returns
    -------
    reconstructions : torch.Tensor of shape (n_samples, n_features)
        On the network's scale and its device.

    See Also
    --------
    sk_convae.ConvAutoEncoderTransformer.inverse_transform : Reconstructions
        on the caller's scale, from codes.

    Examples
    --------
    >>> import torch
    >>> from sklearn.datasets import load_digits
    >>> from sk_convae import ConvAutoEncoderTransformer
    >>> from sk_convae.callbacks import reconstruct
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = ConvAutoEncoderTransformer(
    ...     8, image_shape=(8, 8), channels=(4, 8), max_epochs=1, random_state=0
    ... ).fit(X)
    >>> rows = torch.as_tensor((X[:3] - ae.data_offset_) / ae.data_scale_)
    >>> reconstruct(ae.net_, rows.float()).shape
    torch.Size([3, 64])
    """
    module = net.module_
    was_training = module.training
    module.eval()
    with torch.inference_mode():
        out = module(rows.to(net.device))
        if isinstance(net.criterion_, torch.nn.BCEWithLogitsLoss):
            out = torch.sigmoid(out)
        elif isinstance(net.criterion_, ClippedMSELoss):
            out = out.clamp(0.0, 1.0)
    module.train(was_training)
    return out


class TensorBoard(Callback):
    """Write losses, learning rate and reconstruction images for TensorBoard.

    Pass it with ``ConvAutoEncoderTransformer(callbacks=[TensorBoard("runs/ae")])``
    and run ``tensorboard --logdir runs``. Scalars per epoch: ``loss/train_loss``
    (and ``loss/valid_loss`` with early stopping), ``lr``, ``epoch_seconds``.
    Images: the first ``n_images`` training images once (``originals``), and their
    reconstructions (``reconstructions``) every ``images_every`` epochs and after the
    last one. The writer is opened when training starts and closed when it ends,
    so the fitted estimator still pickles.

    Needs the ``tensorboard`` package: ``pip install sk-convae[tensorboard]``.

    Parameters
    ----------
    log_dir : str or path-like
        Folder for the event files.
    n_images : int, default=8
        How many training images to follow.
    images_every : int, default=5
        Epochs between two reconstruction snapshots.

    See Also
    --------
    skorch.callbacks.TensorBoard : The callback of skorch, which logs the
        history's scalars only.
    sk_convae.plotting.TrainingCurveDisplay : The losses of a fitted
        transformer, with matplotlib.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_digits
    >>> from sk_convae import ConvAutoEncoderTransformer
    >>> from sk_convae.callbacks import TensorBoard
    >>> X, _ = load_digits(return_X_y=True)
    >>> with tempfile.TemporaryDirectory() as runs:
    ...     ae = ConvAutoEncoderTransformer(
    ...         8, image_shape=(8, 8), channels=(4, 8), max_epochs=2,
    ...         callbacks=[TensorBoard(os.path.join(runs, "ae"), images_every=1)],
    ...     ).fit(X)
    ...     print(len(os.listdir(os.path.join(runs, "ae"))))
    1
    """

    def __init__(self, log_dir, *, n_images=8, images_every=5):
        self.log_dir = log_dir
        self.n_images = n_images
        self.images_every = images_every

    def initialize(self):
        """Forget any writer; skorch calls it when the network is initialised.

        Returns
        -------
        self : TensorBoard
            This callback.
        """
        self.writer_ = None
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Open the writer and write the original images.

        Parameters
        ----------
        net : skorch.net.NeuralNet
            The network being trained.
        X : torch.utils.data.Dataset or array-like, default=None
            The training rows, on the network's scale.
        y : None
            Ignored.
        **kwargs : dict
            Ignored; what else skorch passes.
        """
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "The TensorBoard callback needs tensorboard: "
                "pip install 'sk-convae[tensorboard]'"
            ) from exc
        self.writer_ = SummaryWriter(log_dir=str(self.log_dir))
        # X is what the network trains on: rows already on its scale.
        self.images_ = torch.as_tensor(np.asarray(X[: self.n_images], dtype=np.float32))
        self.writer_.add_images("originals", self._as_images(net, self.images_), 0)

    def on_epoch_end(self, net, **kwargs):
        """Write the epoch's scalars, and its reconstructions every few epochs.

        Parameters
        ----------
        net : skorch.net.NeuralNet
            The network being trained.
        **kwargs : dict
            Ignored; what else skorch passes.
        """
        row = net.history[-1]
        epoch = row["epoch"]
        for key in ("train_loss", "valid_loss"):
            if key in row:
                self.writer_.add_scalar(f"loss/{key}", row[key], epoch)
        self.writer_.add_scalar("lr", net.optimizer_.param_groups[0]["lr"], epoch)
        self.writer_.add_scalar("epoch_seconds", row["dur"], epoch)
        if epoch % self.images_every == 0:
            self._write_reconstructions(net, epoch)

    def on_train_end(self, net, **kwargs):
        """Write the last reconstructions and close the writer.

        Parameters
        ----------
        net : skorch.net.NeuralNet
            The network that was trained.
        **kwargs : dict
            Ignored; what else skorch passes.
        """
        epoch = net.history[-1]["epoch"]
        if epoch % self.images_every:
            self._write_reconstructions(net, epoch)
        self.writer_.close()
        self.writer_ = None
        self.images_ = None

    def _write_reconstructions(self, net, epoch):
        out = reconstruct(net, self.images_).cpu()
        self.writer_.add_images("reconstructions", self._as_images(net, out), epoch)

    @staticmethod
    def _as_images(net, rows):
        """Rows on the network's scale -> (N, 1 or 3, H, W) in [0, 1] to show."""
        c, h, w = net.module_.image_shape
        images = rows.reshape(-1, c, h, w)  # (N, C*H*W) -> (N, C, H, W)
        if c not in (1, 3):
            images = images.mean(dim=1, keepdim=True)  # (N, C, H, W) -> (N, 1, H, W)
        low, high = images.min(), images.max()
        if low < 0 or high > 1:  # standardised data: stretch to [0, 1] to show it
            images = (images - low) / (high - low + 1e-12)
        return images

    def __getstate__(self):
        state = self.__dict__.copy()
        state["writer_"] = None  # an open writer is neither picklable nor wanted
        state.pop("images_", None)
        return state
