"""What changes the train step: sharpness-aware minimization and distillation extras on keras.distillation.

Public objects:
    SharpnessAwareMinimization: SAM / ASAM, a two-pass training step around any model and optimizer.
    cache_teacher_outputs, CachedDistiller: teacher outputs computed once; a Distiller that reads them.
    SoftTargetDistillation: Hinton's soft-target loss for models that output logits or probabilities.
    HintDistillation: FitNets hints between layers of different widths, through a learned projection.
"""

from tfopt.models.cached_distiller import CachedDistiller
from tfopt.models.cached_teacher import cache_teacher_outputs
from tfopt.models.hint_distillation import HintDistillation
from tfopt.models.sharpness_aware_minimization import SharpnessAwareMinimization
from tfopt.models.soft_target_distillation import SoftTargetDistillation

__all__ = [
    "CachedDistiller",
    "HintDistillation",
    "SharpnessAwareMinimization",
    "SoftTargetDistillation",
    "cache_teacher_outputs",
]
