"""ConvAutoEncoderTransformer: a convolutional autoencoder as a sklearn transformer."""

import contextlib
import copy
import functools
import math
import os
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.callbacks import EarlyStopping, LRScheduler, ProgressBar
from skorch.history import History

from sk_convae._augment import AUGMENTATIONS, RandomFlips
from sk_convae._checkpoint import EpochCheckpoint
from sk_convae._checkpoint import fingerprint as fit_fingerprint
from sk_convae._checkpoint import restore as restore_checkpoint
from sk_convae._data import (
    BatchLoader,
    GivenValidation,
    HoldoutSplit,
    RowSource,
    block_rows,
    check_lazy,
    epoch_plan,
    is_dask,
    is_lazy,
    read_rows,
    sample_rows,
    scan,
)
from sk_convae._device import resolve_device
from sk_convae._distributed import (
    AcceleratedNet,
    distributed_history,
    make_accelerator,
    process_device,
    shared_seed,
    to_plain_net,
)
from sk_convae._inference import inference_batch_rows, inference_encoder
from sk_convae._network import (
    ClippedMSELoss,
    ConvCodeAutoEncoder,
    DenseConvAutoEncoder,
    ResidualConvAutoEncoder,
    conv_code_shape,
    principal_axes,
)
from sk_convae._precision import PRECISIONS, MixedPrecisionNet, resolve_precision
from sk_convae._scaling import INTENSITY, fit_scaling, unscale_rows
from sk_convae._version import __version__
from sk_convae.exceptions import InconsistentVersionWarning


