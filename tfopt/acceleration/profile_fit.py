"""`profile_fit`: times ways of running `fit` on the model and machine at hand and recommends the fastest safe one."""

import math
import statistics
import time

import keras

from tfopt import _checks
from tfopt._timing import Timing, time_interleaved
from tfopt.acceleration._timed_epoch import EpochClock, ProfileData
from tfopt.acceleration.candidate import Candidate, auto_candidates
from tfopt.acceleration.hardware import detect_hardware
from tfopt.acceleration.input_pipeline import diagnosis_from_seconds
from tfopt.acceleration.profile_report import FitProfile

# Fields merged into the "combined" candidate; batch size and learning rate change the optimization, not only the
# speed, so they are never merged on their own.
_MERGED = ("jit_compile", "steps_per_execution", "dtype_policy", "input_pipeline")

# A candidate stops being timed after PRUNE_AFTER rounds when every one of its epochs so far was slower than the
# defaults' slowest and its median is PRUNE_RATIO times the defaults' or more: it cannot win, and its remaining
# rounds are most of the profile's cost (XLA on a CPU, steps_per_execution on a small model).
PRUNE_AFTER = 2
PRUNE_RATIO = 1.25
# A safe row this much faster than the defaults, but within the noise, is timed for more rounds before deciding.
EXTEND_SPEEDUP = 1.1

DATASET_CACHE_NOTE = (
    "tfopt_pipeline on a tf.data.Dataset is `dataset.cache().prefetch(tf.data.AUTOTUNE)`: after the first epoch "
    "every later epoch replays the first one's batches without running the dataset's map again, in the same "
    "order. That is exact when the map is deterministic (decoding, resizing, normalising); random augmentation "
    "or a per-epoch shuffle must move after cache() (`ds.map(decode).cache().shuffle(n).map(augment, "
    "num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)`), and a map that stays per-epoch gains only "
    "from num_parallel_calls, which the profiler cannot add to a dataset it is given."
)


