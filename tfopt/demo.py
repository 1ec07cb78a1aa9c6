"""The pipeline behind `tfopt demo`: train a baseline CNN on the digits data, run every optimization stage that
exists, measure each resulting model the same way, and write the report.

A stage is a function `stage(context) -> keras.Model` registered in `STAGES`; each later capability (schedules,
pruning, quantization, distillation, ...) adds its stage here. `measure_model` is applied to every stage's model on
the same test data, so rows compare like with like.
"""

import contextlib
import math
import os
import re
import time
from dataclasses import dataclass, field

import keras

from tfopt.acceleration import profile_fit
from tfopt.callbacks import (
    GradientNormMonitor,
    LearningRateMonitor,
    NonFiniteGuard,
    PruningSummaries,
    StructuredPruning,
    UpdatePruningStep,
    WeightHistograms,
    find_learning_rate,
)
from tfopt.compression import (
    PolynomialDecay,
    cluster_weights,
    count_flops,
    export_tflite,
    fit_with_teacher,
    fold_batch_norms,
    prune_low_magnitude,
    quantize_model,
    remove_dead_channels,
    sparsity_report,
    strip_clustering,
    strip_pruning,
)
from tfopt.compression.report import measure_model
from tfopt.data import load_digits, make_dataset
from tfopt.models import CachedDistiller, cache_teacher_outputs
from tfopt.models.demo_cnn import build_demo_cnn, build_demo_cnn_bn, build_demo_student
from tfopt.optimizers import Prodigy
from tfopt.pipelines.demo_report import write_demo_report
from tfopt.schedules import OneCycle

BATCH_SIZE = 32
WEIGHT_DECAY = 1e-4



@dataclass
class DemoContext:
    """What every stage may use: the data, the training budget, the baseline, and the progress callbacks."""

    data: object
    epochs: int
    seed: int
    callbacks: list = field(default_factory=list)
    baseline: keras.Model | None = None
    baseline_val_accuracy: float | None = None
    notes: dict = field(default_factory=dict)
    # `compile` settings from `FitProfile.best` (`tfopt demo --fast`), used by every stage after the baseline.
    compile_kwargs: dict = field(default_factory=dict)
    # Each finished stage's model (or .tflite path) by stage name, and the folder its files go to.
    models: dict = field(default_factory=dict)
    out_dir: str | None = None
    # The tf.distribute strategy every stage builds and compiles its models under (`tfopt demo --strategy`).
    strategy: object = None

    def scope(self):
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def fresh_model(self):
        """The baseline architecture with the same initial weights every call (seeded)."""
        keras.utils.set_random_seed(self.seed)
        with self.scope():
            return build_demo_cnn(self.data.input_shape, self.data.num_classes)

    def compile(self, model, optimizer=None):
        with self.scope():
            self._compile(model, optimizer)
        return model

    def _compile(self, model, optimizer):
        model.compile(
            optimizer=optimizer or keras.optimizers.Adam(1e-3),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            **self.compile_kwargs,
        )
        return model


def stage_baseline(ctx):
    """Keras defaults: Adam at 1e-3, NumPy arrays straight into `fit`."""
    model = ctx.compile(ctx.fresh_model())
    model.fit(
        *ctx.data.train,
        batch_size=BATCH_SIZE,
        epochs=ctx.epochs,
        validation_data=ctx.data.validation,
        callbacks=ctx.callbacks,
        verbose=0,
    )
    ctx.baseline = model
    return model


def stage_data_pipeline(ctx):
    """The same training, fed by tfopt's `tf.data` pipeline (cache, per-epoch shuffle, prefetch)."""
    model = ctx.compile(ctx.fresh_model())
    train = make_dataset(*ctx.data.train, batch_size=BATCH_SIZE, seed=ctx.seed)
    validation = make_dataset(*ctx.data.validation, batch_size=256, shuffle=False)
    # The dataset reshuffles itself each epoch; shuffle=False keeps Keras from warning that it cannot.
    model.fit(
        train, epochs=ctx.epochs, validation_data=validation, callbacks=ctx.callbacks, shuffle=False, verbose=0
    )
    return model


