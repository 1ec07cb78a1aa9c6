"""`import tfopt.compat.tfa as tfa`: TensorFlow Addons' `tfa.optimizers` names, with TFA's arguments, defaults and
numerics, on tfopt's and Keras 3's objects (names and arguments adapted, nothing implemented twice).

Public objects:
    optimizers: every name of `tfa.optimizers` (see its docstring for what differs).
"""

from tfopt.compat.tfa import optimizers

__all__ = ["optimizers"]
