"""One way to run `fit` that the profiler measures: XLA, steps per execution, precision, input, batch size."""

import math
from dataclasses import asdict, dataclass, replace

from tfopt import _checks

_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
_PIPELINES = ("given", "tfopt")
_LR_RULES = (None, "linear", "sqrt")


@dataclass(frozen=True)
class Candidate:
    """A configuration of `compile`/`fit` for `profile_fit` to time against Keras's defaults.

    Every field left at its default is Keras's own default, so `Candidate("defaults")` is plain `compile`/`fit`.
    Custom candidates (a dict of these fields works too) go into `profile_fit(candidates=[...])` beside the
    built-in names in `Candidate.BUILT_IN`.

    Args:
        name: the row's name in the profile.
        jit_compile: `compile(jit_compile=...)`: "auto" (Keras's default: XLA off on a CPU-only TensorFlow, on
            elsewhere), True or False. Default "auto".
        steps_per_execution: `compile(steps_per_execution=...)`: train steps per call of the compiled function,
            an integer >= 1. Default 1.
        dtype_policy: "float32", "mixed_float16" (GPU only) or "mixed_bfloat16", the global Keras dtype policy
            under which the model is built. Default "float32".
        input_pipeline: "given" (the data exactly as passed) or "tfopt" (`tfopt.data.make_dataset` for arrays:
            cache, shuffle, prefetch; `cache().prefetch()` for a `tf.data.Dataset`). Default "given".
        batch_multiplier: batch size as a multiple of the profile's, an integer >= 1. Default 1.
        lr_scaling: how the learning rate follows a larger batch `k = batch_multiplier`: "linear" (`lr * k`,
            Goyal et al.), "sqrt" (`lr * sqrt(k)`, Krizhevsky) or None (unchanged). Default None.
        learning_rate_scale: a further factor on the learning rate, a number >= 0. Default 1.0.

    The learning rate of the candidate is `lr * rule(k) * learning_rate_scale` with `rule(k) = k`, `sqrt(k)` or 1.

    References:
        Goyal et al., 2017. Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour.
            https://arxiv.org/abs/1706.02677
        Krizhevsky, 2014. One weird trick for parallelizing convolutional neural networks.
            https://arxiv.org/abs/1404.5997
    """

    name: str
    jit_compile: object = "auto"
    steps_per_execution: int = 1
    dtype_policy: str = "float32"
    input_pipeline: str = "given"
    batch_multiplier: int = 1
    lr_scaling: str | None = None
    learning_rate_scale: float = 1.0

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"Argument `name` must be a non-empty string. Received: name={self.name!r}")
        if not (self.jit_compile is True or self.jit_compile is False or self.jit_compile == "auto"):
            raise ValueError(
                f"Argument `jit_compile` must be one of 'auto', True, False. Received: jit_compile={self.jit_compile!r}"
            )
        _checks.integer("steps_per_execution", self.steps_per_execution, 1)
        _checks.integer("batch_multiplier", self.batch_multiplier, 1)
        if self.dtype_policy not in _POLICIES:
            raise ValueError(
                f"Argument `dtype_policy` must be one of {_POLICIES}. Received: dtype_policy={self.dtype_policy!r}"
            )
        if self.input_pipeline not in _PIPELINES:
            raise ValueError(
                f"Argument `input_pipeline` must be one of {_PIPELINES}. "
                f"Received: input_pipeline={self.input_pipeline!r}"
            )
        if self.lr_scaling not in _LR_RULES:
            raise ValueError(
                f"Argument `lr_scaling` must be one of {_LR_RULES}. Received: lr_scaling={self.lr_scaling!r}"
            )
        _checks.number("learning_rate_scale", self.learning_rate_scale, low=0)

    BUILT_IN = {}  # filled below: name -> Candidate

    @classmethod
    def resolve(cls, spec):
        """A `Candidate` from a built-in name, a dict of fields, or a `Candidate`."""
        if isinstance(spec, Candidate):
            return spec
        if isinstance(spec, dict):
            return cls(**spec)
        if isinstance(spec, str):
            if spec not in cls.BUILT_IN:
                raise ValueError(
                    f"Argument `candidates` names an unknown candidate; known names are {sorted(cls.BUILT_IN)}. "
                    f"Received: {spec!r}"
                )
            return cls.BUILT_IN[spec]
        raise TypeError(
            "Argument `candidates` must hold built-in names, dicts of `Candidate` fields or `Candidate` objects. "
            f"Received: {spec!r}"
        )

    def _rule_factor(self):
        rule = {None: 1.0, "linear": float(self.batch_multiplier), "sqrt": math.sqrt(self.batch_multiplier)}
        return rule[self.lr_scaling]

    @property
    def learning_rate_factor(self):
        """The factor on the model's learning rate: `rule(batch_multiplier) * learning_rate_scale`."""
        return self._rule_factor() * float(self.learning_rate_scale)

    def compile_kwargs(self):
        """The keyword arguments this candidate passes to `model.compile`."""
        return {"jit_compile": self.jit_compile, "steps_per_execution": self.steps_per_execution}

    def changes(self):
        """The fields that differ from Keras's defaults, as a dict."""
        base = asdict(Candidate("defaults"))
        return {k: v for k, v in asdict(self).items() if k != "name" and v != base[k]}

    def describe(self):
        """A short description: the knobs this candidate turns, or "Keras defaults"."""
        parts = []
        if self.jit_compile != "auto":
            parts.append(f"jit_compile={self.jit_compile}")
        if self.steps_per_execution != 1:
            parts.append(f"steps_per_execution={self.steps_per_execution}")
        if self.dtype_policy != "float32":
            parts.append(self.dtype_policy)
        if self.input_pipeline != "given":
            parts.append("tfopt input pipeline")
        if self.batch_multiplier != 1:
            rule = {None: "same lr", "linear": "linear lr rule", "sqrt": "square-root lr rule"}[self.lr_scaling]
            parts.append(f"batch x{self.batch_multiplier} ({rule}, lr x{self._rule_factor():g})")
        if self.learning_rate_scale != 1.0:
            parts.append(f"lr x{self.learning_rate_scale:g}")
        return ", ".join(parts) or "Keras defaults"

    def merged(self, name, **changes):
        return replace(self, name=name, **changes)

    def to_dict(self):
        return asdict(self)




