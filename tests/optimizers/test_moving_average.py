"""MovingAverage against a float64 transcription of TensorFlow Addons' `MovingAverage`, its options,
`assign_average_vars`, configuration and save/load with the averages."""

import importlib

import keras
import numpy as np
import pytest
from keras import ops

from tfopt.optimizers.moving_average import MovingAverage

from .conformance import (
    assert_matches_reference,
    check_config_round_trip,
    check_docstring_examples,
    check_rejects,
    check_save_load_continues,
    reference_problem,
)

agnostic = pytest.mark.backend_agnostic
STEPS = 20


def reference(initial, gradients, lr, momentum, average_decay=0.99, num_updates=None, start_step=0,
              dynamic_decay=False):
    """TFA MovingAverage around SGD with momentum, float64: the average starts at the initial weights and after
    each step t (0 first) moves by (1 - d_t) towards the new weights."""
    w = [np.asarray(x, np.float64).copy() for x in initial]
    m = [np.zeros_like(x) for x in w]
    a = [x.copy() for x in w]
    decay = average_decay if num_updates is None else min(average_decay, (1 + num_updates) / (10 + num_updates))
    averages = []
    for t, step in enumerate(gradients):
        if t < start_step:
            d = 0.0
        elif dynamic_decay:
            d = min(decay, (1 + t - start_step) / (10 + t - start_step))
        else:
            d = decay
        for i, g in enumerate(step):
            m[i] = momentum * m[i] - lr * g
            w[i] = w[i] + m[i]
            a[i] = a[i] - (1 - d) * (a[i] - w[i])
        averages.append([x.copy() for x in a])
    return averages


@agnostic
@pytest.mark.parametrize("options", [{}, {"average_decay": 0.9, "start_step": 5}, {"dynamic_decay": True},
                                     {"average_decay": 0.999, "num_updates": 3}])
def test_average_matches_tfa_transcription(options):
    initial, gradients, names = reference_problem(steps=STEPS)
    variables = [keras.Variable(value, name=name) for name, value in zip(names, initial)]
    optimizer = MovingAverage(keras.optimizers.SGD(0.05, momentum=0.9), **options)
    averages = []
    for step in gradients:
        optimizer.apply(step, variables)
        averages.append([ops.convert_to_numpy(a) for a in optimizer._averages])
    assert_matches_reference(averages, reference(initial, gradients, 0.05, 0.9, **options))
    optimizer.assign_average_vars(variables)
    np.testing.assert_array_equal(ops.convert_to_numpy(variables[0]), averages[-1][0])


@agnostic
@pytest.mark.parametrize(("argument", "value", "error"), [("average_decay", 1.5, ValueError),
                                                          ("num_updates", -1, ValueError),
                                                          ("start_step", 0.5, TypeError),
                                                          ("dynamic_decay", "yes", TypeError)])
def test_rejects_invalid_argument(argument, value, error):
    check_rejects(MovingAverage, argument, value, error, optimizer="sgd")


@agnostic
def test_config_round_trip():
    check_config_round_trip(MovingAverage(keras.optimizers.Adam(0.01), average_decay=0.9, num_updates=4,
                                          start_step=2, dynamic_decay=True))


@agnostic
def test_docstring_example_runs():
    check_docstring_examples(importlib.import_module("tfopt.optimizers.moving_average"))


def test_save_load_continues(tmp_path):
    check_save_load_continues(lambda: MovingAverage(keras.optimizers.SGD(0.01, momentum=0.9)), tmp_path, epochs=1)
