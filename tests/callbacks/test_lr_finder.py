import doctest

import keras
import numpy as np
import pytest

import tfopt
from tfopt.callbacks import lr_finder as lr_finder_module
from tfopt.callbacks.lr_finder import LRFinder, find_learning_rate

from . import helpers


@pytest.fixture(scope="module")
def digits():
    return tfopt.load_digits(seed=0)


def digits_model(optimizer, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10),
    ])
    # Logits, so the loss is unbounded when training diverges (a softmax output's clipped loss saturates).
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def snapshot(model):
    return ([np.array(w) for w in model.get_weights()],
            [np.array(keras.ops.convert_to_numpy(v)) for v in model.optimizer.variables])


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "arguments, error, message",
    [
        ({"num_steps": 0}, ValueError, r"Argument `num_steps` must be an integer >= 2. Received: num_steps=0"),
        ({"num_steps": -5}, ValueError, r"Argument `num_steps` must be an integer >= 2. Received: num_steps=-5"),
        ({"num_steps": 10.0}, TypeError, r"Argument `num_steps` must be an integer >= 2. Received: num_steps=10.0 "
                                         r"of type float"),
        ({"min_learning_rate": 1.0, "max_learning_rate": 1.0}, ValueError,
         r"Argument `max_learning_rate` must be greater than `min_learning_rate`. "
         r"Received: min_learning_rate=1.0, max_learning_rate=1.0"),
        ({"min_learning_rate": 0.0}, ValueError,
         r"Argument `min_learning_rate` must be a finite number > 0. Received: min_learning_rate=0.0"),
        ({"smoothing": 1.0}, ValueError, r"Argument `smoothing` must be a number in \[0, 1\). Received: smoothing=1.0"),
        ({"smoothing": -0.1}, ValueError,
         r"Argument `smoothing` must be a number in \[0, 1\). Received: smoothing=-0.1"),
        ({"stop_factor": 1}, ValueError, r"Argument `stop_factor` must be a number in \(1, inf\). Received: "
                                         r"stop_factor=1"),
    ],
)
def test_invalid_arguments(arguments, error, message):
    with pytest.raises(error, match=message):
        LRFinder(**arguments)


@pytest.mark.backend_agnostic
def test_config_round_trip():
    finder = LRFinder(1e-5, 3.0, num_steps=50, smoothing=0.9, stop_factor=5)
    assert LRFinder.from_config(finder.get_config()).get_config() == finder.get_config()


@pytest.mark.backend_agnostic
def test_sweep_is_exponential_from_min_to_max():
    finder = LRFinder(1e-4, 1.0, num_steps=5)
    np.testing.assert_allclose([finder.learning_rate_at(i) for i in range(5)], [1e-4, 1e-3, 1e-2, 1e-1, 1.0],
                               rtol=1e-12)


@pytest.mark.backend_agnostic
def test_each_step_trains_at_its_rate_and_the_model_is_restored():
    """SGD on the unit-gradient model moves the weight by exactly lr_i at step i."""
    model = helpers.unit_gradient_model(keras.optimizers.SGD(0.5))
    model.layers[0].kernel.assign(np.ones((1, 1), "float32"))  # the loss (the weight) stays positive
    recorder = helpers.KernelRecorder()
    finder = LRFinder(1e-3, 1e-1, num_steps=5, smoothing=0.5)
    model.fit(*helpers.ones(8), batch_size=1, shuffle=False, verbose=0, callbacks=[finder, recorder])
    assert len(recorder.kernels) == 5  # it stopped itself after num_steps batches
    moves = -np.diff(np.concatenate([[1.0], np.array(recorder.kernels).ravel()]))
    lrs = [finder.learning_rate_at(i) for i in range(5)]
    np.testing.assert_allclose(moves, lrs, rtol=1e-5, atol=2e-7)  # float32 differences of weights near 1
    assert finder.history["lrs"] == lrs
    # Each raw loss is that batch's loss, the weight before the step: w_i = 1 - (lr_0 + ... + lr_{i-1}).
    np.testing.assert_allclose(finder.history["raw_losses"], 1.0 - np.concatenate([[0.0], np.cumsum(lrs)[:-1]]),
                               rtol=1e-6)
    assert helpers.kernel(model).item() == 1.0
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == 0.5
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0


@pytest.mark.backend_agnostic
def test_smoothing_is_the_bias_corrected_exponential_average():
    model = helpers.unit_gradient_model(keras.optimizers.SGD(0.5))
    finder = LRFinder(1e-3, 1e-1, num_steps=6, smoothing=0.7)
    model.fit(*helpers.ones(6), batch_size=1, shuffle=False, verbose=0, callbacks=[finder])
    raw = np.array(finder.history["raw_losses"])
    average, expected = 0.0, []
    for i, loss in enumerate(raw):
        average = 0.7 * average + 0.3 * loss
        expected.append(average / (1 - 0.7 ** (i + 1)))
    np.testing.assert_allclose(finder.history["losses"], expected, rtol=1e-12)


@pytest.mark.backend_agnostic
def test_on_digits_the_model_and_optimizer_are_bit_identical_afterwards(digits, tmp_path):
    model = digits_model(keras.optimizers.Adam(1e-3))
    model.fit(*digits.train, batch_size=64, epochs=1, verbose=0)  # non-zero Adam moments and iterations
    before = snapshot(model)
    finder = find_learning_rate(model, digits.train, min_learning_rate=1e-5, max_learning_rate=1.0, num_steps=40,
                                batch_size=32)
    after = snapshot(model)
    for a, b in zip(before[0] + before[1], after[0] + after[1]):
        np.testing.assert_array_equal(a, b)
    assert len(finder.history["lrs"]) == 40
    suggestion = finder.suggestion()
    assert 1e-5 <= suggestion <= 1.0
    # The loss does fall over the sweep on this model, and the suggestion sits where it falls.
    losses = np.array(finder.history["losses"])
    assert losses.min() < 0.9 * losses[0]
    index = finder.history["lrs"].index(suggestion)
    assert losses[index + 1] < losses[index - 1]
    path = finder.plot(tmp_path / "lr.png")
    with open(path, "rb") as png:
        assert png.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.backend_agnostic
