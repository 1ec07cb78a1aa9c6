"""`import tfopt.compat.tfa as tfa`: every `tfa.optimizers` name resolves, TFA's usual code runs with only the import
changed, TFA's arguments map to TFA's numbers (transcriptions of TFA's updates), and each optimizer round-trips
`.keras` with its state."""

import os

import keras
import numpy as np
import pytest
from keras import ops

import tfopt
import tfopt.compat.tfa as tfa

agnostic = pytest.mark.backend_agnostic

TFA_NAMES = {
    "AdaBelief", "AdamW", "AveragedOptimizerWrapper", "COCOB", "ConditionalGradient", "CyclicalLearningRate",
    "DecoupledWeightDecayExtension", "ExponentialCyclicalLearningRate", "LAMB", "LazyAdam", "Lookahead",
    "MovingAverage", "MultiOptimizer", "NovoGrad", "ProximalAdagrad", "RectifiedAdam", "SGDW", "SWA",
    "Triangular2CyclicalLearningRate", "TriangularCyclicalLearningRate", "Yogi", "extend_with_decoupled_weight_decay",
}


def tiny_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(1)])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 4)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")


@agnostic
def test_every_tfa_optimizers_name_resolves_to_tfopt_or_keras():
    assert set(tfa.optimizers.__all__) == TFA_NAMES
    for name in TFA_NAMES:
        value = getattr(tfa.optimizers, name)
        assert value.__module__.startswith(("tfopt.", "keras")), (name, value.__module__)
    assert tfa.optimizers.AdamW is tfopt.DecoupledAdamW
    assert tfa.optimizers.CyclicalLearningRate is tfopt.ScaledCyclicalLearningRate
    assert isinstance(tfa.optimizers.LAMB(), keras.optimizers.Lamb)


