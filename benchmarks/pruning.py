"""Pruning: (a) `fit` step time of the pruned model as a ratio to the same model unwrapped, beside tfmot's ratio on
the same model in tf_keras; (b) digits test accuracy after gradual magnitude pruning to 50/80/90% against tfmot
with the same schedule, steps and seeds; (c) 2:4 sparsity accuracy.

The model is the demo CNN (51,946 parameters), trained dense for 20 epochs; pruning fine-tunes it for 10 epochs
(Adam 1e-3, batch 32) with `PolynomialDecay(0, s, begin_step=0, end_step=60% of the steps, frequency=1)`: masks
recomputed at every step, tfopt's recipe for high sparsity on a small model (with 20 coarse pruning steps, one
seed lost 9 points at 90%: a jump of several points of sparsity at once leaves the network no time to recover).
tfmot gets the same dense weights (copied into the equivalent tf_keras model), schedule and seeds. Given the same
weights and data, tfopt's per-layer and 2:4 masks equal tfmot's step for step
(tests/compression/test_prune_matches_tfmot.py), so the differences between the "(layer)" rows and between the 2:4
rows are training randomness: the shuffling and Dropout streams of Keras 3 and tf_keras differ. Five seeds.
Needs the `tfmot` extra for the tfmot columns. `--quick` runs one seed with fewer epochs; `--accuracy`, `--identical`
or `--timing` runs (and rewrites the results of) only that part. `--identical` repeats the per-layer runs with
nothing random in the fine-tune (no shuffling, Dropout off): tfopt and tfmot then end with the same weights.
"""

import math
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from benchmarks import harness  # noqa: E402
from tfopt import demo  # noqa: E402
from tfopt.compression import (  # noqa: E402
    ConstantSparsity,
    PolynomialDecay,
    prune_low_magnitude,
    sparsity_report,
    strip_pruning,
)
from tfopt.data import load_digits  # noqa: E402

BATCH = 32
SPARSITIES = (0.5, 0.8, 0.9)


def accuracy(predictions, labels):
    return float(np.mean(np.argmax(predictions, axis=1) == labels))


