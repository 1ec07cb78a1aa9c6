"""`tfmot.quantization.keras.quantizers` on tfopt: the `Quantizer` interface and the three range quantizers,
tfopt's objects with tfmot's arguments `(num_bits, per_axis, symmetric, narrow_range)`. The first training batch
sets a range (tfmot moves from [-6, 6]); `MovingAverageQuantizer` averages with decay 0.99 (tfmot's 0.999)."""

from tfopt.layers.range_quantizers import AllValuesQuantizer, LastValueQuantizer, MovingAverageQuantizer, Quantizer

__all__ = ["AllValuesQuantizer", "LastValueQuantizer", "MovingAverageQuantizer", "Quantizer"]