def profile_fit(
    model_fn,
    x,
    y=None,
    *,
    batch_size=None,
    candidates="auto",
    steps=None,
    warmup=0,
    rounds=5,
    seed=0,
    loss_tolerance=0.25,
    compile_kwargs=None,
    combine=True,
    input_diagnosis=True,
    progress=None,
):
    """Measures which way of running `fit` is fastest for this model on this machine, and whether it trains as well.

    Every candidate (a `Candidate`: XLA on/off, `steps_per_execution`, mixed precision, tfopt's input pipeline,
    larger batches with a scaled learning rate) gets its own model from `model_fn`, with the initial weights of
    the first one, and trains on the same `steps` batches. Each candidate first runs one untimed epoch (it
    compiles; `compile_s` is that epoch minus a timed one) and `warmup` more; then all candidates run `rounds`
    epochs in interleaved rounds (A, B, C, C, B, A, ...), so that the machine's drift touches every row alike.
    After two timed rounds a candidate whose every epoch was slower than the defaults' slowest, with a median
    1.25x the defaults' or more, stops being timed (`pruned_after`: it cannot win, and on a CPU such rows, XLA
    above all, would be most of the profile's cost); its loss is checked against the defaults' after as many
    epochs. Each row reports the median and interquartile range (IQR) of its epochs. With `m` the median seconds per
    example and `q` the IQR per example,

        speedup_c = m_defaults / m_c,        significant_c = (m_defaults - m_c) > max(q_defaults, q_c),

    and the loss check compares the mean training loss `L` of a row's last epoch with the defaults' after the same
    number of epochs from the same weights: `loss_ok_c = L_c <= L_defaults * (1 + loss_tolerance)`.
    `best` is the fastest row that is both significant and `loss_ok`; when no row is, it stays Keras's defaults
    and the profile says whether the machine was too noisy to tell. When several single changes win, their
    combination is measured too (interleaved against the defaults and the fastest single change) and recommended
    only if it beats both.

    Use it once per model and machine, before long training runs; use `FitProfile.best` for `compile`/`fit`.

    Args:
        model_fn: callable returning a fresh `keras.Model` each call, compiled (its loss, optimizer and metrics
            are kept; only the candidate's settings change) or uncompiled with `compile_kwargs` given. It is
            called under each candidate's dtype policy; a model that does not follow it (e.g. loaded from a
            file) is cloned under the policy.
        x: NumPy inputs (with `y`), or a `tf.data.Dataset` of `(inputs, targets)` batches.
        y: NumPy targets, or None for a dataset.
        batch_size: batch size for arrays, an integer >= 1. Default 32 (Keras's); None for a dataset.
        candidates: "auto" (the built-in candidates that make sense on the detected hardware; the profile's
            `left_out` says why the others were left out), or a list of built-in names (`Candidate.BUILT_IN`),
            dicts of `Candidate` fields and `Candidate` objects. "defaults" is always measured (added first).
        steps: train steps per timed epoch, an integer >= 1. Default: 32, or the number of full batches in the
            data when fewer.
        warmup: untimed epochs per candidate after the compiling one, an integer >= 0. Default 0: the compiling
            epoch already warms up (traces, compiles, fills a cache), and the timed rounds alternate their order.
        rounds: timed interleaved rounds, an integer >= 3. Default 5.
        seed: seed of the initial weights and of every epoch's shuffle. Default 0.
        loss_tolerance: relative tolerance of the loss check, a number >= 0. Default 0.25 (runs that differ only in
            batch order or float rounding land within about 20% of each other after a few hundred steps).
        compile_kwargs: keyword arguments for `compile` (loss, optimizer, metrics) when `model_fn` returns an
            uncompiled model; they override the model's own when both exist. Default None.
        combine: measure the combination of the winning single changes. Default True.
        input_diagnosis: diagnose the input pipeline (see `diagnose_input`) within the same interleaved rounds:
            the defaults' row is the end-to-end step, the tfopt_pipeline row the improved one, and the input alone
            and the step alone (on a copy of the defaults' model) are timed beside them. Default True.
        progress: optional `progress(description, done, total)` called after every epoch.

    Returns:
        A `FitProfile`.
    """
    started = time.perf_counter()
    _checks.model_fn("model_fn", model_fn)
    _checks.integer("warmup", warmup, 0)
    _checks.integer("rounds", rounds, 3)
    _checks.integer("seed", seed, 0)
    tol = _checks.finite_number("loss_tolerance", loss_tolerance)
    if compile_kwargs is not None and not isinstance(compile_kwargs, dict):
        raise TypeError(
            f"Argument `compile_kwargs` must be a dict or None. Received: compile_kwargs={compile_kwargs!r}"
        )
    data = ProfileData(x, y, batch_size=batch_size, steps=steps)
    hardware = detect_hardware()
    chosen, left_out = _resolve_candidates(candidates, hardware)

    counter = _Progress(progress)
    counter.expect(len(chosen) * (1 + warmup + rounds))
    builder = _Builder(model_fn, compile_kwargs, seed)
    runs = [_Run(c, builder.build(c), data, seed) for c in chosen]
    probes = _DiagnosisProbes(runs, data, seed) if input_diagnosis else None
    if probes is not None:
        counter.expect(len(probes.fns) * (1 + warmup + rounds))

    # Phase 1: compile (timed alone, it is not a comparison), warm up, then every candidate interleaved; the
    # input diagnosis's probes join the same rounds.
    for run in runs:
        run.compile_seconds = run()
        counter.step(f"compiling {run.candidate.name}")
    extra = probes.fns if probes is not None else []
    for fn in extra:
        fn()
        counter.step("compiling input probes")
    timings, pruned = _time_with_pruning(runs, extra, rounds=rounds, warmup=warmup, counter=counter)
    rows = _phase1_rows(runs, timings, pruned, tol)
    notes = []
    # A row that looks clearly faster but within the noise gets `rounds` more rounds against the defaults (the two
    # most promising at most): more samples decide it, at a cost paid only when there is a decision to make.
    if undecided := _undecided(rows):
        counter.expect((1 + len(undecided)) * rounds)
        subset = [runs[0]] + [runs[i] for i in undecided]
        more, _ = _time_with_pruning(subset, [], rounds=rounds, warmup=0, counter=counter)
        for i, timing in zip([0] + undecided, more):
            timings[i] = Timing.from_samples(timings[i].samples + timing.samples)
        rows = _phase1_rows(runs, timings, pruned, tol)
        notes.append(
            f"{', '.join(rows[i]['name'] for i in undecided)} looked faster but within the noise after {rounds} "
            f"rounds; timed {rounds} more rounds beside the defaults to decide."
        )
    reference = rows[0]

    eligible = [r for r in rows[1:] if r["significant"] and r["loss_ok"]]
    best = max(eligible, key=lambda r: r["speedup"]) if eligible else reference
    combined = _combination(chosen, eligible) if combine and eligible else None
    if combined is not None and combined not in chosen:
        counter.expect(1 + warmup + 3 * rounds)
        best_run = runs[rows.index(best)]
        run = _Run(combined, builder.build(combined), data, seed)
        run.compile_seconds = run()
        counter.step(f"compiling {combined.name}")
        for _ in range(warmup):
            run()
            counter.step(combined.name)
        phase2 = [runs[0], best_run, run]
        t_def, t_best, t_comb = time_interleaved(
            phase2,
            repeats=rounds,
            warmup=0,
            self_timed=True,
            on_call=lambda i, r: counter.step(phase2[i].candidate.name),
        )
        row = _row(run, t_comb, 2)
        row["pruned_after"] = None
        phase2_defaults = _row(runs[0], t_def, 2)
        _compare(row, phase2_defaults, tol, loss_reference=reference)
        rows.append(row)
        beats_single = t_comb.median / run.feed.examples < t_best.median / best_run.feed.examples
        if row["significant"] and row["loss_ok"] and beats_single:
            best = row
        else:
            notes.append(
                f"The combination ({combined.describe()}) did not beat both the defaults and {best['name']} "
                "beyond the noise in a second interleaved measurement; it is not recommended."
            )
    for row in rows:
        row["recommended"] = row is best
        row.pop("_per_example")
    notes[:0] = _recommendation_notes(rows, best)

    if pruned_rows := [r for r in rows if r["pruned_after"] is not None]:
        notes.append(
            f"Stopped timing {', '.join(r['name'] for r in pruned_rows)} after {PRUNE_AFTER} rounds: clearly slower "
            "than the defaults (every epoch slower than the defaults' slowest, median "
            + ", ".join(f"{r['speedup']:.2f}x" for r in pruned_rows)
            + ")."
        )
    notes.extend(_input_notes(data.is_dataset, best))

    diagnosis = None
    if probes is not None:
        diagnosis = probes.diagnosis(timings[len(runs) :], rows).to_dict()
    meta = {
        "hardware": hardware.to_dict(),
        "hardware_description": hardware.describe(),
        "input": "tf.data.Dataset" if data.is_dataset else "NumPy arrays",
        "batch_size": data.batch_size,
        "steps": data.steps,
        "warmup": warmup,
        "rounds": rounds,
        "seed": seed,
        "loss_tolerance": tol,
        "profile_seconds": time.perf_counter() - started,
    }
    return FitProfile(rows=rows, best_name=best["name"], notes=notes, left_out=left_out, input=diagnosis, meta=meta)


