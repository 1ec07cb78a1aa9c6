"""pruning_from_hp: a Keras Tuner search space over magnitude-pruning recipes (sparsity, schedule, structure,
scope), as the arguments of `tfopt.compression.prune_low_magnitude`."""

import re

from tfopt import _checks
from tfopt.compression import ConstantSparsity, PolynomialDecay
from tfopt.tuning import _hp

SCHEDULES = ("polynomial_decay", "constant")
SCOPES = ("layer", "global")


def _structure_name(i, structure):
    """"unstructured", "block" or "N:M" for an entry of `structures` (None means "unstructured")."""
    if structure is None:
        return "unstructured"
    if isinstance(structure, str):
        match = re.fullmatch(r"(\d+):(\d+)", structure)
        if structure in ("unstructured", "block") or (match and 1 <= int(match[1]) < int(match[2])):
            return structure
    raise ValueError(f"Argument `structures` must hold None, 'unstructured', 'block' or 'N:M' with 1 <= N < M (e.g. "
                     f"'2:4'). Received: structures[{i}]={structure!r}")


def pruning_from_hp(hp, total_steps, sparsity=(0.5, 0.9), schedules=SCHEDULES, structures=(None, "2:4"),
                    scopes=SCOPES, block_size=(1, 4), optional=False):
    """Pruning arguments chosen by Keras Tuner, ready for `prune_low_magnitude(model, **arguments)`.

    Use it inside a hypermodel's `build(hp)` to search how hard and how to prune. It declares

        pruning                     Boolean, only when `optional` (pruning on or off)
        pruning/structure           Choice(structures): "unstructured", "block" (blocks of `block_size` pruned
                                    whole) or "N:M" (at most N non-zeros in every M weights: sparsity 1 - N/M)
        pruning/sparsity            Float in `sparsity`, step 0.05 (not for N:M, whose sparsity is fixed)
        pruning/scope               Choice(scopes): "layer" or "global" (one threshold across layers; not for N:M)
        pruning/schedule            Choice(schedules): "polynomial_decay" (Zhu & Gupta's cubic ramp from 0 to the
                                    target over the first `end_fraction` of training, then constant) or
                                    "constant" (the target from step 0, masks recomputed every T / 10 steps)
        pruning/end_fraction        Float in [0.3, 0.8], for "polynomial_decay"

    with T = `total_steps`, so one space serves any training length.

    Args:
        hp: the `keras_tuner.HyperParameters` of the trial.
        total_steps: T, the optimizer steps the pruned model trains for, an integer >= 1.
        sparsity: `(low, high)` of the target sparsity, 0 < low <= high < 1. Default (0.5, 0.9).
        schedules: names among "polynomial_decay", "constant". Default both.
        structures: entries among None (or "unstructured"), "block" and "N:M" strings. Default (None, "2:4").
        scopes: names among "layer", "global". Default both.
        block_size: `(rows, cols)` of the "block" structure. Default (1, 4).
        optional: also search pruning off (then None is returned). Default False.

    Returns:
        A dict with `pruning_schedule`, `block_size`, `sparsity_m_by_n` and `pruning_scope`, or None when
        `optional` and the trial prunes nothing.

    References:
        - Zhu & Gupta, 2017, "To prune, or not to prune: exploring the efficacy of pruning for model compression",
          https://arxiv.org/abs/1710.01878
        - Mishra et al., 2021, "Accelerating Sparse Deep Neural Networks", https://arxiv.org/abs/2104.08378
    """

    _hp.check_hp(hp)
    total_steps = _checks.integer("total_steps", total_steps, 1)
    if (not isinstance(sparsity, (tuple, list)) or len(sparsity) != 2
            or not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in sparsity)
            or not 0.0 < sparsity[0] <= sparsity[1] < 1.0):
        raise ValueError(f"Argument `sparsity` must be a pair (low, high) with 0 < low <= high < 1. Received: "
                         f"sparsity={sparsity!r}")
    schedules = _hp.check_choices("schedules", schedules, SCHEDULES)
    if isinstance(structures, (list, tuple)) and structures:
        structures = [_structure_name(i, s) for i, s in enumerate(structures)]
    structures = _hp.check_choices("structures", structures)
    scopes = _hp.check_choices("scopes", scopes, SCOPES)
    _checks.boolean("optional", optional)
    if optional and not hp.Boolean("pruning"):
        return None
    with _maybe_scope(hp, optional):
        structure = hp.Choice("pruning/structure", list(structures))
        n_by_m = None
        with hp.conditional_scope("pruning/structure", [s for s in structures if ":" not in s] or ["-"]):
            if ":" not in structure:
                if sparsity[0] < sparsity[1]:
                    target = hp.Float("pruning/sparsity", sparsity[0], sparsity[1], step=0.05)
                else:
                    target = hp.Fixed("pruning/sparsity", float(sparsity[0]))
                scope = hp.Choice("pruning/scope", list(scopes))
        if ":" in structure:
            n, m = (int(v) for v in structure.split(":"))
            n_by_m, target, scope = (n, m), 1.0 - n / m, "layer"
        kind = hp.Choice("pruning/schedule", list(schedules))
        if kind == "polynomial_decay":
            with hp.conditional_scope("pruning/schedule", ["polynomial_decay"]):
                end_fraction = hp.Float("pruning/end_fraction", 0.3, 0.8, default=0.6)
            frequency = max(1, int(end_fraction * total_steps) // 10)
            schedule = PolynomialDecay.over_steps(target, total_steps, end_fraction=end_fraction, frequency=frequency)
        else:
            schedule = ConstantSparsity(target, begin_step=0, frequency=max(1, total_steps // 10))
    return {"pruning_schedule": schedule, "block_size": tuple(block_size) if structure == "block" else (1, 1),
            "sparsity_m_by_n": n_by_m, "pruning_scope": scope}


def _maybe_scope(hp, optional):
    import contextlib

    return hp.conditional_scope("pruning", [True]) if optional else contextlib.nullcontext()
