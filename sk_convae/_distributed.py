"""One fit in several processes: PyTorch DDP, driven by Hugging Face Accelerate.

``ConvAutoEncoderTransformer(distributed=True)`` trains through skorch's
``AccelerateMixin``: launched with ``accelerate launch`` or ``torchrun``, every
process runs the same script, trains the same network on its own shard of the rows
(``sk_convae._data.BatchLoader`` with ``rank`` and ``world_size``), and DDP averages
the gradients, so that all processes hold the same weights after each step. In a
plain Python process it is a one-process run.

What skorch documents as pitfalls, and how they are met here:

- An ``Accelerator`` is not something to deep-copy (``clone``, ``GridSearchCV``): the
  estimator takes a plain flag and makes its Accelerator inside ``fit``.
- Each process sees only its own batches: a ``DistributedHistory`` on a
  ``TCPStore`` gathers every process's batch losses, so that the epoch losses, and
  early stopping's decisions, are the same in every process.
- BatchNorm's running statistics are updated from each process's own rows: after
  training every process takes rank 0's, so that the models are identical.
- Early stopping saves the best weights of the DDP-wrapped module: the net stays
  wrapped until they are loaded back (``unwrap_after_train=False``).
- The net holds its Accelerator and the history its store, neither of which
  pickles: after training, the fitted weights, optimizer state, history and
  callbacks move to a plain skorch ``NeuralNet``, which pickles and loads anywhere.
"""

import atexit
import importlib
import os

import torch
from skorch import NeuralNet
from skorch.hf import AccelerateMixin
from skorch.history import DistributedHistory, History

from sk_convae._interrupt import InterruptMixin


def make_accelerator(device, precision="float32"):
    """An ``accelerate.Accelerator`` for the ``device`` parameter ('auto' or a type)
    and a concrete ``precision`` (``sk_convae._precision.PRECISIONS``)."""
    try:
        from accelerate import Accelerator
    except ImportError as exc:
        raise ImportError(
            "distributed=True trains through Hugging Face Accelerate, which is not "
            "installed: pip install 'sk-convae[distributed]'"
        ) from exc
    cpu = str(device) == "cpu" or (device == "auto" and not torch.cuda.is_available())
    mixed_precision = {"float32": "no", "bfloat16": "bf16", "float16": "fp16"}
    had_group = _process_group_started()
    if not had_group:
        # Imported after the process group starts (building an optimizer imports
        # it), torch._dynamo keeps that group alive past destroy_process_group
        # (seen with torch 2.13): Gloo's worker threads then run into the
        # interpreter's finalisation, and one that frees a broadcast's tensors
        # there aborts the process as described below (about one exit in eight
        # of tests/test_distributed.py's script; none in 47 with this import).
        # Imported first, it does not.
        importlib.import_module("torch._dynamo")
    accelerator = Accelerator(cpu=cpu, mixed_precision=mixed_precision[precision])
    if not had_group and _process_group_started():
        # Accelerate started the process group for this fit: end it at exit, while
        # the interpreter still runs. Left to the interpreter's finalisation, Gloo's
        # worker threads free tensors that need the GIL being torn down, and the
        # process aborts (SIGABRT, "terminate called without an active exception";
        # pytorch/pytorch#179291): 6 of 30 exits of a two-process torchrun script
        # that only makes an Accelerator and all-reduces, 0 of 30 with this. A
        # group the caller started is theirs to end.
        atexit.register(_destroy_process_group)
    return accelerator


def _process_group_started():
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _destroy_process_group():
    if _process_group_started():  # unless the script destroyed it already
        torch.distributed.destroy_process_group()


def process_device(accelerator):
    """This process's device as the estimator names it: ``'cpu'`` or ``'cuda:N'``
    (torch cannot unpickle tensors saved on a device called ``'cpu:0'``)."""
    device = torch.device(accelerator.device)
    return "cpu" if device.type == "cpu" else str(device)


def shared_seed(seed):
    """Rank 0's ``seed`` in every process (one process: ``seed``), so that all hold
    out the same rows and shuffle alike even with ``random_state=None``."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return seed
    shared = [seed]
    torch.distributed.broadcast_object_list(shared, src=0)
    return shared[0]


class AcceleratedNet(InterruptMixin, AccelerateMixin, NeuralNet):
    """A skorch ``NeuralNet`` trained through an ``accelerate.Accelerator``;
    ``KeyboardInterrupt`` during training reaches the caller, as without it."""

    def _initialize_accelerator(self):
        # The loss has no parameters, and DDP refuses to wrap a module without
        # any: prepare only the network and the optimizer.
        criteria, self._criteria = self._criteria, []
        try:
            return super()._initialize_accelerator()
        finally:
            self._criteria = criteria


def distributed_history(accelerator):
    """A ``DistributedHistory`` shared by all processes (a plain one in one process).

    Rank 0 opens a ``TCPStore`` on a free port of ``MASTER_ADDR`` and tells the other
    processes its port through the process group that Accelerate started.
    """
    world_size = accelerator.num_processes
    if world_size == 1:
        return History()
    host = os.environ.get("MASTER_ADDR", "127.0.0.1")
    is_main = accelerator.is_main_process
    store = None
    if is_main:  # not waiting for the others: they learn the port below
        store = torch.distributed.TCPStore(
            host, 0, world_size, is_master=True, wait_for_workers=False
        )
    port = [store.port if is_main else None]
    torch.distributed.broadcast_object_list(port, src=0)
    if not is_main:
        store = torch.distributed.TCPStore(host, port[0], world_size, is_master=False)
    return DistributedHistory(
        store=store, rank=accelerator.process_index, world_size=world_size
    )


def to_plain_net(net, plain):
    """Move what ``net`` (an ``AcceleratedNet``, trained) learned into ``plain``.

    ``plain`` is a ``NeuralNet`` with the same parameters but no Accelerator; it is
    initialised here. Returns ``plain``.
    """
    plain.initialize()
    # still wrapped (unwrap_after_train=False), so that early stopping's best
    # weights, saved from the wrapped module, loaded back into it
    plain.module_.load_state_dict(
        net.accelerator.unwrap_model(net.module_).state_dict()
    )
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        for buffer in plain.module_.buffers():  # BatchNorm running statistics
            torch.distributed.broadcast(buffer, src=0)
    plain.optimizer_.load_state_dict(net.optimizer_.state_dict())
    history = net.history
    if isinstance(history, DistributedHistory):
        history = History(history.history)  # synced; without the store
    plain.history_ = history
    # the callbacks keep their state (early stopping's best epoch, ...), except the
    # printer, whose sink is the Accelerator's print
    own = dict(plain.callbacks_)
    plain.callbacks_ = [
        (name, own[name] if name == "print_log" else callback)
        for name, callback in net.callbacks_
    ]
    return plain
