"""Time-to-accuracy of tfopt learning-rate schedules (AlgoPerf style), and the per-step cost of a schedule.

For each task and seed, Keras Adam at a constant 1e-3 trains for the task's epoch budget; its final validation
accuracy is that seed's target. Each recipe (AdamW with OneCycle, with WarmupStableDecay, and with Warmup + Keras
CosineDecay; peak LR from tfopt's LR range test, `suggestion(method="minimum")`, run once per task on seed 0)
trains from the same initial weights with its schedule laid over HALF the baseline's budget, so that it has
annealed by then; we record the first epoch whose validation accuracy reaches the target. Reported: median epochs
over seeds, the ratio to the baseline's median epochs to reach its own final accuracy, how many seeds reached the
target, and the wall-clock ratio (epochs ratio times the ratio of seconds per epoch measured in the same run).

Tasks: the bundled digits data with the demo CNN, and a harder synthetic 10-class problem (scikit-learn's
make_classification, 40 features, 2 clusters per class) with a 2x256 MLP.
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from benchmarks.harness import compare, write_results  # noqa: E402
from tfopt.callbacks import find_learning_rate  # noqa: E402
from tfopt.data import load_digits, make_dataset  # noqa: E402
from tfopt.models.demo_cnn import build_demo_cnn  # noqa: E402
from tfopt.schedules import OneCycle, Warmup, WarmupStableDecay  # noqa: E402

SEEDS = (0, 1, 2, 3, 4)
WEIGHT_DECAY = 1e-4


def digits_task():
    data = load_digits()
    return {
        "name": "digits, demo CNN",
        "train": data.train,
        "validation": data.validation,
        "build": lambda: build_demo_cnn(data.input_shape, data.num_classes),
        "from_logits": False,
        "batch_size": 32,
        "epochs": 20,
    }


def synthetic_task():
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    x, y = make_classification(
        n_samples=6000, n_features=40, n_informative=24, n_redundant=8, n_classes=10, n_clusters_per_class=2,
        class_sep=1.0, flip_y=0.01, random_state=0,
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x.astype("float32"), y.astype("int32"), test_size=0.25, stratify=y, random_state=0
    )

    def build():
        return keras.Sequential(
            [
                keras.Input((40,)),
                keras.layers.Dense(256, activation="relu"),
                keras.layers.Dense(256, activation="relu"),
                keras.layers.Dense(10),
            ]
        )

    return {
        "name": "synthetic 10-class, MLP",
        "train": (x_train, y_train),
        "validation": (x_val, y_val),
        "build": build,
        "from_logits": True,
        "batch_size": 64,
        "epochs": 30,
    }


def recipes(peak, total_steps):
    warmup = max(1, total_steps // 10)
    return {
        "OneCycle + AdamW": lambda: keras.optimizers.AdamW(OneCycle(peak, total_steps), weight_decay=WEIGHT_DECAY),
        "WSD + AdamW": lambda: keras.optimizers.AdamW(
            WarmupStableDecay(peak, total_steps, warmup_steps=warmup, decay_steps=total_steps // 5),
            weight_decay=WEIGHT_DECAY,
        ),
        "Warmup + Cosine + AdamW": lambda: keras.optimizers.AdamW(
            Warmup(keras.optimizers.schedules.CosineDecay(peak, total_steps - warmup), warmup),
            weight_decay=WEIGHT_DECAY,
        ),
    }


def train(task, seed, optimizer):
    keras.utils.set_random_seed(seed)
    model = task["build"]()
    model.compile(
        optimizer,
        keras.losses.SparseCategoricalCrossentropy(from_logits=task["from_logits"]),
        metrics=["accuracy"],
    )
    train_ds = make_dataset(*task["train"], batch_size=task["batch_size"], seed=seed)
    val_ds = make_dataset(*task["validation"], batch_size=512, shuffle=False)
    start = time.perf_counter()
    history = model.fit(train_ds, validation_data=val_ds, epochs=task["epochs"], shuffle=False, verbose=0)
    seconds = time.perf_counter() - start
    return history.history["val_accuracy"], seconds / task["epochs"]


def first_epoch_reaching(values, target):
    return next((i + 1 for i, v in enumerate(values) if v >= target), None)


def peak_learning_rate(task):
    keras.utils.set_random_seed(0)
    model = task["build"]()
    model.compile(
        keras.optimizers.AdamW(1e-3, weight_decay=WEIGHT_DECAY),
        keras.losses.SparseCategoricalCrossentropy(from_logits=task["from_logits"]),
    )
    data = make_dataset(*task["train"], batch_size=task["batch_size"], seed=0).repeat()
    finder = find_learning_rate(model, data, min_learning_rate=1e-5, max_learning_rate=1.0, num_steps=100)
    return float(finder.suggestion(method="minimum"))


def time_to_accuracy(task, seeds=SEEDS):
    horizon = dict(task, epochs=task["epochs"] // 2)
    steps = -(-len(task["train"][1]) // task["batch_size"]) * horizon["epochs"]
    peak = peak_learning_rate(task)
    results = {"Adam 1e-3 (Keras)": {"epochs": [], "reached": 0, "seconds_per_epoch": []}}
    for name in recipes(peak, steps):
        results[name] = {"epochs": [], "reached": 0, "seconds_per_epoch": []}
    for seed in seeds:
        # Interleave the recipes within a seed so that machine drift touches all of them alike.
        curve, per_epoch = train(task, seed, keras.optimizers.Adam(1e-3))
        target = curve[-1]
        entries = [("Adam 1e-3 (Keras)", curve, per_epoch)]
        for name, make in recipes(peak, steps).items():
            entries.append((name, *train(horizon, seed, make())))
        for name, values, seconds in entries:
            epochs = first_epoch_reaching(values, target)
            result = results[name]
            result["seconds_per_epoch"].append(seconds)
            if epochs is not None:
                result["reached"] += 1
                result["epochs"].append(epochs)
            else:
                result["epochs"].append(task["epochs"] + 1)  # did not reach it within the budget
    base = results["Adam 1e-3 (Keras)"]
    base_epochs = statistics.median(base["epochs"])
    base_seconds = statistics.median(base["seconds_per_epoch"])
    rows = []
    for name, result in results.items():
        epochs = statistics.median(result["epochs"])
        epoch_time_ratio = statistics.median(result["seconds_per_epoch"]) / base_seconds
        rows.append(
            {
                "task": task["name"],
                "recipe": name,
                "peak_lr": None if name.startswith("Adam 1e-3") else peak,
                "median_epochs": epochs,
                "epochs_ratio": epochs / base_epochs,
                "wall_clock_ratio": epochs / base_epochs * epoch_time_ratio,
                "reached": f"{result['reached']}/{len(seeds)}",
                "budget_epochs": task["epochs"] if name.startswith("Adam 1e-3") else horizon["epochs"],
            }
        )
    return rows


def step_cost(repeats=15):
    """Per-step cost of a tfopt schedule against a constant LR in `fit`: one epoch of the demo CNN each."""
    task = digits_task()
    steps = -(-len(task["train"][1]) // task["batch_size"])
    models = []
    for lr in (OneCycle(1e-2, 1000 * steps), 1e-3):
        keras.utils.set_random_seed(0)
        model = task["build"]()
        model.compile(keras.optimizers.AdamW(lr), "sparse_categorical_crossentropy")
        models.append(model)
    data = make_dataset(*task["train"], batch_size=task["batch_size"])
    return compare(
        "fit epoch, demo CNN: AdamW with OneCycle vs constant LR",
        lambda: models[0].fit(data, epochs=1, shuffle=False, verbose=0),
        lambda: models[1].fit(data, epochs=1, shuffle=False, verbose=0),
        candidate_name="OneCycle schedule",
        reference_name="constant 1e-3",
        repeats=repeats,
        warmup=2,
    )


COLUMNS = (
    ("task", "Task"),
    ("recipe", "Recipe"),
    ("peak_lr", "Peak LR (LR finder)"),
    ("median_epochs", "Median epochs to target"),
    ("epochs_ratio", "Epochs ratio"),
    ("wall_clock_ratio", "Wall-clock ratio"),
    ("reached", "Seeds reaching target"),
    ("budget_epochs", "Budget (epochs)"),
)


def main(seeds=SEEDS):
    rows = time_to_accuracy(digits_task(), seeds) + time_to_accuracy(synthetic_task(), seeds)
    text = write_results(
        "schedules",
        rows,
        title="Schedules: epochs to reach Keras Adam 1e-3's final validation accuracy (median over seeds)",
        notes=(
            f"Seeds {list(seeds)}; target per seed = that seed's Adam 1e-3 final validation accuracy; recipes run "
            "their schedule over half the baseline's budget; a seed that never reaches the target counts as the "
            "baseline's budget + 1. Ratios < 1: the recipe reaches the target sooner. Target: best recipe <= 0.7."
        ),
        columns=COLUMNS,
    )
    text += "\n" + write_results(
        "schedules_step_cost",
        [step_cost()],
        title="Schedules: per-step cost in fit (ratio to a constant learning rate)",
        notes="Target: within 2% (ratio <= 1.02).",
    )
    return text


if __name__ == "__main__":
    print(main())
