"""`tfa.optimizers` on Keras 3: each TensorFlow Addons name with TFA's arguments and defaults, resolved to tfopt's
object (or Keras's, where Keras has the algorithm). Code written for `tfa.optimizers` runs with only
`import tfopt.compat.tfa as tfa` in place of `import tensorflow_addons as tfa`.

Names that are tfopt's classes themselves (same arguments): AdamW (`tfopt.optimizers.DecoupledAdamW`), COCOB,
ConditionalGradient, CyclicalLearningRate (`tfopt.schedules.ScaledCyclicalLearningRate`),
DecoupledWeightDecayExtension, ExponentialCyclicalLearningRate, Lookahead, MovingAverage, MultiOptimizer,
ProximalAdagrad, SGDW, Triangular2CyclicalLearningRate, TriangularCyclicalLearningRate,
extend_with_decoupled_weight_decay; AveragedOptimizerWrapper is the base class of tfopt's wrappers.

Names that adapt arguments and return tfopt's or Keras's optimizer (saved and loaded as that object):
    AdaBelief     -> tfopt AdaBelief with TFA's defaults (epsilon=1e-14, rectify=True).
    LAMB          -> keras.optimizers.Lamb. Equal to TFA's with weight_decay=0; with weight decay Keras decays
                     `w` by `lr * weight_decay * w` before the step, TFA adds `weight_decay * w` to the update
                     before the trust ratio. `exclude_from_weight_decay` names go to Keras's
                     `exclude_from_weight_decay(var_names=...)`; `exclude_from_layer_adaptation` is not offered.
    LazyAdam      -> tfopt LazyAdam.
    NovoGrad      -> tfopt NovoGrad.
    RectifiedAdam -> tfopt RAdam with TFA's epsilon (1e-7), warmup (`total_steps`, `warmup_proportion`,
                     `min_lr`) and its lr-scaled weight decay (TFA rectifies when sma_t >= 5, tfopt when > 5:
                     no step of the usual betas has sma_t exactly 5).
    SWA           -> tfopt SWA, with TFA's snapshot steps (TFA's `start_averaging=s` is tfopt's `s + 1`: both
                     average the weights after update s + 1, s + 1 + p, ...).
    Yogi          -> tfopt Yogi with TFA's names (`beta1`, `beta2`) and epsilon before the bias correction.
Options TFA had and tfopt does not (amsgrad=True, Yogi's l1/l2 and tanh activation, a sma_threshold other than
5) raise a ValueError that says so, instead of silently training differently.
"""

import keras

from tfopt.optimizers import (
    COCOB,
    SGDW,
    ConditionalGradient,
    DecoupledWeightDecayExtension,
    Lookahead,
    MovingAverage,
    MultiOptimizer,
    ProximalAdagrad,
    extend_with_decoupled_weight_decay,
)
from tfopt.optimizers import (
    SWA as _SWA,
)
from tfopt.optimizers import (
    AdaBelief as _AdaBelief,
)
from tfopt.optimizers import (
    DecoupledAdamW as AdamW,
)
from tfopt.optimizers import (
    LazyAdam as _LazyAdam,
)
from tfopt.optimizers import (
    NovoGrad as _NovoGrad,
)
from tfopt.optimizers import (
    RAdam as _RAdam,
)
from tfopt.optimizers import (
    Yogi as _Yogi,
)
from tfopt.optimizers._wrapper import OptimizerWrapper as AveragedOptimizerWrapper
from tfopt.schedules import (
    ExponentialCyclicalLearningRate,
    Triangular2CyclicalLearningRate,
    TriangularCyclicalLearningRate,
)
from tfopt.schedules import ScaledCyclicalLearningRate as CyclicalLearningRate

__all__ = [
    "COCOB",
    "LAMB",
    "SGDW",
    "SWA",
    "AdaBelief",
    "AdamW",
    "AveragedOptimizerWrapper",
    "ConditionalGradient",
    "CyclicalLearningRate",
    "DecoupledWeightDecayExtension",
    "ExponentialCyclicalLearningRate",
    "LazyAdam",
    "Lookahead",
    "MovingAverage",
    "MultiOptimizer",
    "NovoGrad",
    "ProximalAdagrad",
    "RectifiedAdam",
    "Triangular2CyclicalLearningRate",
    "TriangularCyclicalLearningRate",
    "Yogi",
    "extend_with_decoupled_weight_decay",
]


def _unsupported(name, value, default, optimizer, instead=""):
    if value != default:
        raise ValueError(f"Argument `{name}` of tfa.optimizers.{optimizer} is not supported by tfopt: it must be "
                         f"{default!r}.{instead} Received: {name}={value!r}")