class ConvAutoEncoderTransformer(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Dimensionality reduction with a convolutional autoencoder.

    Each row of ``X`` is read as a flattened image. ``fit`` trains an encoder that
    maps the image to ``n_components`` numbers and a decoder that draws the image
    back from them; ``transform`` returns the codes, ``inverse_transform`` the
    reconstructions. It fits in a :class:`~sklearn.pipeline.Pipeline` wherever
    :class:`~sklearn.decomposition.PCA` does. Training runs on skorch and PyTorch,
    on the GPU when one is available.

    The input needs no scaler: floats in [0, 1], raw ``uint8`` pixels and
    standardised data are all mapped to the network's scale by one affine map
    learned in ``fit``, and ``inverse_transform`` answers on the caller's scale.
    The default network starts as PCA and learns what PCA misses (see Notes).

    Parameters
    ----------
    n_components : int, default=32
        Number of numbers in each code. With ``architecture='conv'`` it must equal
        the size of the last feature map.

    image_shape : tuple of int, default=None
        Shape of one image, ``(H, W)`` or ``(C, H, W)`` with channels first; the
        product must equal ``n_features``. None reads a square single-channel image
        when ``n_features`` is a perfect square (784 -> 28x28), otherwise a
        ``1 x n_features`` strip.

    architecture : {'residual', 'dense', 'conv'}, default='residual'
        The network. ``'residual'``: PCA plus a convolutional autoencoder, trained
        from PCA's solution (see Notes). ``'dense'``: stride-2 3x3 convolutions
        with BatchNorm and ReLU, then a linear layer to ``n_components``; the
        decoder mirrors it with transposed convolutions. ``'conv'``: the Keras
        tutorial's network [8]_, 3x3 'same' convolutions with ReLU each followed
        by 2x2 max-pooling, whose last feature map is the code, and an upsampling
        decoder; ``architecture='conv', channels=(16, 8, 8), n_components=128`` on
        28x28 images is exactly the tutorial's (a 4x4x8 code).

    channels : tuple of int, default=(32, 64, 128)
        Width of each encoder stage; its length is the depth. Each stage halves
        the image (rounding up): 28 -> 14 -> 7 -> 4 by default. The decoder uses
        the widths in reverse.

    loss : {'auto', 'bce', 'mse'}, default='auto'
        Reconstruction loss. ``'bce'`` is binary cross-entropy on a sigmoid output
        and needs intensities (non-negative data) and ``architecture='dense'`` or
        ``'conv'``; ``'mse'`` is the squared error. ``'auto'`` picks ``'mse'``
        for ``architecture='residual'``, and for the others ``'bce'`` for
        non-negative data and ``'mse'`` otherwise.

    data_range : tuple of (float, float), default=None
        The values the data can take, ``(low, high)``, when the data seen by
        ``fit`` (or by the first ``partial_fit`` call) does not show them all, for
        example ``(0, 4095)`` for 12-bit images stored as ``uint16``. Non-negative
        ranges are read as intensities scaled by ``high``; ranges with negative
        values are mapped to [-1, 1]. None learns the scale from the data;
        ``uint8`` is always 0..255.

    noise_factor : float, default=0.0
        Standard deviation of the Gaussian noise added to the (scaled) inputs
        during training, while the clean inputs are the targets: a denoising
        autoencoder [3]_. Noisy intensities are clipped to [0, 1]. ``transform``
        never adds noise.

    augmentation : {None, 'mirror', 'dihedral'}, default=None
        Random flips of the training images, drawn anew for each row every epoch;
        the flipped image is both input and target. ``'mirror'`` flips left-right
        (scenes, faces: content whose up and down matter); ``'dihedral'`` also
        flips up-down and, for square images, transposes: all 8 symmetries of the
        square (textures, microscopy, aerial images). On a few thousand image
        patches it keeps the network from learning the rows by heart. Off by
        default: digits and other oriented content are not symmetric. Validation
        rows, ``transform`` and ``score`` never see flips.

    max_epochs : int or 'auto', default='auto'
        Passes over the training data (the most, with early stopping).
        ``'auto'`` trains for about 3,750 optimizer steps whatever the size of
        the data: from 1 epoch (above about 960,000 rows at the default
        ``batch_size``) to 100 (small data); 16 epochs on the 60,000 MNIST images.

    batch_size : int, default=256
        Rows per gradient step (at least 2 for ``architecture='residual'`` and
        ``'dense'``, whose BatchNorm needs two rows). ``transform`` and
        ``inverse_transform`` take at least this many rows per batch, and more
        where the images are small (as many as keep the encoder's largest feature
        map within 16 MiB on a CPU, 256 MiB on CUDA); their results do not depend
        on it, and it can be changed after ``fit``.

    lr : float or 'auto', default='auto'
        Peak learning rate of AdamW [6]_ under a one-cycle schedule [7]_.
        ``'auto'`` is 3e-3 on small data (where ``max_epochs='auto'`` would make
        more than 20 passes over the rows: below about 52,000 rows at the default
        ``batch_size``), where a lower rate learns the rows by heart later, and
        1e-2 on larger data; ``partial_fit``, which never sees the whole data,
        takes 3e-3. ``lr_`` says which was used.

    weight_decay : float, default=1e-4
        AdamW's decoupled weight decay [6]_.

    device : str or torch.device, default='auto'
        Where the network trains and runs: ``'auto'`` picks CUDA when available,
        then CPU; or ``'cpu'``, ``'cuda'``, ``'cuda:1'``, ...

    precision : {'auto', 'float32', 'bfloat16', 'float16'}, default='auto'
        Arithmetic of training: ``'bfloat16'`` and ``'float16'`` run the
        convolutions under autocast [9]_ (weights, optimizer, loss and the PCA
        path of ``architecture='residual'`` stay float32; ``'float16'`` adds a
        gradient scaler). ``'auto'`` is ``'bfloat16'`` where the hardware computes
        in it (CUDA devices with bfloat16, CPUs with AVX512-BF16 or AMX-BF16) and
        ``'float32'`` elsewhere; ``precision_`` says which was used. Codes and
        reconstructions are float32 and computed in float32 whatever was chosen.

    distributed : bool, default=False
        Train one model in several processes (CPUs or GPUs, one machine or many)
        with PyTorch DDP through Hugging Face Accelerate: start the script with
        ``accelerate launch`` or ``torchrun``; every process calls ``fit`` on the
        same ``X``, trains on its own shard of the rows, and ends with the same
        model. ``batch_size`` is then the rows of one step over all processes.
        In a plain Python process it trains as usual. Needs
        ``pip install 'sk-convae[distributed]'``; not used by ``partial_fit``.

    early_stopping : bool or 'auto', default='auto'
        Hold out ``validation_fraction`` of the rows, stop when their loss has not
        improved by ``tol`` for ``n_iter_no_change`` epochs, and keep the weights
        of the best epoch [10]_. ``'auto'`` turns it on on small data (as for
        ``lr``) when at least 50 rows are held out: there a network can learn the
        training rows by heart and reconstruct other images worse than PCA. With
        an explicit ``max_epochs`` it is off. Rows of your own passed as
        ``fit(X, X_val=...)`` are watched instead of held-out rows, and turn
        ``'auto'`` on.

    validation_fraction : float, default=0.1
        Share of the rows held out for early stopping (only used then, and not
        when ``fit`` is given ``X_val``).

    n_iter_no_change : int, default=5
        Epochs without improvement before early stopping ends training.

    tol : float, default=1e-4
        Smallest decrease of the validation loss, as a fraction of the best loss
        so far, that counts as an improvement (relative, so that it means the same
        whatever the scale of the data).

    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and noise. The same integer gives
        identical codes; the caller's global torch and numpy random states are
        left as they were.

    verbose : int, default=0
        0 prints nothing; 1 shows a progress bar during each epoch and prints one
        line per epoch with the training (and validation) loss and its duration.

    callbacks : list of skorch callbacks or (name, callback) tuples, default=None
        Extra skorch callbacks, such as :class:`sk_convae.callbacks.TensorBoard`,
        passed to the network as they are (copied first, so that the objects
        passed in are never changed). A ``KeyboardInterrupt`` raised by one stops
        the fit as Ctrl-C does.

    warm_start : bool, default=False
        When True and the transformer is fitted, ``fit`` continues from the fitted
        weights, scaling, image shape and loss, for ``max_epochs`` more epochs
        under a new one-cycle schedule and a new AdamW state (as scikit-learn's
        :class:`~sklearn.neural_network.MLPRegressor` does; a lower ``lr``
        fine-tunes more gently). ``image_shape``, ``n_components``,
        ``architecture``, ``channels``, ``loss`` and ``data_range`` must describe
        the fitted network (a ``ValueError`` naming what differs is raised before
        any training); the other parameters may change. ``n_iter_`` and
        ``history_`` count every epoch, ``n_epochs_`` those planned by the last
        ``fit``. Without a fitted model, ``fit`` starts from scratch.

    checkpoint_dir : str, path-like or None, default=None
        A directory where ``fit`` writes ``checkpoint.pt`` after every epoch
        (weights, optimizer, learning-rate schedule, early stopping, history and
        random state), atomically, so that a process killed at any moment leaves
        a complete checkpoint. ``fit`` called again with the same directory, data
        and parameters (``device``, ``verbose`` and ``callbacks`` may differ)
        continues after the last complete epoch and ends with the model the
        uninterrupted fit would have given; a different fit is refused with a
        ``ValueError`` naming what differs. Once ``fit`` has succeeded the file is
        marked finished and a later ``fit`` loads it without training: use one
        directory per fit (each ``GridSearchCV`` candidate its own). Not used by
        ``partial_fit`` nor, yet, with ``distributed=True``.

    Attributes
    ----------
    n_components_ : int
        Width of the codes.

    image_shape_ : tuple of int
        ``(C, H, W)`` of one image.

    loss_ : {'bce', 'mse'}
        The loss that was used.

    device_ : str
        The device the network was trained on.

    precision_ : {'float32', 'bfloat16', 'float16'}
        The arithmetic training used (``precision`` made concrete).

    n_epochs_ : int
        The epochs the last ``fit`` planned (``max_epochs``, or what ``'auto'``
        chose).

    lr_ : float
        The peak learning rate of the last ``fit`` (``lr``, or what ``'auto'``
        chose), or the rate of the last ``partial_fit`` call.

    data_offset_ : float
        Subtracted from the input before training, see ``data_scale_``.

    data_scale_ : float
        The network sees ``(X - data_offset_) / data_scale_``.

    net_ : skorch.net.NeuralNet
        The fitted skorch network; ``net_.module_`` is the torch module.

    history_ : skorch.history.History
        One dict per epoch: ``epoch``, ``train_loss``, ``valid_loss`` (with early
        stopping), ``dur`` (seconds) and more; ``history_[:, "train_loss"]``
        slices a column.

    n_iter_ : int
        Number of epochs run, over every ``fit`` that continued the model
        (``warm_start``) and every ``partial_fit`` call (one epoch each).

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when ``X`` has string column names.

    See Also
    --------
    sklearn.decomposition.PCA : Linear dimensionality reduction, the starting
        point of the default network.
    sklearn.decomposition.IncrementalPCA : PCA trained in batches, like
        ``partial_fit``.
    sklearn.decomposition.KernelPCA : Non-linear dimensionality reduction with
        kernels, with an approximate ``inverse_transform``.
    skorch.net.NeuralNet : The PyTorch training loop this transformer is built
        on, for networks of your own.

    Notes
    -----
    **Scaling.** ``fit`` learns one affine map for the whole input, not one per
    feature, which keeps the relative brightness of pixels that convolutions rely
    on: ``uint8`` input is divided by 255, non-negative data within [0, 1] is kept
    as it is, other non-negative data is divided by its maximum (these are
    *intensities*, in [0, 1]), and data with negative values is standardised by
    its global mean and standard deviation. ``data_range`` fixes the map instead.
    ``inverse_transform`` and ``score`` undo it.

    **The default network.** Deep autoencoders learn non-linear codes that
    reconstruct images better than PCA's [1]_, and convolutions suit images
    [2]_. ``architecture='residual'`` adds a linear path from the centred image to
    the code and back to a convolutional autoencoder (stride-2 3x3 convolutions
    with batch normalisation [5]_ and ReLU, a linear layer to the code, and a
    mirrored decoder). The linear path starts as the principal axes of the
    training data (computed from at most 10,000 of its rows) and the last layer
    of each convolutional path starts at zero, so that the untrained network *is*
    PCA and training learns a correction to it, as a residual block learns one to
    its identity path [4]_. The output is on the data's scale, trained with the
    squared error; reconstructions of intensities are clipped to [0, 1].

    **Training.** AdamW [6]_ with the learning rate on a one-cycle schedule [7]_
    (``torch.optim.lr_scheduler.OneCycleLR``: from ``lr / 25`` up to ``lr`` over
    the first 30% of the steps, then annealed towards zero), in shuffled batches
    of ``batch_size`` rows. The ``'auto'`` values adapt the recipe to the size of
    the data: about the same number of steps whatever the size
    (``max_epochs``), and on small data, which the network can learn by heart, a
    lower peak rate (``lr``) and early stopping (``early_stopping``). The
    Benchmarks page of the documentation shows how the defaults compare with PCA,
    on which data and machines.

    References
    ----------
    .. [1] G. E. Hinton and R. R. Salakhutdinov, "Reducing the dimensionality of
       data with neural networks", Science, 313(5786), pp. 504-507, 2006.
    .. [2] J. Masci, U. Meier, D. Cireşan and J. Schmidhuber, "Stacked
       convolutional auto-encoders for hierarchical feature extraction", in
       Artificial Neural Networks and Machine Learning (ICANN), pp. 52-59, 2011.
    .. [3] P. Vincent, H. Larochelle, Y. Bengio and P.-A. Manzagol, "Extracting
       and composing robust features with denoising autoencoders", in Proceedings
       of the 25th International Conference on Machine Learning (ICML),
       pp. 1096-1103, 2008.
    .. [4] K. He, X. Zhang, S. Ren and J. Sun, "Deep residual learning for image
       recognition", in Proceedings of the IEEE Conference on Computer Vision and
       Pattern Recognition (CVPR), pp. 770-778, 2016.
    .. [5] S. Ioffe and C. Szegedy, "Batch normalization: accelerating deep
       network training by reducing internal covariate shift", in Proceedings of
       the 32nd International Conference on Machine Learning (ICML),
       pp. 448-456, 2015.
    .. [6] I. Loshchilov and F. Hutter, "Decoupled weight decay regularization",
       in International Conference on Learning Representations (ICLR), 2019.
    .. [7] L. N. Smith and N. Topin, "Super-convergence: very fast training of
       neural networks using large learning rates", in Artificial Intelligence
       and Machine Learning for Multi-Domain Operations Applications, Proc. SPIE
       11006, 2019.
    .. [8] F. Chollet, "Building autoencoders in Keras", The Keras Blog, 2016.
       https://blog.keras.io/building-autoencoders-in-keras.html
    .. [9] P. Micikevicius et al., "Mixed precision training", in International
       Conference on Learning Representations (ICLR), 2018.
    .. [10] L. Prechelt, "Early stopping - but when?", in Neural Networks:
       Tricks of the Trade, Lecture Notes in Computer Science 1524, pp. 55-69,
       Springer, 1998.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_convae import ConvAutoEncoderTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> X.shape
    (1797, 64)
    >>> ae = ConvAutoEncoderTransformer(
    ...     n_components=8, image_shape=(8, 8), max_epochs=2, random_state=0
    ... )
    >>> codes = ae.fit_transform(X)
    >>> codes.shape, codes.dtype
    ((1797, 8), dtype('float32'))
    >>> ae.inverse_transform(codes).shape
    (1797, 64)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "image_shape": [None, tuple, list],
        "architecture": [StrOptions({"residual", "dense", "conv"})],
        "channels": [tuple, list],
        "loss": [StrOptions({"auto", "bce", "mse"})],
        "data_range": [None, tuple, list],
        "noise_factor": [Interval(Real, 0, None, closed="left")],
        "max_epochs": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "device": [str, torch.device],
        "precision": [StrOptions({"auto", *PRECISIONS})],
        "distributed": ["boolean"],
        "augmentation": [None, StrOptions(set(AUGMENTATIONS))],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [None, list],
        "warm_start": ["boolean"],
        "checkpoint_dir": [None, str, os.PathLike],
    }

    def __init__(
        self,
        n_components=32,
        *,
        image_shape=None,
        architecture="residual",
        channels=(32, 64, 128),
        loss="auto",
        data_range=None,
        noise_factor=0.0,
        augmentation=None,
        max_epochs="auto",
        batch_size=256,
        lr="auto",
        weight_decay=1e-4,
        device="auto",
        precision="auto",
        distributed=False,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=5,
        tol=1e-4,
        random_state=None,
        verbose=0,
        callbacks=None,
        warm_start=False,
        checkpoint_dir=None,
    ):
        self.n_components = n_components
        self.image_shape = image_shape
        self.architecture = architecture
        self.channels = channels
        self.loss = loss
        self.data_range = data_range
        self.noise_factor = noise_factor
        self.augmentation = augmentation
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.device = device
        self.precision = precision
        self.distributed = distributed
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.checkpoint_dir = checkpoint_dir

    # ------------------------------------------------------------------------------
    # fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, X_val=None):
        """Train the autoencoder on ``X``.

        Training starts from scratch, or from the fitted model with
        ``warm_start=True``, or from the last checkpoint in ``checkpoint_dir``.
        ``X`` is read in batches as training needs them: a memory-mapped, HDF5,
        zarr or Dask array is never loaded whole, and no float copy of the data is
        made (see the user guide on large data).

        Ctrl-C (``KeyboardInterrupt``) stops training and reaches the caller, as
        any error does; the transformer is then left as it was before the call
        (unfitted, or with its previous fit intact), never half-trained. With
        ``checkpoint_dir``, calling ``fit`` again resumes after the last complete
        epoch.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Flattened images, one per row (channels first when there are several):
            an ndarray, a DataFrame, a list, or a lazily sliced 2-D array
            (``np.memmap``, ``h5py.Dataset``, ``zarr.Array``, ``dask.array.Array``).
            Not modified.

        y : None
            Ignored; present for API consistency.

        X_val : array-like of shape (n_val, n_features), default=None
            Rows to watch for early stopping instead of holding out
            ``validation_fraction`` of ``X`` (as in scikit-learn's
            ``HistGradientBoostingRegressor.fit``); every row of ``X`` is then
            trained on. Any of the array types ``X`` accepts, on the same scale,
            never trained on. Pass images that ``X`` does not overlap: rows held
            out at random from patches cut from a few images share their pixels
            with the training rows and cannot tell learning by heart from
            learning (see the Benchmarks page of the documentation). Turns
            ``early_stopping='auto'`` on; an error with ``early_stopping=False``.
            In a ``Pipeline``: ``pipe.fit(X, step__X_val=X_val)`` (the steps
            before are not applied to it). With ``distributed=True`` each process
            validates on an equal share (up to processes - 1 rows are left out).
            The fitted model keeps no reference to it.

        Returns
        -------
        self : object
            The fitted transformer.
        """
        with _unchanged_on_error(self):
            if X_val is not None and self.early_stopping is False:
                raise ValueError(
                    "X_val is passed to fit while early_stopping=False: X_val is "
                    "only used for early stopping. Set early_stopping to 'auto' or "
                    "True, or leave X_val out."
                )
            warm = self.warm_start and hasattr(self, "net_")
            if self.distributed and (warm or self.checkpoint_dir is not None):
                raise ValueError(
                    "distributed=True supports neither warm_start=True nor "
                    "checkpoint_dir yet: set them to False and None, or fit in one "
                    "process."
                )
            X = self._check_X(X, reset=not warm, min_samples=2)
            if warm:
                config = self._warm_config(X)
                seed = _call_seed(self._train_seed, self.n_iter_)
            else:
                config = self._configure(X)
                seed = _seed_from(self.random_state)
            accelerator = None
            if self.distributed:
                accelerator = make_accelerator(config["device"], config["precision"])
                seed = shared_seed(seed)  # random_state=None: rank 0's draw
            if X_val is not None:
                X_val = self._check_X_val(X_val, config)
            previous = self.net_ if warm else None
            checkpoint, state = None, None
            if self.checkpoint_dir is not None:
                checkpoint, state = self._open_checkpoint(X, config, previous, X_val)
                seed = checkpoint.seed = seed if state is None else state["seed"]
                config["callbacks"].append(("epoch_checkpoint", checkpoint))
            valid = None
            if X_val is not None:
                valid = RowSource(X_val, config["offset"], config["scale"])
            net = self._build_net(
                config,
                X.shape[0],
                seed,
                one_cycle=True,
                accelerator=accelerator,
                valid=valid,
            )
            source = RowSource(X, config["offset"], config["scale"])
            done, restore = 0, None
            if state is not None:
                done = net.max_epochs if state["finished"] else state["epochs_done"]
                restore = functools.partial(restore_checkpoint, state=state)
            elif warm:
                restore = _continue_from(previous)
            self._train(
                net,
                source,
                seed,
                epochs=net.max_epochs - done,
                restore=restore,
                start_epoch=done,
            )
            if checkpoint is not None and not (state and state["finished"]):
                checkpoint.finish(net)
            if accelerator is not None:
                config["device"] = process_device(accelerator)
                # its own callbacks, so that initialising it leaves the trained ones be
                own = {**config, "callbacks": copy.deepcopy(config["callbacks"])}
                plain = self._build_net(
                    own, X.shape[0], seed, one_cycle=True, valid=valid
                )
                net = to_plain_net(net, plain)
                # the Accelerator keeps the DDP-wrapped module and its optimizer
                # (a second copy of the weights, on the GPU): let them go now
                accelerator.free_memory()
                _drop_training_state(net)
            self._set_fitted(net, config, seed)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train on the rows of ``X`` for one epoch, keeping what was learned before.

        The first call (on an unfitted transformer) fixes the image shape, the
        scaling and the network from ``X``, as ``fit`` would; each call then makes
        one pass over its rows in shuffled batches of ``batch_size``. The optimizer
        (AdamW) keeps its state from call to call, and its learning rate is the
        current ``lr`` (3e-3 for ``'auto'``) throughout each call, with no
        schedule: lower it between calls with ``set_params(lr=...)`` to anneal (a
        last pass at a tenth of the rate helps). After ``fit``, ``partial_fit``
        continues from the fitted weights. ``early_stopping``, ``max_epochs``,
        ``warm_start`` and ``checkpoint_dir`` are not used here: ``n_iter_``
        counts the calls. A call stopped by Ctrl-C
        (``KeyboardInterrupt``, which reaches the caller) or by an error leaves the
        transformer exactly as it was before it: weights, optimizer state and
        history.

        The scaling is learned from the first call's rows unless the data says it:
        ``uint8`` is always 0..255, and ``data_range=(low, high)`` fixes it for any
        other data. A later call whose values fall outside an intensity scale learned
        from the first chunk is an error naming its range of values (so that binary
        cross-entropy never sees targets above 1): pass ``data_range`` then.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Flattened images, as for ``fit``, with the same number of features on
            every call. Not modified.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The transformer, trained on ``X`` for one more epoch.
        """
        if self.distributed:
            raise ValueError(
                "distributed=True trains in fit only: for partial_fit, give each "
                "process its own chunks and one model, or use fit on the whole data."
            )
        first_call = not hasattr(self, "net_")
        with _unchanged_on_error(self):
            X = self._check_X(X, reset=first_call, min_samples=1)
            if self.architecture != "conv" and X.shape[0] < 2:
                raise ValueError(
                    "partial_fit needs at least 2 rows per call for "
                    f"architecture={self.architecture!r}: its BatchNorm layers need "
                    "2 rows per batch."
                )
            if first_call:
                config = self._configure(X)
                seed = _seed_from(self.random_state)
                net = self._build_net(config, X.shape[0], seed, one_cycle=False)
                source = RowSource(X, config["offset"], config["scale"])
                self._train(net, source, seed, epochs=1)
                self._set_fitted(net, config, seed)
                return self
            self._check_scale(X)
            # a new net (no schedule, no held-out rows) that continues from copies
            # of the fitted one's state: an interrupted or failed call leaves the
            # fitted model as it was
            config = {
                **self._net_config,
                "device": self._device,
                "callbacks": _check_callbacks(self.callbacks),
            }
            # a new shuffling and noise for every call, all following from one seed
            seed = _call_seed(self._train_seed, self.n_iter_)
            net = self._build_net(config, X.shape[0], seed, one_cycle=False)
            restore = _continue_from(
                self.net_, optimizer=True, lr=net.lr, weight_decay=self.weight_decay
            )
            self._train(
                net, RowSource(X, *self._scaling), seed, epochs=1, restore=restore
            )
            self.net_ = net
            self.history_ = net.history
            self.n_iter_ = len(net.history)
            self.lr_ = net.lr
        return self

    def _check_X(self, X, *, reset, min_samples):
        """``X`` validated: in-memory data through scikit-learn, lazy arrays as they
        are (their shape and dtype only, nothing read)."""
        if is_lazy(X):
            check_lazy(X, min_samples=min_samples)
            validate_data(self, X, skip_check_array=True, reset=reset)
            return X
        # NaN and infinity are found by the statistics pass, which names the row
        return validate_data(
            self,
            X,
            dtype="numeric",
            ensure_min_samples=min_samples,
            ensure_all_finite=False,
            reset=reset,
        )

    def _configure(self, X):
        """Everything the first data fixes, checked before any training."""
        image_shape = _resolve_image_shape(self.image_shape, X.shape[1])
        channels = _check_channels(self.channels)
        data_range = _check_data_range(self.data_range)
        if self.architecture == "conv":
            _check_conv_code_width(self.n_components, image_shape, channels)
        elif self.batch_size < 2:
            raise ValueError(
                f"batch_size=1 cannot train architecture={self.architecture!r}: its "
                "BatchNorm layers need at least 2 rows per batch."
            )
        device = resolve_device(self.device)
        stats = _scan_unless_uint8(X, data_range)
        offset, scale, kind = fit_scaling(X.dtype, stats, data_range)
        if data_range is not None and stats is not None:
            _check_within(stats, data_range[0], data_range[1], "data_range")
        return {
            "image_shape": image_shape,
            "channels": channels,
            "offset": offset,
            "scale": scale,
            "kind": kind,
            "loss": _resolve_loss(self.loss, kind, stats, self.architecture),
            "device": device,
            "precision": resolve_precision(self.precision, device),
            "clip_output": _output_is_clipped(self.architecture, kind),
            "input_dtype": X.dtype.str,
            "callbacks": _check_callbacks(self.callbacks),
        }

    def _warm_config(self, X):
        """The fitted model's configuration, to go on training it on ``X``
        (``warm_start``): the parameters must describe the fitted network and the
        data fit its scale, checked before any training."""
        fitted = self._net_config
        differences = []

        def differ(what, value, fitted_value):
            if value != fitted_value:
                differences.append(f"{what} is {value!r}, the model's {fitted_value!r}")

        differ(
            "image_shape (as C, H, W)",
            _resolve_image_shape(self.image_shape, X.shape[1]),
            self.image_shape_,
        )
        differ("n_components", self.n_components, self.n_components_)
        differ("architecture", self.architecture, _architecture_of(self.net_))
        differ("channels", _check_channels(self.channels), fitted["channels"])
        if self.loss != "auto":
            differ("loss", self.loss, self.loss_)
        data_range = _check_data_range(self.data_range)
        if data_range is not None:
            offset, scale, _ = fit_scaling(X.dtype, None, data_range)
            differ(
                "the scaling (offset, scale) of data_range",
                (offset, scale),
                (self.data_offset_, self.data_scale_),
            )
        if differences:
            raise ValueError(
                "warm_start=True continues the fitted network, but "
                + "; ".join(differences)
                + ". Set these parameters back, or set warm_start=False to fit a "
                "new model."
            )
        if self.architecture != "conv" and self.batch_size < 2:
            raise ValueError(
                f"batch_size=1 cannot train architecture={self.architecture!r}: its "
                "BatchNorm layers need at least 2 rows per batch."
            )
        self._check_scale(X)
        device = resolve_device(self.device)
        return {
            **fitted,
            "device": device,
            "precision": resolve_precision(self.precision, device),
            "input_dtype": getattr(self, "_input_dtype", X.dtype.str),
            "callbacks": _check_callbacks(self.callbacks),
        }

    def _open_checkpoint(self, X, config, previous, X_val):
        """This fit's checkpoint callback, and the checkpoint to resume from (None
        to start): read from ``checkpoint_dir``, refused if another fit wrote it
        (other data, validation rows, parameters or starting weights)."""
        start = None if previous is None else previous.module_
        checkpoint = EpochCheckpoint(
            self.checkpoint_dir,
            fit_fingerprint(self, X, config, start=start, X_val=X_val),
            history_start=0 if previous is None else len(previous.history),
        )
        return checkpoint, checkpoint.read()

    def _set_fitted(self, net, config, seed):
        self.net_ = net
        self.history_ = net.history
        self.n_iter_ = len(net.history)
        self._train_seed = seed
        self.n_components_ = self.n_components
        self.image_shape_ = config["image_shape"]
        self.loss_ = config["loss"]
        self.device_ = config["device"]
        self.precision_ = config["precision"]
        self._input_dtype = config["input_dtype"]
        self.n_epochs_ = net.max_epochs
        self.lr_ = net.lr
        self.data_offset_ = config["offset"]
        self.data_scale_ = config["scale"]
        # what rebuilds the network when loading a file written by save()
        self._net_config = {
            k: v for k, v in config.items() if k not in ("callbacks", "input_dtype")
        }

    def _check_X_val(self, X_val, config):
        """``fit``'s validation rows, checked against ``X`` before any training:
        the same number of features, finite, and within ``data_range`` or else
        the scale learned from ``X`` where that scale is one of intensities."""
        shape = getattr(X_val, "shape", None)
        if shape is not None and len(shape) == 2 and shape[1] != self.n_features_in_:
            raise ValueError(
                f"X_val has {shape[1]} features per row and X has "
                f"{self.n_features_in_}: validation rows must be images of the "
                f"shape of X's, {config['image_shape']} (C, H, W)."
            )
        X_val = self._check_X(X_val, reset=False, min_samples=1)
        x_kind = np.dtype(config["input_dtype"]).kind
        if X_val.dtype.kind != x_kind and "f" in (X_val.dtype.kind, x_kind):
            warnings.warn(
                f"X_val is {X_val.dtype} and X is {np.dtype(config['input_dtype'])}:"
                " X_val must be on X's scale (the same pixels as X would hold them),"
                " or its loss says nothing about the model.",
                UserWarning,
                stacklevel=3,
            )
        _check_on_scale(
            X_val,
            config["offset"],
            config["scale"],
            config["kind"],
            "the scale learned from X",
            data_range=_check_data_range(self.data_range),
            name="X_val",
        )
        return X_val

    def _check_scale(self, X):
        """A later partial_fit chunk: finite, and within the intensity scale of the
        first (uint8 within a 0..255 scale needs no pass)."""
        _check_on_scale(
            X,
            self.data_offset_,
            self.data_scale_,
            self._net_config["kind"],
            "the scale learned by the first call",
        )

    def _train(self, net, source, seed, *, epochs, restore=None, start_epoch=0):
        """Train ``net`` on ``source`` for ``epochs`` epochs, seeded by ``seed``.

        ``restore(net)``, when given, puts the state to continue from into the
        just initialised net, in place of the initial weights (and PCA);
        ``start_epoch`` is the number of the first epoch, which sets its
        shuffling (a fit resumed from a checkpoint).
        """
        n_train = len(source)
        if isinstance(net.train_split, HoldoutSplit):
            n_train -= math.ceil(self.validation_fraction * n_train)
        world_size = getattr(net, "iterator_train__world_size", 1)
        batch_size, drop_last, _ = epoch_plan(n_train, self.batch_size, world_size)
        # set as attributes: skorch's set_params would try to re-initialise an
        # initialised net for iterator parameters
        net.batch_size = batch_size
        net.iterator_train__drop_last = drop_last
        net.iterator_train__seed = seed
        net.iterator_train__start_epoch = start_epoch
        # torch.manual_seed reseeds every CUDA device too: save and restore them all
        with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
            torch.manual_seed(seed)
            if not net.initialized_:
                net.initialize()
                module = getattr(net.module_, "module", net.module_)  # DDP: inside
                if restore is not None:
                    restore(net)
                elif isinstance(module, ResidualConvAutoEncoder):
                    rows = sample_rows(source, PCA_ROWS, seed)
                    module.init_linear(*principal_axes(rows, self.n_components))
            net.partial_fit(source, epochs=epochs)
        net.module_.eval()
        _drop_training_state(net)

    def _is_small(self, n_samples, world_size):
        """Small data: ``max_epochs='auto'`` would make more than
        ``AUTO_EARLY_STOPPING_EPOCHS`` passes over the rows left for training once
        ``validation_fraction`` of ``n_samples`` is held out. What
        ``early_stopping='auto'`` and ``lr='auto'`` follow."""
        n_valid = math.ceil(self.validation_fraction * n_samples)
        _, _, steps_per_epoch = epoch_plan(
            max(n_samples - n_valid, world_size), self.batch_size, world_size
        )
        return _auto_epochs(steps_per_epoch) > AUTO_EARLY_STOPPING_EPOCHS

    def _stops_early(self, n_samples, world_size, *, has_valid=False):
        """``early_stopping`` made concrete for a fit on ``n_samples`` rows
        (``has_valid``: with validation rows of the user's, ``fit``'s X_val)."""
        if self.early_stopping != "auto":
            return self.early_stopping
        if has_valid:
            return True
        if self.max_epochs != "auto":
            return False
        n_valid = math.ceil(self.validation_fraction * n_samples)
        if n_valid < AUTO_EARLY_STOPPING_ROWS:
            return False
        return self._is_small(n_samples, world_size)

    def _peak_lr(self, n_samples, world_size, *, one_cycle):
        """``lr`` made concrete for a fit on ``n_samples`` rows (``one_cycle``) or
        for a ``partial_fit`` call (constant rate, the whole data unknown)."""
        if self.lr != "auto":
            return self.lr
        if one_cycle and not self._is_small(n_samples, world_size):
            return AUTO_LR_LARGE
        return AUTO_LR_SMALL

    def _build_net(
        self, config, n_samples, seed, *, one_cycle, accelerator=None, valid=None
    ):
        """The skorch network for this configuration, not yet initialised.

        ``one_cycle`` schedules the learning rate over ``max_epochs`` epochs of
        ``n_samples`` rows (``fit``); without it the rate stays at ``lr``
        (``partial_fit``, which also never holds rows out). With an
        ``accelerator`` it is an ``AcceleratedNet`` whose processes each train on
        their own shard of the rows. ``valid``, a ``RowSource`` of ``fit``'s
        ``X_val``, is what early stopping watches in place of held-out rows.
        """
        world_size = 1 if accelerator is None else accelerator.num_processes
        if world_size > 1 and min(n_samples, self.batch_size) < 2 * world_size:
            raise ValueError(
                f"a fit in {world_size} processes trains each process on "
                "batch_size / processes rows of its share of X, which must be at "
                f"least 2: batch_size and the number of rows must be at least "
                f"{2 * world_size} (got {self.batch_size} and {n_samples})."
            )
        n = n_samples  # rows trained on in each epoch
        train_split = None
        monitors = []
        stops_early = self._stops_early(
            n_samples, world_size, has_valid=valid is not None
        )
        if one_cycle and stops_early and valid is not None:
            if len(valid) < world_size:
                raise ValueError(
                    f"a fit in {world_size} processes validates each on its share "
                    f"of X_val, which needs at least {world_size} rows (got "
                    f"{len(valid)})."
                )
            train_split = GivenValidation(valid)
        elif one_cycle and stops_early:
            n_valid = math.ceil(self.validation_fraction * n_samples)
            if n_valid < 1 or n_samples - n_valid < 2:
                raise ValueError(
                    f"early_stopping with validation_fraction="
                    f"{self.validation_fraction} leaves {n_samples - n_valid} of "
                    f"{n_samples} rows for training; at least 2 are needed."
                )
            n = n_samples - n_valid
            train_split = HoldoutSplit(self.validation_fraction, seed)
        if train_split is not None:
            monitors.append(
                (
                    "early_stopping",
                    EarlyStopping(
                        monitor="valid_loss",
                        patience=self.n_iter_no_change,
                        threshold=self.tol,
                        threshold_mode="rel",
                        load_best=True,
                        sink=print if self.verbose else _silent,
                    ),
                )
            )
        if self.verbose:
            monitors.append(("progress_bar", ProgressBar()))
        _, _, steps_per_epoch = epoch_plan(n, self.batch_size, world_size)
        epochs = self.max_epochs
        if epochs == "auto":
            epochs = _auto_epochs(steps_per_epoch)
        lr = self._peak_lr(n_samples, world_size, one_cycle=one_cycle)
        if one_cycle:
            schedule = LRScheduler(
                policy=torch.optim.lr_scheduler.OneCycleLR,
                step_every="batch",
                max_lr=lr,
                total_steps=epochs * steps_per_epoch,
                # a new schedule even after earlier epochs in the history (a warm
                # start); skorch would place it by epochs, not by steps. A resumed
                # fit loads its position from the checkpoint.
                last_epoch=-1,
            )
            monitors.insert(0, ("lr_schedule", schedule))
        module = _MODULES[self.architecture]
        module_params = {}
        if self.architecture != "conv":
            module_params = {"n_components": self.n_components}
        loss, device = config["loss"], config["device"]
        criterion = torch.nn.BCEWithLogitsLoss if loss == "bce" else torch.nn.MSELoss
        if config["clip_output"]:
            criterion = ClippedMSELoss
        net_class, distributed = MixedPrecisionNet, {"precision": config["precision"]}
        if accelerator is not None:
            device = accelerator.device
            net_class = AcceleratedNet
            distributed = {
                "accelerator": accelerator,
                "unwrap_after_train": False,  # see sk_convae._distributed
                "history": distributed_history(accelerator),
                "device": None,  # placed by the accelerator
                # skorch prints through a sink other than print whatever verbose is
                "callbacks__print_log__sink": (
                    accelerator.print if self.verbose else _silent
                ),
                **{
                    f"{it}__{k}": v
                    for it in ("iterator_train", "iterator_valid")
                    for k, v in [
                        ("rank", accelerator.process_index),
                        ("world_size", world_size),
                    ]
                },
            }
        params = dict(
            criterion=criterion,
            optimizer=torch.optim.AdamW,
            optimizer__weight_decay=self.weight_decay,
            lr=lr,
            max_epochs=epochs,
            batch_size=self.batch_size,
            # batches come from the data path (sk_convae._data), not a DataLoader
            iterator_train=BatchLoader,
            iterator_train__shuffle=True,
            iterator_train__seed=seed,
            iterator_train__start_epoch=0,
            iterator_train__device=device,
            iterator_train__augment=(
                None
                if self.augmentation is None
                else RandomFlips(config["image_shape"], self.augmentation)
            ),
            iterator_valid=BatchLoader,
            iterator_valid__device=device,
            train_split=train_split,
            callbacks=[*monitors, *config["callbacks"]],
            predict_nonlinearity=None,
            device=device,
            verbose=self.verbose,
            **{f"module__{k}": v for k, v in module_params.items()},
            module__image_shape=config["image_shape"],
            module__channels=config["channels"],
            module__noise_std=float(self.noise_factor),
            module__clip_noise=config["kind"] == INTENSITY,
        )
        return net_class(module, **{**params, **distributed})

    # ------------------------------------------------------------------------------
    # inference

    def transform(self, X):
        """Encode ``X`` into codes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Flattened images on the scale seen in ``fit``, in any form ``fit``
            takes; read in batches. Not modified.

        Returns
        -------
        X_new : ndarray of shape (n_samples, `n_components_`), dtype float32
            The codes; a Dask array of them (computed lazily, block by block) when
            ``X`` is a Dask array.
        """
        check_is_fitted(self)
        X = self._check_X(X, reset=False, min_samples=1)
        if is_dask(X):
            return self._map_dask(X, self.transform, self.n_components_)
        return self._encode(X)

    def inverse_transform(self, X):
        """Decode codes into flattened images, on the scale of the input to ``fit``.

        Parameters
        ----------
        X : array-like of shape (n_samples, `n_components_`)
            Codes, as returned by ``transform``, or new points in code space; a Dask
            array of codes gives a Dask array of images.

        Returns
        -------
        X_original : ndarray of shape (n_samples, `n_features_in_`), dtype float32
            The reconstructed images.
        """
        check_is_fitted(self)
        if is_dask(X):
            self._check_code_width(X)
            return self._map_dask(X, self.inverse_transform, self.n_features_in_)
        X = check_array(X, dtype=[np.float32, np.float64])
        self._check_code_width(X)
        return self._decode(X)

    def score(self, X, y=None):
        """Negative mean squared reconstruction error, on the caller's scale.

        Higher is better, so that model selection tools such as
        :class:`~sklearn.model_selection.GridSearchCV` can tune the transformer
        without labels. ``X`` is read block by block, as in ``transform``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Flattened images.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        score : float
            ``-mean((X - inverse_transform(transform(X))) ** 2)``.
        """
        check_is_fitted(self)
        X = self._check_X(X, reset=False, min_samples=1)
        squared_error = 0.0
        step = block_rows(X)
        for start in range(0, X.shape[0], step):
            rows = read_rows(X, start, start + step)
            reconstruction = self._decode(self._encode(rows))
            difference = np.asarray(rows, dtype=np.float64) - reconstruction
            squared_error += float(np.sum(difference**2))
        return -squared_error / (X.shape[0] * X.shape[1])

    def _encode(self, X):
        """Validated rows on the caller's scale -> codes, float32."""
        source = RowSource(X, *self._scaling, check_finite=True)
        rows = self._inference_batch_rows
        if not source.in_memory:  # a lazy array is read no more than a block at once
            rows = min(rows, max(self.batch_size, source.block_rows()))
        batches = BatchLoader(source, batch_size=rows, device=self._device)
        encode = inference_encoder(self.net_.module_, self._device)
        return self._map_batches(
            lambda batch: encode(batch[0]),
            batches,
            len(source),
            self.n_components_,
        )

    def _decode(self, Z):
        """Validated codes -> rows on the caller's scale, float32."""
        module = self.net_.module_
        step = self._inference_batch_rows

        def decode(start):
            codes = np.asarray(Z[start : start + step], dtype=np.float32)
            out = module.decode(torch.from_numpy(codes).to(self._device))
            if self.loss_ == "bce":
                out = torch.sigmoid(out)
            elif self._clips_output:
                out = out.clamp(0.0, 1.0)
            return unscale_rows(out.float().cpu().numpy(), *self._scaling)

        starts = range(0, Z.shape[0], step)
        return self._map_batches(decode, starts, Z.shape[0], self.n_features_in_)

    def _check_code_width(self, Z):
        if Z.shape[1] != self.n_components_:
            raise ValueError(
                f"X has {Z.shape[1]} columns, but inverse_transform expects codes "
                f"with n_components_={self.n_components_} columns, as returned by "
                "transform."
            )

    @staticmethod
    def _map_dask(X, method, n_out):
        """``method`` applied block by block to a Dask array, lazily."""
        X = X.rechunk({1: -1})  # whole rows in every block
        return X.map_blocks(
            method,
            dtype=np.float32,
            chunks=(X.chunks[0], (n_out,)),
            meta=np.empty((0, n_out), dtype=np.float32),
        )

    @property
    def _inference_batch_rows(self):
        return inference_batch_rows(self.net_.module_, self._device, self.batch_size)

    @property
    def _clips_output(self):
        """Whether reconstructions are clipped to the intensities' range [0, 1]."""
        return self._net_config.get("clip_output", False)

    @property
    def _scaling(self):
        return self.data_offset_, self.data_scale_

    @property
    def _device(self):
        # the net's device, not the parameter: after unpickling a CUDA-fitted model
        # on a CPU-only machine skorch has moved it to 'cpu'
        return self.net_.device

    def _map_batches(self, fn, batches, n_rows, n_out):
        """Concatenate ``fn(batch)`` over ``batches``, in eval mode, without autograd.

        Rows are independent of one another in eval mode, so the result does not
        depend on the batch size or on the order of the rows.
        """
        self.net_.module_.eval()
        out = np.empty((n_rows, n_out), dtype=np.float32)
        start = 0
        with torch.inference_mode():
            for batch in batches:
                result = fn(batch)
                if isinstance(result, torch.Tensor):
                    result = result.float().cpu().numpy()
                out[start : start + len(result)] = result
                start += len(result)
        return out

    # ------------------------------------------------------------------------------
    # persistence and export

    def save(self, path):
        """Write the fitted transformer to one file, without pickle.

        The network's weights and buffers are stored as safetensors (CPU copies,
        so that a model fitted on a GPU loads without one); the parameters, the
        fitted attributes and ``history_`` as JSON in the file's metadata, with a
        format version, the library versions and a checksum that detects damage.
        Loading it runs nothing from the file, unlike ``joblib.load``.

        Not stored: ``callbacks`` and a ``random_state`` that is not an int, which
        are objects, not settings (the loaded model has None), with a warning;
        attributes that are not fitted state of the transformer (``ae.note =
        ...``), with a warning naming them; the optimizer's state, without a
        warning (``partial_fit`` after ``load`` starts AdamW afresh).

        What is written is first checked as :meth:`load` checks it, so that a
        file that would not load is never written: a fitted attribute changed by
        hand, or a parameter that shapes the network (``n_components``,
        ``architecture``) changed with ``set_params`` after ``fit``, is an error.

        Parameters
        ----------
        path : str or path-like
            Where to write, conventionally ``*.safetensors``; an existing file is
            replaced only once the new one is complete and synced to disk.

        Raises
        ------
        ValueError
            When the model's attributes and parameters would not load (above).

        See Also
        --------
        load : Read the file back.
        to_onnx : The encoder or the decoder for ONNX Runtime.

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> import numpy as np
        >>> from sklearn.datasets import load_digits
        >>> from sk_convae import ConvAutoEncoderTransformer
        >>> X, _ = load_digits(return_X_y=True)
        >>> ae = ConvAutoEncoderTransformer(
        ...     8, image_shape=(8, 8), channels=(4, 8), max_epochs=1, random_state=0
        ... ).fit(X)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     ae.save(Path(tmp) / "ae.safetensors")
        ...     loaded = ConvAutoEncoderTransformer.load(Path(tmp) / "ae.safetensors")
        >>> np.array_equal(loaded.transform(X), ae.transform(X))
        True
        """
        from sk_convae._persist import save

        save(self, path)

    @classmethod
    def load(cls, path, *, device=None):
        """Read a transformer written by :meth:`save`; nothing in the file is run.

        The network is rebuilt from the stored parameters and its tensors loaded
        strictly (every name, shape and dtype must match): the loaded model gives
        bit-identical ``transform`` and ``inverse_transform`` on the same device.

        Parameters
        ----------
        path : str or path-like
            A file written by :meth:`save`.

        device : str or torch.device, default=None
            Where the loaded network runs: ``'cpu'``, ``'cuda'``, ``'cuda:N'`` or
            ``'mps'``. None uses the device it was fitted on when this machine has
            it, else the CPU (with a warning).

        Returns
        -------
        estimator : ConvAutoEncoderTransformer
            The fitted transformer.

        Raises
        ------
        sk_convae.exceptions.ModelFileError
            A ``ValueError`` naming what is wrong: the file is damaged or
            truncated (checksum), is not a sk-convae model, was written in a newer
            format version, or its contents are not consistent: unknown or
            missing attributes, values of the wrong type or range, values that
            disagree with one another or with the tensors. The checksum has no
            key: an edited file whose contents are consistent loads, so load
            files only from sources you would take a model from.

        ValueError
            When ``device`` is not one of the above, or not on this machine.

        See Also
        --------
        save : Write the file.

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> from sklearn.datasets import load_digits
        >>> from sk_convae import ConvAutoEncoderTransformer
        >>> X, _ = load_digits(return_X_y=True)
        >>> ae = ConvAutoEncoderTransformer(
        ...     8, image_shape=(8, 8), channels=(4, 8), max_epochs=1, random_state=0
        ... ).fit(X)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     ae.save(Path(tmp) / "ae.safetensors")
        ...     loaded = ConvAutoEncoderTransformer.load(
        ...         Path(tmp) / "ae.safetensors", device="cpu"
        ...     )
        >>> loaded.n_components_, loaded.image_shape_
        (8, (1, 8, 8))
        >>> loaded.transform(X[:2]).shape
        (2, 8)
        """
        from sk_convae._persist import load

        return load(cls, path, device=device)

    def to_onnx(self, part="encoder", *, dtype=None, target_opset=None):
        """The encoder or the decoder as an ONNX model, input scaling included.

        The encoder takes rows on the scale seen in ``fit`` (the map to the
        network's scale is part of the graph) and returns what ``transform``
        returns; the decoder takes codes and returns what ``inverse_transform``
        returns (sigmoid or clipping, and scale included). The batch axis is
        dynamic; weights are float32, in eval mode. Needs
        ``pip install 'sk-convae[onnx]'``. For a whole
        :class:`~sklearn.pipeline.Pipeline`, call
        :func:`sk_convae.register_onnx_converter` and then ``skl2onnx.to_onnx``.

        Parameters
        ----------
        part : {'encoder', 'decoder'}, default='encoder'
            Which half of the autoencoder.

        dtype : str or numpy dtype, default=None
            Element type of the model's input: for the encoder, that of the rows
            (``'uint8'``, ``'uint16'``, ``'float32'``, ``'float64'``, ...); for the
            decoder, that of the codes (``'float32'`` or ``'float64'``). None is,
            for the encoder, the dtype of the rows ``fit`` saw (``'float32'`` when
            the encoder cannot take it, such as bool or float16, or for a model
            that did not record it); for the decoder, ``'float32'``, the dtype of
            the codes ``transform`` returns.

        target_opset : int, default=None
            ONNX opset of the default domain, at least 18 (the lowest torch's
            exporter writes); None is 18, which ONNX Runtime reads since 1.14.

        Returns
        -------
        model : onnx.ModelProto
            Input ``'X'`` of shape ``(N, n_features_in_)`` and output ``'codes'``
            of shape ``(N, n_components_)`` for the encoder; input ``'codes'`` and
            output ``'X'`` for the decoder; outputs are float32. Save it with
            ``onnx.save(model, path)``.

        See Also
        --------
        sk_convae.register_onnx_converter : Convert whole Pipelines with skl2onnx.
        save : Keep the whole transformer, to load it back with :meth:`load`.

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> import numpy as np, onnx, onnxruntime
        >>> from sklearn.datasets import load_digits
        >>> from sk_convae import ConvAutoEncoderTransformer
        >>> X, _ = load_digits(return_X_y=True)
        >>> ae = ConvAutoEncoderTransformer(
        ...     8, image_shape=(8, 8), channels=(4, 8), max_epochs=1, random_state=0
        ... ).fit(X)
        >>> model = ae.to_onnx("encoder", dtype="float64")
        >>> [i.name for i in model.graph.input], [o.name for o in model.graph.output]
        (['X'], ['codes'])
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     onnx.save(model, Path(tmp) / "encoder.onnx")
        ...     session = onnxruntime.InferenceSession(
        ...         str(Path(tmp) / "encoder.onnx"), providers=["CPUExecutionProvider"]
        ...     )
        >>> (codes,) = session.run(None, {"X": X})
        >>> codes.shape, bool(np.abs(codes - ae.transform(X)).max() < 1e-4)
        ((1797, 8), True)
        """
        from sk_convae._onnx import to_onnx

        return to_onnx(self, part, dtype=dtype, target_opset=target_opset)

    def __getstate__(self):
        return {**super().__getstate__(), "_sk_convae_version": __version__}

    def __setstate__(self, state):
        state = dict(state)
        original = state.pop("_sk_convae_version", "unknown")
        if original != __version__:
            warnings.warn(
                InconsistentVersionWarning(
                    estimator_name=type(self).__name__,
                    current_version=__version__,
                    original_version=original,
                ),
                stacklevel=2,
            )
        super().__setstate__(state)
        net = getattr(self, "net_", None)
        if net is not None and isinstance(net.device, torch.device):
            # skorch maps a CUDA-fitted net to torch.device('cpu') on a machine
            # without CUDA; keep the device a string, as it is after fit
            net.device = str(net.device)

    # ------------------------------------------------------------------------------
    # sklearn plumbing

    @property
    def _n_features_out(self):
        """Number of transformed output features, for get_feature_names_out."""
        return self.n_components_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Codes and reconstructions are float32 whatever the input dtype.
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


