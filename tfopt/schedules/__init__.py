"""Learning-rate schedules: `keras.optimizers.schedules.LearningRateSchedule` subclasses in keras.ops."""

__all__ = []