def _phase1_rows(runs, timings, pruned, tol):
    rows = [_row(run, timing, 1) for run, timing in zip(runs, timings)]
    for row, rounds_timed in zip(rows, pruned):
        row["pruned_after"] = rounds_timed
        _compare(row, rows[0], tol)
    return rows


def _undecided(rows):
    """Indices of the (at most two) safe rows that look `EXTEND_SPEEDUP` times faster but not beyond the noise."""
    open_rows = [
        i
        for i, r in enumerate(rows)
        if i and r["loss_ok"] and not r["significant"] and r["pruned_after"] is None and r["speedup"] >= EXTEND_SPEEDUP
    ]
    return sorted(open_rows, key=lambda i: -rows[i]["speedup"])[:2]


def _time_with_pruning(runs, extra, *, rounds, warmup, counter):
    """Phase 1's interleaved rounds over every candidate's run and the extra callables (input probes).

    Like `tfopt._timing.time_interleaved` (A, B, C, C, B, A, ...; each callable returns its own seconds), except
    that after `PRUNE_AFTER` timed rounds a candidate that is clearly slower than the defaults (`_clearly_slower`)
    stops being called. Returns one `Timing` per run and per extra callable, and per run the number of rounds it
    was timed if it was pruned, else None.
    """
    fns = list(runs) + list(extra)
    labels = [run.candidate.name for run in runs] + ["input pipeline"] * len(extra)
    samples = [[] for _ in fns]
    active = list(range(len(fns)))
    pruned = [None] * len(runs)
    for r in range(warmup + rounds):
        timed = r - warmup
        for i in list(reversed(active)) if timed % 2 else list(active):
            seconds = fns[i]()
            if timed >= 0:
                samples[i].append(float(seconds))
            counter.step(labels[i])
        if timed + 1 == PRUNE_AFTER and rounds > PRUNE_AFTER:
            for i in range(1, len(runs)):
                if _clearly_slower(samples[i], runs[i].feed.examples, samples[0], runs[0].feed.examples):
                    active.remove(i)
                    pruned[i] = PRUNE_AFTER
                    counter.expect(PRUNE_AFTER - rounds)
    return [Timing.from_samples(s) for s in samples], pruned


