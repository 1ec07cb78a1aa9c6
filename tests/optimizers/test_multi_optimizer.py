"""MultiOptimizer: each group follows its own optimizer (float64 transcriptions of Adam and momentum SGD), with its
own schedule and step count; the groups by layers or by a function; save, load and resume equal an unbroken run."""

import importlib
import os

import keras
import numpy as np
import pytest
from keras import ops

from tfopt.optimizers.multi_optimizer import MultiOptimizer

from .conformance import assert_matches_reference, check_docstring_examples, reference_problem

agnostic = pytest.mark.backend_agnostic
STEPS = 20


def reference_adam(w, gradients, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    w, m, v = np.asarray(w, np.float64).copy(), 0.0, 0.0
    out = []
    for t, g in enumerate(gradients, start=1):
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        w = w - lr(t - 1) * np.sqrt(1 - beta_2**t) / (1 - beta_1**t) * m / (np.sqrt(v) + epsilon)
        out.append(w.copy())
    return out


def reference_momentum(w, gradients, lr, momentum):
    w, m = np.asarray(w, np.float64).copy(), 0.0
    out = []
    for g in gradients:
        m = momentum * m - lr * g
        w = w + m
        out.append(w.copy())
    return out


def model_and_data():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(1)])
    rng = np.random.default_rng(0)
    return model, rng.normal(size=(32, 4)).astype("float32"), rng.normal(size=(32, 1)).astype("float32")


def groups(model):
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=4, decay_rate=0.5)
    return [(keras.optimizers.Adam(schedule), model.layers[0]), (keras.optimizers.SGD(0.05, momentum=0.9),
                                                                  model.layers[1])]


@agnostic
def test_each_group_follows_its_own_optimizer_and_schedule():
    initial, gradients, names = reference_problem(steps=STEPS)
    variables = [keras.Variable(value, name=name) for name, value in zip(names, initial)]
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=4, decay_rate=0.5)
    optimizer = MultiOptimizer([(keras.optimizers.Adam(schedule), variables[:2]),
                                (keras.optimizers.SGD(0.05, momentum=0.9), variables[2])])
    trajectory = []
    for step in gradients:
        optimizer.apply(step, variables)
        trajectory.append([ops.convert_to_numpy(v) for v in variables])
    lr = lambda t: 0.01 * 0.5 ** (t / 4)  # noqa: E731
    expected = [reference_adam(initial[0], [g[0] for g in gradients], lr),
                reference_adam(initial[1], [g[1] for g in gradients], lr),
                reference_momentum(initial[2], [g[2] for g in gradients], 0.05, 0.9)]
    assert_matches_reference(trajectory, [list(step) for step in zip(*expected)])
    assert [int(o.iterations) for o in optimizer.optimizers] == [STEPS, STEPS]
    assert int(optimizer.iterations) == STEPS


@agnostic
def test_assign_function_equals_layer_pairs():
    model, x, y = model_and_data()
    by_layers = MultiOptimizer(groups(model))
    model.compile(by_layers, loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)

    other, _, _ = model_and_data()
    optimizers = [o for o, _ in groups(other)]
    first_layer = {id(v) for v in other.layers[0].trainable_variables}
    by_function = MultiOptimizer(optimizers=optimizers, assign=lambda v: 0 if id(v) in first_layer else optimizers[1])
    other.compile(by_function, loss="mse")
    other.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@agnostic
def test_save_load_resume_equals_uninterrupted_run(tmp_path):
    model, x, y = model_and_data()
    model.compile(MultiOptimizer(groups(model)), loss="mse")
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)

    resumed, _, _ = model_and_data()
    resumed.compile(MultiOptimizer(groups(resumed)), loss="mse")
    resumed.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    path = os.path.join(str(tmp_path), "m.keras")
    resumed.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.optimizer) is MultiOptimizer
    assert [int(o.iterations) for o in loaded.optimizer.optimizers] == [4, 4]
    loaded.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), rtol=1e-6, atol=1e-7)


@agnostic
def test_config_round_trip_once_built():
    model, _, _ = model_and_data()
    optimizer = MultiOptimizer(groups(model))
    optimizer.build(model.trainable_variables)
    config = optimizer.get_config()
    assert config["variable_groups"] == [0, 0, 1, 1]
    rebuilt = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(rebuilt) is MultiOptimizer and rebuilt.get_config() == config


@agnostic
def test_every_variable_must_be_in_exactly_one_group():
    model, _, _ = model_and_data()
    missing = MultiOptimizer([("adam", model.layers[0])])
    with pytest.raises(ValueError, match="exactly one MultiOptimizer group.*in 0 groups"):
        missing.build(model.trainable_variables)
    twice = MultiOptimizer([("adam", model), ("sgd", model.layers[1])])
    with pytest.raises(ValueError, match="in 2 groups"):
        twice.build(model.trainable_variables)


@agnostic
def test_rejects_invalid_arguments():
    with pytest.raises(TypeError, match="Argument `optimizers_and_layers` must be a non-empty list"):
        MultiOptimizer([keras.optimizers.Adam()])
    with pytest.raises(TypeError, match="pair each optimizer with a keras layer"):
        MultiOptimizer([("adam", "dense")]).build([keras.Variable([1.0])])
    with pytest.raises(TypeError, match="Argument `assign` must be a function"):
        MultiOptimizer(optimizers=["adam"], assign=0)
    with pytest.raises(ValueError, match="Argument `clipnorm` is not taken by MultiOptimizer"):
        MultiOptimizer([("adam", [])], clipnorm=1.0)


@agnostic
def test_docstring_example_runs():
    check_docstring_examples(importlib.import_module("tfopt.optimizers.multi_optimizer"))
