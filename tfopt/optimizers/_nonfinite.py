"""Non-finite step detection inside the compiled train step: what `skip_nonfinite=True` and
`tfopt.callbacks.NonFiniteGuard` do to an optimizer's `apply`.

Installed on an optimizer (any `keras.optimizers.Optimizer`: tfopt's, a wrapper, or Keras's own), the guard
replaces its `apply` by one that, per step and in keras.ops only (TensorFlow and JAX):

    probe  = sum_i sum(g_i) + sum_i sum(w_i)          over the gradients and the weights entering the step
    update = isfinite(probe)                          (and, in "raise" mode, nothing went bad before)
    if update: the optimizer's own apply              (a conditional on TensorFlow; on JAX, where the step is a
                                                       pure function, the new values are selected)
    else:      skipped steps += 1, and the first bad step is recorded:
               state = [skipped steps, kind, variable index, step]
               kind 1: a gradient with NaN/inf; 2: a weight with NaN/inf (made so by the update of the step
               before); 3: every element finite but the sum overflowed float32 (gradients above ~1e38)

Nothing leaves the device: the state is one integer optimizer variable, `nonfinite_guard`, that a callback reads
when it wants to (`status`). In "raise" mode the first bad step freezes the updates, so the weights stay those of
the last finite step until the callback stops `fit`. Modelled on Keras's `LossScaleOptimizer`, which skips the
steps whose scaled gradients overflow the same way.
"""

import functools

import keras
from keras import ops

from tfopt import _checks

MODES = ("skip", "raise")
KINDS = {1: "gradient", 2: "weight", 3: "overflow"}


def install(optimizer, mode):
    """Puts the guard on `optimizer` in `mode` ("skip" or "raise"); creates its state variable if the optimizer is
    built (else on the first `apply` or `build`). Returns whether the guard was already there."""
    _checks.choice("mode", mode, MODES)
    present = getattr(optimizer, "_nonfinite_mode", None) is not None
    optimizer._nonfinite_mode = mode
    if "apply" not in vars(optimizer):
        optimizer.apply = functools.partial(_guarded_apply, optimizer)
    if optimizer.built:
        ensure_state(optimizer)
    return present


def uninstall(optimizer, keep_state=False):
    """Takes the guard off; removes its state variable unless `keep_state` (the optimizer's own
    `skip_nonfinite=True`, whose variable is saved with it)."""
    optimizer._nonfinite_mode = None
    if "apply" in vars(optimizer):
        del optimizer.apply
    state = getattr(optimizer, "_nonfinite_state", None)
    if state is not None and not keep_state:
        index = next(i for i, v in enumerate(optimizer._variables) if v is state)
        optimizer._variables.pop(index)
        # Kept aside (not as a tracked attribute, which would list it again), so that the next install puts the
        # same variable back and a train function traced with it can run again.
        object.__setattr__(optimizer, "_nonfinite_spare_state", state)
        object.__setattr__(optimizer, "_nonfinite_state", None)


def ensure_state(optimizer):
    """The guard's state variable, created the first time."""
    state = getattr(optimizer, "_nonfinite_state", None)
    if state is None:
        state = getattr(optimizer, "_nonfinite_spare_state", None)
        if state is not None:
            optimizer._variables.append(state)
        elif keras.backend.backend() == "tensorflow":
            from tfopt import _tensorflow  # TensorFlow-only helpers, loaded only on that backend

            with _tensorflow.optimizer_variable_scope(optimizer):
                state = optimizer.add_variable(shape=(4,), initializer="zeros", dtype="int", name="nonfinite_guard")
        else:
            state = optimizer.add_variable(shape=(4,), initializer="zeros", dtype="int", name="nonfinite_guard")
        object.__setattr__(optimizer, "_nonfinite_state", state)
    return state


def reset_record(optimizer):
    """Forgets the first bad step (kind, variable, step), keeping the count of skipped steps."""
    state = getattr(optimizer, "_nonfinite_state", None)
    if state is not None:
        values = ops.convert_to_numpy(state).copy()
        values[1:] = 0
        state.assign(values)


def status(optimizer, value=None):
    """`(skipped_steps, kind, variable_name, step)` from the state (or its current value `value`, e.g. from a
    JAX train state); kind is None, "gradient" or "weight"."""
    if value is None:
        value = optimizer._nonfinite_state.value
    # `numpy()` where the tensor has it (TensorFlow: one read, no conversion layers), else NumPy's conversion.
    values = value.numpy() if hasattr(value, "numpy") else ops.convert_to_numpy(value)
    skipped, kind, index, step = (int(v) for v in values.tolist())
    if not kind:
        return skipped, None, None, None
    variables = optimizer._trainable_variables
    name = variables[index].path if index < len(variables) else f"variable #{index}"
    return skipped, KINDS[kind], name, step


