"""AdaptiveGradientClipping against a float64 transcription, optax.adaptive_grad_clip, and inside fit."""

import doctest
import functools

import keras
import numpy as np
import pytest

import tfopt.optimizers.adaptive_gradient_clipping as agc_module
from tfopt.data import load_digits
from tfopt.optimizers.adaptive_gradient_clipping import AdaptiveGradientClipping

from .conformance import (
    BASE_OPTION_CHECKS,
    check_config_round_trip,
    check_learning_rate_schedule,
    check_mirrored_strategy_fit,
    check_rejects,
    check_save_load_continues,
    check_sparse_gradients,
)

SHAPES = [(3, 3, 2, 4), (4,), (6, 5), (5,)]  # conv kernel, bias, dense kernel, bias


def reference_agc(g, w, clipping, eps):
    """Brock et al. 2021, eq. (3), per output unit (the last axis; the whole tensor for rank <= 1), float64."""
    g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
    axes = None if g.ndim <= 1 else tuple(range(g.ndim - 1))
    g_norm = np.sqrt(np.sum(g * g, axis=axes, keepdims=axes is not None))
    max_norm = clipping * np.maximum(np.sqrt(np.sum(w * w, axis=axes, keepdims=axes is not None)), eps)
    return np.where(g_norm > max_norm, g * max_norm / np.maximum(g_norm, 1e-6), g)


def random_problem(steps, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=s) for s in SHAPES]
    params[1] = np.zeros(SHAPES[1])  # a zero-initialised bias: eps sets its threshold
    return params, [[scale * rng.normal(size=s) for s in SHAPES] for _ in range(steps)]


def run_keras(optimizer, params, grads):
    variables = [keras.Variable(p.astype("float32")) for p in params]
    for step in grads:
        optimizer.apply([g.astype("float32") for g in step], variables)
    return [keras.ops.convert_to_numpy(v) for v in variables]


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"clipping": 0.0}, ValueError, "Argument `clipping` must be a finite number > 0.0. Received: clipping=0.0"),
        ({"clipping": -1.0}, ValueError,
         "Argument `clipping` must be a finite number > 0.0. Received: clipping=-1.0"),
        ({"clipping": "0.1"}, TypeError,
         "Argument `clipping` must be a finite number > 0.0. Received: clipping='0.1' of type str"),
        ({"eps": -1e-3}, ValueError, "Argument `eps` must be a finite number >= 0.0. Received: eps=-0.001"),
        ({"global_clipnorm": 1.0}, ValueError,
         "Argument `global_clipnorm` is not taken by AdaptiveGradientClipping: set it on the wrapped optimizer "
         "instead, e.g. keras.optimizers.Adam(global_clipnorm=...)."),
    ],
)
def test_invalid_arguments_raise_naming_them(kwargs, error, message):
    with pytest.raises(error) as info:
        AdaptiveGradientClipping("sgd", **kwargs)
    assert str(info.value) == message


@pytest.mark.backend_agnostic
def test_wrapping_something_that_is_not_an_optimizer_raises_type_error():
    with pytest.raises(TypeError, match="Argument `optimizer` must be a keras.optimizers.Optimizer instance"):
        AdaptiveGradientClipping(keras.losses.MeanSquaredError())


@pytest.mark.backend_agnostic
def test_config_round_trip_and_learning_rate_forwarding():
    optimizer = AdaptiveGradientClipping(keras.optimizers.SGD(0.2, momentum=0.9), clipping=0.05, eps=1e-2)
    config = optimizer.get_config()
    assert config["clipping"] == 0.05 and config["eps"] == 1e-2
    again = AdaptiveGradientClipping.from_config(config)
    assert again.get_config() == config and again.inner_optimizer.momentum == 0.9
    again.learning_rate = 0.5
    assert float(again.inner_optimizer.learning_rate) == pytest.approx(0.5)


@pytest.mark.backend_agnostic
def test_docstring_example_runs():
    assert doctest.testmod(agc_module).failed == 0


@pytest.mark.backend_agnostic
def test_clips_each_dense_unit_separately():
    # Kernel columns have norms 5 and 1; with clipping 0.1 the gradient columns may have norms 0.5 and 0.1.
    kernel = keras.Variable(np.array([[3.0, 0.0], [4.0, 1.0]], "float32"))
    gradient = np.array([[6.0, 0.0], [8.0, 0.05]], "float32")  # column norms 10 (clipped) and 0.05 (kept)
    AdaptiveGradientClipping(keras.optimizers.SGD(1.0), clipping=0.1).apply([gradient], [kernel])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(kernel), [[2.7, 0.0], [3.6, 0.95]], rtol=1e-6)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("clipping, eps", [(0.01, 1e-3), (0.05, 1e-2), (1.0, 1e-3)])
