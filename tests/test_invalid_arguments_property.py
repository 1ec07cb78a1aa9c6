"""Property: every numeric argument of every public constructor refuses invalid values (NaN, infinities, strings,
lists, bools) with a ValueError or TypeError from tfopt that names the argument.

Each (constructor, argument) pair is checked on a fixed set of invalid values and, with Hypothesis, on drawn ones;
`test_distinct_bad_inputs_covered` counts the distinct (constructor, argument, value) inputs the fixed set covers
(the issue's goal: >= 300).
"""

import math

import keras
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tfopt

pytestmark = pytest.mark.backend_agnostic

BASE_OPTIONS = ["clipnorm", "clipvalue", "global_clipnorm", "ema_momentum", "ema_overwrite_frequency",
                "loss_scale_factor", "gradient_accumulation_steps"]


def _dense():
    return keras.layers.Dense(4)


def _model():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])


# name -> (the valid required arguments, the numeric arguments to break). Optimizers also get the Keras base options.
CONSTRUCTORS = {
    "RAdam": ({}, ["learning_rate", "beta_1", "beta_2", "epsilon", "weight_decay"]),
    "AdaBelief": ({}, ["learning_rate", "beta_1", "beta_2", "epsilon", "weight_decay"]),
    "Yogi": ({}, ["learning_rate", "beta_1", "beta_2", "epsilon", "initial_accumulator_value", "weight_decay"]),
    "Adan": ({}, ["learning_rate", "beta_1", "beta_2", "beta_3", "epsilon", "weight_decay"]),
    "LARS": ({}, ["learning_rate", "momentum", "trust_coefficient", "epsilon", "weight_decay"]),
    "Prodigy": ({}, ["learning_rate", "beta_1", "beta_2", "beta_3", "epsilon", "d0", "d_coef", "weight_decay"]),
    "ScheduleFreeSGD": ({}, ["learning_rate", "beta_1", "warmup_steps", "r", "weight_lr_power", "weight_decay"]),
    "ScheduleFreeAdamW": ({}, ["learning_rate", "beta_1", "beta_2", "epsilon", "warmup_steps", "r",
                                "weight_lr_power", "weight_decay"]),
    "LazyAdam": ({}, ["learning_rate", "beta_1", "beta_2", "epsilon", "weight_decay"]),
    "NovoGrad": ({}, ["learning_rate", "beta_1", "beta_2", "epsilon", "weight_decay"]),
    "COCOB": ({}, ["alpha"]),
    "ConditionalGradient": ({"learning_rate": 0.1}, ["learning_rate", "lambda_", "epsilon"]),
    "ProximalAdagrad": ({}, ["learning_rate", "initial_accumulator_value", "l1", "l2"]),
    "Lookahead": ({"optimizer": "adam"}, ["sync_period", "slow_step_size"]),
    "MovingAverage": ({"optimizer": "adam"}, ["average_decay", "start_step"]),
    "SWA": ({"optimizer": "adam"}, ["start_averaging", "average_period"]),
    "AdaptiveGradientClipping": ({"optimizer": "adam"}, ["clipping", "eps"]),
    "LinearDecay": ({"initial_learning_rate": 0.1, "decay_steps": 10},
                    ["initial_learning_rate", "decay_steps", "end_learning_rate"]),
    "StepDecay": ({"initial_learning_rate": 0.1, "step_size": 10}, ["initial_learning_rate", "step_size", "gamma"]),
    "InverseSqrt": ({"peak_learning_rate": 0.1, "warmup_steps": 10}, ["peak_learning_rate", "warmup_steps"]),
    "OneCycle": ({"max_learning_rate": 0.1, "total_steps": 100},
                 ["max_learning_rate", "total_steps", "pct_start", "div_factor", "final_div_factor"]),
    "CyclicalLearningRate": ({"base_learning_rate": 0.01, "max_learning_rate": 0.1, "step_size_up": 10},
                             ["base_learning_rate", "max_learning_rate", "step_size_up", "gamma"]),
    "WarmupStableDecay": ({"peak_learning_rate": 0.1, "total_steps": 100, "warmup_steps": 10, "decay_steps": 20},
                          ["peak_learning_rate", "total_steps", "warmup_steps", "decay_steps",
                           "final_learning_rate"]),
    "Warmup": ({"schedule": 0.1, "warmup_steps": 10}, ["warmup_steps", "initial_learning_rate"]),
    "ConstantSparsity": ({"target_sparsity": 0.5, "begin_step": 0},
                         ["target_sparsity", "begin_step", "end_step", "frequency"]),
    "PolynomialDecay": ({"initial_sparsity": 0.0, "final_sparsity": 0.5, "begin_step": 0, "end_step": 100},
                        ["initial_sparsity", "final_sparsity", "begin_step", "end_step", "power", "frequency"]),
    "GroupLasso": ({}, ["l"]),
    "ReduceLROnPlateau": ({}, ["factor", "patience", "verbose", "min_delta", "cooldown", "min_lr"]),
    "MomentumCycle": ({"total_steps": 100}, ["base_momentum", "max_momentum", "pct_start", "total_steps"]),
    "LRFinder": ({}, ["min_learning_rate", "max_learning_rate", "num_steps", "smoothing", "stop_factor"]),
    "LearningRateMonitor": ({}, ["every_n_steps"]),
    "NonFiniteGuard": ({}, ["check_every"]),
    "StructuredPruning": ({}, ["target", "min_channels"]),
    "SWAEval": ({}, ["batch_size"]),
    "WeightHistograms": ({"log_dir": "logs"}, ["buckets"]),
    "SoftTargetDistillation": ({}, ["temperature"]),
    "SharpnessAwareMinimization": ({"model": _model}, ["rho", "eta"]),
    "ClusterWeights": ({"layer": _dense, "number_of_clusters": 2}, ["number_of_clusters", "seed"]),
    "QuantizeWrapper": ({"layer": _dense}, ["ema_decay"]),
    "Candidate": ({"name": "c"}, ["steps_per_execution", "batch_multiplier", "learning_rate_scale"]),
    "AccuracySizeObjective": ({}, ["size_weight"]),
    "OptimizationHyperModel": ({"build_model": _model, "epochs": 1, "steps_per_epoch": 1},
                               ["epochs", "steps_per_epoch", "qat_fraction"]),
}
OPTIMIZERS = {"RAdam", "AdaBelief", "Yogi", "Adan", "LARS", "Prodigy", "ScheduleFreeSGD", "ScheduleFreeAdamW",
              "LazyAdam", "NovoGrad", "COCOB", "ConditionalGradient", "ProximalAdagrad"}
