"""ONNX export of the encoder and the decoder, and whole Pipelines through skl2onnx."""

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

import sk_convae._onnx
from sk_convae import ConvAutoEncoderTransformer, register_onnx_converter
from sk_convae._onnx import ScaledDecoder, ScaledEncoder
from tests.conftest import DATA_HOME, FAST, needs_mnist

ort = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")
onnx = pytest.importorskip("onnx")

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
    encoder = digits_ae.to_onnx(dtype="float64")
    decoder = digits_ae.to_onnx("decoder")
    for model, width in ((encoder, 64), (decoder, 8)):
        (dims,) = [i.type.tensor_type.shape.dim for i in model.graph.input]
        assert dims[0].dim_param and dims[1].dim_value == width
    for n_rows in (1, 3, 257):
        (codes,) = _run(encoder, X[:n_rows])
        assert_allclose(codes, digits_ae.transform(X[:n_rows]), rtol=0, atol=ATOL)
        (images,) = _run(decoder, codes)
        assert images.shape == (n_rows, 64)
        assert_allclose(images, digits_ae.inverse_transform(codes), rtol=0, atol=ATOL)


def test_standardised_data_and_the_conv_architecture(digits_split):
    X_train, X_test = digits_split[0], digits_split[1]
    mean, std = X_train.mean(), X_train.std()
    # negative values: squared error, no sigmoid, offset and scale both used
    ae = ConvAutoEncoderTransformer(
        n_components=32, architecture="conv", channels=(4, 8), **FAST
    ).fit((X_train - mean) / std)
    assert ae.loss_ == "mse" and ae.data_offset_ != 0
    _check_halves(ae, (X_test - mean) / std, np.float32)


@pytest.fixture(scope="module")
def uint8_ae(mnist_like):
    """A model of synthetic 28x28 uint8 images (0..255: offset 0, scale 255)."""
    return ConvAutoEncoderTransformer(
        n_components=4, channels=(4, 8), max_epochs=1, random_state=0
    ).fit(mnist_like[:150])


def test_a_uint8_encoder_takes_raw_pixels(uint8_ae, mnist_like):
    X = mnist_like[150:]
    model = uint8_ae.to_onnx("encoder", dtype="uint8")
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    (codes,) = _run(model, X)
    assert codes.dtype == np.float32
    assert_allclose(codes, uint8_ae.transform(X), rtol=0, atol=ATOL)
    # the same pixels as float32 rows, on the same 0..255 scale: the same codes
    (codes32,) = _run(uint8_ae.to_onnx(dtype="float32"), X.astype(np.float32))
    assert_allclose(codes32, codes, rtol=0, atol=ATOL)


def test_a_uint8_pipeline_converts(uint8_ae, mnist_like):
    X_train, X_test = mnist_like[:150], mnist_like[150:]
    # labels: whether the blob of light is in the left half of the image
    columns = mnist_like.reshape(-1, 28, 28).sum(axis=1, dtype=np.float64)
    left = (columns * np.arange(28)).sum(axis=1) / columns.sum(axis=1) < 14
    clf = LogisticRegression(max_iter=2000)
    pipe = _classifier_pipeline(uint8_ae, clf, X_train, left[:150])
    register_onnx_converter()
    model = skl2onnx.to_onnx(pipe, X_train[:1], options={id(clf): {"zipmap": False}})
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    labels, probabilities = _run(model, X_test)
    assert_array_equal(labels, pipe.predict(X_test))
    assert_allclose(probabilities, pipe.predict_proba(X_test), rtol=0, atol=ATOL)


def _input_type(model):
    return model.graph.input[0].type.tensor_type.elem_type


def test_the_default_dtype_is_the_one_fit_saw(uint8_ae):
    ae = copy.deepcopy(uint8_ae)
    ae._input_dtype = "|u1"  # what fit records
    assert _input_type(ae.to_onnx()) == onnx.TensorProto.UINT8
    ae._input_dtype = ">f8"  # big-endian rows: the same ONNX type
    assert _input_type(ae.to_onnx()) == onnx.TensorProto.DOUBLE
    ae._input_dtype = "|b1"  # not one the encoder takes: float32
    assert _input_type(ae.to_onnx()) == onnx.TensorProto.FLOAT
    del ae._input_dtype  # a model that did not record it: float32
    assert _input_type(ae.to_onnx()) == onnx.TensorProto.FLOAT
    ae._input_dtype = "|u1"  # the decoder takes codes: float32
    assert _input_type(ae.to_onnx("decoder")) == onnx.TensorProto.FLOAT


@needs_mnist
def test_uint8_mnist_images_in_codes_and_images_out():
    from sk_convae.datasets import fetch_mnist

    X = fetch_mnist(DATA_HOME, subset="test", download_if_missing=False).data
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
        (dict(dtype="longdouble"), "The encoder takes numeric rows"),
        (dict(dtype="no such type"), "is not a NumPy dtype"),
        (dict(target_opset=13), "target_opset must be an int of at least 18"),
    ],
)
def test_bad_arguments_are_errors(digits_ae, kwargs, match):
    with pytest.raises(ValueError, match=match):
        digits_ae.to_onnx(**kwargs)


