"""ScheduleFreeAdamW against a float64 transcription of the reference implementation, optax, and in `fit`."""

import doctest

import keras
import numpy as np
import pytest

import tfopt.optimizers.schedule_free_adamw as adamw_module
from tfopt.callbacks.schedule_free_eval import ScheduleFreeEval
from tfopt.data import load_digits
from tfopt.optimizers.schedule_free_adamw import ScheduleFreeAdamW

from .conformance import (
    BASE_OPTION_CHECKS,
    check_config_round_trip,
    check_learning_rate_schedule,
    check_mirrored_strategy_fit,
    check_rejects,
    check_save_load_continues,
    check_sparse_gradients,
)


class ReferenceScheduleFreeAdamW:
    """facebookresearch/schedule_free `AdamWScheduleFree.step`, transcribed in float64.

    `lr` is a number or a function of the step index k (a schedule); `decay_mask` says which parameters decay.
    """

    def __init__(self, params, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-8, warmup_steps=0, r=0.0,
                 weight_lr_power=2.0, weight_decay=0.0, decay_mask=None):
        self.y = [np.asarray(p, np.float64).copy() for p in params]
        self.z = [p.copy() for p in self.y]
        self.v = [np.zeros_like(p) for p in self.y]
        self.lr, self.beta_1, self.beta_2, self.epsilon = lr, beta_1, beta_2, epsilon
        self.warmup_steps, self.r, self.weight_lr_power = warmup_steps, r, weight_lr_power
        self.weight_decay, self.decay_mask = weight_decay, decay_mask or [True] * len(self.y)
        self.k, self.lr_max, self.weight_sum = 0, -1.0, 0.0

    def step(self, grads):
        k, beta_1, beta_2 = self.k, self.beta_1, self.beta_2
        sched = (k + 1) / self.warmup_steps if k < self.warmup_steps else 1.0
        lr = (self.lr(k) if callable(self.lr) else self.lr) * sched * np.sqrt(1.0 - beta_2 ** (k + 1))
        self.lr_max = max(self.lr_max, lr)
        weight = (k + 1) ** self.r * self.lr_max**self.weight_lr_power
        self.weight_sum += weight
        ckp1 = weight / self.weight_sum if self.weight_sum else 0.0
        for i, g in enumerate(grads):
            g = np.asarray(g, np.float64)
            self.v[i] = beta_2 * self.v[i] + (1 - beta_2) * g * g
            d = g / (np.sqrt(self.v[i]) + self.epsilon)
            if self.decay_mask[i]:
                d = d + self.weight_decay * self.y[i]
            self.y[i] = (1 - ckp1) * self.y[i] + ckp1 * self.z[i] + lr * (beta_1 * (1 - ckp1) - 1) * d
            self.z[i] = self.z[i] - lr * d
        self.k += 1

    @property
    def x(self):
        return [(y - (1 - self.beta_1) * z) / self.beta_1 for y, z in zip(self.y, self.z)]


def reference_schedule_free_adamw(params, grads, lr, **kwargs):
    """Runs the reference over a list of per-step gradient lists; returns (y, z, x)."""
    reference = ReferenceScheduleFreeAdamW(params, lr, **kwargs)
    for step_grads in grads:
        reference.step(step_grads)
    return reference.y, reference.z, reference.x


def random_problem(steps, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=(3, 4)), rng.normal(size=(4,))]
    grads = [[rng.normal(size=p.shape) for p in params] for _ in range(steps)]
    return params, grads


def run_keras(optimizer, params, grads):
    variables = [keras.Variable(p.astype("float32"), name=f"v{i}") for i, p in enumerate(params)]
    for step_grads in grads:
        optimizer.apply([g.astype("float32") for g in step_grads], variables)
    return variables


def assert_close(actual, expected, rtol=1e-5, atol=1e-6):
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), e, rtol=rtol, atol=atol)