# Values that are valid for one argument though invalid in general: +inf as Prodigy's growth_rate (unbounded).
VALID = {("Prodigy", "growth_rate", math.inf)}


def _valid(name, argument, value):
    return isinstance(value, float) and (name, argument, value) in VALID


PAIRS = [(name, argument) for name, (_, arguments) in CONSTRUCTORS.items()
         for argument in arguments + (BASE_OPTIONS if name in OPTIMIZERS else [])]
FIXED = [math.nan, math.inf, -math.inf, "0.5", [0.5], True]
SEEN = set()


def _required(name):
    # `build_model` is the function itself; other callables build a fresh layer or model per construction.
    return {key: (value() if callable(value) and key != "build_model" else value)
            for key, value in CONSTRUCTORS[name][0].items()}


def _refuses(name, argument, value):
    SEEN.add((name, argument, repr(value)))
    kwargs = {**_required(name), argument: value}
    with pytest.raises((ValueError, TypeError)) as info:
        getattr(tfopt, name)(**kwargs)
    assert f"`{argument}`" in str(info.value), (name, argument, value, str(info.value))


@pytest.mark.parametrize(("name", "argument"), PAIRS)
def test_fixed_invalid_values_are_refused_naming_the_argument(name, argument):
    for value in FIXED:
        if not _valid(name, argument, value):
            _refuses(name, argument, value)


_invalid = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.text(max_size=6),
    st.lists(st.floats(allow_nan=False), min_size=1, max_size=3),
    st.booleans(),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_drawn_invalid_values_are_refused_naming_the_argument(name, data):
    arguments = [argument for pair_name, argument in PAIRS if pair_name == name]
    argument = data.draw(st.sampled_from(arguments), label="argument")
    value = data.draw(_invalid.filter(lambda v: not _valid(name, argument, v)), label="value")
    _refuses(name, argument, value)


def test_distinct_bad_inputs_covered():
    fixed = {(name, argument, repr(value)) for name, argument in PAIRS for value in FIXED
             if not _valid(name, argument, value)}
    print(f"\ndistinct bad inputs: {len(fixed)} fixed, {len(SEEN | fixed)} with the drawn ones so far")
    assert len(fixed) >= 300