# ----------------------------------------------------------------------------------
# Validation helpers: each raises in the user's terms, before any training starts.


def _positive_ints(values):
    """``values`` as a tuple of ints if all are positive integers, else None."""
    values = tuple(values)
    if all(
        isinstance(v, Integral) and not isinstance(v, bool) and v >= 1 for v in values
    ):
        return tuple(int(v) for v in values)
    return None


def _resolve_image_shape(image_shape, n_features):
    """``(C, H, W)`` from the ``image_shape`` parameter and the number of features."""
    if image_shape is None:
        side = math.isqrt(n_features)
        if side * side == n_features:
            return (1, side, side)
        return (1, 1, n_features)
    shape = _positive_ints(image_shape)
    if shape is None or len(shape) not in (2, 3):
        raise ValueError(
            "image_shape must be (H, W) or (C, H, W) with positive integers, "
            f"got {image_shape!r}."
        )
    if math.prod(shape) != n_features:
        raise ValueError(
            f"image_shape {shape} needs {math.prod(shape)} features, got {n_features}."
        )
    return shape if len(shape) == 3 else (1, *shape)


def _check_channels(channels):
    checked = _positive_ints(channels)
    if not checked:
        raise ValueError(
            "channels must be a non-empty tuple of positive integers, one width per "
            f"encoder stage, got {tuple(channels)!r}."
        )
    return checked