def test_stops_early_when_the_loss_diverges(digits):
    model = digits_model(keras.optimizers.SGD(0.01))
    finder = find_learning_rate(model, digits.train, min_learning_rate=1e-3, max_learning_rate=1e4, num_steps=60,
                                batch_size=32)
    steps = len(finder.history["losses"])
    assert steps < 60
    losses = np.array(finder.history["losses"])
    last = losses[-1]
    assert not np.isfinite(last) or last > 4 * losses[:-1].min()
    assert np.all(losses[:-1] <= 4 * np.minimum.accumulate(losses[:-1]))


@pytest.mark.backend_agnostic
def test_an_optimizer_with_a_schedule_is_refused():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.9)
    model = helpers.unit_gradient_model(keras.optimizers.SGD(schedule))
    with pytest.raises(ValueError, match=r"compile the model with a float learning rate for the range test"):
        find_learning_rate(model, helpers.ones(4), num_steps=4, batch_size=1)


@pytest.mark.backend_agnostic
def test_suggestion_is_the_steepest_descent_inside_the_trimmed_window():
    finder = LRFinder(1e-4, 1.0, num_steps=41)
    lrs = [finder.learning_rate_at(i) for i in range(41)]
    # A loss that falls fastest at lr = 1e-2 (log10 = -2) and is steeper still at the very start (noise).
    x = np.log10(lrs)
    losses = 1.0 - np.tanh(3.0 * (x + 2.0))
    losses[:3] = [5.0, 1.0, 3.0]
    finder.history = {"lrs": lrs, "losses": list(losses), "raw_losses": list(losses)}
    assert finder.suggestion() == pytest.approx(1e-2)


@pytest.mark.backend_agnostic
def test_suggestion_ignores_a_noisy_batch_and_what_follows_the_lowest_loss():
    finder = LRFinder(1e-4, 1.0, num_steps=81)
    lrs = [finder.learning_rate_at(i) for i in range(81)]
    x = np.log10(lrs)
    losses = 1.0 - np.tanh(2.0 * (x + 2.0))  # falls fastest at lr = 1e-2
    losses[20] -= 0.3  # one noisy batch at lr = 1e-3: a steep step down and up again
    after = x > -0.5  # past the lowest loss: a jump up, then a steeper fall that stays above the minimum
    losses[after] = 2.5 - 4.0 * (x[after] + 0.5)
    finder.history = {"lrs": lrs, "losses": list(losses), "raw_losses": list(losses)}
    plain = np.gradient(losses[10:76], x[10:76])
    assert lrs[10 + int(np.argmin(plain))] > 0.3  # the unaveraged, untrimmed gradient picks the late fall
    assert finder.suggestion() == pytest.approx(1e-2)


@pytest.mark.backend_agnostic
def test_minimum_suggestion_is_a_tenth_of_the_lowest_loss_rate():
    finder = LRFinder(1e-4, 1.0, num_steps=41)
    lrs = [finder.learning_rate_at(i) for i in range(41)]
    x = np.log10(lrs)
    losses = (x + 1.0) ** 2  # lowest at lr = 0.1
    losses[-3:] = -1.0  # lower still, but inside the skipped end
    finder.history = {"lrs": lrs, "losses": list(losses), "raw_losses": list(losses)}
    assert finder.suggestion(method="minimum") == pytest.approx(1e-2)
    with pytest.raises(ValueError, match="`method` must be one of 'steepest', 'minimum'. Received: method='max'"):
        finder.suggestion(method="max")


@pytest.mark.backend_agnostic
def test_suggestion_needs_three_points():
    finder = LRFinder()
    finder.history = {"lrs": [1e-3, 1e-2], "losses": [1.0, 0.5], "raw_losses": [1.0, 0.5]}
    with pytest.raises(ValueError, match=r"fewer than 3 finite losses.*Recorded: 2"):
        finder.suggestion()


@pytest.mark.backend_agnostic
def test_data_of_the_wrong_kind_is_a_type_error():
    model = helpers.unit_gradient_model(keras.optimizers.SGD(0.1))
    with pytest.raises(TypeError, match=r"Argument `data` must be a tf.data.Dataset or a tuple \(x, y\) of arrays. "
                                        r"Received: data of type ndarray"):
        find_learning_rate(model, np.ones((4, 1)))


def test_a_tf_data_dataset_is_repeated_for_the_sweep(digits):
    model = digits_model(keras.optimizers.Adam(1e-3))
    dataset = tfopt.make_dataset(*digits.train, batch_size=64)
    model.fit(dataset.take(2), shuffle=False, verbose=0)  # builds the optimizer, so there is state to restore
    before = snapshot(model)
    finder = find_learning_rate(model, dataset, min_learning_rate=1e-5, max_learning_rate=1e-1, num_steps=30)
    assert len(finder.history["lrs"]) == 30  # more steps than one pass over a small dataset would give
    after = snapshot(model)
    assert len(after[1]) == len(before[1]) > 2
    for a, b in zip(before[0] + before[1], after[0] + after[1]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.backend_agnostic
def test_docstring_example_runs():
    assert doctest.testmod(lr_finder_module).failed == 0
