"""Hooks of the example gallery: its order, and the state each example starts in."""

from pathlib import Path

ORDER = [
    "plot_quickstart.py",
    "plot_denoising.py",
    "plot_generate.py",
    "plot_similarity_search.py",
    "plot_deploy_onnx.py",
]


class ExampleOrder:
    """Sort key for ``within_subsection_order``: the files in ``ORDER`` come
    first, in that order, then any others by name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = Path(filename).name
        return (ORDER.index(name), "") if name in ORDER else (len(ORDER), name)

    def __repr__(self):
        return f"<{type(self).__name__}>"


def reset_torch(gallery_conf, fname, when):
    """Run each example with one PyTorch thread.

    On a machine whose cores are busy with other work (a shared CI runner, a
    laptop running tests), PyTorch's threads wait on each other and a fit on the
    digits takes many times longer than with one thread; with one thread the
    build takes the same time wherever it runs.
    """
    import torch

    torch.set_num_threads(1)
