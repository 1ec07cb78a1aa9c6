"""HParamsLogger: one Keras Tuner trial (or any run) in TensorBoard's HParams dashboard: its hyperparameters and
its metrics.

It writes with TensorBoard's `hparams` summary API and `tf.summary`, so it needs TensorFlow installed (a tfopt
dependency); it works under any Keras backend.
"""

import numbers

import keras
import numpy as np

from tfopt.callbacks._summary_writer import SummaryWriterCallback


def hparam_values(hparams):
    """`{name: value}` from a dict or a `keras_tuner.HyperParameters`: inactive (None) values dropped, NumPy scalars
    made Python values, anything else not a bool, number or string made a string."""
    if isinstance(hparams, dict):
        values = hparams
    elif hasattr(hparams, "space") and hasattr(hparams, "is_active"):
        values = {hp.name: hparams.values.get(hp.name) for hp in hparams.space if hparams.is_active(hp)}
    else:
        raise TypeError(
            "Argument `hparams` must be a dict of hyperparameter values or a keras_tuner.HyperParameters. "
            f"Received: hparams={hparams!r} of type {type(hparams).__name__}"
        )
    clean = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(value, (bool, numbers.Real, str)):
            value = str(value)
        clean[str(name)] = value
    return clean


@keras.saving.register_keras_serializable(package="tfopt")
class HParamsLogger(SummaryWriterCallback):
    """Writes a run's hyperparameters and its metrics so TensorBoard's HParams dashboard can compare runs.

    Use it to compare Keras Tuner trials side by side (`OptimizationHyperModel` adds one to every trial when given
    a `log_dir`): at the start of training it writes the hyperparameters (the session start record, with
    `trial_id` as the session name) to an event file in `log_dir`, and at the end of every epoch each metric of
    the epoch logs named in `metrics` as a scalar of the same name at the epoch number (1-based), so the dashboard
    shows the last value of each per trial. Give every trial its own `log_dir` (e.g. `logs/trials/<trial id>`) and
    point TensorBoard at their parent.

    Args:
        log_dir: this run's directory (str or os.PathLike).
        hparams: a dict `{name: value}` (bool, number or string; None values are left out) or a
            `keras_tuner.HyperParameters` (its active values).
        trial_id: the run's name in the dashboard, a string, or None (default: TensorBoard derives one).
        metrics: names of the epoch-log metrics to write, or None (default) for every numeric one.
    """

    def __init__(self, log_dir, hparams, trial_id=None, metrics=None):
        super().__init__(log_dir)
        if trial_id is not None and not isinstance(trial_id, str):
            raise TypeError(f"Argument `trial_id` must be a string or None. Received: trial_id={trial_id!r}")
        if metrics is not None and (isinstance(metrics, str) or not all(isinstance(m, str) for m in metrics)):
            raise TypeError(f"Argument `metrics` must be a list of metric names or None. Received: metrics={metrics!r}")
        self.hparams = hparam_values(hparams)
        self.trial_id = trial_id
        self.metrics = None if metrics is None else list(metrics)

    def on_train_begin(self, logs=None):
        from tensorboard.plugins.hparams import api as hparams_api

        super().on_train_begin(logs)
        self.summarize(lambda tf, step: hparams_api.hparams(self.hparams, trial_id=self.trial_id), step=0)

    def on_epoch_end(self, epoch, logs=None):
        names = self.metrics if self.metrics is not None else sorted(logs or {})

        def write(tf, step):
            for name in names:
                value = (logs or {}).get(name)
                if isinstance(value, (numbers.Real, np.generic)) and not isinstance(value, bool):
                    tf.summary.scalar(name, float(value), step=step)

        self.summarize(write, step=epoch + 1)

    def get_config(self):
        return {"log_dir": self.log_dir, "hparams": dict(self.hparams), "trial_id": self.trial_id,
                "metrics": self.metrics}

