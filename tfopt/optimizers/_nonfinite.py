"""Non-finite step detection inside the compiled train step: what `skip_nonfinite=True` and
`tfopt.callbacks.NonFiniteGuard` do to an optimizer's `apply`.

Installed on an optimizer (any `keras.optimizers.Optimizer`: tfopt's, a wrapper, or Keras's own), the guard
replaces its `apply` by one that, per step and in keras.ops only (TensorFlow and JAX):

    finite_grad_i   = all(isfinite(g_i))                   for every gradient
    update          = all_i(finite_grad_i)                 (and, in "raise" mode, nothing went bad before)
    if update: the optimizer's own apply                   (a conditional on TensorFlow; on JAX, where the step
                                                            is a pure function, the new values are selected)
    finite_weight_i = all(isfinite(w_i))                   for every weight after the step
    state           = [skipped steps, kind, variable index, step]   of the first bad step (kind 1: a gradient,
                                                                     2: a weight after the update)

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
KINDS = {1: "gradient", 2: "weight"}


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
    state = optimizer._nonfinite_state
    values = ops.convert_to_numpy(state if value is None else value).tolist()
    skipped, kind, index, step = (int(v) for v in values)
    if not kind:
        return skipped, None, None, None
    variables = optimizer._trainable_variables
    name = variables[index].path if index < len(variables) else f"variable #{index}"
    return skipped, KINDS[kind], name, step


def _values(gradient):
    # Only the rows of a sparse (IndexedSlices) gradient exist; checking them is enough and keeps it sparse.
    return gradient.values if type(gradient).__name__ == "IndexedSlices" else gradient


def _all_finite(tensors):
    """Per tensor, whether every element is finite, as a bool vector (True for a missing gradient)."""
    flags = [ops.ones((), "bool") if t is None else ops.all(ops.isfinite(_values(t))) for t in tensors]
    return ops.stack(flags)


def _first_false(flags, dtype):
    return ops.cast(ops.argmin(ops.cast(flags, "int32")), dtype)


def _guarded_apply(optimizer, grads, trainable_variables=None):
    own_apply = type(optimizer).apply
    if not optimizer.built:
        with keras.name_scope(optimizer.name, caller=optimizer):
            optimizer.build(list(trainable_variables) if trainable_variables is not None else None)
    state = ensure_state(optimizer)
    grads = list(grads)
    variables = list(trainable_variables) if trainable_variables is not None else optimizer._trainable_variables

    grad_flags = _all_finite(grads)
    grads_finite = ops.all(grad_flags)
    update = grads_finite
    if optimizer._nonfinite_mode == "raise":
        update = ops.logical_and(update, ops.equal(state[1], 0))
    step = ops.cast(optimizer.iterations, state.dtype)

    if keras.backend.backend() == "tensorflow":
        def apply():
            own_apply(optimizer, grads, trainable_variables)
            return ops.zeros((), "int32")

        ops.cond(update, apply, lambda: ops.zeros((), "int32"))
    else:
        # A pure step (JAX): take the new values where the step is finite, the old ones where not; XLA fuses the
        # selects into the update.
        tracked = list(variables) + [v for v in optimizer.variables if v is not state]
        before = [v.value for v in tracked]
        own_apply(optimizer, grads, trainable_variables)
        for variable, old in zip(tracked, before):
            variable.assign(ops.where(update, variable.value, old))

    weight_flags = _all_finite([v.value for v in variables])
    weights_finite = ops.all(weight_flags)
    current = ops.convert_to_tensor(state.value)
    bad = ops.logical_not(ops.logical_and(grads_finite, weights_finite))
    first = ops.logical_and(bad, ops.equal(current[1], 0))
    dtype = state.dtype
    kind = ops.where(grads_finite, ops.cast(2, dtype), ops.cast(1, dtype))
    index = ops.where(grads_finite, _first_false(weight_flags, dtype), _first_false(grad_flags, dtype))
    skipped = current[0] + ops.cast(ops.logical_not(update), dtype)
    state.assign(ops.stack([
        skipped,
        ops.where(first, kind, current[1]),
        ops.where(first, index, current[2]),
        ops.where(first, step, current[3]),
    ]))
