"""auto_layout_map: the Megatron rules read from the graph (in this process, any backend: a DeviceMesh of device
names needs no devices), and in a JAX process with 8 virtual CPU devices: the rebuilt, unnamed model really sharded
(bytes per device), training under a (2, 4) hybrid mesh equal to one device, and save/load of the sharded model."""

import warnings

import keras
import numpy as np
import pytest

from tests.strategies.jax_runner import run_scenario
from tfopt.strategies.auto_layout_map import auto_layout_map

MESH = keras.distribution.DeviceMesh((2, 4), ["batch", "model"], [f"cpu:{i}" for i in range(8)])


def axes_of(layout_map):
    return {k: tuple(layout_map[k].axes) for k in layout_map}


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return run_scenario("model_parallel", tmp_path_factory.mktemp("model_parallel"))


@pytest.mark.backend_agnostic
def test_dense_pairs_split_column_then_row():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, name="a"), keras.layers.Dense(8, name="b"),
                              keras.layers.Dense(4, name="c")])
    assert axes_of(auto_layout_map(model, MESH)) == {
        f"{model.name}/a/kernel": (None, "model"), f"{model.name}/a/bias": ("model",),
        f"{model.name}/b/kernel": ("model", None),  # b's bias stays replicated: the all-reduce output is whole
        f"{model.name}/c/kernel": (None, "model"), f"{model.name}/c/bias": ("model",),
    }


@pytest.mark.backend_agnostic
def test_attention_splits_by_heads_embedding_on_its_dimension_then_a_new_pair():
    tokens = keras.Input((4,), dtype="int32")
    h = keras.layers.Embedding(10, 16, name="emb")(tokens)
    h = keras.layers.MultiHeadAttention(4, 4, name="mha")(h, h)
    model = keras.Model(tokens, keras.layers.Dense(8, name="up")(keras.layers.Dense(32, name="ffn")(h)))
    assert axes_of(auto_layout_map(model, MESH)) == {
        "emb/embeddings": (None, "model"),
        **{f"mha/{p}/kernel": (None, "model", None) for p in ("query", "key", "value")},
        **{f"mha/{p}/bias": ("model", None) for p in ("query", "key", "value")},
        "mha/attention_output/kernel": ("model", None, None),
        "ffn/kernel": (None, "model"), "ffn/bias": ("model",), "up/kernel": ("model", None),
    }


@pytest.mark.backend_agnostic
def test_conv_kernels_split_on_output_channels_with_their_bias():
    model = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Conv2D(8, 3, name="c1"),
                              keras.layers.Conv2DTranspose(4, 3, name="t1")])
    assert axes_of(auto_layout_map(model, MESH)) == {
        f"{model.name}/c1/kernel": (None, None, None, "model"), f"{model.name}/c1/bias": ("model",),
        f"{model.name}/t1/kernel": (None, None, "model", None), f"{model.name}/t1/bias": ("model",),
    }


@pytest.mark.backend_agnostic
def test_an_indivisible_layer_stays_replicated_is_reported_and_the_next_starts_a_pair():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(10, name="narrow"),
                              keras.layers.Dense(16, name="next")])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layout_map = auto_layout_map(model, MESH)
    assert axes_of(layout_map) == {f"{model.name}/next/kernel": (None, "model"), f"{model.name}/next/bias": ("model",)}
    reason = "dimension 1 (10) is not divisible by the 'model' axis (4)"
    assert layout_map.replicated == {f"{model.name}/narrow/kernel": reason,
                                     f"{model.name}/narrow/bias": f"with its kernel: {reason}"}
    assert [str(w.message) for w in caught] == [
        f"auto_layout_map: these variables stay replicated: {model.name}/narrow/kernel: {reason}; "
        f"{model.name}/narrow/bias: with its kernel: {reason}"]


@pytest.mark.backend_agnostic
def test_heads_the_axis_does_not_divide_leave_the_attention_replicated():
    tokens = keras.Input((4, 8))
    model = keras.Model(tokens, keras.layers.MultiHeadAttention(3, 4, name="mha")(tokens, tokens))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layout_map = auto_layout_map(model, MESH)
    assert len(layout_map) == 0
    assert set(layout_map.replicated) == {v.path for v in model.weights}
    assert layout_map.replicated["mha/query/kernel"] == "3 heads are not divisible by the 'model' axis (4)"


@pytest.mark.backend_agnostic
def test_einsum_dense_pairs_split_output_then_input():
    x = keras.Input((4, 8))
    h = keras.layers.EinsumDense("abc,cd->abd", output_shape=(None, 16), bias_axes="d", name="e1")(x)
    model = keras.Model(x, keras.layers.EinsumDense("abd,de->abe", output_shape=(None, 8), bias_axes="e",
                                                    name="e2")(h))
    assert axes_of(auto_layout_map(model, MESH)) == {"e1/kernel": (None, "model"), "e1/bias": ("model",),
                                                     "e2/kernel": ("model", None)}


