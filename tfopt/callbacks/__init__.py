"""`keras.callbacks.Callback` subclasses: learning-rate decay, monitoring, plateaus, momentum cycles, range tests.

Public objects:
    LearningRateDecay: set a float learning rate from a schedule or function, every batch or every epoch.
    LearningRateMonitor: the learning rate in the epoch logs (History) and, per step, in TensorBoard.
    ReduceLROnPlateau: Keras's callback, also for optimizers whose learning rate is a schedule.
    MomentumCycle: the one-cycle momentum (SGD momentum / Adam beta_1) cycle, equal to PyTorch's OneCycleLR.
    LRFinder: the learning-rate range test as a callback.
    find_learning_rate: run the range test on a model and data, return the LRFinder.
    ScheduleFreeEval, SWAEval: evaluate, predict and save at the averaged weights, train at the others.
    recompute_batch_norm_statistics: BatchNorm statistics for averaged weights (cumulative average).
    UpdatePruningStep: writes the pruning masks into a pruned model's stored weights (epoch and training end).
    PruningSummaries: per-layer sparsity and threshold of a pruned model in TensorBoard.
    StructuredPruning: gradual channel pruning inside `fit` (then remove_dead_channels gives the small model).
    GradientNormMonitor: global and per-layer gradient norms of the loss, in the epoch logs and TensorBoard.
    WeightHistograms: TensorBoard histograms of the weights inside pruning, QAT and clustering wrappers.
    NonFiniteGuard: stop (or skip) the steps whose gradients or weights turn NaN/inf, inside the compiled step.
    HParamsLogger: a run's (a tuner trial's) hyperparameters and metrics for TensorBoard's HParams dashboard.
"""

from tfopt.callbacks.batch_norm_statistics import recompute_batch_norm_statistics
from tfopt.callbacks.gradient_norm_monitor import GradientNormMonitor
from tfopt.callbacks.hparams_logger import HParamsLogger
from tfopt.callbacks.learning_rate_decay import LearningRateDecay
from tfopt.callbacks.learning_rate_monitor import LearningRateMonitor
from tfopt.callbacks.lr_finder import LRFinder, find_learning_rate
from tfopt.callbacks.momentum_cycle import MomentumCycle
from tfopt.callbacks.nonfinite_guard import NonFiniteGuard
from tfopt.callbacks.pruning_summaries import PruningSummaries
from tfopt.callbacks.reduce_lr_on_plateau import ReduceLROnPlateau
from tfopt.callbacks.schedule_free_eval import ScheduleFreeEval
from tfopt.callbacks.structured_pruning import StructuredPruning
from tfopt.callbacks.swa_eval import SWAEval
from tfopt.callbacks.update_pruning_step import UpdatePruningStep
from tfopt.callbacks.weight_histograms import WeightHistograms

__all__ = [
    "GradientNormMonitor",
    "HParamsLogger",
    "LRFinder",
    "LearningRateDecay",
    "LearningRateMonitor",
    "MomentumCycle",
    "NonFiniteGuard",
    "PruningSummaries",
    "ReduceLROnPlateau",
    "SWAEval",
    "ScheduleFreeEval",
    "StructuredPruning",
    "UpdatePruningStep",
    "WeightHistograms",
    "find_learning_rate",
    "recompute_batch_norm_statistics",
]
