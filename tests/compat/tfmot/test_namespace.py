"""tfopt.compat.tfmot: every tfmot name the guides use resolves to tfopt's own object (or to a function that renames
arguments for one), tfmot's argument conventions are translated, and every kind of model the namespace builds
round-trips `.keras` with identical predictions and optimizer state."""

import keras
import numpy as np
import pytest

import tfopt.compat.tfmot as tfmot
from tfopt import callbacks, compression, layers

NAMES = {
    "sparsity.keras": ["ConstantSparsity", "PolynomialDecay", "PrunableLayer", "PruningSchedule", "PruningSummaries",
                       "UpdatePruningStep", "prune_low_magnitude", "prune_scope", "strip_pruning"],
    "quantization.keras": ["QuantizeConfig", "QuantizeScheme", "QuantizeWrapper", "default_8bit",
                           "quantize_annotate_layer", "quantize_annotate_model", "quantize_apply", "quantize_model",
                           "quantize_scope", "quantizers"],
    "quantization.keras.quantizers": ["AllValuesQuantizer", "LastValueQuantizer", "MovingAverageQuantizer",
                                      "Quantizer"],
    "quantization.keras.default_8bit": ["Default8BitQuantizeConfig", "Default8BitQuantizeScheme"],
    "clustering.keras": ["CentroidInitialization", "cluster_scope", "cluster_weights", "strip_clustering"],
    "experimental.combine": ["Default8BitClusterPreserveQuantizeScheme", "Default8BitPrunePreserveQuantizeScheme"],
}

SAME_OBJECTS = {
    "sparsity.keras.ConstantSparsity": compression.ConstantSparsity,
    "sparsity.keras.PolynomialDecay": compression.PolynomialDecay,
    "sparsity.keras.PruningSchedule": compression.PruningSchedule,
    "sparsity.keras.PrunableLayer": layers.PrunableLayer,
    "sparsity.keras.UpdatePruningStep": callbacks.UpdatePruningStep,
    "sparsity.keras.PruningSummaries": callbacks.PruningSummaries,
    "sparsity.keras.strip_pruning": compression.strip_pruning,
    "quantization.keras.QuantizeConfig": layers.QuantizeConfig,
    "quantization.keras.QuantizeWrapper": layers.QuantizeWrapper,
    "quantization.keras.quantizers.Quantizer": layers.Quantizer,
    "quantization.keras.quantizers.LastValueQuantizer": layers.LastValueQuantizer,
    "quantization.keras.quantizers.MovingAverageQuantizer": layers.MovingAverageQuantizer,
    "quantization.keras.quantizers.AllValuesQuantizer": layers.AllValuesQuantizer,
    "quantization.keras.default_8bit.Default8BitQuantizeConfig": layers.Default8BitQuantizeConfig,
    "clustering.keras.strip_clustering": compression.strip_clustering,
}


def resolve(path):
    value = tfmot
    for part in path.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("module", list(NAMES))
def test_every_name_resolves_and_is_listed(module):
    namespace = resolve(module)
    for name in NAMES[module]:
        assert getattr(namespace, name) is not None
    assert sorted(namespace.__all__) == sorted(NAMES[module])


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("path", list(SAME_OBJECTS))
def test_classes_and_functions_are_tfopts_own(path):
    assert resolve(path) is SAME_OBJECTS[path]


@pytest.mark.backend_agnostic
def test_the_names_tfmot_itself_has():
    tfmot_original = pytest.importorskip("tensorflow_model_optimization")
    for module, names in NAMES.items():
        original = tfmot_original
        for part in module.split("."):
            original = getattr(original, part)
        missing = [n for n in names if not hasattr(original, n) and n != "Default8BitQuantizeConfig"]
        assert not missing, (module, missing)


def small_cnn():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((6, 6, 4)), keras.layers.Conv2D(8, 3, activation="relu", name="conv"),
                             keras.layers.Flatten(), keras.layers.Dense(4, name="head")])


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 6, 6, 4)).astype("float32"), rng.normal(size=(8, 4)).astype("float32")


