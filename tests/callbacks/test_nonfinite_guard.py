"""NonFiniteGuard and `skip_nonfinite`: the issue's dead-training case (one NaN in x through RAdam, Prodigy and
SWA(AGC(Adam)) with SWAEval) stopped or skipped, a skipped step equal to training without that batch, weights
that overflow, the count in the logs and TensorBoard, and the guard gone after `fit`."""

import glob
import os

import keras
import numpy as np
import pytest

from tfopt.callbacks import NonFiniteGuard, SWAEval
from tfopt.optimizers import SWA, AdaptiveGradientClipping, Prodigy, RAdam

BATCH = 16
_rng = np.random.default_rng(0)
X = _rng.normal(size=(4 * BATCH, 4)).astype("float32")
Y = (np.argmax(X[:, :3], axis=1)).astype("int32")
X_NAN = X.copy()
X_NAN[BATCH + 3, 1] = np.nan  # one NaN, in the second batch


def _model(optimizer, seed=1):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu", name="first"),
                              keras.layers.Dense(3, name="last")], name="net")
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _optimizers():
    return {
        "radam": lambda **kw: RAdam(0.01, **kw),
        "prodigy": lambda **kw: Prodigy(**kw),
        "swa_agc_adam": lambda **kw: SWA(AdaptiveGradientClipping(keras.optimizers.Adam(0.01)), average_period=2,
                                         **kw),
    }


def _callbacks(name):
    return [SWAEval()] if name.startswith("swa") else []


def _kernel(model):
    return keras.ops.convert_to_numpy(model.layers[0].kernel)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("name", sorted(_optimizers()))
