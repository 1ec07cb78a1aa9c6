"""Optimizers Keras 3 lacks, one algorithm per file, as `keras.optimizers.Optimizer` subclasses in keras.ops.

Each runs on the TensorFlow and JAX backends, takes the Keras base options (`weight_decay`, `clipnorm`,
`global_clipnorm`, `use_ema`, `gradient_accumulation_steps`, `loss_scale_factor`, ...; checked in one place, the
shared base `tfopt.optimizers._base.Optimizer`) and `skip_nonfinite=True` (a step with NaN/inf gradients is
skipped), works inside `LossScaleOptimizer` and `tf.distribute`, and survives `model.save` /
`keras.models.load_model` with its state. Importing this package registers them all for loading.

Public objects:
    RAdam: Adam with the variance of its adaptive step rectified; no warmup needed.
    AdaBelief: Adam stepping by the belief in the gradient, `(g - m)^2`, instead of `g^2`.
    Yogi: Adam with an additive, sign-controlled second-moment update.
    Adan: adaptive Nesterov momentum from gradient differences, with proximal weight decay.
    LARS: momentum SGD with a layer-wise trust ratio, for very large batches.
    Prodigy: learning-rate-free Adam that estimates its own step size.
    ScheduleFreeSGD, ScheduleFreeAdamW: Schedule-Free training without a decay schedule.
    LazyAdam: Adam that updates only the rows of sparse (embedding) gradients, moments included.
    SGDW, DecoupledAdamW, extend_with_decoupled_weight_decay, DecoupledWeightDecayExtension: decoupled weight
        decay not scaled by the learning rate (TensorFlow Addons' convention).
    MultiOptimizer: one optimizer per group of layers or variables.
    NovoGrad: momentum SGD on gradients normalized per layer.
    COCOB: learning-rate-free coin betting.
    ConditionalGradient: Frank-Wolfe steps towards a Frobenius or nuclear norm ball.
    ProximalAdagrad: Adagrad with an L1/L2 proximal step.
    MovingAverage: an exponential moving average of any optimizer's weights.
    Lookahead, SWA, GradientCentralization, AdaptiveGradientClipping: wrappers around any optimizer.
    get: an optimizer from a name, a config dict or an instance (tfopt's and Keras's names).
"""

from tfopt.optimizers.adabelief import AdaBelief
from tfopt.optimizers.adan import Adan
from tfopt.optimizers.adaptive_gradient_clipping import AdaptiveGradientClipping
from tfopt.optimizers.cocob import COCOB
from tfopt.optimizers.conditional_gradient import ConditionalGradient
from tfopt.optimizers.decoupled_weight_decay import (
    SGDW,
    DecoupledAdamW,
    DecoupledWeightDecayExtension,
    extend_with_decoupled_weight_decay,
)
from tfopt.optimizers.gradient_centralization import GradientCentralization
from tfopt.optimizers.lars import LARS
from tfopt.optimizers.lazy_adam import LazyAdam
from tfopt.optimizers.lookahead import Lookahead
from tfopt.optimizers.moving_average import MovingAverage
from tfopt.optimizers.multi_optimizer import MultiOptimizer
from tfopt.optimizers.novograd import NovoGrad
from tfopt.optimizers.prodigy import Prodigy
from tfopt.optimizers.proximal_adagrad import ProximalAdagrad
from tfopt.optimizers.radam import RAdam
from tfopt.optimizers.registry import get
from tfopt.optimizers.schedule_free_adamw import ScheduleFreeAdamW
from tfopt.optimizers.schedule_free_sgd import ScheduleFreeSGD
from tfopt.optimizers.swa import SWA
from tfopt.optimizers.yogi import Yogi

__all__ = [
    "COCOB",
    "LARS",
    "SGDW",
    "SWA",
    "AdaBelief",
    "Adan",
    "AdaptiveGradientClipping",
    "ConditionalGradient",
    "DecoupledAdamW",
    "DecoupledWeightDecayExtension",
    "GradientCentralization",
    "LazyAdam",
    "Lookahead",
    "MovingAverage",
    "MultiOptimizer",
    "NovoGrad",
    "Prodigy",
    "ProximalAdagrad",
    "RAdam",
    "ScheduleFreeAdamW",
    "ScheduleFreeSGD",
    "Yogi",
    "extend_with_decoupled_weight_decay",
    "get",
]
