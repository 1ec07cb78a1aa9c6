"""ScheduleFreeSGD against a float64 transcription of the reference implementation, optax, and in `fit`."""

import doctest

import keras
import numpy as np
import pytest

import tfopt.optimizers.schedule_free_sgd as sgd_module
from tfopt.callbacks.schedule_free_eval import ScheduleFreeEval
from tfopt.data import load_digits
from tfopt.optimizers.schedule_free_sgd import ScheduleFreeSGD

from .conformance import (
    BASE_OPTION_CHECKS,
    check_config_round_trip,
    check_learning_rate_schedule,
    check_mirrored_strategy_fit,
    check_rejects,
    check_save_load_continues,
    check_sparse_gradients,
)


def reference_schedule_free_sgd(params, grads, lr, beta_1=0.9, warmup_steps=0, r=0.0, weight_lr_power=2.0,
                                weight_decay=0.0):
    """facebookresearch/schedule_free `SGDScheduleFree.step` over per-step gradient lists, in float64.

    `lr` is a number or a function of the step index k. Returns (y, z, x).
    """
    y = [np.asarray(p, np.float64).copy() for p in params]
    z = [p.copy() for p in y]
    lr_max, weight_sum = -1.0, 0.0
    for k, step_grads in enumerate(grads):
        sched = (k + 1) / warmup_steps if k < warmup_steps else 1.0
        lr_k = (lr(k) if callable(lr) else lr) * sched
        lr_max = max(lr_max, lr_k)
        weight = (k + 1) ** r * lr_max**weight_lr_power
        weight_sum += weight
        ckp1 = weight / weight_sum if weight_sum else 0.0
        for i, g in enumerate(step_grads):
            d = np.asarray(g, np.float64) + weight_decay * y[i]
            y[i] = (1 - ckp1) * y[i] + ckp1 * z[i] + lr_k * (beta_1 * (1 - ckp1) - 1) * d
            z[i] = z[i] - lr_k * d
    return y, z, [(yi - (1 - beta_1) * zi) / beta_1 for yi, zi in zip(y, z)]


def random_problem(steps, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=(4, 3)), rng.normal(size=(3,))]
    return params, [[rng.normal(size=p.shape) for p in params] for _ in range(steps)]


def run_keras(optimizer, params, grads):
    variables = [keras.Variable(p.astype("float32")) for p in params]
    for step_grads in grads:
        optimizer.apply([g.astype("float32") for g in step_grads], variables)
    return variables


def assert_close(actual, expected, rtol=1e-5, atol=1e-6):
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), e, rtol=rtol, atol=atol)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"beta_1": 0.0}, "Argument `beta_1` must be a number in (0.0, 1.0). Received: beta_1=0.0"),
        ({"beta_1": 1.5}, "Argument `beta_1` must be a number in (0.0, 1.0). Received: beta_1=1.5"),
        ({"warmup_steps": -3}, "Argument `warmup_steps` must be an integer >= 0. Received: warmup_steps=-3"),
        ({"r": -1.0}, "Argument `r` must be a finite number >= 0.0. Received: r=-1.0"),
        ({"weight_lr_power": float("nan")},
         "Argument `weight_lr_power` must be a finite number >= 0.0. Received: weight_lr_power=nan"),
        ({"weight_decay": -1.0}, "Argument `weight_decay` must be a finite number >= 0.0. Received: weight_decay=-1.0"),
        ({"learning_rate": float("inf")},
         "Argument `learning_rate` must be a finite number >= 0, a `LearningRateSchedule` or a callable. "
         "Received: learning_rate=inf"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_them(kwargs, message):
    with pytest.raises(ValueError) as info:
        ScheduleFreeSGD(**kwargs)
    assert str(info.value) == message


@pytest.mark.backend_agnostic
def test_non_number_beta_raises_type_error():
    with pytest.raises(TypeError, match="Argument `beta_1` must be a number in"):
        ScheduleFreeSGD(beta_1="0.9")


@pytest.mark.backend_agnostic
def test_config_round_trip():
    optimizer = ScheduleFreeSGD(0.5, beta_1=0.95, warmup_steps=3, r=1.0, weight_lr_power=0.5, weight_decay=1e-4)
    config = optimizer.get_config()
    assert {k: config[k] for k in ("learning_rate", "beta_1", "warmup_steps", "r", "weight_lr_power")} == {
        "learning_rate": 0.5, "beta_1": 0.95, "warmup_steps": 3, "r": 1.0, "weight_lr_power": 0.5}
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(again, ScheduleFreeSGD) and again.get_config() == config


@pytest.mark.backend_agnostic
def test_docstring_example_runs():
    assert doctest.testmod(sgd_module).failed == 0


@pytest.mark.backend_agnostic
def test_two_steps_by_hand():
    # Step 0: c = 1, y1 = z1 = 1 - 0.5 * 2 = 0. Step 1: c = 1/2, z2 = 0 - 0.5 * 4 = -2,
    # y2 = 0.5 * 0 + 0.5 * 0 + 0.5 * (0.9 * 0.5 - 1) * 4 = -1.1, x2 = (y2 - 0.1 z2) / 0.9 = -1.
    optimizer = ScheduleFreeSGD(0.5)
    (w,) = run_keras(optimizer, [np.array([1.0])], [[np.array([2.0])], [np.array([4.0])]])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(w), [-1.1], rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(optimizer._z[0]), [-2.0], rtol=1e-6)
    optimizer.swap_to_eval([w])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(w), [-1.0], rtol=1e-6)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"warmup_steps": 25, "r": 0.5, "weight_decay": 0.01},
        {"beta_1": 0.98, "warmup_steps": 10, "weight_lr_power": 1.0, "r": 2.0},
    ],
)
def test_matches_float64_reference_over_150_steps(kwargs):
    params, grads = random_problem(150)
    optimizer = ScheduleFreeSGD(0.05, **kwargs)
    variables = run_keras(optimizer, params, grads)
    y, z, x = reference_schedule_free_sgd(params, grads, 0.05, **kwargs)
    assert_close(variables, y)
    assert_close(list(optimizer._z), z)
    optimizer.swap_to_eval(variables)
    assert_close(variables, x)


