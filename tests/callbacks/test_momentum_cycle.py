import doctest
import json
import pathlib

import keras
import numpy as np
import pytest

from tfopt.callbacks import momentum_cycle as momentum_cycle_module
from tfopt.callbacks.momentum_cycle import MomentumCycle

from . import helpers

pytestmark = pytest.mark.backend_agnostic

GOLDEN = json.loads(pathlib.Path(__file__).with_name("torch_golden_momentum.json").read_text())["cases"]


def momenta(cycle, steps):
    return np.array([float(keras.ops.convert_to_numpy(cycle.momentum_at(t))) for t in steps])


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"base_momentum": 0.96}, r"Argument `base_momentum` must be <= `max_momentum`. "
                                  r"Received: base_momentum=0.96, max_momentum=0.95"),
        ({"base_momentum": -0.1}, r"Argument `base_momentum` must be a number in \[0, 1\). "
                                  r"Received: base_momentum=-0.1"),
        ({"max_momentum": 1.0}, r"Argument `max_momentum` must be a number in \[0, 1\). Received: max_momentum=1.0"),
        ({"total_steps": 0}, r"Argument `total_steps` must be an integer >= 1. Received: total_steps=0"),
        ({"pct_start": 1.5}, r"Argument `pct_start` must be a number in \[0, 1\]. Received: pct_start=1.5"),
        ({"anneal_strategy": "exp"}, r"Argument `anneal_strategy` must be one of 'cos', 'linear'. "
                                     r"Received: anneal_strategy='exp'"),
    ],
)
def test_invalid_arguments_are_value_errors(arguments, message):
    with pytest.raises(ValueError, match=message):
        MomentumCycle(**{"total_steps": 10, **arguments})


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"total_steps": None}, r"Argument `total_steps` must be an integer >= 1. Received: total_steps=None"),
        ({"three_phase": "yes"}, r"Argument `three_phase` must be a bool. Received: three_phase='yes'"),
    ],
)
def test_wrongly_typed_arguments_are_type_errors(arguments, message):
    with pytest.raises(TypeError, match=message):
        MomentumCycle(**{"total_steps": 10, **arguments})


def test_config_round_trip():
    cycle = MomentumCycle(0.8, 0.9, total_steps=40, pct_start=0.2, anneal_strategy="linear", three_phase=True)
    config = json.loads(json.dumps(cycle.get_config()))
    rebuilt = MomentumCycle.from_config(config)
    assert rebuilt.get_config() == config
    np.testing.assert_array_equal(momenta(rebuilt, range(45)), momenta(cycle, range(45)))


@pytest.mark.parametrize("case", GOLDEN, ids=lambda case: "-".join(str(v) for v in case["arguments"].values()))
def test_momentum_equals_pytorch_one_cycle(case):
    cycle = MomentumCycle(**case["arguments"])
    steps = range(case["arguments"]["total_steps"])
    np.testing.assert_allclose(momenta(cycle, steps), case["momentum"], rtol=1e-6, atol=1e-7)


def test_momentum_holds_its_final_value_after_the_cycle():
    cycle = MomentumCycle(0.85, 0.95, total_steps=20)
    np.testing.assert_allclose(momenta(cycle, [19, 20, 25, 1000]), [0.95] * 4, rtol=1e-6)


def test_momentum_at_accepts_an_integer_tensor():
    cycle = MomentumCycle(0.85, 0.95, total_steps=20)
    values = keras.ops.convert_to_numpy(cycle.momentum_at(np.arange(20, dtype="int64")))
    assert values.dtype == np.float32
    np.testing.assert_allclose(values, momenta(cycle, range(20)), rtol=1e-6)



def sgd_reference(w, x, y, momenta_per_step, lr, batch_size, nesterov):
    velocity = np.zeros_like(w)
    weights = []
    for step, mu in enumerate(momenta_per_step):
        start = (step * batch_size) % len(x)
        g = helpers.mse_gradient(w, x[start:start + batch_size], y[start:start + batch_size])
        velocity = mu * velocity - lr * g
        w = w + (mu * velocity - lr * g if nesterov else velocity)
        weights.append(w)
    return np.array(weights)


