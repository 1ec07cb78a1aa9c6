"""Learning-rate schedules: `keras.optimizers.schedules.LearningRateSchedule` subclasses in keras.ops.

Each is a pure function of the optimizer step (no state), returns float32, runs under `jit` on every backend and
survives `model.save` / `keras.models.load_model` inside an optimizer.

Public objects:
    LinearDecay: linear decay to an end value, then constant.
    StepDecay: multiply by `gamma` every `step_size` steps.
    Warmup: a linear or exponential warm-up in front of any schedule.
    OneCycle: the one-cycle policy, equal to PyTorch's `OneCycleLR`.
    CyclicalLearningRate: triangular / triangular2 / exp_range cycles, equal to PyTorch's `CyclicLR`.
    ScaledCyclicalLearningRate, TriangularCyclicalLearningRate, Triangular2CyclicalLearningRate,
        ExponentialCyclicalLearningRate: TensorFlow Addons' cyclical schedules (`scale_fn`, `scale_mode`).
    WarmupStableDecay: warm-up, constant, then linear / cosine / 1-sqrt decay (WSD).
    InverseSqrt: linear warm-up, then 1 / sqrt(step) (the Transformer schedule).
    Sequential: schedules one after another, each from its own step 0.
    ScaledSchedule: any schedule times a factor held in a variable (used by ReduceLROnPlateau).
"""

from tfopt.schedules.cyclical_learning_rate import CyclicalLearningRate
from tfopt.schedules.inverse_sqrt import InverseSqrt
from tfopt.schedules.linear_decay import LinearDecay
from tfopt.schedules.one_cycle import OneCycle
from tfopt.schedules.scaled import ScaledSchedule
from tfopt.schedules.scaled_cyclical_learning_rate import (
    ExponentialCyclicalLearningRate,
    ScaledCyclicalLearningRate,
    Triangular2CyclicalLearningRate,
    TriangularCyclicalLearningRate,
)
from tfopt.schedules.sequential import Sequential
from tfopt.schedules.step_decay import StepDecay
from tfopt.schedules.warmup import Warmup
from tfopt.schedules.warmup_stable_decay import WarmupStableDecay

__all__ = [
    "CyclicalLearningRate",
    "ExponentialCyclicalLearningRate",
    "InverseSqrt",
    "LinearDecay",
    "OneCycle",
    "ScaledCyclicalLearningRate",
    "ScaledSchedule",
    "Sequential",
    "StepDecay",
    "Triangular2CyclicalLearningRate",
    "TriangularCyclicalLearningRate",
    "Warmup",
    "WarmupStableDecay",
]
