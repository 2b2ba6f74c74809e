"""Similarity search on autoencoder codes, against PCA codes and raw pixels.

Fits a ConvAutoEncoderTransformer and a PCA of the same width, indexes the
training images' codes with NearestNeighbors, and for each test image retrieves
its k nearest training images. Prints precision@k (the share of retrieved images
with the query's label) for autoencoder codes, PCA codes and raw pixels, and saves
a grid of queries with their neighbours.

    python examples/similarity_search.py                      # 8x8 digits, offline
    python examples/similarity_search.py --dataset mnist --data-home ../shared/data
"""

import argparse
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from sk_convae import ConvAutoEncoderTransformer
from sk_convae.datasets import load_demo_data


def precision_at_k(train_codes, y_train, query_codes, y_query, k):
    """Mean share of the k nearest training rows that have the query's label."""
    index = NearestNeighbors(n_neighbors=k).fit(train_codes)
    _, neighbours = index.kneighbors(query_codes)
    return float(np.mean(y_train[neighbours] == y_query[:, None])), neighbours


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=["digits", "mnist"], default="digits")
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--n-components", type=int, default=8)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("similarity_search.png"))
    args = parser.parse_args(argv)

    data = load_demo_data(args.dataset, data_home=args.data_home)
    ae = ConvAutoEncoderTransformer(
        n_components=args.n_components,
        image_shape=data.image_shape,
        max_epochs=args.max_epochs,
        batch_size=64 if len(data.X_train) < 10_000 else 256,
        random_state=0,
    ).fit(data.X_train)
    pca = PCA(n_components=args.n_components, random_state=0).fit(data.X_train)

    spaces = {
        f"autoencoder codes ({args.n_components}-d)": ae.transform,
        f"PCA codes ({args.n_components}-d)": pca.transform,
        f"raw pixels ({data.X_train.shape[1]}-d)": lambda X: np.asarray(X, float),
    }
    print(f"{args.dataset}: precision@{args.k} over {len(data.X_test)} test queries\n")
    print(f"| {'search space':<26} | precision@{args.k} |")
    print(f"|{'-' * 28}|{'-' * (13 + len(str(args.k)))}|")
    results = {}
    for name, encode in spaces.items():
        precision, neighbours = precision_at_k(
            encode(data.X_train), data.y_train, encode(data.X_test), data.y_test, args.k
        )
        results[name] = (precision, neighbours)
        print(f"| {name:<26} | {precision:>{11 + len(str(args.k))}.3f} |")

    _, neighbours = results[next(iter(spaces))]
    save_query_grid(data, neighbours, args.out, n_queries=6, k=min(args.k, 8))
    print(f"\nQueries and their nearest neighbours: {args.out}")
    return {name: precision for name, (precision, _) in results.items()}


def save_query_grid(data, neighbours, path, *, n_queries, k):
    """Each row: a query image, then its k nearest training images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sk_convae.plotting import as_images, mosaic

    shape = data.image_shape
    rows = [
        as_images(
            np.vstack([data.X_test[q : q + 1], data.X_train[neighbours[q, :k]]]),
            shape,
        )
        for q in range(n_queries)
    ]
    fig, ax = plt.subplots(figsize=(1 + k, 1.1 * n_queries))
    ax.imshow(mosaic(rows), cmap="gray")
    ax.set_axis_off()
    ax.set_title("query | its nearest neighbours in autoencoder code space")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    main()