def _resolve_loss(loss, kind, stats, architecture):
    if architecture == "residual":
        if loss == "bce":
            raise ValueError(
                "loss='bce' needs a sigmoid output, which architecture='residual' "
                "(PCA plus convolutions, on the data's scale) has not: use "
                "loss='mse' or 'auto', or architecture='dense' for loss='bce'."
            )
        return "mse"
    if loss == "auto":
        return "bce" if kind == INTENSITY else "mse"
    if loss == "bce" and kind != INTENSITY:
        raise ValueError(
            "loss='bce' needs intensities (non-negative data, such as pixels in "
            f"[0, 1] or 0..255), but X has values down to {stats.min:.4g}. "
            "Use loss='mse' or loss='auto' for data with negative values."
        )
    return loss


def _check_conv_code_width(n_components, image_shape, channels):
    code_shape = conv_code_shape(image_shape, channels)
    width = math.prod(code_shape)
    if n_components != width:
        c, h, w = code_shape
        raise ValueError(
            "architecture='conv' makes the last feature map the code: "
            f"{c} channels x {h} x {w} = {width} numbers for image_shape "
            f"{image_shape} and channels {channels}; set n_components={width} "
            f"(got {n_components})."
        )


_MODULES = {
    "residual": ResidualConvAutoEncoder,
    "dense": DenseConvAutoEncoder,
    "conv": ConvCodeAutoEncoder,
}