FACTORIES = {
    "AdaBelief": lambda model: tfa.optimizers.AdaBelief(lr=1e-3, total_steps=10, weight_decay=1e-4),
    "AdamW": lambda model: tfa.optimizers.AdamW(weight_decay=1e-4, learning_rate=1e-3),
    "COCOB": lambda model: tfa.optimizers.COCOB(alpha=100),
    "ConditionalGradient": lambda model: tfa.optimizers.ConditionalGradient(learning_rate=0.99, lambda_=0.5),
    "LAMB": lambda model: tfa.optimizers.LAMB(1e-3, weight_decay=1e-4, exclude_from_weight_decay=["bias"]),
    "LazyAdam": lambda model: tfa.optimizers.LazyAdam(1e-3),
    "Lookahead": lambda model: tfa.optimizers.Lookahead(tfa.optimizers.RectifiedAdam(1e-3), sync_period=2),
    "MovingAverage": lambda model: tfa.optimizers.MovingAverage(keras.optimizers.SGD(0.1), average_decay=0.9),
    "MultiOptimizer": lambda model: tfa.optimizers.MultiOptimizer(
        [(keras.optimizers.Adam(1e-4), model.layers[0]), (keras.optimizers.Adam(1e-2), model.layers[1:])]),
    "NovoGrad": lambda model: tfa.optimizers.NovoGrad(1e-2, weight_decay=1e-3),
    "ProximalAdagrad": lambda model: tfa.optimizers.ProximalAdagrad(0.1, l1=1e-3),
    "RectifiedAdam": lambda model: tfa.optimizers.RectifiedAdam(lr=1e-3, total_steps=10, warmup_proportion=0.1,
                                                                min_lr=1e-5),
    "SGDW": lambda model: tfa.optimizers.SGDW(weight_decay=1e-4, learning_rate=0.1, momentum=0.9),
    "SWA": lambda model: tfa.optimizers.SWA(keras.optimizers.SGD(0.1), start_averaging=1, average_period=2),
    "Yogi": lambda model: tfa.optimizers.Yogi(beta1=0.8),
    "CyclicalLearningRate": lambda model: keras.optimizers.SGD(tfa.optimizers.Triangular2CyclicalLearningRate(
        initial_learning_rate=1e-3, maximal_learning_rate=1e-2, step_size=2)),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_optimizer_trains_saves_and_loads_with_its_state(name, data, tmp_path):
    x, y = data
    model = tiny_model()
    model.compile(FACTORIES[name](model), loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    path = os.path.join(str(tmp_path), "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables, strict=True):
        np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b))


def test_typical_tfa_user_code_runs_with_only_the_import_changed(data):
    x, y = data
    # Discriminative learning rates (the TFA MultiOptimizer tutorial).
    model = tiny_model()
    optimizers = [keras.optimizers.Adam(learning_rate=1e-4), keras.optimizers.Adam(learning_rate=1e-2)]
    optimizers_and_layers = [(optimizers[0], model.layers[0]), (optimizers[1], model.layers[1])]
    model.compile(optimizer=tfa.optimizers.MultiOptimizer(optimizers_and_layers), loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    # AdamW with a weight decay that follows the learning-rate schedule (TFA's AdamW docstring).
    step = keras.Variable(0, dtype="int64", trainable=False)
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([10000, 15000], [1e-0, 1e-1, 1e-2])
    lr = 1e-1 * schedule(step)
    wd = lambda: 1e-4 * schedule(step)  # noqa: E731
    tfa.optimizers.AdamW(learning_rate=lr, weight_decay=wd).apply([ops.ones((2,))], [keras.Variable([1.0, 1.0])])
    # Ranger = Lookahead(RectifiedAdam) and a cyclical rate (TFA's tutorials).
    model = tiny_model()
    radam = tfa.optimizers.RectifiedAdam(lr=1e-3, total_steps=100, warmup_proportion=0.1, min_lr=1e-5)
    model.compile(tfa.optimizers.Lookahead(radam, sync_period=6, slow_step_size=0.5), loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    clr = tfa.optimizers.CyclicalLearningRate(initial_learning_rate=1e-4, maximal_learning_rate=1e-2,
                                              scale_fn=lambda x: 1 / (2.0 ** (x - 1)), step_size=2 * 2)
    model.compile(keras.optimizers.SGD(clr), loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    # MovingAverage / SWA, then the averaged weights into the model (`model.variables`, as TFA's docs do).
    for wrapper in (tfa.optimizers.MovingAverage(keras.optimizers.SGD(0.1)),
                    tfa.optimizers.SWA(keras.optimizers.SGD(0.1), start_averaging=0, average_period=1)):
        model = tiny_model()
        model.compile(wrapper, loss="mse")
        model.fit(x, y, epochs=1, verbose=0)
        wrapper.assign_average_vars(model.variables)
    # A TFA-extended optimizer.
    MyAdamW = tfa.optimizers.extend_with_decoupled_weight_decay(keras.optimizers.Adam)
    model = tiny_model()
    model.compile(MyAdamW(weight_decay=1e-4, learning_rate=1e-3), loss="mse")
    model.fit(x, y, epochs=1, verbose=0)


@agnostic
def test_swa_averages_after_the_updates_tfa_does():
    # TFA SWA(start_averaging=2, average_period=3) snapshots at iterations 2, 5, ... (0-based, after the update):
    # the weights after updates 3 and 6 of SGD(1) with unit gradients, -3 and -6.
    optimizer = tfa.optimizers.SWA(keras.optimizers.SGD(1.0), start_averaging=2, average_period=3)
    w = keras.Variable([0.0])
    for _ in range(7):
        optimizer.apply([ops.ones((1,))], [w])
    optimizer.assign_average_vars([w])
    np.testing.assert_allclose(ops.convert_to_numpy(w), [-4.5])


def reference_tfa_lamb(initial, gradients, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-6):
    """`tfa.optimizers.LAMB` without weight decay in float64: Adam's bias-corrected step times the trust ratio."""
    w = [np.asarray(v, np.float64).copy() for v in initial]
    m = [np.zeros_like(v) for v in w]
    s = [np.zeros_like(v) for v in w]
    out = []
    for t, step in enumerate(gradients, start=1):
        for i, g in enumerate(step):
            m[i] = beta_1 * m[i] + (1 - beta_1) * g
            s[i] = beta_2 * s[i] + (1 - beta_2) * g * g
            update = (m[i] / (1 - beta_1**t)) / (np.sqrt(s[i] / (1 - beta_2**t)) + epsilon)
            w_norm, u_norm = np.linalg.norm(w[i]), np.linalg.norm(update)
            ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
            w[i] = w[i] - ratio * lr * update
        out.append([v.copy() for v in w])
    return out


@agnostic
def test_lamb_is_keras_lamb_with_tfa_numbers():
    rng = np.random.default_rng(0)
    initial = [rng.normal(size=(5, 4)).astype("float32"), rng.normal(size=(4,)).astype("float32")]
    gradients = [[rng.normal(size=v.shape).astype("float32") for v in initial] for _ in range(40)]
    variables = [keras.Variable(v) for v in initial]
    optimizer = tfa.optimizers.LAMB(0.01)
    for step in gradients:
        optimizer.apply(step, variables)
    expected = reference_tfa_lamb(initial, gradients, 0.01)[-1]
    for variable, e in zip(variables, expected):
        np.testing.assert_allclose(ops.convert_to_numpy(variable), e, rtol=1e-4, atol=1e-5)


@agnostic
@pytest.mark.parametrize(("factory", "argument", "value"), [
    (tfa.optimizers.AdaBelief, "amsgrad", True), (tfa.optimizers.RectifiedAdam, "sma_threshold", 4.0),
    (tfa.optimizers.Yogi, "l1_regularization_strength", 0.1), (tfa.optimizers.Yogi, "activation", "tanh"),
    (tfa.optimizers.LAMB, "exclude_from_layer_adaptation", ["bias"]), (tfa.optimizers.LazyAdam, "amsgrad", True)])
def test_tfa_options_tfopt_lacks_are_refused(factory, argument, value):
    with pytest.raises(ValueError, match=f"Argument `{argument}` of tfa.optimizers.* is not supported.*Received: "
                                         f"{argument}="):
        factory(**{argument: value})


@agnostic
def test_tfa_defaults():
    assert tfa.optimizers.AdaBelief().get_config()["epsilon"] == 1e-14
    assert tfa.optimizers.AdaBelief().get_config()["rectify"] is True
    assert tfa.optimizers.RectifiedAdam().get_config()["epsilon"] == 1e-7
    yogi = tfa.optimizers.Yogi().get_config()
    assert (yogi["epsilon"], yogi["epsilon_before_correction"]) == (1e-3, True)
    assert np.isclose(float(tfa.optimizers.Yogi().learning_rate), 0.01)
    assert np.isclose(float(tfa.optimizers.SGDW(1e-4).learning_rate), 1e-3)


@agnostic
def test_lookahead_matches_tfa_transcription():
    # TFA Lookahead around SGD(0.1): slow weights start at the initial weights; after update k with
    # k % sync_period == 0 both become slow + alpha (fast - slow).
    rng = np.random.default_rng(1)
    initial = rng.normal(size=(3, 2)).astype("float32")
    gradients = rng.normal(size=(40, 3, 2)).astype("float32")
    variable = keras.Variable(initial)
    optimizer = tfa.optimizers.Lookahead(keras.optimizers.SGD(0.1), sync_period=5, slow_step_size=0.3)
    fast, slow = initial.astype(np.float64), initial.astype(np.float64)
    for k, g in enumerate(gradients, start=1):
        optimizer.apply([g], [variable])
        fast = fast - 0.1 * g
        if k % 5 == 0:
            slow = slow + 0.3 * (fast - slow)
            fast = slow.copy()
        np.testing.assert_allclose(ops.convert_to_numpy(variable), fast, rtol=1e-5, atol=1e-6)