@pytest.mark.backend_agnostic
def test_cosine_schedule_on_top_matches_reference():
    params, grads = random_problem(100, seed=5)
    schedule = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=100)
    variables = run_keras(ScheduleFreeSGD(schedule, warmup_steps=10), params, grads)
    y, _, _ = reference_schedule_free_sgd(params, grads, lambda k: 0.1 * 0.5 * (1 + np.cos(np.pi * k / 100)),
                                          warmup_steps=10)
    assert_close(variables, y)


@pytest.mark.backend_agnostic
def test_matches_optax_schedule_free_sgd():
    import jax.numpy as jnp
    import optax

    params, grads = random_problem(150, seed=6)
    solver = optax.contrib.schedule_free_sgd(0.05, b1=0.9, weight_decay=0.01, weight_lr_power=2.0)
    jparams = [jnp.asarray(p, jnp.float32) for p in params]
    state = solver.init(jparams)
    for step_grads in grads:
        updates, state = solver.update([jnp.asarray(g, jnp.float32) for g in step_grads], state, jparams)
        jparams = optax.apply_updates(jparams, updates)
    optimizer = ScheduleFreeSGD(0.05, weight_decay=0.01)
    variables = run_keras(optimizer, params, grads)
    assert_close(variables, [np.asarray(p) for p in jparams], atol=1e-5)
    optimizer.swap_to_eval(variables)
    eval_params = optax.contrib.schedule_free_eval_params(state, jparams)
    assert_close(variables, [np.asarray(p) for p in eval_params], atol=1e-5)


@pytest.mark.backend_agnostic
def test_digits_classifier_trains_to_high_accuracy():
    data = load_digits()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(data.input_shape),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(ScheduleFreeSGD(0.5, warmup_steps=20), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(*data.train, batch_size=64, epochs=6, verbose=0, callbacks=[ScheduleFreeEval()])
    assert history.history["loss"][-1] < 0.3 * history.history["loss"][0]
    _, accuracy = model.evaluate(*data.test, verbose=0)
    assert accuracy >= 0.9


# The checks every optimizer passes (tests/optimizers/conformance.py).


def make(**kwargs):
    return ScheduleFreeSGD(**{"learning_rate": 0.05, "warmup_steps": 2, **kwargs})


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
@pytest.mark.parametrize("argument, value", [("beta_1", 0.0), ("warmup_steps", -2), ("r", -1.0),
                                             ("weight_lr_power", -0.5), ("weight_decay", -0.01)])
def test_rejects_bad_hyperparameters(argument, value):
    check_rejects(ScheduleFreeSGD, argument, value)
