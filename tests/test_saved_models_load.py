"""Models saved by an earlier tfopt keep loading after modules move (issue 21): the archives under tests/data were
written by tests/data/make_saved_before_architecture.py at the commit before the move, and hold wrappers
(pruning, QAT, clustering), schedules, a regularizer and optimizer wrappers with their state."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import tfopt  # noqa: F401  (what a user imports: it registers tfopt's classes with Keras)

DATA = os.path.join(os.path.dirname(__file__), "data")
NAMES = ["pruned_lookahead_radam", "quantized_swa_adan_group_lasso", "clustered_yogi_sequential"]
# Since issue 20, QAT inference on TensorFlow quantizes activations with TensorFlow's FakeQuant op (so that
# TFLiteConverter.from_keras_model writes int8 kernels); the model was saved computing the same levels with keras.ops
# as `x + (q - x)`, which rounds to within the last bit of float32 of the op's `q`.
LAST_BIT = {"quantized_swa_adan_group_lasso"}


def assert_same(actual, expected, last_bit=False):
    if keras.backend.backend() == "tensorflow" and not last_bit:  # the backend that saved them: bit for bit
        np.testing.assert_array_equal(actual, expected)
    elif keras.backend.backend() == "tensorflow":
        np.testing.assert_allclose(actual, expected, rtol=2.5e-7, atol=0)
    else:
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("name", NAMES)
def test_model_saved_before_the_move_loads_with_its_predictions_and_optimizer_state(name):
    model = keras.models.load_model(os.path.join(DATA, f"{name}.keras"))
    stored = np.load(os.path.join(DATA, f"{name}.npz"))
    assert_same(model.predict(stored["x"], verbose=0), stored["predictions"], last_bit=name in LAST_BIT)
    variables = model.optimizer.variables
    assert len(variables) == len([key for key in stored.files if key.startswith("optimizer_")])
    for i, variable in enumerate(variables):
        assert_same(np.asarray(variable), stored[f"optimizer_{i}"])
    # ... and trains on from there.
    before = [np.array(w) for w in model.trainable_weights]
    model.fit(stored["x"], np.arange(8) % 10, epochs=1, verbose=0)
    assert any(not np.array_equal(b, np.asarray(a)) for b, a in zip(before, model.trainable_weights))


def test_a_new_process_loads_them_after_import_tfopt_alone():
    # `import tfopt` before Keras: the classes register when Keras's import finishes; nothing else of tfopt is
    # imported by the script, as in a user's fresh process.
    script = textwrap.dedent(f"""
        import tfopt
        import sys
        assert "keras" not in sys.modules
        import keras
        import numpy as np
        for name in {NAMES!r}:
            model = keras.models.load_model(f"{DATA}/{{name}}.keras")
            stored = np.load(f"{DATA}/{{name}}.npz")
            tolerance = 2.5e-7 if name in {sorted(LAST_BIT)!r} else 0
            np.testing.assert_allclose(model.predict(stored["x"], verbose=0), stored["predictions"], rtol=tolerance,
                                       atol=0)
        print("loaded", len({NAMES!r}))
    """)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("loaded 3")