def _clearly_slower(seconds, examples, reference_seconds, reference_examples):
    """Every epoch slower (per example) than the reference's slowest, and the median `PRUNE_RATIO` times slower."""
    mine = [s / examples for s in seconds]
    theirs = [s / reference_examples for s in reference_seconds]
    return min(mine) > max(theirs) and statistics.median(mine) >= PRUNE_RATIO * statistics.median(theirs)


class _DiagnosisProbes:
    """The input diagnosis measured inside phase 1, so that it shares the candidates' interleaved rounds.

    End to end is the defaults' row and "improved" the tfopt_pipeline row when it was measured; the probes add the
    input alone and the train step alone, and the improved pipeline when no row has it. The probes train the
    defaults' own model (no second model to build and trace) and put back every variable of the model and its
    optimizer afterwards, so the defaults' row trains exactly like every other candidate.
    """

    def __init__(self, runs, data, seed):
        self.data = data
        self.improved = next(
            (i for i, run in enumerate(runs) if run.candidate.changes() == {"input_pipeline": "tfopt"}), None
        )
        model, clock = runs[0].model, EpochClock()
        feeds = [data.step_alone_feed()]
        if self.improved is None:
            feeds.append(data.feed("tfopt", seed=seed))

        def probe(feed):
            state = [v.numpy() for v in model.variables + model.optimizer.variables]
            try:
                return feed.fit_epoch(model, clock)
            finally:
                for v, value in zip(model.variables + model.optimizer.variables, state):
                    v.assign(value)

        self.fns = [data.input_alone(seed)] + [lambda feed=feed: probe(feed) for feed in feeds]

    def diagnosis(self, timings, rows):
        steps = self.data.steps
        input_s, step_s = timings[0].median / steps, timings[1].median / steps
        e2e_s = rows[0]["step_ms"] / 1e3
        improved_s = timings[2].median / steps if self.improved is None else rows[self.improved]["step_ms"] / 1e3
        return diagnosis_from_seconds(self.data.batch_size, input_s, step_s, e2e_s, improved_s)


class _Progress:
    def __init__(self, callback):
        self.callback, self.done, self.total = callback, 0, 0

    def expect(self, more):
        self.total += more

    def step(self, description):
        self.done += 1
        if self.callback is not None:
            self.callback(description, self.done, self.total)


def _resolve_candidates(candidates, hardware):
    left_out = {}
    if isinstance(candidates, str) and candidates == "auto":
        chosen, left_out = auto_candidates(hardware)
    elif isinstance(candidates, (list, tuple)) and candidates:
        chosen = [Candidate.resolve(spec) for spec in candidates]
    else:
        raise ValueError(
            "Argument `candidates` must be 'auto' or a non-empty list of candidate names, dicts or Candidate "
            f"objects. Received: candidates={candidates!r}"
        )
    names = [c.name for c in chosen]
    if len(set(names)) != len(names):
        raise ValueError(f"Argument `candidates` must have distinct names. Received names: {names}")
    for c in chosen:
        if c.dtype_policy == "mixed_float16" and not hardware.float16_fast:
            raise ValueError(
                f"Argument `candidates` asks for mixed_float16 (candidate {c.name!r}), which needs a GPU with "
                f"tensor cores; this machine trains on {hardware.device.upper()}. Received: candidates={candidates!r}"
            )
    defaults = [c for c in chosen if c.name == "defaults"]
    if defaults and defaults[0].changes():
        raise ValueError("Argument `candidates`: the name 'defaults' is reserved for Keras's defaults.")
    return [Candidate.BUILT_IN["defaults"]] + [c for c in chosen if c.name != "defaults"], left_out