@pytest.mark.backend_agnostic
def test_m_by_n_counts_zeros_as_tfmot_does():
    x, y = data()
    pruned = tfmot.sparsity.keras.prune_low_magnitude(
        small_cnn(), tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=1), sparsity_m_by_n=(1, 4))
    pruned.compile(keras.optimizers.SGD(0.01), "mse")
    pruned.fit(x, y, batch_size=8, verbose=0)
    kernel = keras.ops.convert_to_numpy(tfmot.sparsity.keras.strip_pruning(pruned).get_layer("head").kernel)
    groups = np.moveaxis(kernel, -2, -1).reshape(-1, 4)
    assert np.all(np.count_nonzero(groups == 0, axis=-1) == 1)  # 1 zero in every 4


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("kwargs, error, message", [
    ({"block_pooling_type": "MAX"}, ValueError, "Argument `block_pooling_type` must be 'AVG'"),
    ({"pruning_policy": object()}, ValueError, "Argument `pruning_policy` must be None"),
    ({"sparsity_m_by_n": 2}, ValueError, "Argument `sparsity_m_by_n` must be None or a pair (zeros, M)"),
    ({"unknown": 1}, TypeError, "unexpected keyword arguments: unknown"),
])
def test_prune_low_magnitude_rejects_what_tfopt_does_not_have(kwargs, error, message):
    with pytest.raises(error) as raised:
        tfmot.sparsity.keras.prune_low_magnitude(small_cnn(), **kwargs)
    assert message in str(raised.value)


@pytest.mark.backend_agnostic
def test_quantize_apply_rejects_an_unknown_scheme():
    annotated = tfmot.quantization.keras.quantize_annotate_model(small_cnn())
    with pytest.raises(TypeError, match="Argument `scheme` must be a tfmot quantize scheme"):
        tfmot.quantization.keras.quantize_apply(annotated, scheme="default")


def scheme_options(scheme):
    return scheme.quantize_apply_options()


@pytest.mark.backend_agnostic
def test_schemes_stand_for_quantize_apply_options():
    combine = tfmot.experimental.combine
    assert scheme_options(tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme()) == {
        "preserve_sparsity": "auto", "preserve_clusters": False}
    assert scheme_options(combine.Default8BitPrunePreserveQuantizeScheme()) == {
        "preserve_sparsity": True, "preserve_clusters": False}
    assert scheme_options(combine.Default8BitClusterPreserveQuantizeScheme()) == {
        "preserve_sparsity": "auto", "preserve_clusters": True}
    assert scheme_options(combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=False)) == {
        "preserve_sparsity": False, "preserve_clusters": True}


def pruned():
    return tfmot.sparsity.keras.prune_low_magnitude(
        small_cnn(), tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=1))


def clustered():
    return tfmot.clustering.keras.cluster_weights(small_cnn(), 4, tfmot.clustering.keras.CentroidInitialization.LINEAR)


def qat():
    return tfmot.quantization.keras.quantize_model(small_cnn())


def cqat():
    stripped = tfmot.clustering.keras.strip_clustering(clustered())
    return tfmot.quantization.keras.quantize_apply(
        tfmot.quantization.keras.quantize_annotate_model(stripped),
        tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme())


def custom_config():
    config = tfmot.quantization.keras.default_8bit.Default8BitQuantizeConfig(["kernel"], ["activation"], True)
    annotated = keras.models.clone_model(small_cnn(), clone_function=lambda layer: (
        tfmot.quantization.keras.quantize_annotate_layer(layer, config) if layer.name == "conv" else layer))
    return tfmot.quantization.keras.quantize_apply(annotated)


def annotated():
    return tfmot.quantization.keras.quantize_annotate_model(small_cnn())


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("build", [pruned, clustered, qat, cqat, custom_config, annotated])
def test_models_round_trip_keras_files_with_predictions_and_optimizer_state(build, tmp_path):
    x, y = data()
    model = build()
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    # and both continue identically
    for m in (model, loaded):
        m.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
