"""quantization_from_hp: a Keras Tuner search space over quantization-aware training (QAT), as the arguments of
`tfopt.compression.quantize_model`."""

from tfopt import _checks
from tfopt.tuning import _hp


def quantization_from_hp(hp, optional=True, ema_decays=(0.99, 0.999)):
    """QAT arguments chosen by Keras Tuner, ready for `quantize_model(model, **arguments)`; None for no QAT.

    Use it inside a hypermodel to let the search decide whether int8 quantization-aware training pays for its
    accuracy cost, which the size objective (`AccuracySizeObjective`) weighs: an int8 model stores its kernels
    in a quarter of the bytes. It declares

        quantization                  Boolean, only when `optional`: QAT on or off
        quantization/ema_decay        Choice(ema_decays): the decay d of the activation ranges' moving averages,
                                      m <- d m + (1 - d) min(batch) (shorter runs favour the smaller d)

    What else QAT has is fixed, not searched: int8 symmetric per-channel weights and int8 per-tensor activations
    (what full-integer TFLite kernels run), BatchNormalization folded, and a pruned model's zeros kept
    (`preserve_sparsity="auto"`).

    Args:
        hp: the `keras_tuner.HyperParameters` of the trial.
        optional: search QAT on and off (default True); False: always on, only its settings are searched.
        ema_decays: the decays to choose from, each in [0, 1). Default (0.99, 0.999).

    Returns:
        A dict with `ema_decay` and `preserve_sparsity`, or None when the trial does not quantize.

    References:
        - Jacob et al., 2018, "Quantization and Training of Neural Networks for Efficient
          Integer-Arithmetic-Only Inference", https://arxiv.org/abs/1712.05877
    """
    _hp.check_hp(hp)
    _checks.boolean("optional", optional)
    if isinstance(ema_decays, str) or not isinstance(ema_decays, (list, tuple)) or not ema_decays:
        raise ValueError(f"Argument `ema_decays` must be a non-empty list of numbers in [0, 1). Received: "
                         f"ema_decays={ema_decays!r}")
    for i, decay in enumerate(ema_decays):
        _checks.number(f"ema_decays[{i}]", decay, 0, 1, high_open=True)
    if optional and not hp.Boolean("quantization"):
        return None
    if optional:
        with hp.conditional_scope("quantization", [True]):
            decay = hp.Choice("quantization/ema_decay", [float(d) for d in ema_decays])
    else:
        decay = hp.Choice("quantization/ema_decay", [float(d) for d in ema_decays])
    return {"ema_decay": decay, "preserve_sparsity": "auto"}
