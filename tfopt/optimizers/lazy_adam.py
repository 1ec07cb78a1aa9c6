"""LazyAdam: Adam that updates only the embedding rows a batch looked up, moments included (TensorFlow Addons)."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.optimizers import _base, _common


@keras.saving.register_keras_serializable(package="tfopt")
class LazyAdam(_base.Optimizer):
    """Adam whose update of a sparse gradient touches only the rows the gradient has: moments and weights.

    For large embedding tables (recommenders, language models with big vocabularies) Adam's dense update reads
    and writes every row each step, and keeps moving rows that were not looked up on their momentum. LazyAdam
    updates the looked-up rows only, which is much faster for a sparse table and often trains as well; rows not
    seen keep their moments until they are seen again. For dense gradients it is Adam. It replaces TensorFlow
    Addons' `tfa.optimizers.LazyAdam`, with the same update.

    With `g` the gradient of the rows `i` it has (repeated rows summed), `t` the step (1 first), `lr` the
    learning rate and `b1`, `b2` the betas, for those rows only:

        m[i] <- b1 m[i] + (1 - b1) g
        v[i] <- b2 v[i] + (1 - b2) g^2
        w[i] <- w[i] - lr sqrt(1 - b2^t) / (1 - b1^t) * m[i] / (sqrt(v[i]) + epsilon)

    (epsilon before the bias correction, as Keras's and TensorFlow's Adam). Backends:

    - TensorFlow: an `Embedding` layer's gradient is a `tf.IndexedSlices`; its rows are updated by scatters,
      every other row is neither read nor written. Dense gradients get Adam's dense update.
    - JAX (and other backends, which give dense gradients): a row (a slice along the first axis) whose gradient
      is all zero is left untouched, moments included; other rows get the update above. So a row whose
      gradient is exactly zero although it was looked up (rare) is skipped where TensorFlow would update it,
      and a dense layer's row with an all-zero gradient (an input feature that was 0 in the whole batch) is
      skipped where TensorFlow's dense Adam would move it on its momentum.

    Args:
        learning_rate: a number >= 0, a `keras.optimizers.schedules.LearningRateSchedule` or a callable.
            Default 0.001.
        beta_1: decay of the gradient average, in [0, 1). Default 0.9.
        beta_2: decay of the squared-gradient average, in [0, 1). Default 0.999.
        epsilon: added to the denominator, a number >= 0. Default 1e-7.
        **kwargs: the base optimizer options (`weight_decay`, `clipnorm`, `clipvalue`, `global_clipnorm`,
            `use_ema`, `ema_momentum`, `ema_overwrite_frequency`, `loss_scale_factor`,
            `gradient_accumulation_steps`, `name`), passed to `keras.optimizers.Optimizer` untouched. (Weight
            decay and gradient clipping are dense operations: they touch every row.)

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((3,), dtype="int32"), keras.layers.Embedding(100, 4),
    ...                           keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1)])
    >>> model.compile(LazyAdam(learning_rate=0.01), loss="mse")
    >>> history = model.fit(np.arange(30).reshape(10, 3), np.ones((10, 1)), epochs=2, verbose=0)

    References:
        - Kingma and Ba, 2015, "Adam: A Method for Stochastic Optimization", https://arxiv.org/abs/1412.6980
        - TensorFlow Addons, `tfa.optimizers.LazyAdam`,
          https://www.tensorflow.org/addons/api_docs/python/tfa/optimizers/LazyAdam
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None, name=None,
                 **kwargs):
        super().__init__(learning_rate=_checks.learning_rate(learning_rate),
                         weight_decay=_checks.weight_decay(weight_decay), name=name, **kwargs)
        self.beta_1 = _checks.number("beta_1", beta_1, 0.0, 1.0, high_open=True)
        self.beta_2 = _checks.number("beta_2", beta_2, 0.0, 1.0, high_open=True)
        self.epsilon = _checks.number("epsilon", epsilon, low=0.0)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(var_list, ["momentum", "velocity"])

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        t = ops.cast(self.iterations + 1, dtype)
        step = (ops.cast(learning_rate, dtype) * ops.sqrt(_common.one_minus_power(self.beta_2, t, dtype))
                / _common.one_minus_power(self.beta_1, t, dtype))
        b1, b2, epsilon = (ops.cast(x, dtype) for x in (self.beta_1, self.beta_2, self.epsilon))
        if type(gradient).__name__ == "IndexedSlices":
            from tfopt import _tensorflow

            indices, g = _tensorflow.unique_rows(gradient)
            g = ops.cast(g, dtype)
            m_rows = b1 * ops.take(m, indices, axis=0) + (1.0 - b1) * g
            v_rows = b2 * ops.take(v, indices, axis=0) + (1.0 - b2) * ops.square(g)
            self.assign(m, _tensorflow.rows(m_rows, indices, m))
            self.assign(v, _tensorflow.rows(v_rows, indices, v))
            self.assign_sub(variable, _tensorflow.rows(step * m_rows / (ops.sqrt(v_rows) + epsilon), indices,
                                                       variable))
            return
        g = ops.cast(gradient, dtype)
        if keras.backend.backend() == "tensorflow" or len(variable.shape) == 0:
            self.assign_add(m, (g - m) * (1.0 - b1))
            self.assign_add(v, (ops.square(g) - v) * (1.0 - b2))
            self.assign_sub(variable, step * m / (ops.sqrt(v) + epsilon))
            return
        # Dense gradients off TensorFlow: rows with an all-zero gradient keep their moments and weights.
        touched = ops.any(ops.reshape(ops.not_equal(g, 0), (variable.shape[0], -1)), axis=1)
        touched = ops.reshape(touched, (variable.shape[0],) + (1,) * (len(variable.shape) - 1))
        m, v = m.value, v.value
        new_m = ops.where(touched, b1 * m + (1.0 - b1) * g, m)
        new_v = ops.where(touched, b2 * v + (1.0 - b2) * ops.square(g), v)
        self.assign(self._momentums[self._get_variable_index(variable)], new_m)
        self.assign(self._velocities[self._get_variable_index(variable)], new_v)
        self.assign_sub(variable, ops.where(touched, step * new_m / (ops.sqrt(new_v) + epsilon), 0.0))

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config
