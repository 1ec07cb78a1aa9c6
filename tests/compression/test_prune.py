"""prune_low_magnitude, strip_pruning and sparsity_report on Keras 3 models: every supported layer type and every
structure gives its exact sparsity after strip; masks hold through optimizer updates; the step follows training;
save/load and BackupAndRestore resume; every bad input."""

import os

import keras
import numpy as np
import pytest
from keras import ops

from tfopt.callbacks import UpdatePruningStep
from tfopt.compression import (
    ConstantSparsity,
    PolynomialDecay,
    prune_low_magnitude,
    sparsity_report,
    strip_pruning,
)
from tfopt.layers import PruneLowMagnitude

pytestmark = pytest.mark.backend_agnostic

# name -> (layer factory, input shape, dtype)
LAYERS = {
    "dense": (lambda: keras.layers.Dense(8), (8,), "float32"),
    "einsum_dense": (lambda: keras.layers.EinsumDense("ab,bc->ac", output_shape=8), (8,), "float32"),
    "conv1d": (lambda: keras.layers.Conv1D(8, 3), (6, 4), "float32"),
    "conv2d": (lambda: keras.layers.Conv2D(8, 3), (6, 6, 4), "float32"),
    "conv3d": (lambda: keras.layers.Conv3D(8, 2), (3, 3, 3, 4), "float32"),
    "conv2d_transpose": (lambda: keras.layers.Conv2DTranspose(4, 3), (4, 4, 8), "float32"),
    "depthwise_conv2d": (lambda: keras.layers.DepthwiseConv2D(3, depth_multiplier=2), (6, 6, 4), "float32"),
    "separable_conv2d": (lambda: keras.layers.SeparableConv2D(8, 3, depth_multiplier=2), (6, 6, 4), "float32"),
    "embedding": (lambda: keras.layers.Embedding(16, 8), (5,), "int32"),
}
# The axis N:M groups along, per layer (the input channels).
N_M_AXIS = {"conv2d_transpose": -1, "einsum_dense": 0}


def all_layers_model():
    """One branch per supported layer type, so that one `fit` exercises all of them."""
    keras.utils.set_random_seed(1)
    inputs, outputs = [], []
    for name, (make, shape, dtype) in LAYERS.items():
        x = keras.Input(shape, dtype=dtype, name=f"in_{name}")
        layer = make()
        layer.name  # noqa: B018 - the name is set at construction
        inputs.append(x)
        outputs.append(keras.layers.Flatten()(layer(x)))
    out = keras.layers.Dense(2, name="head")(keras.layers.Concatenate()(outputs))
    return keras.Model(inputs, out)


def all_layers_data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    xs = []
    for _, (_, shape, dtype) in LAYERS.items():
        if dtype == "int32":
            xs.append(rng.integers(0, 16, (n, *shape)).astype("int32"))
        else:
            xs.append(rng.normal(size=(n, *shape)).astype("float32"))
    return xs, rng.normal(size=(n, 2)).astype("float32")


def pruned_weights_by_layer(stripped):
    """{layer type name: [weights as numpy]} of the stripped all-layers model."""
    found = {}
    for layer in stripped.layers:
        for name, (make, _, _) in LAYERS.items():
            if type(layer) is type(make()) and layer.name != "head":
                if isinstance(layer, keras.layers.SeparableConv2D):
                    found[name] = [layer.depthwise_kernel, layer.pointwise_kernel]
                elif isinstance(layer, keras.layers.Embedding):
                    found[name] = [layer.embeddings]
                else:
                    found[name] = [layer.kernel]
    return {k: [ops.convert_to_numpy(w) for w in v] for k, v in found.items()}


