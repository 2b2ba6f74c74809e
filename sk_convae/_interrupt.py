"""Ctrl-C reaches the caller: skorch nets whose training an interrupt stops.

skorch's ``NeuralNet.partial_fit`` (and so ``fit``) catches ``KeyboardInterrupt``
and returns as if training had ended, so that a notebook keeps the half-trained
net. In a script, a ``Pipeline`` or a ``GridSearchCV`` that means the user cannot
stop a run, and a half-trained model flows on silently. ``InterruptMixin`` lets the
interrupt go on to the caller, as scikit-learn and PyTorch code do, once skorch has
given every callback its ``on_train_end`` (progress bars and TensorBoard writers
close; the data path's prefetch thread stops as its batch generator closes).

skorch's ``EarlyStopping`` ends training by raising ``KeyboardInterrupt`` from its
``on_epoch_end`` when its patience is spent. That one, told apart by where it was
raised (an ``EarlyStopping``'s ``on_epoch_end``, ours or the user's, with its
patience spent), still ends training normally.
"""

from skorch.callbacks import EarlyStopping


class InterruptMixin:
    """Mix into a skorch ``NeuralNet`` (first base) so that ``KeyboardInterrupt``
    raised during training propagates out of ``partial_fit`` and ``fit``."""

    _pending_interrupt = None

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt as exc:
            if not _raised_by_early_stopping(exc):
                # skorch's partial_fit swallows it after on_train_end: re-raised there
                self._pending_interrupt = exc
            raise

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        self._pending_interrupt = None
        try:
            super().partial_fit(X, y, classes, **fit_params)
        finally:
            interrupt, self._pending_interrupt = self._pending_interrupt, None
        if interrupt is not None:
            raise interrupt
        return self


def _raised_by_early_stopping(exc):
    """Whether ``exc`` is an ``EarlyStopping`` callback's way of ending training:
    raised in its ``on_epoch_end``, with its patience spent."""
    traceback = exc.__traceback__
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    frame = traceback.tb_frame
    callback = frame.f_locals.get("self")
    return (
        isinstance(callback, EarlyStopping)
        and frame.f_code.co_name == "on_epoch_end"
        and callback.misses_ >= callback.patience
    )