def _architecture_of(net):
    """The ``architecture`` that built the fitted ``net``'s module."""
    names = {module: name for name, module in _MODULES.items()}
    return names.get(type(net.module_), type(net.module_).__name__)


# max_epochs='auto': about this many optimizer steps, in at most this many epochs
AUTO_STEPS = 3750
AUTO_MAX_EPOCHS = 100
# early_stopping='auto': on where that means more epochs than this, with at least
# this many rows held out
AUTO_EARLY_STOPPING_EPOCHS = 20
AUTO_EARLY_STOPPING_ROWS = 50
# lr='auto': the peak rate on small data (as above: more passes than
# AUTO_EARLY_STOPPING_EPOCHS) and on larger data
AUTO_LR_SMALL = 3e-3
AUTO_LR_LARGE = 1e-2


def _auto_epochs(steps_per_epoch):
    """Epochs of max_epochs='auto' at ``steps_per_epoch`` steps each."""
    return min(max(round(AUTO_STEPS / steps_per_epoch), 1), AUTO_MAX_EPOCHS)


# rows behind the PCA that starts architecture='residual'
PCA_ROWS = 10_000


def _output_is_clipped(architecture, kind):
    """architecture='residual' outputs intensities directly: clipped to [0, 1]."""
    return architecture == "residual" and kind == INTENSITY