def train_pruned(model, steps=2, **kwargs):
    x, y = all_layers_data()
    pruned = prune_low_magnitude(model, **kwargs)
    pruned.compile(keras.optimizers.SGD(1e-3), "mse")
    pruned.fit(x, y, batch_size=len(y) // steps, epochs=1, shuffle=False, verbose=0)
    return pruned, x


@pytest.fixture(scope="module")
def unstructured():
    pruned, x = train_pruned(all_layers_model(), pruning_schedule=ConstantSparsity(0.75, 1, frequency=1))
    return pruned, strip_pruning(pruned), x


def test_every_layer_type_is_wrapped(unstructured):
    pruned, _, _ = unstructured
    wrapped = {type(layer.layer).__name__ for layer in pruned.layers if isinstance(layer, PruneLowMagnitude)}
    assert wrapped == {type(make()).__name__ for make, _, _ in LAYERS.values()} | {"Dense"}


def test_unstructured_sparsity_is_exact_for_every_layer_type(unstructured):
    _, stripped, _ = unstructured
    found = pruned_weights_by_layer(stripped)
    assert sorted(found) == sorted(LAYERS)
    for name, weights in found.items():
        for w in weights:
            kept = max(round(w.size * 0.25), 1)
            assert np.count_nonzero(w) == kept, (name, w.shape)


def test_strip_gives_plain_layers_and_identical_predictions(unstructured):
    pruned, stripped, x = unstructured
    assert not any(isinstance(layer, PruneLowMagnitude) for layer in stripped.layers)
    np.testing.assert_allclose(stripped.predict(x, verbose=0), pruned.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


def test_sparsity_report_counts_every_pruned_weight(unstructured):
    pruned, stripped, _ = unstructured
    report, report_stripped = sparsity_report(pruned), sparsity_report(stripped)
    assert len(report["layers"]) == 11  # 9 layers, SeparableConv2D twice, and the head
    for row in report["layers"]:
        assert row["nonzero"] == max(round(row["size"] * 0.25), 1), row
        assert row["threshold"] > 0
    assert report["total"]["nonzero"] == report_stripped["total"]["nonzero"]
    assert all(row["threshold"] is None for row in report_stripped["layers"])
    total = report["total"]
    assert report_stripped["total"]["sparsity"] == pytest.approx(1 - total["nonzero"] / total["size"])


def test_block_sparsity_prunes_whole_blocks_exactly():
    pruned, _ = train_pruned(all_layers_model(), pruning_schedule=ConstantSparsity(0.5, 1, frequency=1),
                             block_size=(2, 2))
    for name, weights in pruned_weights_by_layer(strip_pruning(pruned)).items():
        for w in weights:
            lead, rows, cols = w.shape[:-2], w.shape[-2], w.shape[-1]
            blocks = w.reshape(*lead, rows // 2, 2, cols // 2, 2)
            nonzero_per_block = np.count_nonzero(blocks, axis=(-3, -1))
            assert set(np.unique(nonzero_per_block)) <= {0, 4}, name
            n_blocks = nonzero_per_block.size
            assert np.count_nonzero(nonzero_per_block) == max(round(n_blocks * 0.5), 1), name


def test_two_four_sparsity_holds_in_every_group_for_every_layer_type():
    pruned, x = train_pruned(all_layers_model(), pruning_schedule=ConstantSparsity(0.5, 1, frequency=1),
                             sparsity_m_by_n=(2, 4))
    stripped = strip_pruning(pruned)
    for name, weights in pruned_weights_by_layer(stripped).items():
        for w in weights:
            axis = N_M_AXIS.get(name, -2)
            groups = np.moveaxis(w, axis, -1)
            groups = groups.reshape(*groups.shape[:-1], groups.shape[-1] // 4, 4)
            per_group = np.count_nonzero(groups, axis=-1)
            assert per_group.max() <= 2, name
            assert np.all(per_group == 2), name  # random weights: exactly 2 of every 4 survive
    np.testing.assert_allclose(stripped.predict(x, verbose=0), pruned.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


def cnn_on_channels(channels):
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((8, 8, channels)),
        keras.layers.Conv2D(8, 3, name="first_conv"),
        keras.layers.Conv2D(8, 3, name="second_conv"),
        keras.layers.Flatten(),
        keras.layers.Dense(4, name="head"),
    ])


@pytest.mark.parametrize("channels", [1, 3])
def test_whole_model_n_m_leaves_layers_m_does_not_divide_dense_with_one_warning(channels):
    with pytest.warns(UserWarning) as record:
        pruned = prune_low_magnitude(cnn_on_channels(channels), ConstantSparsity(0.5, 1, frequency=1),
                                     sparsity_m_by_n=(2, 4))
    messages = [str(w.message) for w in record if "sparsity_m_by_n" in str(w.message)]
    assert len(messages) == 1
    assert "'first_conv' (Conv2D)" in messages[0] and "second_conv" not in messages[0]
    assert [type(layer).__name__ for layer in pruned.layers] == ["Conv2D", "PruneLowMagnitude", "Flatten",
                                                                 "PruneLowMagnitude"]
    x = np.random.default_rng(0).normal(size=(8, 8, 8, channels)).astype("float32")
    pruned.compile(keras.optimizers.SGD(0.01), "mse")
    pruned.fit(x, np.zeros((8, 4)), batch_size=4, epochs=1, verbose=0)
    stripped = strip_pruning(pruned)
    assert np.count_nonzero(ops.convert_to_numpy(stripped.get_layer("first_conv").kernel) == 0) == 0
    for name in ("second_conv", "head"):
        kernel = ops.convert_to_numpy(stripped.get_layer(name).kernel)
        groups = np.moveaxis(kernel, -2, -1)
        groups = groups.reshape(*groups.shape[:-1], groups.shape[-1] // 4, 4)
        assert np.all(np.count_nonzero(groups, axis=-1) == 2), name


def test_whole_model_n_m_without_a_misfit_does_not_warn(recwarn):
    prune_low_magnitude(cnn_on_channels(4), ConstantSparsity(0.5, 1, frequency=1), sparsity_m_by_n=(2, 4))
    assert not [w for w in recwarn if "sparsity_m_by_n" in str(w.message)]


def test_wrapping_a_layer_m_does_not_divide_stays_an_error():
    layer = prune_low_magnitude(keras.layers.Conv2D(8, 3), ConstantSparsity(0.5, 1, frequency=1),
                                sparsity_m_by_n=(2, 4))
    with pytest.raises(ValueError, match=r"Argument `sparsity_m_by_n` must have an M that divides the input "
                                         r"channels \(3, axis -2\)"):
        keras.Sequential([keras.Input((8, 8, 3)), layer])


def test_one_to_four_keeps_the_largest_magnitude():
    layer = prune_low_magnitude(keras.layers.Dense(3), ConstantSparsity(0.5, 1, frequency=1), sparsity_m_by_n=(1, 4))
    model = keras.Sequential([keras.Input((8,)), layer])
    kernel = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    layer.layer.kernel.assign(kernel)
    model.compile(keras.optimizers.SGD(0.0), "mse")
    model.fit(np.ones((2, 8)), np.ones((2, 3)), batch_size=2, verbose=0)
    stripped = ops.convert_to_numpy(strip_pruning(model).layers[0].kernel)
    for group in range(2):
        rows = slice(4 * group, 4 * group + 4)
        expected = np.zeros((4, 3), "float32")
        best = np.argmax(np.abs(kernel[rows]), axis=0)
        expected[best, np.arange(3)] = kernel[rows][best, np.arange(3)]
        np.testing.assert_array_equal(stripped[rows], expected)


def test_global_scope_shares_one_threshold_and_hits_the_total_sparsity():
    pruned, _ = train_pruned(all_layers_model(), pruning_schedule=ConstantSparsity(0.8, 1, frequency=1),
                             pruning_scope="global")
    report = sparsity_report(pruned)
    shared = max(row["threshold"] for row in report["layers"])
    at_floor = [row for row in report["layers"] if row["threshold"] != shared]
    # The embedding's and the wide head's small initial weights would all fall below the shared threshold: each
    # keeps its 1% floor.
    wrapped = {layer.name: type(layer.layer).__name__ for layer in pruned.layers
               if isinstance(layer, PruneLowMagnitude)}
    assert sorted(wrapped[row["layer"]] for row in at_floor) == ["Dense", "Embedding"]  # the head and the embedding
    for row in at_floor:
        assert row["threshold"] < shared
        assert row["nonzero"] == max(round(0.01 * row["size"]), 1)
    total = report["total"]
    assert total["nonzero"] - sum(row["nonzero"] for row in at_floor) == round(total["size"] * 0.2)
    sparsities = [row["sparsity"] for row in report["layers"]]
    assert max(sparsities) - min(sparsities) > 0.1  # layers differ: the threshold is shared, not the sparsity


def test_global_threshold_equals_numpy_over_all_initial_weights():
    model = all_layers_model()
    initial = [ops.convert_to_numpy(w) for layer in model.layers if layer.name != "head"
               for w in layer.weights if len(w.shape) >= 2]
    head = ops.convert_to_numpy(model.get_layer("head").kernel)
    scores = np.sort(np.abs(np.concatenate([w.ravel() for w in initial + [head]])))
    keep = max(round(scores.size * 0.3), 1)
    pruned = prune_low_magnitude(model, ConstantSparsity(0.7, 1, frequency=1), pruning_scope="global")
    pruned.compile(keras.optimizers.SGD(0.0), "mse")
    x, y = all_layers_data()
    pruned.fit(x, y, batch_size=8, verbose=0)
    threshold = sparsity_report(pruned)["layers"][0]["threshold"]
    assert threshold == pytest.approx(float(scores[scores.size - keep]), rel=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# Training: the step, the masks through optimizer updates.


def small_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((12,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(4)])


def small_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12)).astype("float32")
    return x, (x[:, :4] * 2 + 0.1).astype("float32")


class MaskRecorder(keras.callbacks.Callback):
    """After every batch: the sparsity of each wrapper's effective weights, its masks, and the step."""

    def __init__(self):
        super().__init__()
        self.sparsity, self.masks, self.steps, self.effective = [], [], [], []

    def on_train_batch_end(self, batch, logs=None):
        wrappers = [layer for layer in self.model.layers if isinstance(layer, PruneLowMagnitude)]
        self.steps.append(int(ops.convert_to_numpy(wrappers[0].pruning_step)))
        self.masks.append([ops.convert_to_numpy(w.masks[0]) for w in wrappers])
        self.effective.append([ops.convert_to_numpy(w.masked_weights()[0]) for w in wrappers])
        self.sparsity.append([1 - np.count_nonzero(e) / e.size for e in self.effective[-1]])


def test_masks_update_exactly_at_the_schedule_steps():
    schedule = PolynomialDecay(0.0, 0.75, begin_step=2, end_step=14, power=3, frequency=3)
    model = prune_low_magnitude(small_model(), schedule)
    model.compile(keras.optimizers.Adam(0.01), "mse")
    recorder = MaskRecorder()
    x, y = small_data()
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[recorder])
    assert recorder.steps == list(range(1, 17))
    # Expected sparsity after step t: the schedule's at the last pruning step <= t (2, 5, 8, 11, 14).
    expected, current = [], 0.0
    for t in range(1, 17):
        if t >= 2 and t <= 14 and (t - 2) % 3 == 0:
            p = (t - 2) / 12
            current = 0.75 + (0.0 - 0.75) * (1 - p) ** 3
        expected.append(current)
    for t, (got, want) in enumerate(zip(recorder.sparsity, expected), start=1):
        for layer_sparsity, size in zip(got, (12 * 16, 16 * 4)):
            keep = max(round(size * (1 - want)), 1)
            assert layer_sparsity == pytest.approx(1 - keep / size), t


def test_steps_per_execution_prunes_like_one_step_at_a_time():
    schedule = PolynomialDecay(0.0, 0.8, begin_step=1, end_step=13, frequency=3)
    results = []
    for steps_per_execution in (1, 4):
        model = prune_low_magnitude(small_model(), schedule)
        model.compile(keras.optimizers.Adam(0.01), "mse", steps_per_execution=steps_per_execution)
        x, y = small_data()
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        results.append(model)
    one, four = results
    for a, b in zip(one.layers, four.layers):
        assert int(ops.convert_to_numpy(a.pruning_step)) == int(ops.convert_to_numpy(b.pruning_step)) == 16
        np.testing.assert_array_equal(ops.convert_to_numpy(a.masks[0]), ops.convert_to_numpy(b.masks[0]))
    for a, b in zip(one.get_weights(), four.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def make_optimizer(name):
    if name == "adam":
        return keras.optimizers.Adam(0.02)
    if name == "adamw":
        return keras.optimizers.AdamW(0.02, weight_decay=0.1)
    if name == "sgd_momentum":
        return keras.optimizers.SGD(0.02, momentum=0.9, nesterov=True)
    if name == "adam_ema":
        return keras.optimizers.Adam(0.02, use_ema=True, ema_momentum=0.9)
    if name == "lookahead":
        from tfopt.optimizers import Lookahead

        return Lookahead(keras.optimizers.Adam(0.02), sync_period=3)
    if name == "adabelief":
        from tfopt.optimizers import AdaBelief

        return AdaBelief(0.02, weight_decay=0.05)
    raise AssertionError(name)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd_momentum", "adam_ema", "lookahead", "adabelief"])
def test_pruned_weights_stay_exactly_zero_through_optimizer_updates(optimizer):
    # Dense first (with momentum), then pruned at step 9 and never again: the optimizer's state would move the
    # pruned weights if the masks did not hold them.
    model = prune_low_magnitude(small_model(), ConstantSparsity(0.6, begin_step=9, frequency=1000))
    model.compile(make_optimizer(optimizer), "mse")
    recorder = MaskRecorder()
    x, y = small_data()
    model.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0, callbacks=[recorder, UpdatePruningStep()])
    final_masks = recorder.masks[-1]
    for t in range(8, len(recorder.masks)):  # from step 9 on
        for mask, final, effective in zip(recorder.masks[t], final_masks, recorder.effective[t]):
            np.testing.assert_array_equal(mask, final)
            assert np.all(effective[mask == 0] == 0.0)
    # Trained: the kept weights moved after pruning.
    assert not np.array_equal(recorder.effective[8][0], recorder.effective[-1][0])
    # With UpdatePruningStep the stored weights hold the zeros too (after the EMA overwrite for use_ema).
    for wrapper, mask in zip(model.layers, final_masks):
        stored = ops.convert_to_numpy(wrapper.layer.kernel)
        assert np.all(stored[mask == 0] == 0.0)
        assert np.count_nonzero(stored) == np.count_nonzero(mask)
    stripped = strip_pruning(model)
    for layer, mask in zip(stripped.layers, final_masks):
        assert np.all(ops.convert_to_numpy(layer.kernel)[mask == 0] == 0.0)


def test_pruned_weights_get_a_zero_gradient():
    model = prune_low_magnitude(small_model(), ConstantSparsity(0.5, begin_step=1, frequency=1000))
    model.compile(keras.optimizers.SGD(0.1), "mse")
    x, y = small_data()
    model.fit(x[:8], y[:8], batch_size=8, verbose=0)  # prunes at step 1, then one SGD update
    wrapper = model.layers[0]
    before = ops.convert_to_numpy(wrapper.layer.kernel)
    model.fit(x[8:16], y[8:16], batch_size=8, verbose=0)
    after = ops.convert_to_numpy(wrapper.layer.kernel)
    mask = ops.convert_to_numpy(wrapper.masks[0])
    np.testing.assert_array_equal(after[mask == 0], before[mask == 0])  # plain SGD: no gradient, no move
    assert not np.array_equal(after[mask == 1], before[mask == 1])


def test_the_original_model_is_not_changed():
    base = small_model()
    weights = [w.copy() for w in base.get_weights()]
    model = prune_low_magnitude(base, ConstantSparsity(0.5, begin_step=1, frequency=1))
    for a, b in zip(base.get_weights(), [w for layer in model.layers for w in layer.layer.get_weights()]):
        np.testing.assert_array_equal(a, b)
    model.compile(keras.optimizers.Adam(0.01), "mse")
    model.fit(*small_data(), batch_size=8, verbose=0)
    for a, b in zip(base.get_weights(), weights):
        np.testing.assert_array_equal(a, b)


def test_pruning_without_any_callback_trains_and_prunes():
    model = prune_low_magnitude(small_model(), PolynomialDecay(0.0, 0.9, 0, 8, frequency=2))
    model.compile(keras.optimizers.Adam(0.01), "mse")
    history = model.fit(*small_data(), batch_size=8, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert sparsity_report(model)["total"]["sparsity"] == pytest.approx(0.9, abs=0.01)


# ---------------------------------------------------------------------------------------------------------------
# Saving and resuming.


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_save_load_restores_masks_and_step_and_continues_identically(tmp_path, scope):
    schedule = PolynomialDecay(0.0, 0.8, begin_step=0, end_step=20, frequency=2)
    model = prune_low_magnitude(small_model(), schedule, pruning_scope=scope)
    model.compile(keras.optimizers.Adam(0.01), "mse")
    x, y = small_data()
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    path = os.path.join(str(tmp_path), "pruned.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert [type(layer).__name__ for layer in loaded.layers] == ["PruneLowMagnitude"] * 2
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    for a, b in zip(model.layers, loaded.layers):
        assert int(ops.convert_to_numpy(b.pruning_step)) == 8
        np.testing.assert_array_equal(ops.convert_to_numpy(a.masks[0]), ops.convert_to_numpy(b.masks[0]))
        assert b.pruning_scope == scope
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    loaded.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    if scope == "global":
        assert len({row["threshold"] for row in sparsity_report(loaded)["layers"]}) == 1


def test_a_model_loaded_twice_keeps_two_separate_global_groups(tmp_path):
    model = prune_low_magnitude(small_model(), ConstantSparsity(0.5, 1, frequency=1), pruning_scope="global")
    path = os.path.join(str(tmp_path), "pruned.keras")
    model.save(path)
    first, second = keras.models.load_model(path), keras.models.load_model(path)
    assert first.layers[0]._peers.items == first.layers
    assert second.layers[1]._peers.items == second.layers


class StopAt(keras.callbacks.Callback):
    """Interrupts training in the middle of an epoch, as a crash would."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            raise RuntimeError("interrupted")


def test_backup_and_restore_resumes_with_the_same_masks_and_step(tmp_path):
    schedule = PolynomialDecay(0.0, 0.85, begin_step=0, end_step=20, frequency=3)
    x, y = small_data()

    def fresh():
        model = prune_low_magnitude(small_model(), schedule)
        model.compile(keras.optimizers.Adam(0.01), "mse")
        return model

    unbroken = fresh()
    unbroken.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    interrupted = fresh()
    with pytest.raises(RuntimeError, match="interrupted"):
        interrupted.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, callbacks=[backup, StopAt(1, 5)])
    resumed = fresh()  # a new process would rebuild the model and call fit again
    resumed.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, callbacks=[backup])
    for a, b in zip(unbroken.layers, resumed.layers):
        assert int(ops.convert_to_numpy(a.pruning_step)) == int(ops.convert_to_numpy(b.pruning_step)) == 24
        np.testing.assert_array_equal(ops.convert_to_numpy(a.masks[0]), ops.convert_to_numpy(b.masks[0]))
    for a, b in zip(unbroken.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# What can be pruned, and bad input.


def test_a_layer_and_a_list_of_layers_are_wrapped_as_given():
    dense = keras.layers.Dense(4)
    wrapper = prune_low_magnitude(dense)
    assert isinstance(wrapper, PruneLowMagnitude) and wrapper.layer is dense
    wrappers = prune_low_magnitude([keras.layers.Dense(8), keras.layers.Dense(4)], pruning_scope="global")
    model = keras.Sequential([keras.Input((12,)), *wrappers])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    model.fit(*small_data(), batch_size=8, verbose=0)
    assert wrappers[0]._peers.items == wrappers


def test_nested_models_are_pruned_inside():
    inner = keras.Sequential([keras.Input((12,)), keras.layers.Dense(8)], name="inner")
    x = keras.Input((12,))
    outer = keras.Model(x, keras.layers.Dense(2)(inner(x)))
    pruned = prune_low_magnitude(outer)
    assert isinstance(pruned.layers[1].layers[0], PruneLowMagnitude)
    assert isinstance(pruned.layers[2], PruneLowMagnitude)
    assert type(strip_pruning(pruned).layers[1].layers[0]) is keras.layers.Dense


def test_layers_without_weights_and_normalization_are_left_alone():
    model = keras.Sequential([
        keras.Input((6, 6, 2)), keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization(),
        keras.layers.MaxPooling2D(), keras.layers.Flatten(), keras.layers.Dropout(0.1), keras.layers.Dense(2),
    ])
    names = [type(layer).__name__ for layer in prune_low_magnitude(model).layers]
    assert names == ["PruneLowMagnitude", "BatchNormalization", "MaxPooling2D", "Flatten", "Dropout",
                     "PruneLowMagnitude"]


def lstm_model():
    return keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4, name="my_lstm"), keras.layers.Dense(2)])


def test_an_unsupported_layer_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"Layer 'my_lstm' \(LSTM\) cannot be pruned.*skip_unsupported=True"):
        prune_low_magnitude(lstm_model())
    with pytest.raises(ValueError, match=r"Layer 'my_lstm' \(LSTM\) cannot be pruned"):
        prune_low_magnitude(keras.layers.LSTM(4, name="my_lstm"))


def test_skip_unsupported_leaves_the_layer_dense():
    base = lstm_model()
    pruned = prune_low_magnitude(base, skip_unsupported=True)
    assert [type(layer).__name__ for layer in pruned.layers] == ["LSTM", "PruneLowMagnitude"]
    for a, b in zip(base.layers[0].get_weights(), pruned.layers[0].get_weights()):
        np.testing.assert_array_equal(a, b)


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)


def test_a_subclassed_model_gets_an_error_that_says_to_wrap_its_layers():
    model = Subclassed()
    model(np.ones((1, 3)))
    with pytest.raises(ValueError, match="subclassed model.*Apply prune_low_magnitude to its layers"):
        prune_low_magnitude(model)


def test_a_subclassed_model_with_wrapped_layers_trains_and_reports():
    class Pruned(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = prune_low_magnitude(keras.layers.Dense(4), ConstantSparsity(0.5, 1, frequency=1))

        def call(self, x, training=None):  # like Dropout, the wrapper prunes when called with training=True
            return self.dense(x, training=training)

    model = Pruned()
    model.compile(keras.optimizers.SGD(0.01), "mse")
    model.fit(*small_data(), batch_size=8, verbose=0)
    assert sparsity_report(model)["total"]["sparsity"] == 0.5
    with pytest.raises(ValueError,
                       match=r"subclassed model \(Pruned\), whose layer graph cannot be read or rebuilt. Apply strip_"):
        strip_pruning(model)
    layer = strip_pruning(model.dense)
    assert np.count_nonzero(ops.convert_to_numpy(layer.kernel)) == 24


@pytest.mark.parametrize("kwargs, error, message", [
    ({"sparsity_m_by_n": (4, 4)}, ValueError,
     "Argument `sparsity_m_by_n` must be None or a pair (N, M) of integers with 1 <= N < M. "
     "Received: sparsity_m_by_n=(4, 4)"),
    ({"sparsity_m_by_n": (5, 4)}, ValueError, "Received: sparsity_m_by_n=(5, 4)"),
    ({"sparsity_m_by_n": (0, 4)}, ValueError, "Received: sparsity_m_by_n=(0, 4)"),
    ({"sparsity_m_by_n": "2:4"}, ValueError, "Argument `sparsity_m_by_n` must be None or a pair"),
    ({"block_size": (0, 2)}, ValueError,
     "Argument `block_size` must be a pair of integers >= 1. Received: block_size=(0, 2)"),
    ({"block_size": 4}, ValueError, "Argument `block_size` must be a pair of integers >= 1. Received: block_size=4"),
    ({"block_size": (2, 2), "sparsity_m_by_n": (2, 4)}, ValueError,
     "Argument `block_size` must be (1, 1) when `sparsity_m_by_n` is set"),
    ({"pruning_scope": "model"}, ValueError,
     "Argument `pruning_scope` must be one of 'layer', 'global'. Received: pruning_scope='model'"),
    ({"pruning_scope": "global", "sparsity_m_by_n": (2, 4)}, ValueError,
     "Argument `pruning_scope` must be 'layer' with `sparsity_m_by_n`"),
    ({"pruning_schedule": 0.5}, TypeError,
     "Argument `pruning_schedule` must be a tfopt.compression.PruningSchedule"),
])
def test_bad_arguments_name_the_argument(kwargs, error, message):
    with pytest.raises(error) as raised:
        prune_low_magnitude(small_model(), **kwargs)
    assert message in str(raised.value)


def test_n_m_that_does_not_divide_the_channels_of_a_wrapped_layer_is_an_error():
    with pytest.raises(ValueError) as raised:
        keras.Sequential([keras.Input((6,)), prune_low_magnitude(keras.layers.Dense(8, name="d6"),
                                                                 sparsity_m_by_n=(2, 4))])
    message = str(raised.value)
    assert "Argument `sparsity_m_by_n` must have an M that divides the input channels (6, axis -2)" in message
    assert "'d6'" in message and "Received: sparsity_m_by_n=(2, 4)" in message


def test_a_block_that_does_not_divide_the_weight_is_an_error():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, name="d6")])
    with pytest.raises(ValueError) as raised:
        prune_low_magnitude(model, block_size=(4, 4))
    message = str(raised.value)
    assert "Argument `block_size` must divide the last two axes of every pruned weight (6, 8)" in message
    assert "Received: block_size=(4, 4)" in message


def test_to_prune_of_another_type_is_a_type_error():
    with pytest.raises(TypeError, match="Argument `to_prune` must be a keras.Model"):
        prune_low_magnitude("model")
    with pytest.raises(TypeError, match=r"Argument `to_prune` must hold keras layers. Received: to_prune\[1\]=3"):
        prune_low_magnitude([keras.layers.Dense(2), 3])


def test_global_scope_needs_one_schedule():
    from tfopt.layers.prune_low_magnitude import link_global

    a = PruneLowMagnitude(keras.layers.Dense(2), ConstantSparsity(0.5, 0), pruning_scope="global")
    b = PruneLowMagnitude(keras.layers.Dense(2), ConstantSparsity(0.6, 0), pruning_scope="global")
    with pytest.raises(ValueError, match="Argument `pruning_schedule` must be the same for every layer"):
        link_global([a, b])


def tiny_head_model():
    """A large first layer and two small layers whose weights are all far below the large layer's."""
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((40,)), keras.layers.Dense(50, name="big"),
                              keras.layers.Dense(6, name="small"), keras.layers.Dense(2, name="tiny")])
    rng = np.random.default_rng(3)
    model.get_layer("big").kernel.assign(rng.uniform(1.0, 2.0, (40, 50)).astype("float32"))
    model.get_layer("small").kernel.assign(rng.uniform(1e-3, 2e-3, (50, 6)).astype("float32"))
    model.get_layer("tiny").kernel.assign(rng.uniform(1e-3, 2e-3, (6, 2)).astype("float32"))
    return model


def test_global_scope_never_empties_a_layer():
    pruned = prune_low_magnitude(tiny_head_model(), ConstantSparsity(0.9, 1, frequency=1), pruning_scope="global")
    pruned.compile(keras.optimizers.SGD(0.0), "mse")
    x = np.ones((4, 40), "float32")
    pruned.fit(x, np.zeros((4, 2), "float32"), batch_size=4, verbose=0)
    nonzero = {row["layer"]: row["nonzero"] for row in sparsity_report(strip_pruning(pruned))["layers"]}
    # The shared threshold keeps round(0.1 * 2312) = 231 weights, all in `big`; the floor keeps
    # max(round(0.01 * n), 1) of each small layer: 3 of 300 and 1 of 12.
    assert nonzero == {"big": 231, "small": 3, "tiny": 1}


def test_global_floor_keeps_the_largest_weights_of_a_small_layer():
    model = tiny_head_model()
    small = ops.convert_to_numpy(model.get_layer("small").kernel)
    pruned = prune_low_magnitude(model, ConstantSparsity(0.9, 1, frequency=1), pruning_scope="global")
    pruned.compile(keras.optimizers.SGD(0.0), "mse")
    pruned.fit(np.ones((4, 40), "float32"), np.zeros((4, 2), "float32"), batch_size=4, verbose=0)
    kept = ops.convert_to_numpy(strip_pruning(pruned).get_layer("small").kernel)
    expected = np.where(np.abs(small) >= np.sort(np.abs(small).ravel())[-3], small, 0.0)
    np.testing.assert_array_equal(kept, expected)
    row = [r for r in sparsity_report(pruned)["layers"] if r["layer"].endswith("small")][0]
    assert row["threshold"] == pytest.approx(float(np.sort(np.abs(small).ravel())[-3]), rel=1e-6)


def test_global_floor_does_not_change_a_layer_above_it():
    # Every layer keeps more than 1% under the shared threshold: one threshold, the exact total sparsity.
    pruned = prune_low_magnitude(small_model(), ConstantSparsity(0.9, 1, frequency=1), pruning_scope="global")
    pruned.compile(keras.optimizers.SGD(0.0), "mse")
    pruned.fit(*small_data(), batch_size=64, verbose=0)
    report = sparsity_report(pruned)
    assert len({row["threshold"] for row in report["layers"]}) == 1
    assert report["total"]["nonzero"] == round(report["total"]["size"] * 0.1)