# Invalid arguments.


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"beta_1": 0.0}, "Argument `beta_1` must be a number in (0.0, 1.0). Received: beta_1=0.0"),
        ({"beta_1": 1.0}, "Argument `beta_1` must be a number in (0.0, 1.0). Received: beta_1=1.0"),
        ({"beta_2": 1.0}, "Argument `beta_2` must be a number in [0.0, 1.0). Received: beta_2=1.0"),
        ({"epsilon": -1e-8}, "Argument `epsilon` must be a finite number >= 0.0. Received: epsilon=-1e-08"),
        ({"warmup_steps": -1}, "Argument `warmup_steps` must be an integer >= 0. Received: warmup_steps=-1"),
        ({"r": -0.5}, "Argument `r` must be a finite number >= 0.0. Received: r=-0.5"),
        ({"weight_lr_power": -2.0},
         "Argument `weight_lr_power` must be a finite number >= 0.0. Received: weight_lr_power=-2.0"),
        ({"weight_decay": -0.1}, "Argument `weight_decay` must be a finite number >= 0.0. Received: weight_decay=-0.1"),
        ({"learning_rate": -1.0},
         "Argument `learning_rate` must be a finite number >= 0, a `LearningRateSchedule` or a callable. "
         "Received: learning_rate=-1.0"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_them(kwargs, message):
    with pytest.raises(ValueError) as info:
        ScheduleFreeAdamW(**kwargs)
    assert str(info.value) == message


@pytest.mark.backend_agnostic
def test_non_integer_warmup_raises_type_error():
    with pytest.raises(TypeError, match=r"Argument `warmup_steps` must be an integer >= 0. Received: warmup_steps=1.5"):
        ScheduleFreeAdamW(warmup_steps=1.5)


@pytest.mark.backend_agnostic
def test_config_round_trip():
    optimizer = ScheduleFreeAdamW(
        0.003, beta_1=0.95, beta_2=0.99, epsilon=1e-6, warmup_steps=7, r=0.5, weight_lr_power=1.0,
        weight_decay=0.01, clipnorm=1.0,
    )
    config = optimizer.get_config()
    assert {k: config[k] for k in ("beta_1", "beta_2", "epsilon", "warmup_steps", "r", "weight_lr_power")} == {
        "beta_1": 0.95, "beta_2": 0.99, "epsilon": 1e-6, "warmup_steps": 7, "r": 0.5, "weight_lr_power": 1.0}
    assert config["weight_decay"] == 0.01 and config["clipnorm"] == 1.0
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(again, ScheduleFreeAdamW)
    assert again.get_config() == config


@pytest.mark.backend_agnostic
def test_docstring_example_runs():
    assert doctest.testmod(adamw_module).failed == 0


# Update rule.


@pytest.mark.backend_agnostic
def test_first_step_moves_y_to_z_by_one_normalised_step():
    # c_1 = 1, so y_1 = z_1 = y_0 - lr sqrt(1 - b2) g / (sqrt(1 - b2) |g| + eps): close to y_0 - lr sign(g).
    optimizer = ScheduleFreeAdamW(0.1)
    (w,) = run_keras(optimizer, [np.array([1.0, -2.0, 0.5])], [[np.array([0.3, -4.0, 0.0])]])
    scale = np.sqrt(1 - 0.999)
    expected = np.array([1.0, -2.0, 0.5]) - 0.1 * scale * np.array([0.3, -4.0, 0.0]) / (
        scale * np.array([0.3, 4.0, 0.0]) + 1e-8)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(w), expected, rtol=1e-6)
    np.testing.assert_allclose(expected, [0.9, -1.9, 0.5], atol=1e-6)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"warmup_steps": 20, "r": 0.5, "weight_lr_power": 1.0, "weight_decay": 0.05},
        {"beta_1": 0.95, "beta_2": 0.99, "epsilon": 1e-6, "warmup_steps": 5, "weight_lr_power": 0.0},
    ],
)
def test_matches_float64_reference_over_150_steps(kwargs):
    params, grads = random_problem(150)
    optimizer = ScheduleFreeAdamW(0.01, **kwargs)
    variables = run_keras(optimizer, params, grads)
    y, z, x = reference_schedule_free_adamw(params, grads, 0.01, **kwargs)
    assert_close(variables, y)
    assert_close([optimizer._z[0], optimizer._z[1]], z)
    optimizer.swap_to_eval(variables)
    assert_close(variables, x)


@pytest.mark.backend_agnostic
def test_learning_rate_schedule_enters_lr_max_and_the_weights():
    params, grads = random_problem(120, seed=1)
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([40, 80], [0.02, 0.005, 0.05])
    variables = run_keras(ScheduleFreeAdamW(schedule, warmup_steps=10), params, grads)
    lr = lambda k: 0.02 if k <= 40 else (0.005 if k <= 80 else 0.05)  # noqa: E731
    y, _, _ = reference_schedule_free_adamw(params, grads, lr, warmup_steps=10)
    assert_close(variables, y)


