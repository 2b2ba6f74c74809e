"""The data path: rows of any 2-D array-like to network batches, in bounded memory.

``fit``, ``partial_fit``, ``transform`` and ``inverse_transform`` all read their rows
through this module, so that the memory they need is set by the batch, not by the
data, and so that no step pays a per-row cost:

- ``is_lazy`` / ``check_lazy``: arrays that slice lazily (``np.memmap``,
  ``h5py.Dataset``, ``zarr.Array``, ``dask.array.Array``) are validated from their
  ``shape`` and ``dtype`` alone, never converted whole.
- ``scan``: one streaming pass in float64 over blocks of rows gives the scaling
  statistics (min, max, mean, std) and finds the first row holding NaN or infinity.
- ``RowSource``: the rows to train on (all of ``X`` or a subset of its rows) with the
  affine map to the network's scale; a ``torch.utils.data.Dataset``, so that skorch
  takes it as it is.
- ``BatchLoader``: what skorch iterates over. It reads contiguous blocks of rows in
  shuffled order into a bounded buffer, shuffles the rows inside the buffer,
  converts one batch at a time to float32 and prepares the next batches in a
  background thread while the network trains on the current one. An in-memory
  array is one buffer: every epoch is a full permutation of its rows.
- ``holdout_rows``: the rows held out for early stopping, as a few contiguous runs.

Nothing here knows about scikit-learn or about the network.
"""

import math
import queue
import threading

import numpy as np
import torch

from sk_convae._scaling import MAX_MAGNITUDE

# A contiguous read is about this many bytes: large enough for a disk or a chunked
# store to stream, small enough to shuffle at a fine grain.
BLOCK_BYTES = 2**20
# Rows of a lazy source held at once for shuffling (as stored, e.g. uint8).
BUFFER_BYTES = 64 * 2**20
# float64 bytes of the rows that scale_rows converts at once
SCALE_CHUNK_BYTES = 2**21
# Batches prepared ahead of the one the network trains on.
PREFETCH_BATCHES = 3
# the last entry of the seed of an epoch's augmentation generator (the shuffling's
# has none): a stream of its own
AUGMENT_STREAM = 1


# ----------------------------------------------------------------------------------
# What the input is


def is_lazy(X):
    """True for a 2-D array that slices lazily and should never be converted whole.

    ``np.memmap`` and anything with a NumPy ``dtype``, a ``shape`` and slicing that is
    not an in-memory ``ndarray`` (``h5py.Dataset``, ``zarr.Array``,
    ``dask.array.Array``, ...). Sparse matrices, DataFrames, lists and tensors are not:
    they go through scikit-learn's validation.
    """
    if isinstance(X, np.memmap):
        return True
    if isinstance(X, np.ndarray) or hasattr(X, "tocsr") or hasattr(X, "iloc"):
        return False
    return (
        isinstance(getattr(X, "dtype", None), np.dtype)
        and hasattr(X, "__getitem__")
        and len(getattr(X, "shape", ())) == 2
    )


def is_dask(X):
    """True for a ``dask.array.Array`` (without importing Dask)."""
    return type(X).__module__.startswith("dask.") and hasattr(X, "map_blocks")


def check_lazy(X, *, min_samples=1):
    """Validate a lazy 2-D array from its shape and dtype, reading no data.

    Returns ``X`` itself. Raises ``ValueError`` in the user's terms.
    """
    n_rows, n_features = X.shape
    if not all(isinstance(s, (int, np.integer)) for s in X.shape):
        raise ValueError(
            f"X has unknown shape {X.shape}; for a Dask array with unknown chunk "
            "sizes call X.compute_chunk_sizes() first."
        )
    if X.dtype.kind not in "biuf":
        raise ValueError(
            f"X has dtype {X.dtype}; numeric data (bool, integers or floats) is needed."
        )
    if n_rows < min_samples:
        raise ValueError(
            f"Found array with {n_rows} sample(s) (shape={X.shape}) while a minimum "
            f"of {min_samples} is required."
        )
    if n_features < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is "
            "required."
        )
    return X


def read_rows(X, start, stop):
    """Rows ``start:stop`` of ``X`` as an ndarray in X's dtype (computes Dask)."""
    block = X[start:stop]
    if hasattr(block, "compute"):
        block = block.compute()
    return np.asarray(block)


def storage_chunk_rows(X):
    """Rows per storage chunk of ``X`` (HDF5, zarr, Dask), or 1 for flat storage."""
    chunks = getattr(X, "chunks", None)
    if not chunks:
        return 1
    first = chunks[0]
    # Dask gives a tuple of chunk sizes along each axis, h5py and zarr one size
    if isinstance(first, tuple):
        first = max(first)
    return max(1, int(first))