def test_without_the_guard_one_nan_input_kills_the_first_kernel(name):
    model = _model(_optimizers()[name]())
    model.fit(X_NAN, Y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=_callbacks(name))
    assert np.isnan(_kernel(model)).any()


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("name", sorted(_optimizers()))
def test_raise_stops_fit_naming_the_variable_and_the_step(name):
    model = _model(_optimizers()[name]())
    with pytest.raises(FloatingPointError, match=r"gradient of `net/first/kernel`.*at training step 1 "):
        model.fit(X_NAN, Y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0,
                  callbacks=[*_callbacks(name), NonFiniteGuard("raise")])
    assert np.isfinite(_kernel(model)).all()
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 1


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("name", sorted(_optimizers()))
def test_skip_leaves_the_bad_step_out_and_counts_it(name):
    model = _model(_optimizers()[name]())
    history = model.fit(X_NAN, Y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0,
                        callbacks=[*_callbacks(name), NonFiniteGuard("skip")])
    assert history.history["skipped_steps"] == [1, 2]
    assert np.isfinite(_kernel(model)).all()
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(X[:8], verbose=0)))
    assert np.ptp(probabilities, axis=0).max() > 1e-3  # not the flat 1/3 of a dead model


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("name", sorted(_optimizers()))
def test_skip_nonfinite_equals_training_without_the_bad_batch(name):
    skipped = _model(_optimizers()[name](skip_nonfinite=True))
    skipped.fit(X_NAN, Y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    keep = np.r_[0:BATCH, 2 * BATCH:4 * BATCH]
    reference = _model(_optimizers()[name]())
    reference.fit(X[keep], Y[keep], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    assert skipped.optimizer.skipped_steps == 1
    assert int(keras.ops.convert_to_numpy(skipped.optimizer.iterations)) == 3
    for got, want in zip(skipped.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.backend_agnostic
def test_skip_nonfinite_survives_save_and_load(tmp_path):
    model = _model(RAdam(0.01, skip_nonfinite=True))
    model.fit(X_NAN, Y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.optimizer.skip_nonfinite is True
    assert loaded.optimizer.skipped_steps == 1
    np.testing.assert_array_equal(loaded.predict(X, verbose=0), model.predict(X, verbose=0))
    for got, want in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want))


@pytest.mark.backend_agnostic
def test_a_keras_optimizer_is_guarded_and_left_as_it_was_after_fit(tmp_path):
    model = _model(keras.optimizers.Adam(0.01))
    model.fit(X, Y, batch_size=BATCH, epochs=1, verbose=0)
    count = len(model.optimizer.variables)
    history = model.fit(X_NAN, Y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0,
                        callbacks=[NonFiniteGuard("skip")])
    assert history.history["skipped_steps"] == [1]
    assert len(model.optimizer.variables) == count and "apply" not in vars(model.optimizer)
    # A later fit without the guard trains (NaN again), and the model saves and loads as any other.
    model.fit(X_NAN, Y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    assert np.isnan(_kernel(model)).any()
    model.save(str(tmp_path / "m.keras"))
    keras.models.load_model(str(tmp_path / "m.keras"))


@pytest.mark.backend_agnostic
def test_after_a_raise_the_model_trains_on_without_the_guard():
    model = _model(RAdam(0.01))
    with pytest.raises(FloatingPointError):
        model.fit(X_NAN, Y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[NonFiniteGuard()])
    assert getattr(model.optimizer, "_nonfinite_mode", None) is None
    history = model.fit(X, Y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[NonFiniteGuard()])
    assert history.history["skipped_steps"] == [0, 0]
    assert np.isfinite(_kernel(model)).all()


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("mode", ["skip", "raise"])
def test_a_weight_that_overflows_stops_fit_in_both_modes(mode):
    model = _model(keras.optimizers.SGD(1e38))
    with pytest.raises(FloatingPointError, match=r"value after the update of `net/(first|last)/(kernel|bias)`"):
        model.fit(X * 1e3, Y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[NonFiniteGuard(mode)])


@pytest.mark.backend_agnostic
def test_check_every_reads_the_state_less_often():
    model = _model(RAdam(0.01))
    with pytest.raises(FloatingPointError, match="at training step 1 "):
        # Checked at batch 4 (and every epoch end); the updates froze at step 1.
        model.fit(X_NAN, Y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0,
                  callbacks=[NonFiniteGuard(check_every=4)])
    assert np.isfinite(_kernel(model)).all()


def test_skipped_steps_go_to_tensorboard(tmp_path):
    import tensorflow as tf

    model = _model(RAdam(0.01))
    model.fit(X_NAN, Y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0,
              callbacks=[NonFiniteGuard("skip", log_dir=str(tmp_path))])
    values = []
    for path in glob.glob(os.path.join(str(tmp_path), "nonfinite", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "skipped_steps":
                    values.append(float(tf.make_ndarray(value.tensor)))
    assert values == [1.0, 2.0]


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"mode": "warn"}, ValueError, r"`mode` must be one of 'skip', 'raise'. Received: mode='warn'"),
    ({"check_every": 0}, ValueError, r"`check_every` must be an integer >= 1. Received: check_every=0"),
    ({"check_every": 1.5}, TypeError, r"`check_every` must be an integer >= 1"),
    ({"log_dir": 3}, TypeError, r"`log_dir` must be a non-empty path"),
])
def test_invalid_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        NonFiniteGuard(**kwargs)


@pytest.mark.backend_agnostic
def test_skip_nonfinite_must_be_a_bool():
    with pytest.raises(TypeError, match=r"`skip_nonfinite` must be a bool. Received: skip_nonfinite=1"):
        RAdam(skip_nonfinite=1)


@pytest.mark.backend_agnostic
def test_config_round_trip():
    guard = NonFiniteGuard("skip", check_every=3)
    again = NonFiniteGuard.from_config(guard.get_config())
    assert again.get_config() == guard.get_config() == {"log_dir": None, "update_freq": "epoch", "mode": "skip",
                                                        "check_every": 3}


@pytest.mark.backend_agnostic
def test_fits_with_the_same_guard_reuse_one_traced_function():
    model = _model(RAdam(0.01))
    plain, guarded = [], []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            guarded.append(self.model.train_function)

    for _ in range(2):
        model.fit(X, Y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[NonFiniteGuard(), Spy()])
        plain.append(model.train_function)
    assert guarded[0] is guarded[-1] and plain[0] is plain[1] and plain[0] is not guarded[0]