def tf_keras_cnn(tf_keras):
    """The demo CNN in tf_keras, layer for layer."""
    layers = tf_keras.layers
    return tf_keras.Sequential([
        tf_keras.Input((8, 8, 1)),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dropout(0.25),
        layers.Dense(32, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])


def schedule_for(sparsity, total_steps):
    end = max(1, int(0.6 * total_steps))
    return PolynomialDecay(0.0, sparsity, begin_step=0, end_step=end, frequency=1)


def train_dense(data, seed, epochs):
    keras.utils.set_random_seed(seed)
    model = demo.build_demo_cnn()
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(*data.train, batch_size=BATCH, epochs=epochs, verbose=0)
    return model


def ours(dense, data, seed, epochs, schedule, **kwargs):
    keras.utils.set_random_seed(seed)
    if kwargs.get("sparsity_m_by_n"):
        # The first convolution has one input channel, no group of 4: it stays dense (as on sparse tensor cores).
        copy = keras.models.clone_model(dense)
        copy.set_weights(dense.get_weights())
        first = copy.layers[0]
        model = keras.models.clone_model(copy, clone_function=lambda layer: layer if layer is first or not
                                         layer.weights else prune_low_magnitude(layer, schedule, **kwargs))
    else:
        model = prune_low_magnitude(dense, schedule, **kwargs)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(*data.train, batch_size=BATCH, epochs=epochs, verbose=0)
    stripped = strip_pruning(model)
    return accuracy(stripped.predict(data.x_test, verbose=0), data.y_test), sparsity_report(stripped)["total"]


def theirs(dense, data, seed, epochs, schedule, sparsity_m_by_n=None):
    import tensorflow_model_optimization as tfmot
    import tf_keras

    from tfopt.compression._tfmot_bridge import to_tfmot_schedule

    tf_keras.utils.set_random_seed(seed)
    model = tf_keras_cnn(tf_keras)
    model.set_weights(dense.get_weights())
    kwargs = {} if sparsity_m_by_n is None else {"sparsity_m_by_n": (sparsity_m_by_n[1] - sparsity_m_by_n[0],
                                                                      sparsity_m_by_n[1])}
    tfmot_schedule = to_tfmot_schedule(schedule, tfmot)
    if kwargs:
        first = model.layers[0]
        pruned = tf_keras.models.clone_model(model, clone_function=lambda layer: layer if layer is first or not
                                             layer.weights else tfmot.sparsity.keras.prune_low_magnitude(
                                                 layer, tfmot_schedule, **kwargs))
    else:
        pruned = tfmot.sparsity.keras.prune_low_magnitude(model, tfmot_schedule)
    pruned.compile(tf_keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    pruned.fit(*data.train, batch_size=BATCH, epochs=epochs, verbose=0,
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    kernels = [w for w in stripped.get_weights() if w.ndim > 1]
    nonzero, size = sum(np.count_nonzero(w) for w in kernels), sum(w.size for w in kernels)
    return accuracy(stripped.predict(data.x_test, verbose=0), data.y_test), 1 - nonzero / size


def without_dropout(model, dropout_class):
    for layer in model.layers:
        if isinstance(layer, dropout_class):
            layer.rate = 0.0
    return model


def identical_part(data, seeds, dense_epochs, epochs, out_dir):
    """Per-layer pruning by tfopt and by tfmot with nothing random in the fine-tune (no shuffling, Dropout off)."""
    import tensorflow_model_optimization as tfmot
    import tf_keras

    from tfopt.compression._tfmot_bridge import to_tfmot_schedule

    total_steps = epochs * math.ceil(len(data.y_train) / BATCH)
    rows = []
    for seed in seeds:
        dense = without_dropout(train_dense(data, seed, dense_epochs), keras.layers.Dropout)
        for sparsity in SPARSITIES[1:]:
            schedule = schedule_for(sparsity, total_steps)
            ours = prune_low_magnitude(dense, schedule)
            ours.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
            ours.fit(*data.train, batch_size=BATCH, epochs=epochs, verbose=0, shuffle=False)
            ours = strip_pruning(ours)
            theirs = without_dropout(tf_keras_cnn(tf_keras), tf_keras.layers.Dropout)
            theirs.set_weights(dense.get_weights())
            theirs = tfmot.sparsity.keras.prune_low_magnitude(theirs, to_tfmot_schedule(schedule, tfmot))
            theirs.compile(tf_keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
            theirs.fit(*data.train, batch_size=BATCH, epochs=epochs, verbose=0, shuffle=False,
                       callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
            theirs = tfmot.sparsity.keras.strip_pruning(theirs)
            pairs = list(zip(ours.get_weights(), theirs.get_weights()))
            rows.append({
                "seed": seed,
                "sparsity": sparsity,
                "tfopt_accuracy": accuracy(ours.predict(data.x_test, verbose=0), data.y_test),
                "tfmot_accuracy": accuracy(theirs.predict(data.x_test, verbose=0), data.y_test),
                "max_weight_difference": max(float(np.max(np.abs(a - b))) for a, b in pairs),
                "same_zeros": float(np.mean(np.concatenate([((a == 0) == (b == 0)).ravel() for a, b in pairs]))),
            })
            print(rows[-1], flush=True)
    return harness.write_results(
        "pruning_identical", rows, title="Pruning: tfopt and tfmot with nothing random in the fine-tune",
        columns=(("seed", "Seed"), ("sparsity", "Sparsity"), ("tfopt_accuracy", "tfopt acc."),
                 ("tfmot_accuracy", "tfmot acc."), ("max_weight_difference", "Max weight difference"),
                 ("same_zeros", "Same zeros (fraction)")),
        notes=f"Per-layer PolynomialDecay pruning of the same dense model, {epochs} epochs of Adam, no shuffling and "
              "the Dropout rate set to 0 on both sides: what is left of the differences in the accuracy table.",
        out_dir=out_dir)


def have_tfmot():
    try:
        import tensorflow_model_optimization  # noqa: F401
        import tf_keras  # noqa: F401
    except ImportError:
        return False
    return True


def step_time(data, dense, repeats):
    """(a): wrapped/unwrapped time of 20 `train_on_batch` steps, ours and tfmot's."""
    x, y = data.x_train[:BATCH], data.y_train[:BATCH]

    def runner(model):
        model.train_on_batch(x, y)  # compiles

        def run():
            for _ in range(20):
                model.train_on_batch(x, y)
        return run

    plain = demo.build_demo_cnn()
    plain.set_weights(dense.get_weights())
    plain.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    wrapped = prune_low_magnitude(dense, ConstantSparsity(0.8, begin_step=0, frequency=100))
    wrapped.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    rows = [harness.compare("fit step (20 train_on_batch)", runner(wrapped), runner(plain),
                            candidate_name="tfopt pruned", reference_name="Keras 3 dense", repeats=repeats)]
    if have_tfmot():
        import tensorflow_model_optimization as tfmot
        import tf_keras

        t_plain = tf_keras_cnn(tf_keras)
        t_plain.set_weights(dense.get_weights())
        t_plain.compile(tf_keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
        t_model = tf_keras_cnn(tf_keras)
        t_model.set_weights(dense.get_weights())
        t_wrapped = tfmot.sparsity.keras.prune_low_magnitude(
            t_model, tfmot.sparsity.keras.ConstantSparsity(0.8, begin_step=0, frequency=100))
        t_wrapped.compile(tf_keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
        for layer in t_wrapped.layers:  # what tfmot's UpdatePruningStep does at the start of fit
            if hasattr(layer, "pruning_step"):
                layer.pruning_step.assign(0)
        rows.append(harness.compare("fit step (20 train_on_batch)", runner(t_wrapped), runner(t_plain),
                                    candidate_name="tfmot pruned", reference_name="tf_keras dense",
                                    repeats=repeats))
    return rows


ACCURACY_COLUMNS = (
    ("method", "Method"),
    ("sparsity", "Target sparsity"),
    ("measured_sparsity", "Measured (kernels)"),
    ("accuracy", "Test acc. (mean)"),
    ("accuracy_min", "Min"),
    ("accuracy_max", "Max"),
    ("vs_dense", "vs dense (points)"),
    ("seeds", "Seeds"),
)


def main(argv=()):
    quick = "--quick" in argv
    parts = [part for part in ("accuracy", "identical", "timing") if f"--{part}" in argv]
    parts = parts or ["accuracy", "identical", "timing"]
    seeds = (0,) if quick else (0, 1, 2, 3, 4)
    dense_epochs, epochs = (5, 2) if quick else (20, 10)
    data = load_digits()
    # A quick run checks the script; its numbers are not results (written to a temporary folder).
    out_dir = tempfile.mkdtemp(prefix="pruning_quick_") if quick else harness.RESULTS_DIR
    text = ""
    if "accuracy" in parts:
        text += accuracy_part(data, seeds, dense_epochs, epochs, out_dir)
    if "identical" in parts and have_tfmot():
        text += "\n" + identical_part(data, seeds[:2], dense_epochs, epochs, out_dir)
    if "timing" in parts:
        timing = step_time(data, train_dense(data, seeds[0], dense_epochs), repeats=5 if quick else 15)
        text += "\n" + harness.write_results(
            "pruning_step_time", timing, title="Pruning: fit step time, pruned / dense", out_dir=out_dir,
            notes="Ratio of 20 train_on_batch steps of the pruned model (80% target, masks recomputed every 100 "
                  "steps) to the same model unwrapped, interleaved rounds; tfmot's ratio on the tf_keras model "
                  "beside it.")
    return text


def accuracy_part(data, seeds, dense_epochs, epochs, out_dir):
    total_steps = epochs * math.ceil(len(data.y_train) / BATCH)
    tfmot_available = have_tfmot()
    results = {}
    dense_accuracy = []
    start = time.perf_counter()
    for seed in seeds:
        dense = train_dense(data, seed, dense_epochs)
        dense_accuracy.append(accuracy(dense.predict(data.x_test, verbose=0), data.y_test))
        for sparsity in SPARSITIES:
            schedule = schedule_for(sparsity, total_steps)
            for method, function, kwargs in (("tfopt (layer)", ours, {}),
                                             ("tfopt (global)", ours, {"pruning_scope": "global"}),
                                             ("tfmot (layer)", theirs, {})):
                if function is theirs and not tfmot_available:
                    continue
                acc, measured = function(dense, data, seed, epochs, schedule, **kwargs)
                measured = measured["sparsity"] if isinstance(measured, dict) else measured
                results.setdefault((method, sparsity), []).append((acc, measured))
                print(f"seed {seed} {method} {sparsity}: {acc:.4f} ({measured:.3f})", flush=True)
        n_m_schedule = ConstantSparsity(0.5, begin_step=1, frequency=10**9)
        for method, function in (("tfopt 2:4", ours), ("tfmot 2:4", theirs)):
            if function is theirs and not tfmot_available:
                continue
            acc, measured = function(dense, data, seed, epochs, n_m_schedule, sparsity_m_by_n=(2, 4))
            measured = measured["sparsity"] if isinstance(measured, dict) else measured
            results.setdefault((method, 0.5), []).append((acc, measured))
            print(f"seed {seed} {method}: {acc:.4f} ({measured:.3f})", flush=True)
    dense_mean = float(np.mean(dense_accuracy))
    rows = [{"method": "dense (Adam, 20 epochs)", "sparsity": 0.0, "measured_sparsity": 0.0,
             "accuracy": dense_mean, "accuracy_min": min(dense_accuracy), "accuracy_max": max(dense_accuracy),
             "vs_dense": 0.0, "seeds": len(seeds)}]
    for (method, sparsity), values in results.items():
        accs = [a for a, _ in values]
        measured = float(np.mean([m for _, m in values]))
        rows.append({"method": method, "sparsity": sparsity, "measured_sparsity": measured,
                     "accuracy": float(np.mean(accs)), "accuracy_min": min(accs), "accuracy_max": max(accs),
                     "vs_dense": 100 * (float(np.mean(accs)) - dense_mean), "seeds": len(values)})
    rows.sort(key=lambda r: (r["sparsity"], r["method"]))
    accuracy_seconds = time.perf_counter() - start
    notes = (f"Digits (scikit-learn), demo CNN; pruning fine-tunes the dense model for {epochs} epochs with the same "
             "PolynomialDecay schedule (cubic, to 60% of the steps, masks updated at every step) for every method; "
             "2:4 is applied at step 1 and fine-tuned. Measured sparsity counts the kernels (rank >= 2 weights). "
             "The masks equal tfmot's step for step on the same weights; the (layer) and 2:4 differences are the "
             "training randomness of two Keras versions. "
             f"Accuracy part: {accuracy_seconds:.0f} s.")
    return harness.write_results("pruning_accuracy", rows, title="Pruning: digits test accuracy vs tfmot",
                                 notes=notes, columns=ACCURACY_COLUMNS, out_dir=out_dir)


if __name__ == "__main__":
    print(main(sys.argv[1:]))