class _Builder:
    """Builds each candidate's model: same weights as the first, the candidate's dtype policy and compile settings."""

    def __init__(self, model_fn, compile_kwargs, seed):
        self.model_fn, self.seed = model_fn, seed
        self.compile_kwargs = compile_kwargs
        self.initial_weights = None

    def _call(self, policy):
        previous = keras.config.dtype_policy().name
        keras.utils.set_random_seed(self.seed)
        keras.config.set_dtype_policy(policy)
        try:
            model = self.model_fn()
            if not isinstance(model, keras.Model):
                raise TypeError(
                    "Argument `model_fn` must return a keras.Model. "
                    f"Received: model_fn() returned {type(model).__name__}"
                )
            config = self._compile_config(model)
            if any(layer.dtype_policy.name != policy for layer in model.layers if layer.weights):
                model = keras.models.clone_model(
                    model,
                    clone_function=lambda layer: layer.__class__.from_config({**layer.get_config(), "dtype": policy}),
                )
        finally:
            keras.config.set_dtype_policy(previous)
        return model, config

    def _compile_config(self, model):
        config = dict(model.get_compile_config() or {}) if model.compiled else {}
        if self.compile_kwargs:
            config.update({k: keras.saving.serialize_keras_object(v) for k, v in self.compile_kwargs.items()})
        if not config.get("loss"):
            raise ValueError(
                "Argument `model_fn` must return a compiled model (with a loss), or `compile_kwargs` must give the "
                "loss and optimizer. Received: an uncompiled model and compile_kwargs=None"
            )
        return config

    def build(self, candidate):
        model, config = self._call(candidate.dtype_policy)
        if self.initial_weights is None:
            self.initial_weights = model.get_weights()
        else:
            model.set_weights(self.initial_weights)
        config = dict(config, **candidate.compile_kwargs())
        optimizer = config.get("optimizer") or "rmsprop"
        if isinstance(optimizer, str):
            optimizer = keras.saving.serialize_keras_object(keras.optimizers.get(optimizer))
        optimizer = dict(optimizer, config=dict(optimizer["config"]))
        factor = candidate.learning_rate_factor
        if factor != 1.0:
            rate = optimizer["config"].get("learning_rate")
            if isinstance(rate, bool) or not isinstance(rate, (int, float)):
                raise ValueError(
                    f"Candidate {candidate.name!r} scales the learning rate, which needs a constant learning rate; "
                    f"the model's optimizer has learning_rate={rate!r}"
                )
            optimizer["config"]["learning_rate"] = float(rate) * factor
        config["optimizer"] = optimizer
        model.compile(**keras.saving.deserialize_keras_object(config))
        return model


class _Run:
    """One candidate's model and input; calling it trains one epoch and returns its seconds."""

    def __init__(self, candidate, model, data, seed):
        self.candidate, self.model, self.seed = candidate, model, seed
        self.feed = data.feed(candidate.input_pipeline, candidate.batch_multiplier, seed)
        self.clock = EpochClock()
        self.epochs = 0
        self.losses = []
        self.compile_seconds = None

    def __call__(self):
        # The k-th epoch of every candidate shuffles alike, so that losses differ by configuration, not by order.
        keras.utils.set_random_seed(self.seed + 1 + self.epochs)
        seconds = self.feed.fit_epoch(self.model, self.clock)
        self.epochs += 1
        self.losses.append(self.clock.loss)
        return seconds


