"""ConvAutoEncoderTransformer against PCA on MNIST: the script behind the README table.

What it measures and its options: ``benchmarks/_benchmark.py``; results go to
``benchmarks/results/mnist-vs-pca/``, and ``benchmarks/README.md`` explains them.
MNIST is read from ``--data-home DIR`` (``DIR/mnist``), else from scikit-learn's data
home (``$SCIKIT_LEARN_DATA``, else ``~/scikit_learn_data``), and downloaded if missing.

    python benchmarks/bench_mnist.py            # ~1.5 h
    python benchmarks/bench_mnist.py --quick    # ~1 min
    python benchmarks/bench_mnist.py --help

Sample output (``--quick``: 10,000 training and 2,000 test images, 8 epochs)::

    | method | d | seeds | test MSE | test BCE | kNN(5) acc | LogReg acc | ...
    |---|---|---|---|---|---|---|
    | pca | 10 | 1 | 0.03330 | 0.1690 | 0.8760 | 0.7660 | ...
    | autoencoder | 10 | 1 | 0.02658 | 0.1464 | 0.8895 | 0.8030 | ...
"""

import sys
from pathlib import Path

from _benchmark import main

if __name__ == "__main__":
    main(
        sys.argv[1:],
        default_out=Path(__file__).resolve().parent / "results" / "mnist-vs-pca",
    )
