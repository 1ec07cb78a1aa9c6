"""OptimizationHyperModel: a `keras_tuner.HyperModel` that searches optimization recipes for a model you build."""

import contextlib
import inspect
import itertools
import os

import keras
import keras_tuner

from tfopt import _checks
from tfopt import callbacks as cb
from tfopt.callbacks.schedule_free_eval import find_schedule_free_optimizer
from tfopt.compression import prune_low_magnitude, quantize_model, strip_pruning
from tfopt.compression.prune import collect_wrappers
from tfopt.tuning import _hp
from tfopt.tuning.accuracy_size_objective import AccuracySizeObjective
from tfopt.tuning.deployed_size import deployed_size
from tfopt.tuning.optimizer_from_hp import DEFAULT_CHOICES as DEFAULT_OPTIMIZERS
from tfopt.tuning.optimizer_from_hp import optimizer_from_hp
from tfopt.tuning.pruning_from_hp import pruning_from_hp
from tfopt.tuning.quantization_from_hp import quantization_from_hp
from tfopt.tuning.schedule_from_hp import DEFAULT_CHOICES as DEFAULT_SCHEDULES
from tfopt.tuning.schedule_from_hp import schedule_from_hp

SEARCH = ("optimizer", "schedule", "pruning", "quantization")
_DEFAULT_LEARNING_RATE = 1e-3