Candidate.BUILT_IN = {
    c.name: c
    for c in (
        Candidate("defaults"),
        Candidate("jit_compile", jit_compile=True),
        Candidate("no_jit_compile", jit_compile=False),
        Candidate("steps_per_execution_8", steps_per_execution=8),
        Candidate("steps_per_execution_32", steps_per_execution=32),
        Candidate("mixed_float16", dtype_policy="mixed_float16"),
        Candidate("mixed_bfloat16", dtype_policy="mixed_bfloat16"),
        Candidate("mixed_bfloat16_jit", dtype_policy="mixed_bfloat16", jit_compile=True),
        Candidate("tfopt_pipeline", input_pipeline="tfopt"),
        Candidate("batch_x2_linear", batch_multiplier=2, lr_scaling="linear"),
        Candidate("batch_x2_sqrt", batch_multiplier=2, lr_scaling="sqrt"),
        Candidate("batch_x4_linear", batch_multiplier=4, lr_scaling="linear"),
        Candidate("batch_x4_sqrt", batch_multiplier=4, lr_scaling="sqrt"),
    )
}


def auto_candidates(hardware):
    """The built-in candidates that make sense on `hardware`, and why the others were left out.

    Returns:
        `(candidates, left_out)`: a list of `Candidate` (defaults first) and a dict name -> reason.
    """
    keep, left_out = ["defaults", "steps_per_execution_8", "steps_per_execution_32", "tfopt_pipeline"], {}
    if hardware.backend == "jax":
        keep.insert(1, "jit_compile")
        left_out["no_jit_compile"] = "on JAX, jit_compile=False runs every step eagerly in Python: never faster"
    elif hardware.default_jit:
        keep.insert(1, "no_jit_compile")
    else:
        keep.insert(1, "jit_compile")
        left_out["no_jit_compile"] = "Keras's default on a CPU-only TensorFlow is already jit_compile=False"
    if hardware.float16_fast:
        keep.append("mixed_float16")
    else:
        left_out["mixed_float16"] = (
            "float16 pays off only on GPUs with tensor cores; this machine has none "
            f"({hardware.device}), where float16 math is emulated and needs loss scaling"
        )
    if hardware.bfloat16_fast:
        keep.append("mixed_bfloat16")
        left_out["mixed_bfloat16_jit"] = "mixed_bfloat16 is measured with the backend's default compilation"
    else:
        # On a CPU, bfloat16 is at best on par with float32 (with XLA; 6x slower without), and its XLA compile is
        # the profile's single largest cost: measuring it would spend the time budget on a row that cannot win.
        reason = (
            "bfloat16 pays off only where it is native (TPUs, NVIDIA GPUs from compute capability 8.0); on this "
            f"{hardware.device.upper()} it is emulated: at best on par with float32 with XLA (0.4x-1.0x measured on "
            "CNNs on a CPU) and several times slower without XLA (6x measured): ask for it by name"
        )
        left_out["mixed_bfloat16"] = reason
        left_out["mixed_bfloat16_jit"] = reason
    for name in ("batch_x2_linear", "batch_x2_sqrt", "batch_x4_linear", "batch_x4_sqrt"):
        left_out[name] = "a larger batch changes the optimization, not only the speed: ask for it by name"
    return [Candidate.BUILT_IN[name] for name in keep], left_out
