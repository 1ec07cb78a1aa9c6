"""What changes the train step: sharpness-aware minimization and distillation extras."""

__all__ = []