def block_rows(X):
    """Rows per contiguous read: about ``BLOCK_BYTES``, a whole number of chunks."""
    row_bytes = max(1, X.shape[1] * X.dtype.itemsize)
    chunk = storage_chunk_rows(X)
    rows = max(1, BLOCK_BYTES // row_bytes)
    return max(chunk, rows // chunk * chunk)


# ----------------------------------------------------------------------------------
# One streaming pass: statistics and the first bad row


class Stats:
    """Min, max, mean and std of every value of ``X``, from one pass in float64."""

    def __init__(self, minimum, maximum, mean, std):
        self.min = minimum
        self.max = maximum
        self.mean = mean
        self.std = std


def scan(X, positions=None, *, name="Input X"):
    """Statistics of the rows of ``X`` (all, or the sorted ``positions``), in float64.

    Reads ``X`` block by block, so it holds one block in float64 at a time. Raises
    ``ValueError`` naming the first row that holds NaN or infinity, or a value
    beyond ``MAX_MAGNITUDE`` (see ``sk_convae._scaling``); ``name`` is what the
    message calls the data.
    """
    n_total = 0
    mean = 0.0
    m2 = 0.0  # sum of squared deviations from the mean (Chan et al.'s update)
    low, high = math.inf, -math.inf
    for first_row, raw in _iter_blocks(X, positions):
        block = np.asarray(raw, dtype=np.float64)
        if block.dtype.kind == "f" and not np.isfinite(block).all():
            bad = int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
            what = "NaN" if np.isnan(block[bad]).any() else "infinity"
            raise ValueError(
                f"{name} contains {what} in row {first_row(bad)}, the first row "
                "that is not finite; drop or impute such rows first."
            )
        block_low, block_high = float(block.min()), float(block.max())
        if max(-block_low, block_high) > MAX_MAGNITUDE:
            bad = int(np.flatnonzero((np.abs(block) > MAX_MAGNITUDE).any(axis=1))[0])
            raise ValueError(
                f"{name} has a value of magnitude {np.abs(block[bad]).max():.3g} "
                f"in row {first_row(bad)}; values beyond {MAX_MAGNITUDE:.0e} are "
                "not supported, as codes and reconstructions are float32 (at most "
                "3.4e38). Divide X by a constant first: the scaling learned in fit "
                "gives the same model for any positive factor."
            )
        n = block.size
        block_mean = float(block.mean())
        block_m2 = float(((block - block_mean) ** 2).sum())
        delta = block_mean - mean
        total = n_total + n
        mean += delta * n / total
        m2 += block_m2 + delta * delta * n_total * n / total
        n_total = total
        low = min(low, block_low)
        high = max(high, block_high)
    std = math.sqrt(m2 / n_total) if n_total else 0.0
    return Stats(low, high, mean, std)


def _iter_blocks(X, positions):
    """``(row_of, block)`` for consecutive blocks of rows; ``row_of(i)`` is the row
    number in ``X`` of the block's i-th row."""
    step = block_rows(X)
    if positions is None:
        for start in range(0, X.shape[0], step):
            yield (lambda i, s=start: s + i), read_rows(X, start, start + step)
        return
    for start in range(0, len(positions), step):
        chunk = positions[start : start + step]
        yield (lambda i, c=chunk: int(c[i])), _read_positions(X, chunk)


def _read_positions(X, positions):
    """Rows at sorted ``positions``: one read per run of consecutive rows."""
    if isinstance(X, np.ndarray) and not isinstance(X, np.memmap):
        return X[positions]  # a new array: NumPy's fancy indexing copies
    # never the gaps between runs: those can be most of the data (the training
    # rows between two held-out runs)
    starts = np.concatenate([[0], np.flatnonzero(np.diff(positions) != 1) + 1])
    stops = np.append(starts[1:], len(positions))
    runs = [
        read_rows(X, int(positions[a]), int(positions[b - 1]) + 1)
        for a, b in zip(starts, stops)
    ]
    return runs[0] if len(runs) == 1 else np.concatenate(runs)


# ----------------------------------------------------------------------------------
# The rows to train on


def scale_rows(raw, offset, scale):
    """``(raw - offset) / scale`` as a new float32 array; ``raw`` is left untouched.

    The arithmetic is done in float64, so that ``uint8`` pixels and the same pixels
    divided by 255 give bit-identical network inputs.
    """
    raw = np.asarray(raw)
    out = np.empty(raw.shape, dtype=np.float32)
    # a few rows at a time: a float64 copy of a whole large batch would leave the
    # CPU's caches, and converting it would then run at a fraction of the speed
    step = max(1, SCALE_CHUNK_BYTES // (8 * max(1, math.prod(raw.shape[1:]))))
    # beyond float32's range is inf, which RowSource.to_net reports as an error
    with np.errstate(over="ignore"):
        for start in range(0, max(len(raw), 1), step):
            block = np.asarray(raw[start : start + step], dtype=np.float64)
            out[start : start + step] = (block - offset) / scale
    return out


class RowSource(torch.utils.data.Dataset):
    """Rows of ``X`` (all of them, or sorted ``positions``) on the network's scale.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        An in-memory ndarray or a lazy array (see ``is_lazy``). Never modified or
        copied whole.
    offset, scale : float
        The network sees ``(X - offset) / scale``, computed in float64 and stored
        as float32, so that ``uint8`` pixels and the same pixels divided by 255
        give bit-identical inputs.
    positions : ndarray of int or None
        Sorted row numbers to use; None uses every row.
    check_finite : bool, default=False
        Raise ``ValueError`` on a batch holding NaN or infinity (for data that no
        ``scan`` has checked).
    """

    def __init__(self, X, offset, scale, positions=None, *, check_finite=False):
        self.X = X
        self.offset = offset
        self.scale = scale
        self.positions = positions
        self.check_finite = check_finite
        self.in_memory = not is_lazy(X)

    def __len__(self):
        return self.X.shape[0] if self.positions is None else len(self.positions)

    def __getitem__(self, index):
        """Row ``index`` (or a slice of rows) as a float32 tensor on the net's scale."""
        if isinstance(index, slice):
            return self.to_net(self.read(np.arange(*index.indices(len(self)))))
        index = int(index)
        index = index + len(self) if index < 0 else index
        return self.to_net(self.read(np.array([index])))[0]

    def subset(self, index):
        """The rows at sorted ``index`` (positions within this source)."""
        index = np.asarray(index, dtype=np.intp)
        positions = index if self.positions is None else self.positions[index]
        return RowSource(
            self.X, self.offset, self.scale, positions, check_finite=self.check_finite
        )

    def read(self, index):
        """Raw rows (X's dtype) at sorted positions ``index`` within this source."""
        index = np.asarray(index, dtype=np.intp)
        rows = index if self.positions is None else self.positions[index]
        return _read_positions(self.X, rows)

    def to_net(self, raw):
        """Raw rows to a float32 tensor on the network's scale."""
        rows = scale_rows(raw, self.offset, self.scale)
        if self.check_finite and not np.isfinite(rows).all():
            if not np.isfinite(np.asarray(raw, dtype=np.float64)).all():
                raise ValueError("Input X contains NaN or infinity.")
            raise ValueError(
                "Input X has values too large for this model: (X - "
                f"{self.offset:.6g}) / {self.scale:.6g}, the scale learned in fit, "
                "is beyond float32's range (3.4e38)."
            )
        return torch.from_numpy(rows)

    def block_rows(self):
        """Rows per contiguous read from the storage."""
        return block_rows(self.X)


def epoch_plan(n_rows, batch_size, world_size=1):
    """How an epoch of ``n_rows`` is cut into batches, in each of ``world_size``
    processes: ``(batch_size, drop_last, batches per epoch)`` per process.

    ``batch_size`` is the rows of one optimizer step over all processes; each
    process trains on ``ceil(batch_size / world_size)`` of them. A lone last row
    would meet BatchNorm in training mode with one value per channel on 1x1 feature
    maps; it is dropped from that epoch instead (rows are shuffled, so a different
    one is left out each time).
    """
    n_rows = n_rows // world_size
    batch_size = min(-(-batch_size // world_size), n_rows)
    drop_last = n_rows % batch_size == 1
    steps = n_rows // batch_size if drop_last else -(-n_rows // batch_size)
    return batch_size, drop_last, steps


def holdout_rows(n_samples, fraction, seed):
    """Positions held out for validation: ``ceil(fraction * n_samples)`` rows.

    They are up to 64 contiguous runs at random places, so that reading them from a
    disk or a chunked store is a few long reads. Returns ``(train, valid)``, two
    sorted arrays of positions.
    """
    n_valid = math.ceil(fraction * n_samples)
    run = math.ceil(n_valid / 64)
    if math.ceil(n_valid / run) > n_samples // run:  # too few whole runs: rows
        run = 1
    rng = np.random.default_rng(seed)
    # whole runs only, so that the runs chosen hold at least n_valid rows
    chosen = np.sort(rng.choice(n_samples // run, math.ceil(n_valid / run), False))
    valid = (chosen[:, None] * run + np.arange(run)).ravel()[:n_valid]
    mask = np.ones(n_samples, dtype=bool)
    mask[valid] = False
    return np.flatnonzero(mask), valid


def sample_rows(source, n_rows, seed):
    """At most ``n_rows`` rows of ``source`` on the network's scale, float32 tensor.

    All of them when the source is that small; otherwise a sample read as up to 64
    contiguous runs at random places (``holdout_rows``), a few long reads on disk.
    """
    n = len(source)
    if n <= n_rows:
        step = source.block_rows()
        return torch.cat([source[start : start + step] for start in range(0, n, step)])
    _, sample = holdout_rows(n, n_rows / n, seed)
    return source.to_net(source.read(sample))


# ----------------------------------------------------------------------------------
# Batches


class BatchLoader:
    """Batches of rows from a ``RowSource``, as skorch's ``iterator_train``/``_valid``.

    Each item is ``(X_batch, X_batch)``: a float32 tensor on ``device`` used as input
    and as target. With ``shuffle``, every epoch reads contiguous blocks of rows
    (``RowSource.block_rows``) in a new random order into a buffer of about
    ``BUFFER_BYTES`` (an in-memory array is a single buffer), and draws the
    batches from a random permutation of the buffer's rows; rows left over at a
    buffer's end join the next buffer, so every batch but the last is full. The next
    ``PREFETCH_BATCHES`` batches are read and converted in a background thread.

    Parameters
    ----------
    dataset : RowSource
        The rows.
    batch_size : int
        Rows per batch.
    shuffle : bool, default=False
        Shuffle as above; without it the rows come in order.
    drop_last : bool, default=False
        Leave out the last batch of an epoch when it is not full.
    seed : int, default=0
        Seeds the shuffling; epoch ``k`` of this loader uses ``(seed, k)``.
    start_epoch : int, default=0
        The number ``k`` of the first epoch this loader draws: a fit resumed from
        a checkpoint after ``k`` epochs shuffles its epochs as the uninterrupted
        fit would have.
    device : str or torch.device, default='cpu'
        Where the batches go; on CUDA they are pinned and copied without blocking.
    rank, world_size : int, default=0 and 1
        For training in several processes: this process reads only its shard,
        rows ``rank * m`` to ``(rank + 1) * m`` with ``m = n // world_size`` (the
        last ``n % world_size`` rows are left out), and shuffles it with its own
        seed; ``batch_size`` is then the per-process batch.
    augment : callable, default=None
        ``augment(batch, rng) -> batch`` applied to each float32 batch before it
        leaves the CPU (``sk_convae._augment.RandomFlips``), with its own
        generator seeded by ``(seed, epoch, rank)``: the rows of each batch are
        the same with or without it.
    """

    def __init__(
        self, dataset, *, batch_size, shuffle=False, drop_last=False, seed=0,
        start_epoch=0, device="cpu", rank=0, world_size=1, augment=None,
    ):  # fmt: skip
        if world_size > 1:  # this process's contiguous shard of the rows
            per_rank = len(dataset) // world_size
            dataset = dataset.subset(np.arange(rank * per_rank, (rank + 1) * per_rank))
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.device = torch.device(device)
        self.rank = rank
        self.world_size = world_size
        self.augment = augment
        self.epochs_started = start_epoch

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        key = [self.seed, self.epochs_started, self.rank]
        rng = np.random.default_rng(key)
        augment_rng = np.random.default_rng([*key, AUGMENT_STREAM])
        self.epochs_started += 1
        batches = _Prefetcher(self._cpu_batches(rng, augment_rng), PREFETCH_BATCHES)
        try:
            for batch in batches:
                batch = batch.to(self.device, non_blocking=True)
                yield batch, batch
        finally:
            batches.close()

    def _cpu_batches(self, rng, augment_rng):
        """Float32 batches on the CPU (pinned for CUDA), in the epoch's order,
        augmented when the loader augments."""
        pin = self.device.type == "cuda"
        for raw in self._raw_batches(rng):
            batch = self.dataset.to_net(raw)
            if self.augment is not None:
                batch = self.augment(batch, augment_rng)
            yield batch.pin_memory() if pin else batch

    def _raw_batches(self, rng):
        """Raw batches (X's dtype): the shuffling and buffering described above.

        The rows of each batch are taken in increasing order of their place in the
        buffer (for an in-memory array, of their row number), so that a batch does
        not depend on where ``X`` is stored: an in-memory array and a memory map of
        it that fits one buffer give the same batches.
        """
        source, size = self.dataset, self.batch_size
        n = len(source)
        if not self.shuffle:
            yield from self._ordered_batches()
            return
        if source.in_memory:  # one buffer: X itself
            rows = rng.permutation(n)
            yield from _batches_of(rows, size, self.drop_last, source.read)
            return
        step = source.block_rows()
        blocks = [(a, min(a + step, n)) for a in range(0, n, step)]
        order = rng.permutation(len(blocks))
        per_buffer = max(1, BUFFER_BYTES // (step * _row_bytes(source)))
        carry = None  # rows left over from the previous buffer, fewer than a batch
        for first in range(0, len(blocks), per_buffer):
            spans = sorted(blocks[i] for i in order[first : first + per_buffer])
            buffer = _read_buffer(source, spans, carry)
            rows = rng.permutation(len(buffer))
            last = first + per_buffer >= len(blocks)
            n_full = len(rows) // size * size
            yield from _batches_of(
                rows if last else rows[:n_full],
                size,
                self.drop_last,
                lambda index, buffer=buffer: buffer[index],
            )
            carry = buffer[rows[n_full:]]
            buffer = None  # let it go before the next one is read

    def _ordered_batches(self):
        """Raw batches in row order; a lazy source is read a whole block at a time,
        so that a chunked store decompresses each chunk once."""
        source, size = self.dataset, self.batch_size
        n = len(source)
        stop = n - n % size if self.drop_last else n
        step = size if source.in_memory else max(size, source.block_rows())
        step = step // size * size  # whole batches in every read
        for first in range(0, stop, step):
            block = source.read(np.arange(first, min(first + step, stop)))
            for start in range(0, len(block), size):
                yield block[start : start + size]


def _batches_of(rows, size, drop_last, take):
    """``take(sorted batch)`` for consecutive batches of ``rows``."""
    stop = len(rows) - len(rows) % size if drop_last else len(rows)
    for start in range(0, stop, size):
        yield take(np.sort(rows[start : start + size]))


def _read_buffer(source, spans, carry):
    """One shuffle buffer: ``carry`` then the rows of each span, one read each."""
    n_carry = 0 if carry is None else len(carry)
    n_rows = n_carry + sum(b - a for a, b in spans)
    buffer = np.empty((n_rows, source.X.shape[1]), dtype=source.X.dtype)
    if n_carry:
        buffer[:n_carry] = carry
    at = n_carry
    for a, b in spans:
        buffer[at : at + b - a] = source.read(np.arange(a, b))
        at += b - a
    return buffer


def _row_bytes(source):
    return source.X.shape[1] * source.X.dtype.itemsize


class _Prefetcher:
    """Iterate over ``iterable`` in a background thread, ``depth`` items ahead.

    Exceptions raised while producing are re-raised in the consumer; ``close``
    stops the thread when the consumer leaves early (an error, an interrupt).
    """

    _DONE = object()

    def __init__(self, iterable, depth):
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._produce, args=(iterable,), daemon=True
        )
        self._thread.start()

    def _produce(self, iterable):
        try:
            for item in iterable:
                if not self._put((item, None)):
                    return
        except BaseException as exc:  # re-raised in the consumer
            self._put((None, exc))
            return
        self._put((self._DONE, None))

    def _put(self, item):
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        while True:
            item, exc = self._queue.get()
            if exc is not None:
                raise exc
            if item is self._DONE:
                return
            yield item

    def close(self):
        self._stop.set()
        self._thread.join()


class HoldoutSplit:
    """skorch ``train_split``: hold out ``holdout_rows(n, fraction, seed)``."""

    def __init__(self, fraction, seed):
        self.fraction = fraction
        self.seed = seed

    def __call__(self, dataset, y=None, **fit_params):
        train, valid = holdout_rows(len(dataset), self.fraction, self.seed)
        return dataset.subset(train), dataset.subset(valid)


class GivenValidation:
    """skorch ``train_split``: every row trains; ``valid`` (a ``RowSource`` of the
    caller's validation rows, ``fit``'s ``X_val``) is what is validated on."""

    def __init__(self, valid):
        self.valid = valid

    def __call__(self, dataset, y=None, **fit_params):
        return dataset, self.valid