class OptimizationHyperModel(keras_tuner.HyperModel):
    """Searches how to train and compress a model: optimizer, learning-rate schedule, pruning and QAT.

    Use it with any Keras Tuner tuner (`RandomSearch`, `BayesianOptimization`, `Hyperband`, with or without
    `distribution_strategy=tfopt.strategies.get_strategy(...)`) when the architecture is settled and the question
    is the recipe. `build(hp)` calls `build_model` (with `hp` if it takes an argument, so the architecture can be
    searched too), applies the searched compression and compiles with the searched optimizer; `fit` trains with
    the callbacks the recipe needs. The search spaces are those of `optimizer_from_hp`, `schedule_from_hp`,
    `pruning_from_hp` and `quantization_from_hp`, for the parts named in `search`; a part not searched is left
    out (no pruning, no QAT) or fixed (Adam at 1e-3, a constant learning rate).

    A recipe trains for `epochs` x `steps_per_epoch` = T optimizer steps (the schedule spans T; pruning reaches
    its target within the pruning phase). With QAT, training has two phases, as compression recipes do: the
    float (or pruned) model trains for the first E1 = E - max(1, round(qat_fraction E)) epochs, then its
    weights (pruning stripped, zeros kept) and optimizer state move into the QAT model `build` returned, which
    trains the remaining epochs; the tuner sees (and checkpoints) the QAT phase. A Hyperband trial resumed from a
    trained model skips the first phase.

    Callbacks added to every `fit`, before the tuner's: `ScheduleFreeEval` for Schedule-Free optimizers; the
    objective's "model_size" and "score" logs when `objective` is an `AccuracySizeObjective`; with `log_dir`,
    per trial in `log_dir/<trial id>`: `LearningRateMonitor`, `PruningSummaries` (pruned models),
    `WeightHistograms` (wrapped layers), `GradientNormMonitor` (with `monitor_data`) and `HParamsLogger` (the
    trial's hyperparameters and its final metrics for TensorBoard's HParams dashboard).

    Args:
        build_model: a callable returning a new, built, uncompiled Sequential or functional `keras.Model`;
            `build_model()` or `build_model(hp)`.
        search: the parts to search, a non-empty subset of ("optimizer", "schedule", "pruning",
            "quantization"). Default all four.
        epochs: E, the training epochs of a trial, an integer >= 1 (`fit` uses it unless given `epochs`).
        steps_per_epoch: optimizer steps per epoch, an integer >= 1 (e.g. ceil(examples / batch size)).
        loss: the loss to compile with. Default "sparse_categorical_crossentropy".
        metrics: the metrics to compile with. Default ("accuracy",).
        objective: None, or an `AccuracySizeObjective` to log for (pass the same one to the tuner). Default None.
        optimizers: the optimizer names to choose from. Default: `optimizer_from_hp`'s.
        schedules: the schedule names to choose from. Default: `schedule_from_hp`'s.
        pruning: keyword arguments for `pruning_from_hp` (sparsity, schedules, structures, scopes, block_size,
            optional); `optional` defaults to True here (pruning searched on and off). Default: `{}`.
        quantization: keyword arguments for `quantization_from_hp`. Default: `{}` (QAT searched on and off).
        qat_fraction: the share of epochs trained with QAT, in (0, 1]. Default 0.3.
        log_dir: the folder of the TensorBoard logs, one sub-folder per trial, or None (default) for none.
        monitor_data: a batch `(x, y)` for `GradientNormMonitor`, or None (default: no gradient norms).
        name, tunable: as `keras_tuner.HyperModel`.
    """

    def __init__(self, build_model, search=SEARCH, *, epochs, steps_per_epoch, loss="sparse_categorical_crossentropy",
                 metrics=("accuracy",), objective=None, optimizers=DEFAULT_OPTIMIZERS, schedules=DEFAULT_SCHEDULES,
                 pruning=None, quantization=None, qat_fraction=0.3, log_dir=None, monitor_data=None, name=None,
                 tunable=True):
        super().__init__(name=name, tunable=tunable)
        if not callable(build_model):
            raise TypeError(f"Argument `build_model` must be a callable returning a keras.Model. Received: "
                            f"build_model={build_model!r}")
        self.build_model = build_model
        self.search = _hp.check_choices("search", tuple(search) if isinstance(search, (list, tuple)) else search,
                                        SEARCH)
        self.epochs = _checks.integer("epochs", epochs, 1)
        self.steps_per_epoch = _checks.integer("steps_per_epoch", steps_per_epoch, 1)
        self.loss = loss
        self.metrics = list(metrics)
        if objective is not None and not isinstance(objective, AccuracySizeObjective):
            raise TypeError(f"Argument `objective` must be None or a tfopt.tuning.AccuracySizeObjective. Received: "
                            f"objective={objective!r}")
        self.objective = objective
        self.optimizers = _hp.check_choices("optimizers", optimizers)
        self.schedules = _hp.check_choices("schedules", schedules)
        self.pruning = {"optional": True, **_checks.keywords("pruning", pruning, pruning_from_hp, positional=2)}
        self.quantization = _checks.keywords("quantization", quantization, quantization_from_hp, positional=1)
        # The values too, now rather than inside the first trial's `build(hp)`: a dry run on a blank space.
        pruning_from_hp(keras_tuner.HyperParameters(), 1, **self.pruning)
        quantization_from_hp(keras_tuner.HyperParameters(), **self.quantization)
        self.qat_fraction = _checks.number("qat_fraction", qat_fraction, 0.0, 1.0, low_open=True)
        if log_dir is not None and (not isinstance(log_dir, (str, os.PathLike)) or not os.fspath(log_dir)):
            raise TypeError(f"Argument `log_dir` must be a non-empty path or None. Received: log_dir={log_dir!r}")
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.monitor_data = monitor_data
        self._takes_hp = _takes_argument(build_model)
        self._strategy = None
        self._fits = itertools.count(1)

    # The recipe: each part read from `hp` (the same values on every call within a trial).

    def qat_split(self, epochs=None):
        """`(float epochs, QAT epochs)` of a trial with QAT that trains `epochs` (default: `self.epochs`)."""
        epochs = self.epochs if epochs is None else epochs
        qat = min(epochs, max(1, round(self.qat_fraction * epochs)))
        return epochs - qat, qat

    def quantization_of(self, hp):
        """The `quantize_model` arguments of the trial, or None when it does not quantize."""
        return quantization_from_hp(hp, **self.quantization) if "quantization" in self.search else None

    def pruning_of(self, hp):
        """The `prune_low_magnitude` arguments of the trial, or None when it does not prune."""
        if "pruning" not in self.search:
            return None
        quantized = self.quantization_of(hp) is not None
        epochs = self.qat_split()[0] if quantized else self.epochs
        return pruning_from_hp(hp, max(1, epochs * self.steps_per_epoch), **self.pruning)

    def optimizer_of(self, hp):
        """A new optimizer of the trial's recipe (its learning rate a schedule when schedules are searched)."""
        total = self.epochs * self.steps_per_epoch
        schedule = None
        if "schedule" in self.search:
            def schedule(peak):
                return schedule_from_hp(hp, total, peak, choices=self.schedules)
        if "optimizer" in self.search:
            return optimizer_from_hp(hp, choices=self.optimizers, schedule=schedule)
        return keras.optimizers.Adam(_DEFAULT_LEARNING_RATE if schedule is None else schedule(_DEFAULT_LEARNING_RATE))

    def _base_model(self, hp):
        model = self.build_model(hp) if self._takes_hp else self.build_model()
        if not isinstance(model, keras.Model):
            raise TypeError(f"Argument `build_model` must return a keras.Model. It returned {model!r}")
        return model

    def build(self, hp):
        self._strategy = _current_strategy()
        base = self._base_model(hp)
        if self.objective is not None and self.objective.size_weight and self.objective.reference_size is None:
            self.objective.reference_size = float(deployed_size(base))

        quantization, pruning = self.quantization_of(hp), self.pruning_of(hp)
        if quantization is not None:
            model = quantize_model(base, **{**quantization, "preserve_sparsity": pruning is not None})
        elif pruning is not None:
            model = prune_low_magnitude(base, **pruning)
        else:
            model = base
        model.compile(optimizer=self.optimizer_of(hp), loss=self.loss, metrics=list(self.metrics))
        return model

    def fit(self, hp, model, *args, **kwargs):
        epochs = kwargs.pop("epochs", self.epochs)
        initial_epoch = kwargs.pop("initial_epoch", 0)
        tuner_callbacks = list(kwargs.pop("callbacks", None) or [])
        trial_id = next((c.trial.trial_id for c in tuner_callbacks if hasattr(c, "trial")), None)
        trial_id = trial_id or f"fit_{next(self._fits):03d}"
        quantization = self.quantization_of(hp)
        float_epochs = self.qat_split(epochs)[0] if quantization is not None else 0
        if quantization is not None and initial_epoch == 0 and float_epochs > 0:
            # A NonFiniteGuard among the tuner's callbacks guards the float phase too.
            guards = [c for c in tuner_callbacks if isinstance(c, cb.NonFiniteGuard)]
            self._train_float_phase(hp, model, quantization, float_epochs, trial_id, args, kwargs, guards)
            initial_epoch = float_epochs
        callbacks = [*self.callbacks(hp, model, trial_id, final=True), *tuner_callbacks]
        return model.fit(*args, epochs=epochs, initial_epoch=initial_epoch, callbacks=callbacks, **kwargs)

    def _train_float_phase(self, hp, model, quantization, epochs, trial_id, args, kwargs, guards=()):
        """Trains the float (or pruned) model, then moves its weights and optimizer state into `model` (QAT)."""

        pruning = self.pruning_of(hp)
        with self._scope():
            first = self._base_model(hp)
            if pruning is not None:
                first = prune_low_magnitude(first, **pruning)
            first.compile(optimizer=self.optimizer_of(hp), loss=self.loss, metrics=list(self.metrics))
        first.fit(*args, epochs=epochs, callbacks=[*self.callbacks(hp, first, trial_id, final=False), *guards],
                  **kwargs)
        with self._scope():
            if pruning is not None:
                first_weights = strip_pruning(first)
            else:
                first_weights = first
            prepared = quantize_model(first_weights, **{**quantization, "preserve_sparsity": pruning is not None})
            model.set_weights(prepared.get_weights())
            _copy_optimizer_state(first.optimizer, model.optimizer, model.trainable_variables)

    def callbacks(self, hp, model, trial_id, final=True):
        """The callbacks a `fit` of this recipe gets (before the tuner's); `final` for the phase the tuner sees."""

        found = []
        if find_schedule_free_optimizer(model.optimizer) is not None:
            found.append(cb.ScheduleFreeEval())
        if final and self.objective is not None:
            found.append(self.objective.callback())
        if self.log_dir is not None:
            folder = os.path.join(self.log_dir, str(trial_id))
            found.append(cb.LearningRateMonitor(folder, every_n_steps=max(1, self.steps_per_epoch // 4)))
            if collect_wrappers(model):
                found.append(cb.PruningSummaries(folder))
            found.append(cb.WeightHistograms(folder))
            if self.monitor_data is not None:
                found.append(cb.GradientNormMonitor(self.monitor_data, folder))
            if final:
                found.append(cb.HParamsLogger(os.path.join(folder, "hparams"), hp, trial_id=str(trial_id)))
        return found

    @staticmethod
    def finalize(model):
        """The deployable form of a searched model: pruning wrappers stripped (zeros in place); a QAT model as it
        is (export it with `tfopt.compression.export_tflite(model, path, "int8")`)."""

        return strip_pruning(model) if collect_wrappers(model) else model

    def _scope(self):
        return self._strategy.scope() if self._strategy is not None else contextlib.nullcontext()


def _takes_argument(function):
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                  and p.default is p.empty]
    return bool(positional) or any(p.kind == p.VAR_POSITIONAL for p in parameters)


def _current_strategy():
    """The tf.distribute strategy whose scope is open (None off TensorFlow or in the default one)."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    return tf.distribute.get_strategy() if tf.distribute.has_strategy() else None


def _copy_optimizer_state(source, target, variables):
    """Copies the step counter, and the slots where both optimizers hold the same variables in the same shapes,
    so the QAT phase continues the float phase's schedule and moments."""
    if not target.built:
        target.build(variables)
    source_variables, target_variables = source.variables, target.variables
    pairs = list(zip(source_variables, target_variables))
    if len(source_variables) == len(target_variables) and all(
            tuple(s.shape) == tuple(t.shape) and s.dtype == t.dtype for s, t in pairs):
        for s, t in pairs:
            t.assign(s)
    else:
        target.iterations.assign(source.iterations)
