"""The result of `profile_fit`: one measured row per configuration, the recommendation, and why."""

import json
from dataclasses import dataclass, field

TABLE_COLUMNS = (
    ("name", "Configuration"),
    ("description", "Changes"),
    ("step_ms", "Step (ms)"),
    ("step_iqr_ms", "Spread (ms)"),
    ("examples_per_s", "Examples/s"),
    ("compile_s", "Compile (s)"),
    ("speedup", "Speedup"),
    ("loss", "Loss"),
    ("verdict", "Verdict"),
)


def _cell(key, row):
    value = row.get(key)
    if key == "verdict":
        if row.get("recommended"):
            return "**recommended**"
        if not row.get("loss_ok"):
            return "trains worse (flagged)"
        if row.get("pruned_after"):
            return f"clearly slower (timing stopped after {row['pruned_after']} rounds)"
        if row.get("speedup", 1.0) > 1.0 and not row.get("significant"):
            return "within noise"
        return "faster" if row.get("significant") else "not faster"
    if value is None:
        return "-"
    if key in ("step_ms", "step_iqr_ms"):
        return f"{value:.2f}"
    if key == "examples_per_s":
        return f"{value:,.0f}"
    if key == "compile_s":
        return f"{value:.2f}"
    if key == "speedup":
        return f"{value:.2f}x"
    if key == "loss":
        return f"{value:.4f}"
    return str(value)


@dataclass
class FitProfile:
    """What `profile_fit` measured and what it recommends.

    Attributes:
        rows: one dict per configuration: `name`, `description`, `config` (the `Candidate`'s fields), `phase`
            (1: every candidate interleaved; 2: the combination of the winners, interleaved against the defaults
            and the fastest single change), `steps` and `batch_size` of a timed epoch, `compile_s` (first epoch
            minus a timed one), `step_ms` and `step_iqr_ms` (median and interquartile range per step),
            `examples_per_s`, `pruned_after` (the rounds a clearly slower row was timed before it stopped, or
            None), `speedup` (examples/s against Keras's defaults of the same phase), `significant`
            (faster than the defaults by more than the spread of both rows), `loss` (mean training loss of the
            last epoch, from the same initial weights), `losses` (every epoch's, the compiling one first),
            `loss_ok` (within `loss_tolerance` of the float32 defaults run after as many epochs), `recommended`,
            `epoch_seconds` (every sample).
        best_name: the recommended row's name ("defaults" when nothing is reliably faster).
        notes: plain sentences: the recommendation, noise, flagged rows.
        left_out: built-in candidates "auto" did not run, name -> reason.
        input: the input-pipeline diagnosis as a dict (see `InputDiagnosis`), or None.
        meta: hardware, batch size, steps, rounds, seed, tolerance, profile seconds.
    """

    rows: list
    best_name: str
    notes: list = field(default_factory=list)
    left_out: dict = field(default_factory=dict)
    input: dict | None = None
    meta: dict = field(default_factory=dict)

    def row(self, name):
        """The row named `name`."""
        for row in self.rows:
            if row["name"] == name:
                return row
        raise KeyError(f"no row named {name!r}; rows are {[r['name'] for r in self.rows]}")

    @property
    def best(self):
        """The recommended configuration as keyword arguments.

        Returns a dict: `compile` (for `model.compile`: `jit_compile`, `steps_per_execution`), `fit` (for
        `model.fit`: `batch_size`), `dtype_policy` (set with `keras.config.set_dtype_policy` before building the
        model), `input_pipeline` ("given", or "tfopt": feed `tfopt.data.make_dataset(...)`),
        `learning_rate_factor` (multiply the learning rate by it) and `candidate` (the row's name).
        """
        config = self.row(self.best_name)["config"]
        return {
            "candidate": self.best_name,
            "compile": {"jit_compile": config["jit_compile"], "steps_per_execution": config["steps_per_execution"]},
            "fit": {"batch_size": self.meta.get("batch_size", 32) * config["batch_multiplier"]},
            "dtype_policy": config["dtype_policy"],
            "input_pipeline": config["input_pipeline"],
            "learning_rate_factor": self.row(self.best_name)["learning_rate_factor"],
        }

    def table(self):
        """The rows as a markdown table, followed by the notes and the input verdict."""
        lines = [
            "| " + " | ".join(title for _, title in TABLE_COLUMNS) + " |",
            "|" + "|".join("---" for _ in TABLE_COLUMNS) + "|",
        ]
        for row in self.rows:
            lines.append("| " + " | ".join(_cell(key, row) for key, _ in TABLE_COLUMNS) + " |")
        text = "\n".join(lines) + "\n\n"
        text += "".join(f"- {note}\n" for note in self.notes)
        if self.input is not None:
            text += f"- Input pipeline: {self.input['verdict']}.\n"
        by_reason = {}
        for name, reason in self.left_out.items():
            by_reason.setdefault(reason, []).append(name)
        for reason, names in by_reason.items():
            text += f"- Left out {', '.join(names)}: {reason}.\n"
        return text

    def to_dict(self):
        return {
            "best": self.best,
            "rows": self.rows,
            "notes": self.notes,
            "left_out": self.left_out,
            "input": self.input,
            "meta": self.meta,
        }

    def to_json(self, indent=2):
        """The whole profile as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, default=str)

    def plot(self, path):
        """Writes a bar chart of every row's speedup against Keras's defaults (PNG) to `path`."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = list(reversed(self.rows))
        speedups = [row["speedup"] for row in rows]
        # The spread as a range of speedups: the defaults' median over the row's median +- half its IQR.
        errors = [
            [row["speedup"] * row["step_iqr_ms"] / (2 * row["step_ms"]) for row in rows],
            [row["speedup"] * row["step_iqr_ms"] / (2 * row["step_ms"]) for row in rows],
        ]
        colors = [
            "tab:green" if row.get("recommended") else "tab:red" if not row.get("loss_ok") else "tab:gray"
            for row in rows
        ]
        fig, ax = plt.subplots(figsize=(7.0, 0.45 * len(rows) + 1.6))
        ax.barh([row["name"] for row in rows], speedups, xerr=errors, color=colors, capsize=3)
        ax.axvline(1.0, color="black", linewidth=1)
        for y, row in enumerate(rows):
            ax.annotate(f"{row['speedup']:.2f}x", (row["speedup"], y), xytext=(6, -4), textcoords="offset points")
        ax.set_xlim(0, 1.25 * max(speedups + [1.0]))
        ax.set_xlabel("speedup against Keras's defaults (examples/s); bars: IQR")
        ax.set_title("tfopt profile: green recommended, red trains worse")
        ax.grid(True, axis="x", alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