def _row(run, timing: Timing, phase):
    steps, examples = run.feed.steps, run.feed.examples
    return {
        "name": run.candidate.name,
        "description": run.candidate.describe(),
        "config": run.candidate.to_dict(),
        "learning_rate_factor": run.candidate.learning_rate_factor,
        "phase": phase,
        "steps": steps,
        "batch_size": examples // steps,
        "compile_s": max(0.0, run.compile_seconds - timing.median),
        "step_ms": 1e3 * timing.median / steps,
        "step_iqr_ms": 1e3 * timing.iqr / steps,
        "examples_per_s": examples / timing.median,
        "loss": run.clock.loss,
        "epochs_trained": run.epochs,
        "epoch_seconds": list(timing.samples),
        "_per_example": (timing.median / examples, timing.iqr / examples),
        "losses": list(run.losses),
    }


def _compare(row, reference, tol, loss_reference=None):
    """Speedup and significance against `reference` (same phase); loss check against the float32 defaults."""
    m_ref, q_ref = reference["_per_example"]
    m, q = row["_per_example"]
    row["speedup"] = m_ref / m
    row["significant"] = (m_ref - m) > max(q_ref, q)
    base_row = loss_reference or reference
    base = base_row["loss"]
    # A row timed for fewer rounds (pruned) is compared with the reference after as many epochs as it trained.
    history, epochs = base_row.get("losses"), row.get("epochs_trained")
    if history and epochs and epochs <= len(history) and history[epochs - 1] is not None:
        base = history[epochs - 1]
    loss = row["loss"]
    row["loss_ok"] = loss is not None and math.isfinite(loss) and loss <= base * (1.0 + tol)


def _combination(chosen, eligible):
    """The candidate merging every winning single change (the fastest winner per field), or None."""
    merged = {}
    for row in sorted(eligible, key=lambda r: r["speedup"]):
        config = row["config"]
        if config["batch_multiplier"] != 1 or config["learning_rate_scale"] != 1.0:
            continue
        for key in _MERGED:
            if config[key] != Candidate.BUILT_IN["defaults"].to_dict()[key]:
                merged[key] = config[key]
                if key == "dtype_policy" and config["jit_compile"] != "auto":
                    merged["jit_compile"] = config["jit_compile"]
    if len(merged) < 2:
        return None
    combined = Candidate("combined", **merged)
    for c in chosen:
        if c.changes() == combined.changes():
            return c
    return combined


def _input_notes(is_dataset, best):
    """What a recommended tfopt pipeline means for a dataset the user gave: caching is exact only for a fixed map."""
    return [DATASET_CACHE_NOTE] if is_dataset and best["config"]["input_pipeline"] == "tfopt" else []


def _recommendation_notes(rows, best):
    notes = []
    flagged = [r for r in rows if not r["loss_ok"]]
    for r in flagged:
        notes.append(
            f"{r['name']} trains worse: loss {r['loss']:.4f} against the defaults' {rows[0]['loss']:.4f} after the "
            f"same {r['epochs_trained']} epochs; it is never recommended"
            + (f", although it is {r['speedup']:.2f}x as fast." if r["speedup"] > 1 else ".")
        )
    if best is not rows[0]:
        notes.insert(
            0,
            f"Recommended: {best['name']} ({best['description']}), {best['speedup']:.2f}x Keras's defaults; its "
            "speedup exceeds the spread of both rows and its loss stays within tolerance.",
        )
        return notes
    within_noise = [r for r in rows[1:] if r["loss_ok"] and r["speedup"] > 1.0 and not r["significant"]]
    spreads = [r["step_iqr_ms"] / r["step_ms"] for r in rows]
    if within_noise:
        fastest = max(within_noise, key=lambda r: r["speedup"])
        notes.insert(
            0,
            f"Too noisy to tell: {len(within_noise)} configuration(s) look faster (up to {fastest['speedup']:.2f}x, "
            f"{fastest['name']}) but by less than the spread of the timings (IQR {100 * min(spreads):.0f}%-"
            f"{100 * max(spreads):.0f}% of the step time); keeping Keras's defaults. Run with more `rounds` on a "
            "quieter machine to decide.",
        )
    else:
        notes.insert(0, "Keras's defaults are the fastest safe configuration measured here; keeping them.")
    return notes
