"""TensorFlow Addons' cyclical schedules: a triangle between two rates times `scale_fn` of the cycle or the step
(`ScaledCyclicalLearningRate`), and its Triangular, Triangular2 and Exponential forms. The cycle itself is
`CyclicalLearningRate`'s."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.schedules.cyclical_learning_rate import CyclicalLearningRate

SCALE_MODES = ("cycle", "iterations")


def _check_scale_fn(scale_fn):
    if not callable(scale_fn):
        raise TypeError("Argument `scale_fn` must be a callable of one float tensor (the cycle or the step). "
                        f"Received: scale_fn={scale_fn!r} of type {type(scale_fn).__name__}")
    return scale_fn


@keras.saving.register_keras_serializable(package="tfopt")
class ScaledCyclicalLearningRate(CyclicalLearningRate):
    """Cycles the learning rate along symmetric triangles whose height is scaled by a function of the cycle
    number or of the step: TensorFlow Addons' `tfa.optimizers.CyclicalLearningRate`, value for value.

    `CyclicalLearningRate` (PyTorch's names and modes) is the same cycle; use this form to keep TFA code and its
    custom `scale_fn`. With `t` the optimizer step (0 first), `s = step_size`, `lr_0 = initial_learning_rate`
    and `lr_1 = maximal_learning_rate`:

        cycle = floor(1 + t / (2 s))                           (1 for the first cycle)
        x     = | t / s - 2 cycle + 1 |
        lr(t) = lr_0 + (lr_1 - lr_0) * max(0, 1 - x) * scale_fn(cycle if scale_mode == "cycle" else t)

    The rate is `lr_0` at step 0 and `lr_1` at step `s`. `scale_fn` receives a float32 tensor and must use
    `keras.ops` (it runs inside the compiled training step). To save a model with it, make `scale_fn` a
    function registered with `keras.saving.register_keras_serializable` (the Triangular, Triangular2 and
    Exponential subclasses need none).

    Args:
        initial_learning_rate: `lr_0`, the lower bound, a number >= 0.
        maximal_learning_rate: `lr_1`, the upper bound, a number >= `initial_learning_rate`.
        step_size: `s`, steps in half a cycle, an integer >= 1.
        scale_fn: the height's factor, a callable of the cycle number (from 1) or the step.
        scale_mode: "cycle" or "iterations": what `scale_fn` receives. Default "cycle".
        name: optional name (kept for TFA's signature).

    Example:

    >>> schedule = ScaledCyclicalLearningRate(0.1, 0.5, step_size=2, scale_fn=lambda cycle: 1.0 / cycle)
    >>> [round(float(schedule(t)), 6) for t in (0, 1, 2, 3, 4, 6)]
    [0.1, 0.3, 0.5, 0.3, 0.1, 0.3]

    References:
        - Smith, 2017, "Cyclical Learning Rates for Training Neural Networks", https://arxiv.org/abs/1506.01186
    """

    def __init__(self, initial_learning_rate, maximal_learning_rate, step_size, scale_fn, scale_mode="cycle",
                 name=None):
        # Checked under TFA's names first (CyclicalLearningRate would name its own arguments).
        initial = _checks.finite_number("initial_learning_rate", initial_learning_rate)
        maximal = _checks.finite_number("maximal_learning_rate", maximal_learning_rate)
        if maximal < initial:
            raise ValueError(f"Argument `maximal_learning_rate` must be >= `initial_learning_rate` (={initial!r}). "
                             f"Received: maximal_learning_rate={maximal_learning_rate!r}")
        super().__init__(initial, maximal, _checks.integer("step_size", step_size, 1))
        self.scale_fn = _check_scale_fn(scale_fn)
        self.scale_mode = _checks.choice("scale_mode", scale_mode, SCALE_MODES)
        self.name = name

    @property
    def initial_learning_rate(self):
        return self.base_learning_rate

    @property
    def maximal_learning_rate(self):
        return self.max_learning_rate

    @property
    def step_size(self):
        return self.step_size_up

    def _scale(self, t, cycles_done):
        x = cycles_done + 1.0 if self.scale_mode == "cycle" else t
        return ops.cast(self.scale_fn(x), "float32")

    def _tfa_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "maximal_learning_rate": self.maximal_learning_rate,
            "step_size": self.step_size,
            "scale_mode": self.scale_mode,
            "name": self.name,
        }

    def get_config(self):
        return {**self._tfa_config(), "scale_fn": keras.saving.serialize_keras_object(self.scale_fn)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["scale_fn"] = keras.saving.deserialize_keras_object(config["scale_fn"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfopt")
class TriangularCyclicalLearningRate(ScaledCyclicalLearningRate):
    """`ScaledCyclicalLearningRate` with `scale_fn = 1`: every triangle reaches `maximal_learning_rate` (TFA's
    `TriangularCyclicalLearningRate`; `CyclicalLearningRate(..., mode="triangular")`)."""

    def __init__(self, initial_learning_rate, maximal_learning_rate, step_size, scale_mode="cycle", name=None):
        super().__init__(initial_learning_rate, maximal_learning_rate, step_size, scale_fn=lambda x: 1.0,
                         scale_mode=scale_mode, name=name)
        self.mode = "triangular"

    def _scale(self, t, cycles_done):
        return 1.0

    def get_config(self):
        return self._tfa_config()

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfopt")
class Triangular2CyclicalLearningRate(TriangularCyclicalLearningRate):
    """`ScaledCyclicalLearningRate` with `scale_fn(x) = 1 / 2^(x - 1)`: the height halves every cycle (TFA's
    `Triangular2CyclicalLearningRate`; with `scale_mode="cycle"` it is
    `CyclicalLearningRate(..., mode="triangular2")`)."""

    def __init__(self, initial_learning_rate, maximal_learning_rate, step_size, scale_mode="cycle", name=None):
        super().__init__(initial_learning_rate, maximal_learning_rate, step_size, scale_mode=scale_mode, name=name)
        self.mode = "triangular2"

    def _scale(self, t, cycles_done):
        x = cycles_done + 1.0 if self.scale_mode == "cycle" else t
        return ops.power(0.5, x - 1.0)


@keras.saving.register_keras_serializable(package="tfopt")
class ExponentialCyclicalLearningRate(TriangularCyclicalLearningRate):
    """`ScaledCyclicalLearningRate` with `scale_fn(x) = gamma^x`, by default of the step (TFA's
    `ExponentialCyclicalLearningRate`; with `scale_mode="iterations"` it is
    `CyclicalLearningRate(..., mode="exp_range", gamma=gamma)`).

    Args:
        gamma: the factor per step (or per cycle), in (0, 1]. Default 1.0.
    """

    def __init__(self, initial_learning_rate, maximal_learning_rate, step_size, scale_mode="iterations", gamma=1.0,
                 name=None):
        super().__init__(initial_learning_rate, maximal_learning_rate, step_size, scale_mode=scale_mode, name=name)
        self.gamma = _checks.number("gamma", gamma, 0, 1, low_open=True)
        self.mode = "exp_range"

    def _scale(self, t, cycles_done):
        x = cycles_done + 1.0 if self.scale_mode == "cycle" else t
        return ops.power(ops.cast(self.gamma, "float32"), x)

    def get_config(self):
        return {**self._tfa_config(), "gamma": self.gamma}
