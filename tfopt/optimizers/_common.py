"""Update math shared by tfopt's optimizers: the densifying of sparse gradients, bias corrections, and updates taken
on some steps only. (Their argument checks live in `tfopt._checks`, with every other check.)"""

import math

import keras
from keras import ops


def dense_gradient(gradient, variable):
    """The gradient as a dense tensor of the variable's dtype.

    TensorFlow gives an `Embedding` layer's gradient as `tf.IndexedSlices` (rows for the looked-up ids, a row
    repeated once per lookup). Adding it to zeros sums the repeats and fills the other rows with zeros, so the
    optimizers' elementwise math (squares, signs, norms) sees the true gradient, as in dense training. On other
    backends and for dense gradients this is the plain gradient.
    """
    gradient = ops.cast(gradient, variable.dtype)
    if type(gradient).__name__ == "IndexedSlices":
        gradient = ops.add(ops.zeros(variable.shape, dtype=variable.dtype), gradient)
    return gradient


def one_minus_power(beta, t, dtype):
    """`1 - beta^t` for a Python float `beta` in [0, 1) and a step tensor `t`, computed as `-expm1(t log beta)`.

    In float32, `1 - ops.power(beta, t)` loses about five digits for `beta = 0.999` and small `t` (it subtracts
    two numbers close to 1); the `expm1` form keeps full precision, so the bias corrections match float64
    references.
    """
    if beta == 0.0:
        return ops.ones((), dtype=dtype)
    return -ops.expm1(ops.cast(t, dtype) * ops.cast(math.log(beta), dtype))


def warmup_then_linear_decay(lr, t, total_steps, warmup_proportion, min_lr, dtype):
    """TensorFlow Addons' built-in rate of RectifiedAdam and AdaBelief: with `W = total_steps * warmup_proportion`
    and `D = max(total_steps - W, 1)`, `lr t / W` while `t <= W`, then linear from `lr` to `min_lr` over `D`
    steps; `lr` itself when `total_steps` is 0."""
    if total_steps == 0:
        return lr
    total = ops.cast(total_steps, dtype)
    warmup = total * ops.cast(warmup_proportion, dtype)
    decay_steps = ops.maximum(total - warmup, 1.0)
    decayed = lr + (ops.cast(min_lr, dtype) - lr) * ops.minimum(t - warmup, decay_steps) / decay_steps
    return ops.where(t <= warmup, lr * t / ops.maximum(warmup, 1e-30), decayed)


def assign_when(optimizer, condition, targets, otherwise=None):
    """Assigns each `(variable, value)` pair of `targets()` when the scalar boolean `condition` holds, and those of
    `otherwise()` (the same variables, in the same order) when it does not; without `otherwise` the variables are
    left as they are then.

    For updates that differ on some steps (a sync, a snapshot, a first-step copy, a renormalization). On
    TensorFlow, where a graph without XLA runs each element-wise op as a pass over the weights, the assignments sit
    in a conditional, so a step computes and writes only its own case. Under XLA (JAX) each variable gets a
    select, which fuses into the update at no extra memory traffic, where a conditional would cost a
    device-to-host copy of its predicate on GPUs. The functions are called once each and return their values
    computed before any of them is assigned.
    """
    if keras.backend.backend() == "tensorflow":
        def branch(pairs):
            def assign():
                for target, value in pairs():
                    optimizer.assign(target, value)
                return ops.zeros((), "int32")

            return assign

        ops.cond(condition, branch(targets), branch(otherwise or list))
    else:
        chosen = targets()
        fallback = otherwise() if otherwise is not None else [(target, target.value) for target, _ in chosen]
        for (target, value), (_, other) in zip(chosen, fallback):
            optimizer.assign(target, ops.where(condition, value, other))


def first_step_value(optimizer, slot, value):
    """The slot's value, with `value` in its place on the first step (`optimizer.iterations == 0`).

    For a slot that starts as a copy of something only known at the first update (the weights, the gradient).
    Returns `(tensor, filled)`. On TensorFlow `value` is copied into the slot on the first step only (see
    `assign_when`) and `filled` is True: the slot itself holds the first-step value and may be updated in place.
    Under XLA (JAX) the value is selected without writing the slot and `filled` is False, so the caller must
    assign the slot's new value whole.
    """
    first = ops.equal(optimizer.iterations, 0)
    if keras.backend.backend() == "tensorflow":
        assign_when(optimizer, first, lambda: [(slot, value)])
        return slot.value, True
    return ops.where(first, ops.convert_to_tensor(value), slot.value), False