def _values(gradient):
    # Only the rows of a sparse (IndexedSlices) gradient exist; checking them is enough and keeps it sparse.
    return gradient.values if type(gradient).__name__ == "IndexedSlices" else gradient


def all_finite(tensors):
    """Per tensor, whether every element is finite, as a bool vector (True for a missing gradient)."""
    flags = [ops.ones((), "bool") if t is None else ops.all(ops.isfinite(_values(t))) for t in tensors]
    return ops.stack(flags)


def probe(tensors):
    """One float32 scalar, the sum of every element of every tensor: NaN or inf when any element is (or when the
    sum overflows float32, which `_record` tells apart). One reduction per tensor, the cheapest test there is."""
    sums = [ops.sum(ops.cast(_values(t), "float32")) for t in tensors if t is not None]
    return ops.sum(ops.stack(sums))


def _first_false(flags, dtype):
    return ops.cast(ops.argmin(ops.cast(flags, "int32")), dtype)


def _record(optimizer, state, grads, variables, step):
    """The bookkeeping of a step whose probe is not finite (the rare path): which tensor, of what kind, and the
    count of skipped steps. A weight that entered the step non-finite went bad in the update before it."""
    dtype = state.dtype
    grad_flags = all_finite(grads)
    weight_flags = all_finite([v.value for v in variables])
    weights_finite = ops.all(weight_flags)
    grads_finite = ops.all(grad_flags)
    # Both finite: the probe overflowed, the gradients are too large to sum in float32; named by the largest one.
    largest = ops.argmax(ops.stack([ops.max(ops.abs(ops.cast(_values(g), "float32"))) if g is not None
                                    else ops.zeros((), "float32") for g in grads]))
    kind = ops.where(ops.logical_not(weights_finite), 2, ops.where(ops.logical_not(grads_finite), 1, 3))
    index = ops.where(ops.logical_not(weights_finite), _first_false(weight_flags, dtype),
                      ops.where(ops.logical_not(grads_finite), _first_false(grad_flags, dtype),
                                ops.cast(largest, dtype)))
    at = ops.where(ops.logical_not(weights_finite), step - 1, step)
    current = ops.convert_to_tensor(state.value)
    first = ops.equal(current[1], 0)
    state.assign(ops.stack([
        current[0] + 1,
        ops.where(first, ops.cast(kind, dtype), current[1]),
        ops.where(first, index, current[2]),
        ops.where(first, at, current[3]),
    ]))


def _guarded_apply(optimizer, grads, trainable_variables=None):
    own_apply = type(optimizer).apply
    if not optimizer.built:
        with keras.name_scope(optimizer.name, caller=optimizer):
            optimizer.build(list(trainable_variables) if trainable_variables is not None else None)
    state = ensure_state(optimizer)
    grads = list(grads)
    variables = list(trainable_variables) if trainable_variables is not None else optimizer._trainable_variables
    dtype = state.dtype
    step = ops.cast(optimizer.iterations, dtype)

    # The weights entering the step and its gradients, in one probe: a finite step costs one reduction per tensor
    # and a conditional; the bookkeeping runs only on the rare non-finite path.
    update = ops.isfinite(probe(grads + [v.value for v in variables]))
    if optimizer._nonfinite_mode == "raise":
        update = ops.logical_and(update, ops.equal(state[1], 0))

    if keras.backend.backend() == "tensorflow":
        from tfopt import _tensorflow  # TensorFlow-only helpers, loaded only on that backend

        def apply(grads):
            own_apply(optimizer, grads, trainable_variables)

        def skip(grads):
            _record(optimizer, state, grads, variables, ops.cast(optimizer.iterations, dtype))

        _tensorflow.conditional_update(update, apply, skip, grads)
    else:
        # A pure step (JAX): take the new values where the step is finite, the old ones where not; XLA fuses the
        # selects into the update and the bookkeeping into one small computation.
        tracked = list(variables) + [v for v in optimizer.variables if v is not state]
        before = [v.value for v in tracked]
        recorded = ops.convert_to_tensor(state.value)
        own_apply(optimizer, grads, trainable_variables)
        for variable, old in zip(tracked, before):
            variable.assign(ops.where(update, variable.value, old))
        _record(optimizer, state, grads, variables, step)
        state.assign(ops.where(update, recorded, state.value))
