"""The callback hooks shared by ScheduleFreeEval and SWAEval: averaged weights outside training, the others inside."""

import abc

import keras


class EvalSwap(keras.callbacks.Callback, abc.ABC):
    """Puts the model's evaluation weights in place for validation, prediction, checkpoints and after `fit`, and
    its training weights back for each epoch of training. Subclasses define `_to_eval` and `_to_train`; both must
    do nothing when the model is already there, since several hooks can fire in a row.
    """

    @abc.abstractmethod
    def _to_eval(self):
        """Puts the evaluation (averaged) weights into the model."""

    @abc.abstractmethod
    def _to_train(self):
        """Puts the training weights back into the model."""

    def on_train_begin(self, logs=None):
        self._to_train()

    def on_epoch_begin(self, epoch, logs=None):
        self._to_train()

    def on_test_begin(self, logs=None):
        self._to_eval()

    def on_predict_begin(self, logs=None):
        self._to_eval()

    def on_epoch_end(self, epoch, logs=None):
        self._to_eval()

    def on_train_end(self, logs=None):
        self._to_eval()