def test_matches_reference_around_momentum_sgd_over_100_steps(clipping, eps):
    params, grads = random_problem(100, scale=0.3)
    got = run_keras(AdaptiveGradientClipping(keras.optimizers.SGD(0.05, momentum=0.9), clipping, eps), params, grads)
    weights = [p.copy() for p in params]
    velocity = [np.zeros_like(p) for p in params]
    for step in grads:
        for i, g in enumerate(step):
            velocity[i] = 0.9 * velocity[i] - 0.05 * reference_agc(g, weights[i], clipping, eps)
            weights[i] = weights[i] + velocity[i]
    for a, b in zip(got, weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.backend_agnostic
def test_matches_optax_adaptive_grad_clip_chained_with_sgd():
    # optax infers the unit axes from the rank; for rank 2 (IO) and rank 4 (HWIO) kernels they are all but the
    # last, as here.
    import jax.numpy as jnp
    import optax

    params, grads = random_problem(100, seed=1, scale=0.3)
    solver = optax.chain(optax.adaptive_grad_clip(0.02, eps=1e-3), optax.sgd(0.05, momentum=0.9))
    jparams = [jnp.asarray(p, jnp.float32) for p in params]
    state = solver.init(jparams)
    for step in grads:
        updates, state = solver.update([jnp.asarray(g, jnp.float32) for g in step], state, jparams)
        jparams = optax.apply_updates(jparams, updates)
    got = run_keras(AdaptiveGradientClipping(keras.optimizers.SGD(0.05, momentum=0.9), 0.02), params, grads)
    for a, b in zip(got, jparams):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-6)


@pytest.mark.backend_agnostic
def test_threshold_follows_the_inner_loss_scale_factor():
    params, grads = random_problem(20, seed=2)
    plain = run_keras(AdaptiveGradientClipping(keras.optimizers.SGD(0.1), 0.01), params, grads)
    scaled = run_keras(AdaptiveGradientClipping(keras.optimizers.SGD(0.1, loss_scale_factor=64.0), 0.01), params,
                       [[64.0 * g for g in step] for step in grads])
    for a, b in zip(scaled, plain):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.backend_agnostic
def test_digits_classifier_trains_with_clipped_momentum_sgd():
    data = load_digits()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(data.input_shape),
        keras.layers.Flatten(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(AdaptiveGradientClipping(keras.optimizers.SGD(0.2, momentum=0.9), clipping=0.1),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(*data.train, batch_size=64, epochs=8, verbose=0)
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]
    _, accuracy = model.evaluate(*data.test, verbose=0)
    assert accuracy >= 0.9


# The checks every optimizer passes (tests/optimizers/conformance.py). The base options go to the inner optimizer,
# which applies them after AGC; the checks compare against the same options applied to unclipped gradients by
# hand, so they run with a threshold no gradient reaches (clipping=1e3), and the binding case is tested above.


def make(**kwargs):
    return AdaptiveGradientClipping(keras.optimizers.SGD(**{"learning_rate": 0.05, "momentum": 0.9, **kwargs}),
                                    clipping=1e3)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("check", BASE_OPTION_CHECKS, ids=lambda c: c.__name__)
def test_honours_base_option_of_the_inner_optimizer(check):
    check(make)


@pytest.mark.backend_agnostic
def test_learning_rate_schedules_equal_rates_set_by_hand():
    check_learning_rate_schedule(make)


def test_sparse_embedding_gradients_equal_dense_ones():
    check_sparse_gradients(lambda: AdaptiveGradientClipping(keras.optimizers.SGD(0.05, momentum=0.9), 0.01))


def test_mirrored_strategy_fit_equals_single_device_with_binding_clipping():
    # Clipping binds here (the regression gradients are far above 1% of the weights): the factors are computed
    # from the gradient summed over replicas, so two replicas give the single-device result.
    check_mirrored_strategy_fit(AdaptiveGradientClipping(keras.optimizers.SGD(0.1, momentum=0.9), clipping=0.01))


@pytest.mark.backend_agnostic
def test_save_load_continues_identically_conformance(tmp_path):
    check_save_load_continues(lambda: AdaptiveGradientClipping(keras.optimizers.Adam(0.01), 0.01), tmp_path)


@pytest.mark.backend_agnostic
def test_config_round_trip_conformance():
    check_config_round_trip(make())


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("argument, value", [("clipping", 0.0), ("clipping", -0.5), ("eps", -1.0)])
def test_rejects_bad_hyperparameters(argument, value):
    check_rejects(functools.partial(AdaptiveGradientClipping, "sgd"), argument, value)