def adam_reference(w, x, y, beta_1_per_step, lr, batch_size, beta_2=0.999, epsilon=1e-7):
    m, v = np.zeros_like(w), np.zeros_like(w)
    weights = []
    for step, b1 in enumerate(beta_1_per_step):
        start = (step * batch_size) % len(x)
        g = helpers.mse_gradient(w, x[start:start + batch_size], y[start:start + batch_size])
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - beta_2)
        alpha = lr * np.sqrt(1 - beta_2 ** (step + 1)) / (1 - b1 ** (step + 1))
        w = w - alpha * m / (np.sqrt(v) + epsilon)
        weights.append(w)
    return np.array(weights)


def fit_with_cycle(optimizer, case, epochs=1):
    total = case["arguments"]["total_steps"]
    x, y = helpers.regression_data(n=4 * total)
    model, w0 = helpers.linear_model(optimizer)
    recorder = helpers.KernelRecorder()
    history = model.fit(x, y, batch_size=4, epochs=epochs, shuffle=False, verbose=0,
                        callbacks=[MomentumCycle(**case["arguments"]), recorder])
    return model, np.array(recorder.kernels), w0, x, y, history


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("case", [GOLDEN[1], GOLDEN[3]], ids=["two_phase", "three_phase"])
def test_sgd_updates_in_fit_follow_the_cycled_momentum(case, nesterov):
    optimizer = keras.optimizers.SGD(0.05, momentum=0.9, nesterov=nesterov)
    model, kernels, w0, x, y, _ = fit_with_cycle(optimizer, case)
    expected = sgd_reference(w0, x, y, case["momentum"], 0.05, 4, nesterov)
    np.testing.assert_allclose(kernels, expected, rtol=1e-5, atol=1e-6)
    # Constant momentum would have ended elsewhere: the test tells the two apart.
    constant = sgd_reference(w0, x, y, [0.9] * len(case["momentum"]), 0.05, 4, nesterov)
    assert np.max(np.abs(constant[-1] - expected[-1])) > 1e-3


@pytest.mark.parametrize("optimizer_class", [keras.optimizers.Adam, keras.optimizers.AdamW])
def test_adam_updates_in_fit_follow_the_cycled_beta_1(optimizer_class):
    case = GOLDEN[3]
    optimizer = optimizer_class(0.01) if optimizer_class is keras.optimizers.Adam else optimizer_class(
        0.01, weight_decay=0.0)
    model, kernels, w0, x, y, _ = fit_with_cycle(optimizer, case)
    expected = adam_reference(w0, x, y, case["momentum"], 0.01, 4)
    np.testing.assert_allclose(kernels, expected, rtol=1e-4, atol=1e-6)
    constant = adam_reference(w0, x, y, [0.9] * len(case["momentum"]), 0.01, 4)
    assert np.max(np.abs(constant[-1] - expected[-1])) > 1e-4



def rmsprop_reference(w, x, y, momenta_per_step, lr, batch_size, rho=0.9, epsilon=1e-7):
    velocity, moment = np.zeros_like(w), np.zeros_like(w)
    weights = []
    for step, mu in enumerate(momenta_per_step):
        start = (step * batch_size) % len(x)
        g = helpers.mse_gradient(w, x[start:start + batch_size], y[start:start + batch_size])
        velocity = rho * velocity + (1 - rho) * g * g
        moment = mu * moment + lr * g / np.sqrt(velocity + epsilon)
        w = w - moment
        weights.append(w)
    return np.array(weights)