def stage_schedule(ctx):
    """The LR range test picks the peak learning rate (a tenth of the rate at the lowest loss); then one-cycle
    AdamW trains from the same initial weights for half the baseline's epochs.

    One-cycle spends a fixed budget well: a short warm-up to the peak the range test found, then a long anneal to
    a rate far below the start, so the model is settled when the budget ends. The row shows whether half the
    budget reaches the baseline's validation accuracy (`benchmarks/schedules.py` measures it over seeds).
    """

    train = make_dataset(*ctx.data.train, batch_size=BATCH_SIZE, seed=ctx.seed)
    validation = make_dataset(*ctx.data.validation, batch_size=256, shuffle=False)
    probe = ctx.compile(ctx.fresh_model(), keras.optimizers.AdamW(1e-3, weight_decay=WEIGHT_DECAY))
    finder = find_learning_rate(probe, train, min_learning_rate=1e-5, max_learning_rate=1.0, num_steps=100)
    peak = float(finder.suggestion(method="minimum"))
    epochs = max(1, ctx.epochs // 2)
    total_steps = epochs * math.ceil(len(ctx.data.y_train) / BATCH_SIZE)
    optimizer = keras.optimizers.AdamW(OneCycle(peak, total_steps), weight_decay=WEIGHT_DECAY)
    model = ctx.compile(ctx.fresh_model(), optimizer)
    model.fit(train, epochs=epochs, validation_data=validation, callbacks=ctx.callbacks, shuffle=False, verbose=0)
    ctx.notes["schedule"] = {"peak_learning_rate": peak}
    return model


def stage_optimizer(ctx):
    """A learning-rate-free recipe: Prodigy (Adam that estimates its own step size) for the baseline's epochs.

    No learning rate to search: Prodigy's `learning_rate=1.0` scales the step size it estimates from the distance
    the weights have travelled; `safeguard_warmup` keeps the estimate from overshooting in the first steps.
    """

    train = make_dataset(*ctx.data.train, batch_size=BATCH_SIZE, seed=ctx.seed)
    validation = make_dataset(*ctx.data.validation, batch_size=256, shuffle=False)
    model = ctx.compile(ctx.fresh_model(), Prodigy(weight_decay=0.01, safeguard_warmup=True))
    model.fit(
        train, epochs=ctx.epochs, validation_data=validation, callbacks=ctx.callbacks, shuffle=False, verbose=0
    )
    return model


PRUNED_SPARSITY = 0.8


def stage_pruned(ctx):
    """Gradual magnitude pruning of the trained baseline to 80% sparsity, with fine-tuning; the stripped model.

    One magnitude threshold across all layers (`pruning_scope="global"`): the large Dense layer, which holds most
    of the parameters and most of the redundancy, is pruned harder than the small convolutions. Sparsity rises on
    Zhu & Gupta's cubic schedule over the first 60% of half the baseline's epochs; the rest fine-tunes at the
    final masks. `benchmarks/pruning.py` compares this recipe with tfmot over seeds.
    """

    epochs = max(1, ctx.epochs // 2)
    schedule = _gradual(ctx, PRUNED_SPARSITY, epochs)
    model = _fine_tune(ctx, prune_low_magnitude(ctx.baseline, schedule, pruning_scope="global"), 1e-3, epochs)
    stripped = strip_pruning(model)
    ctx.notes["pruned"] = {"weight_sparsity": sparsity_report(stripped)["total"]["sparsity"]}
    return stripped


class _EpochLog(keras.callbacks.Callback):
    """Keeps every epoch's logs of one stage, whatever the stage does with its own History."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(dict(logs or {}))

    def first_epoch_reaching(self, key, target):
        """1-based epoch whose `key` first reaches `target`, or None."""
        for i, logs in enumerate(self.epochs):
            if key in logs and logs[key] >= target:
                return i + 1
        return None


QAT_EPOCHS = 2
CLUSTERS = 16


def _tflite_path(ctx, name):
    folder = os.path.join(ctx.out_dir or ".", "tflite")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"{name}.tflite")


def _gradual(ctx, sparsity, epochs):
    """The demo's pruning schedule: tfopt's gradual recipe over the first 60% of `epochs` of fine-tuning, with
    20 mask updates while the sparsity rises (a small `frequency`: see `PolynomialDecay`)."""
    total_steps = epochs * math.ceil(len(ctx.data.y_train) / BATCH_SIZE)
    return PolynomialDecay.over_steps(sparsity, total_steps, end_fraction=0.6,
                                      frequency=max(1, int(0.6 * total_steps) // 20))


def _fine_tune(ctx, model, learning_rate, epochs):
    """A few epochs at a small learning rate, as compression fine-tuning does."""
    keras.utils.set_random_seed(ctx.seed)
    ctx.compile(model, keras.optimizers.Adam(learning_rate))
    model.fit(
        *ctx.data.train,
        batch_size=BATCH_SIZE,
        epochs=epochs,
        validation_data=ctx.data.validation,
        callbacks=ctx.callbacks,
        verbose=0,
    )
    return model


def stage_int8_post_training(ctx):
    """The baseline as a full-integer int8 TFLite file, calibrated on training images (no fine-tuning)."""

    return export_tflite(
        ctx.baseline, _tflite_path(ctx, "int8_post_training"), "int8", representative_data=ctx.data.x_train
    )


def stage_int8_qat(ctx):
    """Quantization-aware fine-tuning of the baseline (int8 weights per channel, int8 activations), exported as a
    full-integer int8 TFLite file with the ranges it learned."""

    model = _fine_tune(ctx, quantize_model(ctx.baseline), 1e-4, QAT_EPOCHS)
    return export_tflite(model, _tflite_path(ctx, "int8_qat"), "int8")


def stage_clustered(ctx):
    """Weight sharing: each kernel of the baseline fine-tuned around 16 trainable centroids, then stripped to a
    plain model whose kernels hold at most 16 distinct values (it compresses: see the gzip column)."""

    return strip_clustering(_fine_tune(ctx, cluster_weights(ctx.baseline, CLUSTERS), 1e-4, QAT_EPOCHS))


def stage_folded(ctx):
    """The demo CNN with BatchNormalization, trained for half the baseline's epochs, then each BatchNormalization
    folded into the convolution before it: the same outputs with two layers (and their statistics) fewer."""
    import numpy as np


    keras.utils.set_random_seed(ctx.seed)
    model = build_demo_cnn_bn(ctx.data.input_shape, ctx.data.num_classes)
    model = _fine_tune(ctx, model, 1e-3, max(1, ctx.epochs // 2))
    folded = fold_batch_norms(model)
    x = ctx.data.x_test
    difference = float(np.abs(folded.predict(x, verbose=0) - model.predict(x, verbose=0)).max())
    ctx.notes["folded"] = {"max_abs_difference": difference, "params_before_folding": model.count_params()}
    return folded


def stage_pruned_int8(ctx):
    """The pruned stage's model, fine-tuned with sparsity-preserving QAT and exported as a full-integer int8
    file: int8 (4x smaller than float32) on top of the zeros that gzip compresses."""

    model = _fine_tune(ctx, quantize_model(ctx.models["pruned"]), 1e-4, QAT_EPOCHS)
    return export_tflite(model, _tflite_path(ctx, "pruned_int8"), "int8")


def stage_distilled_student(ctx):
    """A 5x smaller CNN distilled from the baseline with `keras.distillation` and cached teacher outputs.

    The baseline's outputs on the training and validation data are computed once
    (`tfopt.models.cache_teacher_outputs`); `tfopt.models.CachedDistiller` then trains the student on labels and
    the teacher's temperature-4 soft targets without running the teacher again. `benchmarks/distillation.py`
    compares it with the same student trained alone, over seeds.
    """

    keras.utils.set_random_seed(ctx.seed)
    train = cache_teacher_outputs(ctx.baseline, *ctx.data.train)
    validation = cache_teacher_outputs(ctx.baseline, *ctx.data.validation)
    distiller = CachedDistiller(build_demo_student(ctx.data.input_shape, ctx.data.num_classes))
    distiller.compile(keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    distiller.fit(*train, batch_size=BATCH_SIZE, epochs=ctx.epochs, validation_data=validation,
                  callbacks=ctx.callbacks, verbose=0)
    return distiller.student


DISTILLED_PRUNED_SPARSITY = 0.9


def stage_pruned_with_teacher(ctx):
    """Pruning to 90% sparsity (the pruned stage's recipe) fine-tuned against the baseline's soft targets as well
    as the labels (`tfopt.compression.fit_with_teacher`, cached teacher outputs); the stripped model."""

    epochs = max(1, ctx.epochs // 2)
    schedule = _gradual(ctx, DISTILLED_PRUNED_SPARSITY, epochs)
    keras.utils.set_random_seed(ctx.seed)
    pruned = prune_low_magnitude(ctx.baseline, schedule, pruning_scope="global")
    fit_with_teacher(pruned, ctx.baseline, *ctx.data.train, optimizer=keras.optimizers.Adam(1e-3),
                     validation_data=ctx.data.validation, batch_size=BATCH_SIZE, epochs=epochs,
                     callbacks=[*ctx.callbacks, UpdatePruningStep()], verbose=0)
    return strip_pruning(pruned)


CHANNELS_PRUNED = 0.5


def stage_channels_pruned(ctx):
    """Half of the channels of every hidden Conv/Dense layer removed: a smaller *dense* model (structured pruning).

    A copy of the baseline fine-tunes for half its epochs while `tfopt.callbacks.StructuredPruning` masks the
    lowest-L1 filters/units gradually (first 70% of the steps); `remove_dead_channels` then removes them without
    changing a prediction. Fewer parameters, about a quarter of the multiply-accumulates, and lower latency on any
    hardware, unlike the zeros of magnitude pruning.
    """

    keras.utils.set_random_seed(ctx.seed)
    model = keras.models.clone_model(ctx.baseline)
    model.set_weights(ctx.baseline.get_weights())
    ctx.compile(model, keras.optimizers.Adam(1e-3))
    model.fit(*ctx.data.train, batch_size=BATCH_SIZE, epochs=max(1, ctx.epochs // 2),
              validation_data=ctx.data.validation, callbacks=[*ctx.callbacks, StructuredPruning(CHANNELS_PRUNED)],
              verbose=0)
    small = remove_dead_channels(model)
    ctx.notes["channels pruned"] = {"flops_ratio": count_flops(small) / count_flops(ctx.baseline)}
    return small


# (name, function), run in order; the baseline comes first.
STAGES = [
    ("baseline", stage_baseline),
    ("tf.data pipeline", stage_data_pipeline),
    ("schedule", stage_schedule),
    ("optimizer", stage_optimizer),
    ("pruned", stage_pruned),
    ("channels pruned", stage_channels_pruned),
    ("int8 (post-training)", stage_int8_post_training),
    ("int8 (QAT)", stage_int8_qat),
    ("clustered", stage_clustered),
    ("folded", stage_folded),
    ("pruned + int8", stage_pruned_int8),
    ("distilled student", stage_distilled_student),
    ("pruned 90% + teacher", stage_pruned_with_teacher),
]


class StageGradientNorms(GradientNormMonitor):
    """Gradient norms of the model a stage fits; none for a distiller (its call needs its teacher's outputs)."""

    def set_model(self, model):
        super().set_model(model)
        self.skip = isinstance(model, keras.distillation.Distiller)

    def on_train_begin(self, logs=None):
        if not self.skip:
            super().on_train_begin(logs)

    def on_train_batch_end(self, batch, logs=None):
        if not self.skip:
            super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if not self.skip:
            super().on_epoch_end(epoch, logs)


def tensorboard_callbacks(ctx, stage):
    """The TensorBoard logs of one stage, in `<out>/logs/<stage>`: learning rate per step, gradient norms (global and
    per layer, on 64 validation images) and weight histograms of wrapped layers at each epoch end, and per-layer
    sparsity of pruned models. `tensorboard --logdir <out>/logs` shows every stage side by side."""
    folder = os.path.join(ctx.out_dir or ".", "logs", re.sub(r"[^A-Za-z0-9.]+", "_", stage).strip("_"))
    return [LearningRateMonitor(folder, every_n_steps=10), PruningSummaries(folder), WeightHistograms(folder),
            StageGradientNorms((ctx.data.x_val[:64], ctx.data.y_val[:64]), folder)]


def run_demo(out_dir, *, epochs=20, seed=0, make_callbacks=None, on_stage_end=None, fast=False, strategy=None):
    """Runs every stage, measures its model on the test split, and writes report.json, report.md and the chart.

    Args:
        out_dir: folder for the report files (created if needed).
        epochs: training epochs of the baseline; each stage sets its own budget from it.
        seed: seed of the weights' initialisation and the shuffles (the data split itself is fixed).
        make_callbacks: optional `make_callbacks(stage_name) -> list` of Keras callbacks (progress display).
        on_stage_end: optional `on_stage_end(row)` called after each stage is measured.
        fast: profile the demo model first (`tfopt.acceleration.profile_fit`, written to profile.json) and compile
            every stage after the baseline with `FitProfile.best`'s settings. Default False.
        strategy: a `tf.distribute.Strategy` (`tfopt.strategies.get_strategy`) every stage builds and compiles its
            models under; None trains without one. Default None.

    Returns:
        The list of report rows (dicts), baseline first.
    """
    os.makedirs(out_dir, exist_ok=True)
    ctx = DemoContext(data=load_digits(), epochs=epochs, seed=seed)
    ctx.out_dir = out_dir
    ctx.strategy = strategy
    fast_compile_kwargs = _profile_demo(ctx, out_dir) if fast else {}
    rows = []
    for name, stage in STAGES:
        log = _EpochLog()
        # Every stage's training stops at its first non-finite step, naming the variable, instead of ending dead.
        ctx.callbacks = [log, NonFiniteGuard(), *(make_callbacks(name) if make_callbacks else [])]
        ctx.callbacks += tensorboard_callbacks(ctx, name)
        start = time.perf_counter()
        # The whole stage runs in the strategy's scope: Keras optimizers, wrappers and clones create variables
        # when they are constructed, and variables made outside the scope cannot train inside it.
        with ctx.scope():
            model = stage(ctx)
        train_seconds = time.perf_counter() - start
        ctx.models[name] = model
        ctx.compile_kwargs = fast_compile_kwargs
        if ctx.baseline_val_accuracy is None:
            # The bar every later stage is held to: the baseline's final validation accuracy.
            ctx.baseline_val_accuracy = log.epochs[-1]["val_accuracy"]
        report = measure_model(model, *ctx.data.test)
        row = {
            "stage": name,
            **report.to_dict(),
            "train_seconds": train_seconds,
            "epochs": len(log.epochs),
            "epochs_to_baseline": log.first_epoch_reaching("val_accuracy", ctx.baseline_val_accuracy),
        }
        row.update(ctx.notes.pop(name, {}))
        rows.append(row)
        if on_stage_end:
            on_stage_end(row)
    write_demo_report(rows, out_dir, epochs=epochs, seed=seed, baseline_val_accuracy=ctx.baseline_val_accuracy)
    return rows


def _profile_demo(ctx, out_dir):
    """Profiles the demo model's `fit` once; returns `FitProfile.best`'s compile settings (also saved as JSON)."""

    profile = profile_fit(lambda: ctx.compile(ctx.fresh_model()), *ctx.data.train, batch_size=BATCH_SIZE, seed=ctx.seed)
    with open(os.path.join(out_dir, "profile.json"), "w") as f:
        f.write(profile.to_json())
    ctx.notes["baseline"] = {"fast_compile": profile.best["compile"]}
    return profile.best["compile"]
