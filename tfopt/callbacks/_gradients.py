"""Backend-specific: the gradients of a compiled model's loss on one batch, for each Keras backend.

Keras 3 callbacks never see the gradients `fit` computes (they live inside the compiled train step), so
`GradientNormMonitor` recomputes them on a batch it holds, at the variables' current values. Differentiation is
the one thing `keras.ops` does not offer, so this module holds one small function per backend: TensorFlow's
`GradientTape`, JAX's `jax.grad` over `model.stateless_compute_loss`, and PyTorch's `torch.autograd.grad`.
Everything else (norms, grouping, writing) is backend-independent and lives in the callback.
"""

import weakref

import keras


def loss_gradients(model, x, y, sample_weight=None, training=False):
    """`(loss, gradients)`: the model's compiled loss (plus its `losses`) on `(x, y)` and its gradient with
    respect to each of `model.trainable_variables`, in that order, as NumPy arrays."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        loss, grads = _tensorflow(model, x, y, sample_weight, training)
    elif backend == "jax":
        loss, grads = _jax(model, x, y, sample_weight, training)
    elif backend == "torch":
        loss, grads = _torch(model, x, y, sample_weight, training)
    else:
        raise ValueError(
            "GradientNormMonitor computes gradients on the 'tensorflow', 'jax' or 'torch' backend. Received: "
            f"backend={backend!r}"
        )
    return float(keras.ops.convert_to_numpy(loss)), [keras.ops.convert_to_numpy(g) for g in grads]


# model -> (what the trace depends on, its traced gradient function); weak keys, so an entry goes with its model.
_TRACED = weakref.WeakKeyDictionary()


def _compute(model, x, y, sample_weight, training):
    import tensorflow as tf

    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        y_pred = model(x, training=training)
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)
    grads = tape.gradient(loss, [v.value for v in variables])
    return loss, [tf.zeros(v.shape, v.dtype) if g is None else g for v, g in zip(variables, grads)]


def _traced(model, training):
    """The model's gradient computation as a `tf.function`, traced again only when the compiled loss, the
    trainable variables or `training` change (an eager backward pass costs several times more)."""
    import tensorflow as tf

    depends_on = (id(getattr(model, "_compile_loss", None)), tuple(id(v) for v in model.trainable_variables), training)
    cached = _TRACED.get(model)
    if cached is None or cached[0] != depends_on:
        reference = weakref.ref(model)  # the cache must not keep its key alive

        def compute(x, y, sample_weight):
            return _compute(reference(), x, y, sample_weight, training)

        cached = (depends_on, tf.function(compute, reduce_retracing=True))
        _TRACED[model] = cached
    return cached[1]


def _tensorflow(model, x, y, sample_weight, training):
    variables = model.trainable_variables
    strategy = getattr(variables[0].value, "distribute_strategy", None) if variables else None
    if strategy is None or strategy.num_replicas_in_sync == 1:
        return _traced(model, training)(x, y, sample_weight)

    def compute():
        return _compute(model, x, y, sample_weight, training)

    # Mirrored variables are read per replica: every replica differentiates the same batch and the first one's
    # result is taken. Keras's losses divide by the replica count inside a replica (the gradients are summed
    # across replicas in training), so the values are scaled back by it.
    with strategy.scope():
        loss, grads = strategy.run(compute)
    replicas = strategy.num_replicas_in_sync
    first = strategy.experimental_local_results
    return first(loss)[0] * replicas, [first(g)[0] * replicas for g in grads]


def _jax(model, x, y, sample_weight, training):
    import jax

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    metrics = [v.value for v in model.metrics_variables]

    def loss_fn(values):
        y_pred, updated = model.stateless_call(values, non_trainable, x, training=training)
        loss, _ = model.stateless_compute_loss(
            values, updated, metrics, x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
        )
        return loss

    loss, grads = jax.value_and_grad(loss_fn)(trainable)
    return loss, grads


def _torch(model, x, y, sample_weight, training):
    import torch

    variables = model.trainable_variables
    tensors = [v.value for v in variables]
    y_pred = model(x, training=training)
    loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)
    grads = torch.autograd.grad(loss, tensors, allow_unused=True)
    return loss.detach(), [torch.zeros_like(t) if g is None else g for t, g in zip(tensors, grads)]