_RESERVED_CALLBACKS = (
    "lr_schedule",
    "early_stopping",
    "progress_bar",
    "epoch_checkpoint",
)


def _silent(*args, **kwargs):
    """A sink that prints nothing (module level, so that it pickles)."""


def _check_callbacks(callbacks):
    """A copy of the user's callbacks, so that fitting never changes their objects."""
    if callbacks is None:
        return []
    for cb in callbacks:
        name, obj = cb if isinstance(cb, tuple) else (None, cb)
        if name in _RESERVED_CALLBACKS:
            raise ValueError(f"the callback name {name!r} is reserved.")
        if not hasattr(obj, "initialize"):
            raise TypeError(
                f"callbacks must hold skorch callbacks, got {type(obj).__name__}."
            )
    return copy.deepcopy(list(callbacks))


def _drop_training_state(net):
    """Forget what only training needed, so that the fitted model pickles anywhere.

    The learning-rate scheduler keeps a reference to the optimizer and early
    stopping a copy of the best weights. Pickled through the callbacks rather than
    through skorch's device-aware path, those tensors would not load on a machine
    without the device they were trained on. The validation rows given to ``fit``
    are the caller's data, perhaps a file or an unpicklable HDF5 dataset.
    """
    for name, callback in net.callbacks_:
        if name == "lr_schedule":
            callback.lr_scheduler_ = None
        elif name == "early_stopping":
            callback.best_model_weights_ = None
    # fit's X_val: the fitted model must neither hold nor pickle the caller's data
    if isinstance(net.train_split, GivenValidation):
        net.train_split = None  # an attribute: set_params would re-initialise


