"""ONNX export of the encoder and the decoder, and whole Pipelines through skl2onnx."""

import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from sk_convae import ConvAutoEncoderTransformer, register_onnx_converter
from tests.conftest import FAST

ort = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")
onnx = pytest.importorskip("onnx")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# what the issue asks of float32 models: codes and images within 1e-4
ATOL = 1e-4


def _run(model, X):
    session = ort.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {session.get_inputs()[0].name: X})


@pytest.fixture(scope="module")
def digits_split(digits):
    X, y = digits
    return train_test_split(X, y, test_size=0.25, random_state=0)


@pytest.fixture(scope="module")
def digits_ae(digits_split):
    """A model of the 8x8 digits (float64 in 0..16: binary cross-entropy)."""
    X_train = digits_split[0]
    return ConvAutoEncoderTransformer(n_components=8, **FAST).fit(X_train)


def _check_halves(ae, X, dtype):
    """Encoder and decoder of ``ae`` against transform and inverse_transform."""
    X = X.astype(dtype)
    codes = ae.transform(X)
    (onnx_codes,) = _run(ae.to_onnx("encoder", dtype=dtype), X)
    assert onnx_codes.dtype == np.float32 and onnx_codes.shape == codes.shape
    assert_allclose(onnx_codes, codes, rtol=0, atol=ATOL)
    (images,) = _run(ae.to_onnx("decoder"), codes)
    assert images.dtype == np.float32
    assert_allclose(images, ae.inverse_transform(codes), rtol=0, atol=ATOL)


def test_encoder_and_decoder_match_transform_on_the_digits(digits_ae, digits_split):
    _check_halves(digits_ae, digits_split[1], np.float64)


def test_the_batch_axis_is_dynamic(digits_ae, digits_split):
    X = digits_split[1]
    model = digits_ae.to_onnx(dtype="float64")
    (dims,) = [i.type.tensor_type.shape.dim for i in model.graph.input]
    assert dims[0].dim_param and dims[1].dim_value == 64
    for n_rows in (1, 3, 257):
        (codes,) = _run(model, X[:n_rows])
        assert_allclose(codes, digits_ae.transform(X[:n_rows]), rtol=0, atol=ATOL)


def test_standardised_data_and_the_conv_architecture(digits_split):
    X_train, X_test = digits_split[0], digits_split[1]
    mean, std = X_train.mean(), X_train.std()
    # negative values: squared error, no sigmoid, offset and scale both used
    ae = ConvAutoEncoderTransformer(
        n_components=32, architecture="conv", channels=(4, 8), **FAST
    ).fit((X_train - mean) / std)
    assert ae.loss_ == "mse" and ae.data_offset_ != 0
    _check_halves(ae, (X_test - mean) / std, np.float32)


@pytest.mark.skipif(
    not (SHARED_DATA / "mnist").is_dir(), reason="needs ../shared/data/mnist"
)
def test_uint8_mnist_images_in_codes_and_images_out():
    from sk_convae.datasets import fetch_mnist

    X = fetch_mnist(SHARED_DATA, subset="test").data
    assert X.dtype == np.uint8
    ae = ConvAutoEncoderTransformer(
        n_components=16, channels=(8, 16, 32), max_epochs=1, random_state=0
    ).fit(X[:3000])
    # images on the 0..255 scale, as inverse_transform answers (measured: 2e-5)
    _check_halves(ae, X[3000:4000], np.uint8)
    # rows as float, on the same 0..255 scale, give the same codes
    (codes,) = _run(ae.to_onnx(dtype="float32"), X[3000:3100].astype(np.float32))
    assert_allclose(codes, ae.transform(X[3000:3100]), rtol=0, atol=ATOL)


def test_the_model_describes_itself_and_leaves_the_network_as_it_was(digits_ae):
    state = {k: v.clone() for k, v in digits_ae.net_.module_.state_dict().items()}
    model = digits_ae.to_onnx("decoder", target_opset=19)
    onnx.checker.check_model(model)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 19)]
    assert model.producer_name == "sk-convae"
    assert [i.name for i in model.graph.input] == ["codes"]
    assert [o.name for o in model.graph.output] == ["X"]
    after = digits_ae.net_.module_.state_dict()
    assert all(after[k].equal(v) for k, v in state.items())
    assert not digits_ae.net_.module_.training


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(part="middle"), "part must be 'encoder' or 'decoder'"),
        (dict(dtype="bool"), "The encoder takes numeric rows"),
        (dict(part="decoder", dtype="int32"), "The decoder takes codes as float32"),
        (dict(target_opset=13), "target_opset must be an int of at least 18"),
    ],
)
def test_bad_arguments_are_errors(digits_ae, kwargs, match):
    with pytest.raises(ValueError, match=match):
        digits_ae.to_onnx(**kwargs)


