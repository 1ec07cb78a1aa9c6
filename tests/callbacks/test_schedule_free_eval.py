"""ScheduleFreeEval and the optimizers' swap_to_eval / swap_to_train: x outside training, y inside."""

import doctest

import keras
import numpy as np
import pytest

import tfopt.callbacks.schedule_free_eval as schedule_free_eval_module
from tfopt.callbacks.schedule_free_eval import ScheduleFreeEval, find_schedule_free_optimizer
from tfopt.optimizers.schedule_free_adamw import ScheduleFreeAdamW
from tfopt.optimizers.schedule_free_sgd import ScheduleFreeSGD

pytestmark = pytest.mark.backend_agnostic

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 5)).astype("float32")
T = (X @ RNG.normal(size=(5, 2)) + 0.1 * RNG.normal(size=(64, 2))).astype("float32")


def _model(optimizer, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(2)])
    model.compile(optimizer, loss="mse")
    return model


def _weights(model):
    return [np.asarray(w, np.float64) for w in model.get_weights()]


def _z(optimizer):
    return [keras.ops.convert_to_numpy(z).astype(np.float64) for z in optimizer._z]


def _fit(model, epochs, callbacks=(), **kwargs):
    return model.fit(X, T, batch_size=16, epochs=epochs, shuffle=False, verbose=0, callbacks=list(callbacks),
                     **kwargs)


def test_docstring_example_runs():
    assert doctest.testmod(schedule_free_eval_module).failed == 0


def test_swap_to_eval_puts_x_in_and_swap_to_train_puts_y_back():
    model = _model(ScheduleFreeAdamW(0.02, beta_1=0.9))
    _fit(model, 2)
    optimizer = model.optimizer
    y, z = _weights(model), _z(optimizer)
    optimizer.swap_to_eval(model.trainable_variables)
    assert optimizer.in_eval_mode
    for got, yi, zi in zip(_weights(model), y, z):
        np.testing.assert_allclose(got, (yi - 0.1 * zi) / 0.9, rtol=1e-5, atol=1e-6)
    optimizer.swap_to_eval(model.trainable_variables)  # already at x: nothing moves
    for got, yi, zi in zip(_weights(model), y, z):
        np.testing.assert_allclose(got, (yi - 0.1 * zi) / 0.9, rtol=1e-5, atol=1e-6)
    optimizer.swap_to_train(model.trainable_variables)
    assert not optimizer.in_eval_mode
    for got, yi in zip(_weights(model), y):
        np.testing.assert_allclose(got, yi, rtol=1e-5, atol=1e-6)


def test_swapping_before_the_first_step_changes_nothing():
    model = _model(ScheduleFreeSGD(0.1))
    model.optimizer.build(model.trainable_variables)
    before = _weights(model)
    model.optimizer.swap_to_eval(model.trainable_variables)
    for got, want in zip(_weights(model), before):
        np.testing.assert_array_equal(got, want)
    model.optimizer.swap_to_train(model.trainable_variables)
    _fit(model, 1)
    assert np.abs(_weights(model)[0] - before[0]).max() > 1e-3


def test_swap_rejects_variables_the_optimizer_does_not_train():
    model = _model(ScheduleFreeSGD(0.1))
    _fit(model, 1)
    stranger = keras.Variable(np.zeros(3, "float32"), name="stranger")
    with pytest.raises(ValueError, match="Argument `variables` must hold only variables this optimizer trains"):
        model.optimizer.swap_to_eval([stranger])


def test_fit_with_callback_ends_at_x_and_matches_training_without_swaps():
    plain = _model(ScheduleFreeAdamW(0.02, warmup_steps=4))
    _fit(plain, 3)
    plain.optimizer.swap_to_eval(plain.trainable_variables)
    swapped = _model(ScheduleFreeAdamW(0.02, warmup_steps=4))
    _fit(swapped, 3, callbacks=[ScheduleFreeEval()], validation_data=(X[:16], T[:16]))
    assert swapped.optimizer.in_eval_mode
    for got, want in zip(_weights(swapped), _weights(plain)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_validation_during_fit_is_computed_at_x():
    model = _model(ScheduleFreeSGD(0.05, warmup_steps=2))
    history = _fit(model, 2, callbacks=[ScheduleFreeEval()], validation_data=(X[:32], T[:32]))
    # After fit the model holds x, the point the last validation used.
    assert model.evaluate(X[:32], T[:32], verbose=0) == pytest.approx(history.history["val_loss"][-1], rel=1e-5)
    model.optimizer.swap_to_train(model.trainable_variables)
    assert model.evaluate(X[:32], T[:32], verbose=0) != pytest.approx(history.history["val_loss"][-1], rel=1e-3)


def test_a_second_fit_continues_from_y():
    once = _model(ScheduleFreeAdamW(0.02))
    _fit(once, 4, callbacks=[ScheduleFreeEval()])
    twice = _model(ScheduleFreeAdamW(0.02))
    _fit(twice, 2, callbacks=[ScheduleFreeEval()])
    _fit(twice, 2, callbacks=[ScheduleFreeEval()])
    for got, want in zip(_weights(twice), _weights(once)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_model_saved_at_x_loads_in_eval_mode_and_continues_training_identically(tmp_path):
    model = _model(ScheduleFreeAdamW(0.02, warmup_steps=3))
    _fit(model, 2, callbacks=[ScheduleFreeEval()])
    path = str(tmp_path / "sf.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.optimizer.in_eval_mode
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0), rtol=1e-6, atol=1e-6)
    _fit(model, 2, callbacks=[ScheduleFreeEval()])
    _fit(loaded, 2, callbacks=[ScheduleFreeEval()])
    for got, want in zip(_weights(loaded), _weights(model)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_checkpoint_listed_after_the_callback_saves_x(tmp_path):
    path = str(tmp_path / "best.keras")
    model = _model(ScheduleFreeSGD(0.05))
    _fit(model, 2, callbacks=[ScheduleFreeEval(), keras.callbacks.ModelCheckpoint(path)])
    saved = keras.models.load_model(path)
    for got, want in zip(_weights(saved), _weights(model)):
        np.testing.assert_array_equal(got, want)
    assert model.optimizer.in_eval_mode


def test_callback_finds_the_optimizer_inside_a_loss_scale_optimizer():
    inner = ScheduleFreeSGD(0.05)
    wrapped = keras.optimizers.LossScaleOptimizer(inner)
    assert find_schedule_free_optimizer(wrapped) is inner
    model = _model(wrapped)
    _fit(model, 1, callbacks=[ScheduleFreeEval()])
    assert inner.in_eval_mode


def test_callback_without_a_schedule_free_optimizer_raises():
    model = _model("adam")
    with pytest.raises(ValueError, match="ScheduleFreeEval needs a model compiled with a Schedule-Free optimizer"):
        _fit(model, 1, callbacks=[ScheduleFreeEval()])


def test_predict_with_callback_uses_x():
    model = _model(ScheduleFreeAdamW(0.02))
    _fit(model, 2)
    y_prediction = model.predict(X, verbose=0)
    x_prediction = model.predict(X, verbose=0, callbacks=[ScheduleFreeEval()])
    assert model.optimizer.in_eval_mode
    np.testing.assert_allclose(x_prediction, model.predict(X, verbose=0), rtol=1e-6)
    assert np.abs(x_prediction - y_prediction).max() > 1e-4