def lion_reference(w, x, y, beta_1_per_step, lr, batch_size, beta_2=0.99):
    moment = np.zeros_like(w)
    weights = []
    for step, b1 in enumerate(beta_1_per_step):
        start = (step * batch_size) % len(x)
        g = helpers.mse_gradient(w, x[start:start + batch_size], y[start:start + batch_size])
        w = w - lr * np.sign(b1 * moment + (1 - b1) * g)
        moment = beta_2 * moment + (1 - beta_2) * g
        weights.append(w)
    return np.array(weights)


def test_rmsprop_updates_in_fit_follow_the_cycled_momentum():
    case = GOLDEN[3]
    _, kernels, w0, x, y, _ = fit_with_cycle(keras.optimizers.RMSprop(0.01, momentum=0.9), case)
    np.testing.assert_allclose(kernels, rmsprop_reference(w0, x, y, case["momentum"], 0.01, 4), rtol=1e-4, atol=1e-6)


def test_lion_updates_in_fit_follow_the_cycled_beta_1():
    case = GOLDEN[3]
    _, kernels, w0, x, y, _ = fit_with_cycle(keras.optimizers.Lion(0.01), case)
    np.testing.assert_allclose(kernels, lion_reference(w0, x, y, case["momentum"], 0.01, 4), rtol=1e-5, atol=1e-6)

def test_after_fit_the_optimizer_is_back_to_its_own_update_step():
    case = GOLDEN[1]
    optimizer = keras.optimizers.SGD(0.05, momentum=0.9)
    model, _, _, x, y, history = fit_with_cycle(optimizer, case)
    assert "update_step" not in vars(optimizer) and optimizer.momentum == 0.9
    assert history.history["momentum"] == [pytest.approx(0.9, rel=1e-6)]  # the cycle's end value
    # The next fit without the callback uses the constant momentum again (the train function was rebuilt).
    w = helpers.kernel(model)
    velocity = keras.ops.convert_to_numpy(optimizer.momentums[0]).astype("float64")
    model.fit(x[:4], y[:4], batch_size=4, epochs=1, shuffle=False, verbose=0)
    velocity = 0.9 * velocity - 0.05 * helpers.mse_gradient(w, x[:4], y[:4])
    np.testing.assert_allclose(helpers.kernel(model), w + velocity, rtol=1e-5, atol=1e-6)


def test_two_fits_continue_the_cycle_like_one():
    case = GOLDEN[3]
    total = case["arguments"]["total_steps"]
    x, y = helpers.regression_data(n=4 * total)
    model, w0 = helpers.linear_model(keras.optimizers.SGD(0.05, momentum=0.9))
    recorder = helpers.KernelRecorder()
    cycle = MomentumCycle(**case["arguments"])
    half = 4 * (total // 2)
    model.fit(x[:half], y[:half], batch_size=4, shuffle=False, verbose=0, callbacks=[cycle, recorder])
    model.fit(x[half:], y[half:], batch_size=4, shuffle=False, verbose=0, callbacks=[cycle, recorder])
    expected = sgd_reference(w0, x, y, case["momentum"], 0.05, 4, nesterov=False)
    np.testing.assert_allclose(np.array(recorder.kernels), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "optimizer, message",
    [
        (lambda: keras.optimizers.Adagrad(0.1), r"needs an optimizer with a float `momentum` \(SGD, RMSprop\) or "
                                                r"`beta_1` .* Received: Adagrad, which has neither"),
        (lambda: keras.optimizers.SGD(0.1), r"needs SGD to be created with `momentum` > 0.*Received: momentum=0.0"),
        (lambda: keras.optimizers.Nadam(0.1), r"cannot cycle Nadam's `beta_1`"),
    ],
)
def test_optimizers_it_cannot_cycle_are_refused_at_train_begin(optimizer, message):
    model = helpers.unit_gradient_model(optimizer())
    with pytest.raises(ValueError, match=message):
        model.fit(*helpers.ones(2), verbose=0, callbacks=[MomentumCycle(total_steps=2)])


@pytest.mark.backend_agnostic
def test_docstring_example_runs():
    assert doctest.testmod(momentum_cycle_module).failed == 0