@contextlib.contextmanager
def _unchanged_on_error(estimator):
    """Put back the estimator's attributes when the block raises, so that a fit that
    fails (bad input, an error in training, Ctrl-C) leaves no half-set fitted
    state: the previous fit, or none, stays as it was. Enough because training
    never changes the fitted net in place: ``fit``, a warm start and
    ``partial_fit`` all train a new net (``_continue_from``)."""
    state = dict(vars(estimator))
    try:
        yield
    except BaseException:
        vars(estimator).clear()
        vars(estimator).update(state)
        raise


def _continue_from(previous, *, optimizer=False, lr=None, weight_decay=None):
    """A ``restore`` for ``_train``: copies of the weights and history of the net
    ``previous`` (and, with ``optimizer``, of AdamW's and the gradient scaler's
    state, at the rate ``lr`` and ``weight_decay``) into a new net.

    Copies, never shared tensors (``Optimizer.load_state_dict`` keeps the tensors
    it is given): training the new net leaves ``previous`` exactly as it was, so
    that an interrupted call can hand it back.
    """

    def restore(net):
        net.module_.load_state_dict(previous.module_.state_dict())
        net.history = History(copy.deepcopy(list(previous.history)))
        if not optimizer:
            return
        net.optimizer_.load_state_dict(copy.deepcopy(previous.optimizer_.state_dict()))
        for group in net.optimizer_.param_groups:
            group["lr"], group["weight_decay"] = lr, weight_decay
        old_scaler = getattr(previous, "grad_scaler_", None)
        new_scaler = getattr(net, "grad_scaler_", None)
        if old_scaler is not None and new_scaler is not None:
            new_scaler.load_state_dict(old_scaler.state_dict())

    return restore