def _learning_rate(learning_rate, kwargs):
    """TFA (Keras 2) also took the learning rate as `lr`."""
    return kwargs.pop("lr", learning_rate)


def _decay(weight_decay):
    return None if weight_decay == 0 else weight_decay


def AdaBelief(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-14, weight_decay=0.0, amsgrad=False,
              rectify=True, sma_threshold=5.0, total_steps=0, warmup_proportion=0.1, min_lr=0.0, name="AdaBelief",
              **kwargs):
    """`tfa.optimizers.AdaBelief`: tfopt's `AdaBelief` with TFA's defaults (epsilon 1e-14, rectified)."""
    _unsupported("amsgrad", amsgrad, False, "AdaBelief")
    _unsupported("sma_threshold", sma_threshold, 5.0, "AdaBelief")
    return _AdaBelief(learning_rate=_learning_rate(learning_rate, kwargs),
                      beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                      weight_decay=_decay(weight_decay), rectify=rectify, total_steps=total_steps,
                      warmup_proportion=warmup_proportion, min_lr=min_lr, name=name, **kwargs)


def LAMB(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-6, weight_decay=0.0,
         exclude_from_weight_decay=None, exclude_from_layer_adaptation=None, name="LAMB", **kwargs):
    """`tfa.optimizers.LAMB`: `keras.optimizers.Lamb` (see the module docstring for the weight decay)."""
    _unsupported("exclude_from_layer_adaptation", exclude_from_layer_adaptation, None, "LAMB",
                 " Keras's Lamb adapts every variable.")
    optimizer = keras.optimizers.Lamb(learning_rate=_learning_rate(learning_rate, kwargs),
                                      beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                                      weight_decay=_decay(weight_decay), name=name, **kwargs)
    if exclude_from_weight_decay:
        optimizer.exclude_from_weight_decay(var_names=list(exclude_from_weight_decay))
    return optimizer


def LazyAdam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, name="LazyAdam",
             **kwargs):
    """`tfa.optimizers.LazyAdam`: tfopt's `LazyAdam`."""
    _unsupported("amsgrad", amsgrad, False, "LazyAdam")
    return _LazyAdam(learning_rate=_learning_rate(learning_rate, kwargs),
                     beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, name=name,
                     **kwargs)


def NovoGrad(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.0, grad_averaging=False,
             amsgrad=False, name="NovoGrad", **kwargs):
    """`tfa.optimizers.NovoGrad`: tfopt's `NovoGrad`."""
    _unsupported("amsgrad", amsgrad, False, "NovoGrad")
    return _NovoGrad(learning_rate=_learning_rate(learning_rate, kwargs), beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                     weight_decay=weight_decay, grad_averaging=grad_averaging, name=name, **kwargs)


def RectifiedAdam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.0, amsgrad=False,
                  sma_threshold=5.0, total_steps=0, warmup_proportion=0.1, min_lr=0.0, name="RectifiedAdam",
                  **kwargs):
    """`tfa.optimizers.RectifiedAdam`: tfopt's `RAdam` with TFA's epsilon and warmup."""
    _unsupported("amsgrad", amsgrad, False, "RectifiedAdam")
    _unsupported("sma_threshold", sma_threshold, 5.0, "RectifiedAdam")
    return _RAdam(learning_rate=_learning_rate(learning_rate, kwargs), beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                  weight_decay=_decay(weight_decay), total_steps=total_steps, warmup_proportion=warmup_proportion,
                  min_lr=min_lr, name=name, **kwargs)


def SWA(optimizer, start_averaging=0, average_period=10, name="SWA", **kwargs):
    """`tfa.optimizers.SWA`: tfopt's `SWA` averaging after the same updates as TFA's."""
    if isinstance(start_averaging, int) and not isinstance(start_averaging, bool) and start_averaging >= 0:
        start_averaging = start_averaging + 1
    return _SWA(optimizer, start_averaging=start_averaging, average_period=average_period, name=name, **kwargs)


def Yogi(learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-3, l1_regularization_strength=0.0,
         l2_regularization_strength=0.0, initial_accumulator_value=1e-6, activation="sign", name="Yogi", **kwargs):
    """`tfa.optimizers.Yogi`: tfopt's `Yogi` with TFA's argument names and epsilon placement."""
    _unsupported("l1_regularization_strength", l1_regularization_strength, 0.0, "Yogi")
    _unsupported("l2_regularization_strength", l2_regularization_strength, 0.0, "Yogi")
    _unsupported("activation", activation, "sign", "Yogi")
    return _Yogi(learning_rate=_learning_rate(learning_rate, kwargs), beta_1=beta1, beta_2=beta2, epsilon=epsilon,
                 initial_accumulator_value=initial_accumulator_value, epsilon_before_correction=True, name=name,
                 **kwargs)