def test_export_needs_the_onnx_extra(digits_ae, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'sk-convae\[onnx\]'"):
        digits_ae.to_onnx()
    monkeypatch.setitem(sys.modules, "skl2onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'sk-convae\[onnx\]'"):
        register_onnx_converter()


# ----------------------------------------------------------------------------------
# Whole Pipelines through skl2onnx


def _classifier_pipeline(ae, classifier, X_train, y_train):
    """A Pipeline of the fitted ``ae`` and ``classifier`` fitted on its codes."""
    return Pipeline(
        [("ae", ae), ("clf", classifier.fit(ae.transform(X_train), y_train))]
    )


def test_a_pipeline_with_logistic_regression_converts(digits_ae, digits_split):
    X_train, X_test, y_train, _ = digits_split
    clf = LogisticRegression(max_iter=2000)
    pipe = _classifier_pipeline(digits_ae, clf, X_train, y_train)
    register_onnx_converter()
    register_onnx_converter()  # twice is harmless
    model = skl2onnx.to_onnx(pipe, X_train[:1], options={id(clf): {"zipmap": False}})
    labels, probabilities = _run(model, X_test)
    assert_array_equal(labels, pipe.predict(X_test))
    assert_allclose(probabilities, pipe.predict_proba(X_test), rtol=0, atol=ATOL)


def test_a_float32_pipeline_converts_at_the_opset_asked_for(digits_ae, digits_split):
    X_train, X_test, y_train, _ = digits_split
    clf = LogisticRegression(max_iter=2000)
    pipe = _classifier_pipeline(digits_ae, clf, X_train, y_train)
    register_onnx_converter()
    X32 = X_test.astype(np.float32)
    model = skl2onnx.to_onnx(
        pipe,
        X32[:1],
        target_opset={"": 18, "ai.onnx.ml": 3},
        options={id(clf): {"zipmap": False}},
    )
    assert dict((o.domain, o.version) for o in model.opset_import)[""] == 18
    labels, probabilities = _run(model, X32)
    assert_array_equal(labels, pipe.predict(X32))
    assert_allclose(probabilities, pipe.predict_proba(X32), rtol=0, atol=ATOL)
    with pytest.raises(ValueError, match="target_opset must be an int of at least"):
        skl2onnx.to_onnx(pipe, X32[:1], target_opset=15)


def test_pipelines_with_knn_and_kmeans_convert(digits_ae, digits_split):
    from sklearn.cluster import KMeans
    from sklearn.neighbors import KNeighborsClassifier

    X_train, X_test, y_train, _ = digits_split
    register_onnx_converter()
    knn = _classifier_pipeline(digits_ae, KNeighborsClassifier(), X_train, y_train)
    labels, probabilities = _run(
        skl2onnx.to_onnx(knn, X_train[:1], options={id(knn["clf"]): {"zipmap": False}}),
        X_test,
    )
    assert_array_equal(labels, knn.predict(X_test))
    assert_allclose(probabilities, knn.predict_proba(X_test), rtol=0, atol=ATOL)

    kmeans = KMeans(n_clusters=10, n_init=2, random_state=0)
    clusters = Pipeline([("ae", digits_ae), ("kmeans", kmeans)])
    kmeans.fit(digits_ae.transform(X_train))
    labels, distances = _run(skl2onnx.to_onnx(clusters, X_train[:1]), X_test)
    assert_array_equal(labels, clusters.predict(X_test))
    assert_allclose(distances, clusters.transform(X_test), rtol=1e-5, atol=ATOL)


# ----------------------------------------------------------------------------------
# The README's section and the example


def test_readme_saving_and_deploying_runs(digits, tmp_path, monkeypatch):
    import re

    from sklearn.neighbors import KNeighborsClassifier

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Saving and deploying")[1].split("\n## ")[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 3
    X, y = digits
    pipe = Pipeline(
        [
            ("ae", ConvAutoEncoderTransformer(n_components=8, **FAST)),
            ("knn", KNeighborsClassifier()),
        ]
    ).fit(X, y)
    monkeypatch.chdir(tmp_path)
    namespace = {"pipe": pipe, "X": X}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert_array_equal(namespace["labels"], pipe.predict(X))
    assert_allclose(namespace["probabilities"], pipe.predict_proba(X), atol=ATOL)
    assert_array_equal(namespace["ae"].transform(X), pipe["ae"].transform(X))
    assert {p.name for p in tmp_path.iterdir()} == {
        "ae.safetensors",
        "encoder.onnx",
        "decoder.onnx",
        "pipeline.onnx",
    }


def test_deploy_example_agrees_with_the_pipeline_and_times_both(tmp_path):
    import runpy

    example = Path(__file__).resolve().parents[1] / "examples" / "deploy_onnx.py"
    main = runpy.run_path(str(example), run_name="example")["main"]
    result = main(
        ["--max-epochs", "2", "--n-test", "60", "--budget", "0", "--out", str(tmp_path)]
    )
    assert result["same_labels"] == result["n_test"] == 60
    assert result["max_difference"] <= ATOL
    assert (tmp_path / "pipeline.onnx").exists()
    loaded = ConvAutoEncoderTransformer.load(tmp_path / "ae.safetensors")
    assert loaded.n_components_ == 16
    rates = result["rows_per_second"]
    assert set(rates) == {"Pipeline (PyTorch)", "ONNX Runtime"}
    assert all(r > 0 for engine in rates.values() for r in engine.values())
