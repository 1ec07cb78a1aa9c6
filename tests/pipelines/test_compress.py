import json

import keras
import numpy as np
import pytest

from tfopt.compression import inspect_tflite
from tfopt.pipelines import compress, load_data


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    """A small trained CNN on a synthetic 2-class image task, saved as .keras, with its data as .npz."""
    folder = tmp_path_factory.mktemp("compress")
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(600, 8, 8, 4)).astype("float32")  # 4 channels: 2:4 sparsity groups input channels
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype("int32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 4)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:500], y[:500], epochs=8, batch_size=32, verbose=0)
    model.save(folder / "model.keras")
    np.savez(folder / "data.npz", x_train=x[:500], y_train=y[:500], x_test=x[500:], y_test=y[500:])
    return folder


def test_prune_cluster_and_qat_write_a_sparse_int8_file_and_the_report(problem, tmp_path):
    out = tmp_path / "out"
    rows = compress(
        str(problem / "model.keras"),
        str(problem / "data.npz"),
        str(out),
        sparsity=0.6,
        clusters=8,
        quantize="int8",
        epochs=1,
    )
    assert [row["stage"] for row in rows] == [
        "original (.keras)",
        "original (.tflite float32)",
        "pruned 60% + 8 clusters + int8 QAT (.keras)",
        "pruned 60% + 8 clusters + int8 QAT (.tflite)",
    ]
    original, _, _, compressed = rows
    assert compressed["accuracy"] >= original["accuracy"] - 0.05
    assert compressed["sparsity"] > 0.5  # the zeros survived clustering, QAT and int8 conversion
    assert compressed["gzip_bytes"] < rows[1]["gzip_bytes"] / 6
    ops = [op for op in inspect_tflite(out / "compressed.tflite")["ops"] if op["op"] in ("CONV_2D", "FULLY_CONNECTED")]
    assert len(ops) == 3 and all(op["inputs"][1]["dtype"] == "int8" for op in ops)
    reloaded = keras.models.load_model(out / "compressed.keras")
    assert reloaded.count_params() > 0
    report = json.loads((out / "report.json").read_text())
    assert report["meta"]["sparsity"] == 0.6 and len(report["stages"]) == 4
    assert "| original (.keras) |" in (out / "report.md").read_text()


def test_structured_sparsity_and_float16(problem, tmp_path):
    rows = compress(
        str(problem / "model.keras"),
        str(problem / "data.npz"),
        str(tmp_path),
        structure="2:4",
        quantize="float16",
        epochs=1,
    )
    keras_row = rows[2]
    assert keras_row["stage"] == "structured 2:4 + float16 (.keras)"
    assert keras_row["sparsity"] == pytest.approx(0.5, abs=0.05)  # half of the kernels, biases dense


def test_missing_arrays_are_named(tmp_path):
    np.savez(tmp_path / "data.npz", x_train=np.zeros((2, 3)), y_train=np.zeros(2))
    with pytest.raises(
        ValueError,
        match="lacks the array\\(s\\) x_test, y_test; it needs x_train, y_train, x_test, "
        "y_test. Received arrays: x_train, y_train",
    ):
        load_data(tmp_path / "data.npz")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sparsity": 1.0}, "Argument `sparsity` must be a number in \\(0.0, 1.0\\). Received: sparsity=1.0"),
        (
            {"structure": "4:2"},
            "Argument `structure` must be 'N:M' with 0 < N < M, e.g. '2:4'. Received: structure='4:2'",
        ),
        (
            {"quantize": "int4"},
            "Argument `quantize` must be one of 'int8', 'float16', 'dynamic'. Received: quantize='int4'",
        ),
        ({"clusters": 1}, "Argument `clusters` must be an integer >= 2. Received: clusters=1"),
    ],
)
def test_rejects_bad_arguments(problem, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compress(str(problem / "model.keras"), str(problem / "data.npz"), str(tmp_path), **kwargs)