def test_the_wrappers_take_their_settings_by_keyword(digits_ae):
    module = digits_ae.net_.module_
    with pytest.raises(TypeError):
        ScaledEncoder(module, 0.0, 1.0, np.dtype("float32"))
    with pytest.raises(TypeError):
        ScaledDecoder(module, 0.0, 1.0, False)


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


def test_the_converter_refuses_graphs_with_subgraphs(
    digits_ae, digits_split, monkeypatch
):
    # an encoder whose export has control flow (If, Loop, Scan): the converter
    # renames the main graph's names only, so it must refuse, not mis-wire
    from onnx import helper

    def branch(name):
        out = helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        return helper.make_graph(
            [helper.make_node("Identity", ["codes0"], [name])], name, [], [out]
        )

    def exported(estimator, part, *, dtype, target_opset):
        X = helper.make_tensor_value_info("X", onnx.TensorProto.DOUBLE, ["N", 64])
        codes = helper.make_tensor_value_info("codes", onnx.TensorProto.FLOAT, ["N", 8])
        nodes = [
            helper.make_node("Cast", ["X"], ["x32"], to=onnx.TensorProto.FLOAT),
            helper.make_node("Slice", ["x32", "s", "e", "a"], ["codes0"]),
            helper.make_node("ReduceMin", ["x32"], ["low"], keepdims=0),
            helper.make_node("Less", ["low", "zero"], ["negative"]),
            helper.make_node(
                "If",
                ["negative"],
                ["codes"],
                then_branch=branch("then"),
                else_branch=branch("else"),
            ),
        ]
        initializers = [
            helper.make_tensor("s", onnx.TensorProto.INT64, [1], [0]),
            helper.make_tensor("e", onnx.TensorProto.INT64, [1], [8]),
            helper.make_tensor("a", onnx.TensorProto.INT64, [1], [1]),
            helper.make_tensor("zero", onnx.TensorProto.FLOAT, [], [0.0]),
        ]
        graph = helper.make_graph(nodes, "enc", [X], [codes], initializers)
        return helper.make_model(graph)

    X_train, _, y_train, _ = digits_split
    clf = LogisticRegression(max_iter=2000)
    pipe = _classifier_pipeline(digits_ae, clf, X_train, y_train)
    register_onnx_converter()
    monkeypatch.setattr(sk_convae._onnx, "to_onnx", exported)
    with pytest.raises(RuntimeError, match="If node .* with a subgraph"):
        skl2onnx.to_onnx(pipe, X_train[:1], options={id(clf): {"zipmap": False}})


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
# The user guide's page on saving, and the example


def test_saving_and_deploying_page_runs(digits, tmp_path, monkeypatch):
    """Every python block of docs/user_guide/saving.md, in order, on a Pipeline."""
    import re

    from sklearn.neighbors import KNeighborsClassifier

    page = Path(__file__).resolve().parents[1] / "docs" / "user_guide" / "saving.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    assert len(blocks) == 6
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
        exec(compile(block, "saving.md", "exec"), namespace)
    assert_array_equal(namespace["labels"], pipe.predict(X))
    assert_allclose(namespace["probabilities"], pipe.predict_proba(X), atol=ATOL)
    assert_allclose(namespace["codes"], pipe["ae"].transform(X), atol=ATOL)
    assert_array_equal(namespace["ae"].transform(X), pipe["ae"].transform(X))
    assert {p.name for p in tmp_path.iterdir()} == {
        "pipeline.joblib",
        "ae.safetensors",
        "encoder.onnx",
        "decoder.onnx",
        "pipeline.onnx",
    }


def test_deploy_example_agrees_with_the_pipeline_and_times_both(tmp_path, monkeypatch):
    import runpy

    example = Path(__file__).resolve().parents[1] / "examples" / "plot_deploy_onnx.py"
    argv = ["--max-epochs", "2", "--n-test", "60", "--budget", "0"]
    monkeypatch.setattr("sys.argv", [example.name, *argv, "--out", str(tmp_path)])
    monkeypatch.setenv("MPLBACKEND", "Agg")
    result = runpy.run_path(str(example), run_name="__main__")
    assert result["same_labels"] == len(result["X_test"]) == 60
    assert result["max_difference"] <= ATOL
    assert (tmp_path / "pipeline.onnx").exists()
    loaded = ConvAutoEncoderTransformer.load(tmp_path / "ae.safetensors")
    assert loaded.n_components_ == 16
    rates = result["speed"]
    assert set(rates) == {"Pipeline (PyTorch)", "ONNX Runtime"}
    assert all(r > 0 for engine in rates.values() for r in engine.values())