@pytest.mark.backend_agnostic
def test_exclude_from_weight_decay_leaves_those_variables_undecayed():
    params, grads = random_problem(100, seed=2)
    optimizer = ScheduleFreeAdamW(0.01, weight_decay=0.1)
    optimizer.exclude_from_weight_decay(var_names=["v1"])
    variables = run_keras(optimizer, params, grads)
    y, _, _ = reference_schedule_free_adamw(params, grads, 0.01, weight_decay=0.1, decay_mask=[True, False])
    assert_close(variables, y)


@pytest.mark.backend_agnostic
def test_averaging_advances_once_per_update_with_gradient_accumulation():
    # 12 updates of 3 accumulated gradients each: through the warmup (8) and 4 steps past it.
    params, grads = random_problem(36, seed=3)
    optimizer = ScheduleFreeAdamW(0.01, warmup_steps=8, gradient_accumulation_steps=3)
    variables = run_keras(optimizer, params, grads)
    averaged = [[sum(grads[3 * j + m][i] for m in range(3)) / 3 for i in range(2)] for j in range(12)]
    y, _, _ = reference_schedule_free_adamw(params, averaged, 0.01, warmup_steps=8)
    assert_close(variables, y)


@pytest.mark.backend_agnostic
def test_matches_optax_schedule_free_adamw_with_uniform_averaging():
    # optax divides by sqrt(v / bc2) + eps and leaves the bias correction out of max_lr; with
    # weight_lr_power=0 (uniform averaging) the two differ only by eps * (1 - 1/sqrt(bc2)), far below 1e-5.
    import jax.numpy as jnp
    import optax

    params, grads = random_problem(120, seed=4)
    solver = optax.contrib.schedule_free_adamw(0.01, b1=0.9, b2=0.999, eps=1e-8, weight_lr_power=0.0)
    jparams = [jnp.asarray(p, jnp.float32) for p in params]
    state = solver.init(jparams)
    for step_grads in grads:
        updates, state = solver.update([jnp.asarray(g, jnp.float32) for g in step_grads], state, jparams)
        jparams = optax.apply_updates(jparams, updates)
    optimizer = ScheduleFreeAdamW(0.01, weight_lr_power=0.0)
    variables = run_keras(optimizer, params, grads)
    assert_close(variables, [np.asarray(p) for p in jparams], rtol=1e-5, atol=1e-5)
    eval_params = optax.contrib.schedule_free_eval_params(state, jparams)
    optimizer.swap_to_eval(variables)
    assert_close(variables, [np.asarray(p) for p in eval_params], rtol=1e-5, atol=1e-5)


# Inside fit.


def _dense_model(seed=0, units=2, inputs=3):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((inputs,)), keras.layers.Dense(units)])


