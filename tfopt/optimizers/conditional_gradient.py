"""ConditionalGradient: Frank-Wolfe steps towards a norm ball of radius lambda (TensorFlow Addons' form)."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.optimizers import _base, _common

ORDS = ("fro", "nuclear")


def _top_singular_direction(gradient):
    """`u_1 v_1^T` of the gradient seen as a matrix (rank 1 as one row, higher ranks as rows of the last axis)."""
    shape = gradient.shape
    matrix = ops.reshape(gradient, (1, -1) if len(shape) < 2 else (-1, shape[-1]))
    u, _, vt = ops.svd(matrix, full_matrices=False)
    return ops.reshape(ops.outer(u[:, 0], vt[0, :]), shape)


@keras.saving.register_keras_serializable(package="tfopt")
class ConditionalGradient(_base.Optimizer):
    """Conditional gradient (Frank-Wolfe): each weight moves towards the point of a norm ball, of radius
    `lambda_`, that the gradient points to, which keeps the weights inside (a multiple of) the ball.

    A projection-free way to train under a norm constraint: weights bounded in Frobenius norm (`ord="fro"`) or
    of low rank (the nuclear-norm ball, `ord="nuclear"`, whose extreme points are rank-1 matrices). This is
    TensorFlow Addons' `tfa.optimizers.ConditionalGradient`, value for value, and follows its convention, in which
    `learning_rate` is the weight kept of the current point:

        s = -lambda_ g / (||g||_F + epsilon)          (ord="fro")
            -lambda_ u_1 v_1^T                         (ord="nuclear"; u_1, v_1 the top singular vectors of g)
        w <- lr w + (1 - lr) s

    So `learning_rate` near 1 is a small step; with a schedule going to 1 the steps shrink as Frank-Wolfe's
    `1 - 2 / (t + 2)`.

    Args:
        learning_rate: `lr`, a number in [0, 1], a `LearningRateSchedule` or a callable (required, as in TFA).
        lambda_: the radius of the ball, a number >= 0. Default 0.01.
        epsilon: added to the Frobenius norm, a number >= 0. Default 1e-7.
        ord: "fro" or "nuclear". Default "fro".
        **kwargs: the base optimizer options.

    Example:

    >>> optimizer = ConditionalGradient(learning_rate=0.9, lambda_=1.0)
    >>> w = keras.Variable([3.0, 4.0])
    >>> optimizer.apply([keras.ops.convert_to_tensor([3.0, 4.0])], [w])
    >>> [round(x, 4) for x in keras.ops.convert_to_numpy(w).tolist()]  # 0.9 w - 0.1 g / 5
    [2.64, 3.52]

    References:
        - Frank and Wolfe, 1956, "An algorithm for quadratic programming", Naval Research Logistics Quarterly 3
        - Jaggi, 2013, "Revisiting Frank-Wolfe: Projection-Free Sparse Convex Optimization", ICML,
          https://proceedings.mlr.press/v28/jaggi13.html
    """

    def __init__(self, learning_rate, lambda_=0.01, epsilon=1e-7, ord="fro", name=None, **kwargs):
        if not callable(learning_rate):
            _checks.number("learning_rate", learning_rate, 0.0, 1.0)
        super().__init__(learning_rate=_checks.learning_rate(learning_rate), name=name, **kwargs)
        self.lambda_ = _checks.number("lambda_", lambda_, low=0.0)
        self.epsilon = _checks.number("epsilon", epsilon, low=0.0)
        self.ord = _checks.choice("ord", ord, ORDS)

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = _common.dense_gradient(gradient, variable)
        lambda_ = ops.cast(self.lambda_, dtype)
        if self.ord == "fro":
            direction = gradient / (ops.sqrt(ops.sum(ops.square(gradient))) + ops.cast(self.epsilon, dtype))
        else:
            direction = _top_singular_direction(gradient)
        self.assign(variable, lr * variable - (1.0 - lr) * lambda_ * direction)

    def get_config(self):
        config = super().get_config()
        config.update({"lambda_": self.lambda_, "epsilon": self.epsilon, "ord": self.ord})
        return config