@pytest.mark.backend_agnostic
def test_a_lora_kernel_stays_replicated_with_the_reason():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, name="a")])
    model.get_layer("a").enable_lora(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layout_map = auto_layout_map(model, MESH)
    assert len(layout_map) == 0
    assert set(layout_map.replicated.values()) == {"the layer's kernel is not a plain variable (LoRA or quantized)"}
    assert len(layout_map.replicated) == 4  # kernel, bias, lora_kernel_a, lora_kernel_b


@pytest.mark.backend_agnostic
def test_bad_arguments_name_themselves():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16)])
    with pytest.raises(TypeError, match=r"^Argument `model` must be a built keras.Model. Received: model='m' of "
                                        r"type str$"):
        auto_layout_map("m", MESH)
    with pytest.raises(ValueError, match=r"^Argument `model` must be a built keras.Model with weights"):
        auto_layout_map(keras.Sequential([keras.layers.Dense(4)]), MESH)
    with pytest.raises(TypeError, match=r"^Argument `device_mesh` must be a keras.distribution.DeviceMesh. "
                                        r"Received: device_mesh=\(2, 4\) of type tuple$"):
        auto_layout_map(model, (2, 4))
    with pytest.raises(ValueError, match=r"^Argument `model_axis` must be one of 'batch', 'model'. Received: "
                                         r"model_axis='tensor'$"):
        auto_layout_map(model, MESH, model_axis="tensor")


# In the JAX process: get_distribution("model_parallel", model=build, mesh_shape=(2, 4)), then build() again inside
# the scope (new auto names) and fit.

MODELS = ("mlp", "attention", "cnn")


@pytest.mark.parametrize("name", MODELS)
def test_the_rebuilt_unnamed_model_is_really_sharded_by_position(result, name):
    assert result["devices"] == 8
    keys = result[f"{name}/layout_keys"]
    rebuilt = result[f"{name}/model_parallel"]["report"]["variables"]
    assert not set(keys) & {v["path"] for v in rebuilt}  # other auto names: exact keys alone would miss them all
    reference_order = result[f"{name}/single"]["paths"]  # same architecture, same variable order
    assert len(reference_order) == len(rebuilt)
    laid_out = [e for e in rebuilt if any(a is not None for a in e["axes"])]
    assert len(laid_out) == len(keys) > 0
    for entry in laid_out:
        assert entry["axes"].count("model") == 1
        assert entry["bytes_per_device"] * 4 == entry["total_bytes"]  # exactly 1/4 on the model axis of 4
    assert result[f"{name}/warnings"] == []


def test_the_rebuilt_mlp_has_the_expected_layout_per_layer(result):
    rebuilt = [e["axes"] for e in result["mlp/model_parallel"]["report"]["variables"]]
    assert rebuilt == [[None, "model"], ["model"], ["model", None], [None], [None, "model"],
                                      ["model"]]


@pytest.mark.parametrize("name", MODELS)
def test_hybrid_training_matches_one_device(result, name):
    single, parallel = result[f"{name}/single"], result[f"{name}/model_parallel"]
    np.testing.assert_allclose(parallel["losses"], single["losses"], rtol=1e-5)
    assert len(parallel["weights"]) == len(single["weights"])
    for a, b in zip(parallel["weights"], single["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_pure_model_parallelism_over_eight_devices_matches_one_device(result):
    single, parallel = result["mlp/single"], result["mlp/model_parallel_1x8"]
    assert parallel["report"]["mesh"] == {"batch": 1, "model": 8}
    kernels = [e for e in parallel["report"]["variables"] if e["path"].endswith("kernel")]
    assert [e["bytes_per_device"] * 8 for e in kernels] == [e["total_bytes"] for e in kernels]
    np.testing.assert_allclose(parallel["losses"], single["losses"], rtol=1e-5)
    for a, b in zip(parallel["weights"], single["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_a_sharded_model_saves_whole_and_loads_relaid_out(result):
    saved = result["saved"]
    assert saved["weights_diff"] == saved["plain_weights_diff"] == 0.0  # gathered on save, exact on load
    # Predictions: the same weights, summed in another order by the sharded matmuls.
    assert saved["plain_max_diff"] < 1e-5 and saved["sharded_max_diff"] < 1e-5
    assert saved["optimizer_diff"] == 0.0
    loaded = saved["report"]["variables"]
    assert [e["axes"] for e in loaded] == [e["axes"] for e in result["mlp/model_parallel"]["report"]["variables"]]


def test_the_report_says_which_variables_stay_replicated_and_why(result):
    narrow = result["narrow"]
    table = narrow["table"].splitlines()
    kernel_row = next(line for line in table if "/kernel" in line and "(16, 10)" in line)
    assert "replicated (dimension 1 (10) is not divisible by the 'model' axis (4))" in kernel_row
    entries = narrow["report"]["variables"]
    assert [e["axes"] for e in entries] == [[None, None], [None], [None, "model"], ["model"]]
    assert len(narrow["warnings"]) == 1