@pytest.mark.backend_agnostic
def test_one_fit_step_gives_the_reference_kernel_not_minus_lr():
    # The case: a Dense kernel [[0.126, -0.132], [0.640, 0.105], [-0.536, 0.362]] and one `fit` step at
    # lr 0.01. Keras 3.15's ScheduleFreeAdamW starts z at zero under fit on TensorFlow and returns -+0.01
    # everywhere. The right first step is Adam's first step (c_1 = 1 puts y at z_1 = y_0 - lr_0 g / (|g| + eps')):
    # every entry moves by 0.01 against its gradient's sign.
    kernel0 = np.random.default_rng(0).standard_normal((3, 2))
    rng = np.random.default_rng(1)
    x, t = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
    kernels = []
    for optimizer in (ScheduleFreeAdamW(0.01), keras.optimizers.Adam(0.01, epsilon=1e-8)):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.set_weights([kernel0.astype("float32"), np.zeros(2, "float32")])
        model.compile(optimizer, loss="mse")
        model.fit(x, t, batch_size=8, epochs=1, shuffle=False, verbose=0)
        kernels.append(keras.ops.convert_to_numpy(model.layers[0].kernel))
    error = x.astype(np.float64) @ kernel0 - t
    gradients = [x.T @ error / error.size * 2, error.sum(0) / error.size * 2]
    (kernel, _), _, _ = reference_schedule_free_adamw([kernel0, np.zeros(2)], [gradients], 0.01)
    np.testing.assert_allclose(kernels[0], kernel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(kernels[0], kernels[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(kernel, kernel0 - 0.01 * np.sign(gradients[0]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(kernel0.ravel(), [0.126, -0.132, 0.640, 0.105, -0.536, 0.362], atol=1e-3)


@pytest.mark.backend_agnostic
def test_z_starts_at_the_weights_of_the_first_step_even_if_set_after_building():
    rng = np.random.default_rng(2)
    x, t = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
    model = _dense_model()
    model.compile(ScheduleFreeAdamW(0.01), loss="mse")
    model.optimizer.build(model.trainable_variables)
    kernel0 = rng.normal(size=(3, 2))
    model.set_weights([kernel0.astype("float32"), np.zeros(2, "float32")])
    model.fit(x, t, batch_size=8, epochs=1, shuffle=False, verbose=0)
    error = x.astype(np.float64) @ kernel0 - t
    gradients = [x.T @ error / error.size * 2, error.sum(0) / error.size * 2]
    (kernel, _), (z, _), _ = reference_schedule_free_adamw([kernel0, np.zeros(2)], [gradients], 0.01)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.layers[0].kernel), kernel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.optimizer._z[0]), z, rtol=1e-5, atol=1e-6)


@pytest.mark.backend_agnostic
def test_fit_matches_reference_over_many_steps_on_a_linear_model():
    rng = np.random.default_rng(1)
    x, t = rng.normal(size=(64, 3)), rng.normal(size=(64, 2))
    model = _dense_model(seed=1)
    params = [np.asarray(w, np.float64) for w in model.get_weights()]
    model.compile(ScheduleFreeAdamW(0.02, warmup_steps=5, weight_decay=0.01), loss="mse")
    model.fit(x.astype("float32"), t.astype("float32"), batch_size=16, epochs=5, shuffle=False, verbose=0)
    # Replay the 20 steps in float64, taking each batch's MSE gradient at the reference's y.
    reference = ReferenceScheduleFreeAdamW(params, 0.02, warmup_steps=5, weight_decay=0.01)
    for step in range(20):
        rows = slice(16 * (step % 4), 16 * (step % 4 + 1))
        error = x[rows] @ reference.y[0] + reference.y[1] - t[rows]
        reference.step([x[rows].T @ error / error.size * 2, error.sum(0) / error.size * 2])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.layers[0].kernel), reference.y[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.layers[0].bias), reference.y[1], rtol=1e-4, atol=1e-5)


@pytest.mark.backend_agnostic
def test_digits_classifier_trains_to_high_accuracy_and_is_evaluated_at_x():
    data = load_digits()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(data.input_shape),
        keras.layers.Flatten(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(ScheduleFreeAdamW(0.01, warmup_steps=20), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(*data.train, batch_size=64, epochs=8, validation_data=data.validation, verbose=0,
                        callbacks=[ScheduleFreeEval()])
    assert history.history["loss"][-1] < 0.35 * history.history["loss"][0]
    assert history.history["val_accuracy"][-1] >= 0.9
    assert model.optimizer.in_eval_mode
    _, accuracy = model.evaluate(*data.test, verbose=0)
    assert accuracy >= 0.9


# The checks every optimizer passes (tests/optimizers/conformance.py).


def make(**kwargs):
    return ScheduleFreeAdamW(**{"learning_rate": 0.01, "warmup_steps": 3, **kwargs})


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("check", BASE_OPTION_CHECKS, ids=lambda check: check.__name__)
def test_honours_base_option(check):
    check(make)


@pytest.mark.backend_agnostic
def test_learning_rate_schedules_equal_rates_set_by_hand():
    check_learning_rate_schedule(make)


def test_sparse_embedding_gradients_equal_dense_ones():
    check_sparse_gradients(make)


def test_mirrored_strategy_fit_equals_single_device():
    check_mirrored_strategy_fit(make(weight_decay=0.01))


@pytest.mark.backend_agnostic
def test_save_load_continues_identically(tmp_path):
    check_save_load_continues(make, tmp_path)


@pytest.mark.backend_agnostic
def test_config_round_trip_conformance():
    check_config_round_trip(make(weight_decay=0.1, r=1.0))


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("argument, value", [("beta_1", 1.0), ("beta_2", -0.1), ("epsilon", -1.0),
                                             ("warmup_steps", -1), ("r", -1.0), ("weight_lr_power", -0.5)])
def test_rejects_bad_hyperparameters(argument, value):
    check_rejects(ScheduleFreeAdamW, argument, value)
