"""Which torch device a model trains on."""

import torch


def resolve_device(device):
    """Turn the ``device`` parameter into a torch device string, or raise.

    ``'auto'`` picks CUDA when it is available, then CPU. Any other value must name a
    torch device that exists on this machine: a request for CUDA on a machine without
    it is an error here, before any training, not a crash deep inside torch.

    Parameters
    ----------
    device : str or torch.device
        ``'auto'``, ``'cpu'``, ``'cuda'``, ``'cuda:N'``, ``'mps'``, ...

    Returns
    -------
    device : str
        For example ``'cpu'`` or ``'cuda'``.
    """
    if isinstance(device, str) and device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"device={device!r} is not a torch device; "
            "use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was asked for, but CUDA is not available on this "
                "machine; use device='auto' (CUDA when present, else CPU) or 'cpu'."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was asked for, but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r} was asked for, but MPS is not available.")
    return str(resolved)