def _call_seed(train_seed, n_iter):
    """The seed of a call that continues a fitted model (``partial_fit``, a warm
    start): a new shuffling and noise for every call, all following from one seed."""
    return int(np.random.SeedSequence([train_seed, n_iter]).generate_state(1)[0])


def _scan_unless_uint8(X, data_range):
    """The statistics pass, which ``uint8`` data without a ``data_range`` needs not:
    its scale is 0..255 and it holds no NaN."""
    if X.dtype == np.uint8 and data_range is None:
        return None
    return scan(X)


def _check_data_range(data_range):
    if data_range is None:
        return None
    values = tuple(data_range)
    if (
        len(values) != 2
        or not all(isinstance(v, Real) and math.isfinite(v) for v in values)
        or not values[0] < values[1]
    ):
        raise ValueError(
            "data_range must be (low, high) with finite low < high, "
            f"got {data_range!r}."
        )
    return float(values[0]), float(values[1])


def _check_on_scale(X, offset, scale, kind, what, *, data_range=None, name=None):
    """Rows for a model whose scale is fixed (a later partial_fit chunk, fit's
    X_val): finite, within ``data_range`` when given, else within the scale
    ``what`` where it is one of intensities (targets must stay in [0, 1]).
    ``uint8`` within a 0..255 scale needs no pass. ``name`` is what messages call
    the rows (X by default)."""
    low, high = offset, offset + scale
    if data_range is None and X.dtype == np.uint8 and low <= 0.0 and high >= 255.0:
        return
    names = {} if name is None else {"name": name}
    stats = scan(X, **names)
    if data_range is not None:
        _check_within(stats, *data_range, "data_range", **names)
    elif kind == INTENSITY:
        _check_within(stats, low, high, what, **names)


def _check_within(stats, low, high, what, name="X"):
    # a relative margin for values that went through float arithmetic
    margin = 1e-6 * max(1.0, abs(low), abs(high))
    if stats.min < low - margin or stats.max > high + margin:
        raise ValueError(
            f"{name} has values from {stats.min:.6g} to {stats.max:.6g}, outside "
            f"{what}, {low:.6g} to {high:.6g}. Pass data_range=(low, high) covering "
            "all of the data (every chunk, for partial_fit)."
        )


def _seed_from(random_state):
    """An int seed for torch; draws from no global random state."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(random_state, Integral):
        return int(random_state)
    return int(random_state.randint(np.iinfo(np.int32).max))
