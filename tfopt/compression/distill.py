"""fit_with_teacher: fine-tune a pruned, quantized or clustered model against its dense original's soft targets."""

import keras

from tfopt import _checks
from tfopt.models import CachedDistiller, SoftTargetDistillation, cache_teacher_outputs
from tfopt.models._distillation import as_loss_instance, ends_in_probabilities


def fit_with_teacher(
    model,
    teacher,
    x,
    y,
    *,
    temperature=4.0,
    student_loss_weight=0.5,
    cache=True,
    optimizer=None,
    loss=None,
    metrics=("accuracy",),
    validation_data=None,
    **fit_kwargs,
):
    """Fine-tunes `model` (in place) on `(x, y)` with `teacher`'s soft targets beside the labels.

    The dense original can teach its own compressed version: it knows which wrong classes are close to the right
    one, information that labels alone do not give the pruned, quantization-aware or clustered copy while it
    recovers. This trains `model` with `keras.distillation`'s loss mix, `a * label loss + (1 - a) *
    T^2 KL(teacher || model)` at temperature `T` (`SoftTargetDistillation`, on logits or on softmax
    probabilities, whichever the teacher ends in). With `cache=True` the teacher's outputs are computed once
    (`tfopt.models.cache_teacher_outputs`) and a `tfopt.models.CachedDistiller` reads them, so fine-tuning costs
    what it costs without a teacher; `cache=False` runs the live teacher in a `keras.distillation.Distiller`
    (needed when `x` is a randomly augmented pipeline). The teacher's weights never change.

    What it buys depends on whether the compressed model can still fit its training data. In
    `benchmarks/distillation.py` (digits CNN, 3 seeds) a model pruned to 80-90% sparsity underfits (97% training
    accuracy at 90%) and the teacher's soft targets lower test accuracy by 0.4-0.7 points against labels alone;
    distilling into a 5x smaller dense student that fits its data adds 0.8 points. Measure both on your model.

    Use it in place of `model.compile(...); model.fit(...)` for the fine-tuning of any compression step;
    callbacks such as `tfopt.callbacks.UpdatePruningStep` work as with `fit`, then strip as usual:

        pruned = prune_low_magnitude(dense, PolynomialDecay(0.0, 0.9, 0, 1000))
        fit_with_teacher(pruned, dense, x_train, y_train, epochs=10, callbacks=[UpdatePruningStep()])
        small = strip_pruning(pruned)

    Args:
        model: the `keras.Model` to fine-tune (the student), e.g. from `prune_low_magnitude`.
        teacher: the trained `keras.Model` (usually the dense original), with the same output shape.
        x, y: training inputs and labels (arrays), or a dataset of `(x, y)` batches as `x` and `y=None`.
        temperature: `T`, a number > 0. Default 4.0.
        student_loss_weight: `a`, the weight of the label loss, in [0, 1]. Default 0.5.
        cache: compute the teacher's outputs once (True) or at every step (False). Default True.
        optimizer: the optimizer. Default: Adam at 5e-4.
        loss: the label loss. Default: the model's compiled loss, else sparse categorical cross-entropy (on
            probabilities or logits, like the model's output).
        metrics: metrics on the model's predictions. Default ("accuracy",).
        validation_data: optional `(x, y)` arrays, cached like the training data when `cache=True`.
        **fit_kwargs: passed to `fit` (epochs, batch_size, callbacks, ...).

    Returns:
        The `keras.callbacks.History` of the fine-tuning.
    """

    for argument, value in (("model", model), ("teacher", teacher)):
        if not isinstance(value, keras.Model):
            raise TypeError(f"Argument `{argument}` must be a keras.Model. Received: {argument} of type "
                            f"{type(value).__name__}")
    if teacher is model:
        raise ValueError("Argument `teacher` must be another model than `model` (e.g. the dense original, "
                         "kept unchanged). Received the same object")
    teacher_shape, model_shape = _output_shape(teacher), _output_shape(model)
    if teacher_shape is not None and model_shape is not None and teacher_shape[1:] != model_shape[1:]:
        raise ValueError(f"Argument `teacher` must have the model's output shape {model_shape}. Received: a teacher "
                         f"with output shape {teacher_shape}")
    temperature = _checks.finite_number("temperature", temperature, positive=True)
    student_loss_weight = _checks.number("student_loss_weight", student_loss_weight, 0.0, 1.0)
    _checks.boolean("cache", cache)
    trainable = teacher.trainable  # the Distiller freezes the teacher; the caller's model is given back as it was
    probabilities = ends_in_probabilities(teacher)
    distillation = SoftTargetDistillation(temperature=temperature, from_logits=not probabilities)
    if loss is None:
        loss = getattr(model, "loss", None) or keras.losses.SparseCategoricalCrossentropy(from_logits=not probabilities)
    if cache:
        train = cache_teacher_outputs(teacher, x, y)
        if validation_data is not None:
            validation_data = cache_teacher_outputs(teacher, *validation_data[:2])
        distiller = CachedDistiller(model, distillation, student_loss_weight=student_loss_weight)
    else:
        train = (x,) if y is None else (x, y)
        distiller = keras.distillation.Distiller(
            teacher, model, distillation, student_loss_weight=student_loss_weight, name="teacher_guided"
        )
    distiller.compile(
        optimizer=optimizer or keras.optimizers.Adam(5e-4),
        loss=keras.tree.map_structure(as_loss_instance, loss),
        metrics=list(metrics) if metrics else None,
    )
    try:
        return distiller.fit(*train, validation_data=validation_data, **fit_kwargs)
    finally:
        teacher.trainable = trainable


def _output_shape(model):
    outputs = getattr(model, "outputs", None)
    if not outputs or len(outputs) != 1:
        return None
    return tuple(outputs[0].shape)

