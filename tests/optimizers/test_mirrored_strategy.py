"""`model.fit` under `tf.distribute.MirroredStrategy` (two logical CPUs) for RAdam, AdaBelief, Yogi, Adan, LARS and
Prodigy, all trained in one subprocess (TensorFlow only): each trains, and matches single-device training."""

import pytest

from tfopt.optimizers.adabelief import AdaBelief
from tfopt.optimizers.adan import Adan
from tfopt.optimizers.lars import LARS
from tfopt.optimizers.prodigy import Prodigy
from tfopt.optimizers.radam import RAdam
from tfopt.optimizers.yogi import Yogi

from .conformance import assert_mirrored_strategy_result, mirrored_strategy_results

OPTIMIZERS = {
    "radam": lambda: RAdam(learning_rate=0.05, weight_decay=0.01),
    "adabelief": lambda: AdaBelief(learning_rate=0.05, weight_decay=0.01),
    "yogi": lambda: Yogi(learning_rate=0.05),
    "adan": lambda: Adan(learning_rate=0.05, weight_decay=0.02),
    "lars": lambda: LARS(learning_rate=0.5, trust_coefficient=0.02, weight_decay=1e-3, nesterov=True),
    # Prodigy's d is a sum over every variable: the replicas must agree on it.
    "prodigy": lambda: Prodigy(d0=0.01, weight_decay=0.01),
}


@pytest.fixture(scope="module")
def results():
    return mirrored_strategy_results({name: make() for name, make in OPTIMIZERS.items()})


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_fit_under_mirrored_strategy_matches_single_device(results, name):
    assert_mirrored_strategy_result(results[name])
