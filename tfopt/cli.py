"""The `tfopt` command.

    tfopt demo [--out DIR] [--epochs N] [--seed S] [--quiet]
    tfopt compress MODEL.keras --data DATA.npz [--sparsity S] [--structure N:M] [--quantize int8|float16|dynamic]
                   [--clusters N] [--epochs E] [--out DIR] [--teacher]
                   [--channels F]
    tfopt tune [--trials N] [--epochs E] [--tuner random|bayesian|hyperband] [--seed S] [--out DIR] [--quiet]
    tfopt shard-plan MODEL.keras --mesh 2x4 [--kind model_parallel|fsdp]

Bad arguments, and any input tfopt's checks refuse (a file that is not a model, data of the wrong shape, labels
outside the model's classes, training that turns non-finite), print one line, `tfopt <command>: error: ...`, and
exit with status 2, before any file is written; never a traceback. An unexpected error inside tfopt prints one
line that says so and exits with status 1; `--debug` (anywhere on the command line) shows its traceback.
"""

import argparse
import os
import sys
import tempfile

import tfopt
from tfopt import _checks


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _int_in_range(low, high=None):
    allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {value}")
        return value

    return parse


def build_parser():
    parser = _Parser(
        prog="tfopt",
        description="tfopt: optimization toolkit for Keras 3 on TensorFlow. Train faster, end smaller, run faster.",
    )
    parser.add_argument("--version", action="version", version=f"tfopt {tfopt.__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an unexpected error (may go anywhere on the command line)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    demo = commands.add_parser(
        "demo",
        help="train a CNN on the bundled digits data, run every optimization stage, print a before/after report",
        description=(
            "Trains a small CNN baseline on scikit-learn's handwritten digits (1,797 8x8 images, fixed stratified "
            "split), then runs every optimization stage tfopt provides, each measured the same way: test accuracy, "
            "parameters, non-zero parameters, multiply-accumulates, saved size, gzip size and batch-1 latency. "
            "Prints the table and writes report.json, report.md and accuracy_vs_size.png under --out."
        ),
    )
    demo.add_argument("--out", default="tfopt-demo", metavar="DIR", help="output folder (default: ./tfopt-demo)")
    demo.add_argument(
        "--epochs",
        type=_int_in_range(1),
        default=20,
        metavar="N",
        help="training epochs of the baseline; each stage derives its budget from it (default: 20)",
    )
    demo.add_argument(
        "--seed",
        type=_int_in_range(0, 2**32 - 1),
        default=0,
        metavar="S",
        help="seed of weights and shuffling (default: 0)",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bars; print only the final table")
    demo.add_argument(
        "--strategy",
        choices=("auto", "one_device", "mirrored", "multi_worker_mirrored", "tpu"),
        default="auto",
        metavar="NAME",
        help="tf.distribute strategy to train under (tfopt.strategies.get_strategy): auto, one_device, mirrored, "
        "multi_worker_mirrored or tpu (default: auto)",
    )
    demo.add_argument(
        "--fast",
        action="store_true",
        help="profile the demo model first (tfopt profile) and train the later stages with the fastest safe settings",
    )
    demo.set_defaults(run=_run_demo, parser=demo)
    _add_profile_command(commands)
    _add_compress_command(commands)
    _add_tune_command(commands)
    _add_shard_plan_command(commands)
    return parser


def _check_writable(parser, out_dir):
    """The --out folder must be writable (or creatable); it is not created here, so a run refused by a later
    check leaves nothing behind."""
    try:
        _checks.writable_folder("out", out_dir)
    except (TypeError, ValueError) as e:
        reason = _user_message(e).partition("Received: ")[2] or _user_message(e)
        parser.error(f"argument --out: cannot write to {out_dir!r}: {reason}")


def _import_keras_quietly():
    """Imports Keras (and its backend) with the backend's start-up logs kept out of the report.

    TensorFlow >= 2.20 prints oneDNN and CUDA-probing lines from C++ before its log level is read, so no
    environment variable silences them; they go to a temporary file instead, shown only if the import fails.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            import keras

            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                tf.config.list_physical_devices()
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _progress_callbacks(progress):
    import keras

    class EpochProgress(keras.callbacks.Callback):
        """Advances one rich progress bar per stage, epoch by epoch, showing loss and validation accuracy."""

        def __init__(self, stage):
            super().__init__()
            self.stage = stage
            self.task = None

        def on_train_begin(self, logs=None):
            self.task = progress.add_task(self.stage, total=self.params.get("epochs"), status="")

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            status = " ".join(f"{k}={v:.4f}" for k, v in logs.items() if k in ("loss", "val_accuracy"))
            progress.update(self.task, advance=1, status=status)

    return lambda stage: [EpochProgress(stage)]


def _demo_strategy(args):
    """The strategy `--strategy` names; a bad choice for this machine (no TPU, no cluster) is a one-line error."""
    from tfopt.strategies import get_strategy

    try:
        strategy = get_strategy(args.strategy)
    except ValueError as e:
        args.parser.error(f"argument --strategy: {e}")
    return strategy


def _run_demo(args):
    _check_writable(args.parser, args.out)
    _import_keras_quietly()
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from tfopt import demo
    from tfopt.compression.report_table import REPORT_COLUMNS, format_cell
    from tfopt.strategies import describe_strategy

    # Piped output has no width; give the table room rather than truncating its cells.
    console = Console(width=None if sys.stdout.isatty() else 160)
    strategy = _demo_strategy(args)
    console.print(str(describe_strategy(strategy)), highlight=False, markup=False)
    if args.quiet:
        rows = demo.run_demo(args.out, epochs=args.epochs, seed=args.seed, fast=args.fast, strategy=strategy)
    else:
        console.print(f"tfopt demo: {len(demo.STAGES)} stages, baseline {args.epochs} epochs, seed {args.seed}")
        columns = (
            TextColumn("{task.description:<18}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("epochs"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
        )
        with Progress(*columns, console=console) as progress:
            rows = demo.run_demo(
                args.out,
                epochs=args.epochs,
                seed=args.seed,
                make_callbacks=_progress_callbacks(progress),
                fast=args.fast,
                strategy=strategy,
            )
    table = Table(title="tfopt demo: before / after")
    for key, title in REPORT_COLUMNS:
        table.add_column(title, justify="left" if key == "stage" else "right", no_wrap=key == "stage")
    for row in rows:
        table.add_row(*(format_cell(key, row.get(key)) for key, _ in REPORT_COLUMNS))
    console.print(table)
    console.print(f"Wrote {os.path.join(args.out, 'report.json')}, report.md and accuracy_vs_size.png")
    console.print(f"TensorBoard: tensorboard --logdir {os.path.join(args.out, 'logs')}", highlight=False)
    return 0


def _add_profile_command(commands):
    profile = commands.add_parser(
        "profile",
        help="measure which compile/fit settings train fastest on this machine, and whether they train as well",
        description=(
            "Times Keras's fit under candidate settings (XLA, steps_per_execution, mixed precision, tfopt's input "
            "pipeline) in interleaved rounds, checks that each trains to the same loss, diagnoses the input "
            "pipeline, and recommends the fastest safe configuration. Default: the demo CNN on the digits data. "
            "Writes profile.json, profile.md and speedups.png under --out."
        ),
    )
    profile.add_argument("--model", metavar="M.keras", help="a compiled Keras model saved with model.save")
    profile.add_argument(
        "--data", metavar="DATA.npz", help="NumPy archive with arrays 'x' and 'y' (default: the digits training split)"
    )
    profile.add_argument(
        "--out", default="tfopt-profile", metavar="DIR", help="output folder (default: ./tfopt-profile)"
    )
    profile.add_argument(
        "--batch-size", type=_int_in_range(1), default=32, metavar="B", help="batch size (default: 32)"
    )
    profile.add_argument(
        "--steps", type=_int_in_range(1), default=None, metavar="N", help="train steps per timed epoch (default: 32)"
    )
    profile.add_argument(
        "--rounds", type=_int_in_range(3), default=5, metavar="R", help="interleaved timed rounds (default: 5)"
    )
    profile.add_argument("--seed", type=_int_in_range(0, 2**32 - 1), default=0, metavar="S", help="seed (default: 0)")
    profile.add_argument("--quiet", action="store_true", help="no progress bar; print only the table")
    profile.set_defaults(run=_run_profile, parser=profile)


def _profile_inputs(args):
    """The model builder and the arrays for `tfopt profile`; a bad file is a one-line error (exit 2)."""
    import numpy as np

    parser = args.parser
    if args.data is not None:
        try:
            with np.load(args.data) as archive:
                x, y = archive["x"], archive["y"]
        except (OSError, ValueError) as e:
            parser.error(f"argument --data: cannot read {args.data!r}: {e}")
        except KeyError:
            parser.error(f"argument --data: {args.data!r} must hold arrays named 'x' and 'y'")
        if len(x) != len(y) or len(x) < args.batch_size:
            parser.error(
                f"argument --data: 'x' and 'y' must hold the same number of examples, at least one batch "
                f"({args.batch_size}); got {len(x)} and {len(y)}"
            )
    else:
        from tfopt.data import load_digits

        x, y = load_digits().train
    import keras

    if args.model is not None:
        try:
            model = keras.models.load_model(args.model)
        except Exception as e:  # noqa: BLE001 - any unreadable file is the user's input, reported in one line
            parser.error(f"argument --model: cannot load {args.model!r}: {str(e).splitlines()[0] if str(e) else e}")
        if not model.compiled or model.loss is None:
            parser.error(f"argument --model: {args.model!r} was saved uncompiled; compile it with a loss first")

        def model_fn():
            return keras.models.load_model(args.model)

    else:
        from tfopt.models.demo_cnn import build_demo_cnn

        classes = int(np.max(y)) + 1

        def model_fn():
            model = build_demo_cnn(tuple(x.shape[1:]), classes)
            model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
            return model

    return model_fn, x, y


def _run_profile(args):
    _check_writable(args.parser, args.out)
    _import_keras_quietly()
    from rich.console import Console
    from rich.markdown import Markdown
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tfopt.acceleration import profile_fit

    model_fn, x, y = _profile_inputs(args)
    console = Console(width=None if sys.stdout.isatty() else 160)
    kwargs = {"batch_size": args.batch_size, "steps": args.steps, "rounds": args.rounds, "seed": args.seed}
    try:
        if args.quiet:
            result = profile_fit(model_fn, x, y, **kwargs)
        else:
            columns = (
                TextColumn("{task.description:<24}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("epochs"),
                TimeElapsedColumn(),
            )
            with Progress(*columns, console=console) as progress:
                task = progress.add_task("profiling", total=None)

                def on_epoch(description, done, total):
                    progress.update(task, description=description, completed=done, total=total)

                result = profile_fit(model_fn, x, y, progress=on_epoch, **kwargs)
    except (TypeError, ValueError) as e:
        args.parser.error(str(e).splitlines()[0])
    os.makedirs(args.out, exist_ok=True)  # only now: a refused or failed run leaves nothing behind
    with open(os.path.join(args.out, "profile.json"), "w") as f:
        f.write(result.to_json())
    with open(os.path.join(args.out, "profile.md"), "w") as f:
        f.write(f"# tfopt profile\n\n{result.meta['hardware_description']}\n\n{result.table()}")
    result.plot(os.path.join(args.out, "speedups.png"))
    console.print(Markdown(result.table()))
    console.print(f"Best: {result.best}")
    console.print(f"Wrote {os.path.join(args.out, 'profile.json')}, profile.md and speedups.png")
    return 0


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), got {value}")
    return value


def _structure(text):
    try:
        _checks.n_m_structure("structure", text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be N:M with 0 < N < M (N non-zeros in every M weights), got {text!r}") from None
    return text


def _add_compress_command(commands):
    compress = commands.add_parser(
        "compress",
        help="fine-tune and compress your own .keras model on your data; write the compressed .keras, .tflite and "
        "a before/after report",
        description=(
            "Loads MODEL.keras and the arrays x_train, y_train, x_test, y_test from DATA.npz, then fine-tunes and "
            "compresses: pruning (--sparsity or --structure), clustering (--clusters), quantization-aware training "
            "(--quantize int8; float16 and dynamic quantize at conversion). Writes compressed.keras, "
            "compressed.tflite, report.json and report.md (the original and compressed model as .keras and "
            ".tflite: accuracy, parameters, non-zeros, size, gzip size, latency) under --out."
        ),
    )
    compress.add_argument("model", metavar="MODEL.keras", help="the trained model to compress")
    compress.add_argument("--data", required=True, metavar="DATA.npz", help="arrays x_train, y_train, x_test, y_test")
    compress.add_argument("--sparsity", type=_fraction, metavar="S", help="prune to this fraction of zero weights")
    compress.add_argument("--structure", type=_structure, metavar="N:M", help="N:M structured sparsity, e.g. 2:4")
    compress.add_argument(
        "--channels", type=_fraction, metavar="F",
        help="remove this fraction of the channels (filters/units) of every layer: a smaller dense model",
    )
    compress.add_argument("--quantize", choices=("int8", "float16", "dynamic"), help="quantization of the .tflite")
    compress.add_argument("--clusters", type=_int_in_range(2), metavar="N", help="shared values per kernel")
    compress.add_argument(
        "--epochs", type=_int_in_range(0), default=2, metavar="E", help="fine-tuning epochs per step (default: 2)"
    )
    compress.add_argument(
        "--out", default="tfopt-compress", metavar="DIR", help="output folder (default: ./tfopt-compress)"
    )
    compress.add_argument(
        "--teacher", action="store_true",
        help="fine-tune against the input model's soft targets as well as the labels (distillation)",
    )
    compress.set_defaults(run=_run_compress, parser=compress)


def _run_compress(args):
    parser = args.parser
    if not args.model.endswith(".keras") or not os.path.isfile(args.model):
        parser.error(f"argument MODEL.keras: no .keras file at {args.model!r}")
    _import_keras_quietly()
    from tfopt import _checks

    try:
        _checks.readable_file("model", args.model, "Keras archive (.keras)", magic=b"PK", suffix=".keras")
    except (TypeError, ValueError) as e:
        parser.error(f"argument MODEL.keras: {_user_message(e)}")
    if not os.path.isfile(args.data):
        parser.error(f"argument --data: no file at {args.data!r}")
    _check_writable(parser, args.out)
    _import_keras_quietly()
    from rich.console import Console
    from rich.table import Table

    from tfopt.compression.report_table import REPORT_COLUMNS, format_cell
    from tfopt.pipelines.compress import compress, load_data

    try:
        data = load_data(args.data)
    except ValueError as e:
        parser.error(f"argument --data: {str(e).removeprefix('Argument `data`: ')}")
    rows = compress(
        args.model,
        data,
        args.out,
        sparsity=args.sparsity,
        structure=args.structure,
        quantize=args.quantize,
        clusters=args.clusters,
        epochs=args.epochs,
        teacher=args.teacher or None,
        channels=args.channels,
    )
    console = Console(width=None if sys.stdout.isatty() else 160)
    table = Table(title="tfopt compress: before / after")
    columns = [(key, title) for key, title in REPORT_COLUMNS if key != "epochs_to_baseline"]
    for key, title in columns:
        table.add_column(title, justify="left" if key == "stage" else "right", no_wrap=key == "stage")
    for row in rows:
        table.add_row(*(format_cell(key, row.get(key)) for key, _ in columns))
    console.print(table)
    console.print(f"Wrote compressed.keras, compressed.tflite, report.json and report.md to {args.out}")
    return 0


def _add_tune_command(commands):
    tune = commands.add_parser(
        "tune",
        help="search optimizer, schedule, pruning and QAT recipes for the demo CNN with Keras Tuner; save the best",
        description=(
            "Trains the demo CNN on the bundled digits data as a baseline, then runs a Keras Tuner search over "
            "optimization recipes (tfopt.tuning.OptimizationHyperModel: optimizer and learning rate, schedule, "
            "pruning, quantization-aware training), ranked by validation accuracy and deployed size "
            "(AccuracySizeObjective). Prints the best recipe against the baseline, saves best_model.keras, "
            "tune.json and tune.md under --out, and TensorBoard logs under --out/logs."
        ),
    )
    tune.add_argument("--trials", type=_int_in_range(1), default=4, metavar="N", help="trials to run (default: 4)")
    tune.add_argument(
        "--epochs", type=_int_in_range(1), default=6, metavar="E", help="epochs per trial and baseline (default: 6)"
    )
    tune.add_argument(
        "--tuner", choices=("random", "bayesian", "hyperband"), default="random", help="search (default: random)"
    )
    tune.add_argument("--seed", type=_int_in_range(0, 2**32 - 1), default=0, metavar="S", help="seed (default: 0)")
    tune.add_argument("--out", default="tfopt-tune", metavar="DIR", help="output folder (default: ./tfopt-tune)")
    tune.add_argument("--quiet", action="store_true", help="print only the result")
    tune.set_defaults(run=_run_tune, parser=tune)


def _run_tune(args):
    _check_writable(args.parser, args.out)
    _import_keras_quietly()
    from rich.console import Console
    from rich.markdown import Markdown

    from tfopt.tuning import run_tune

    console = Console(width=None if sys.stdout.isatty() else 160)
    if not args.quiet:
        console.print(f"tfopt tune: baseline, then {args.trials} trials of {args.epochs} epochs ({args.tuner} search)")
    result = run_tune(args.out, trials=args.trials, epochs=args.epochs, seed=args.seed, tuner=args.tuner)
    console.print(Markdown(result["table"]))
    best, baseline = result["best"], result["baseline"]
    console.print(f"Best recipe (trial {result['best_trial']['trial_id']}): {result['recipe_text']}",
                  highlight=False, soft_wrap=True)
    console.print(
        f"vs baseline: test accuracy {100 * best['accuracy']:.2f}% vs {100 * baseline['accuracy']:.2f}%, deployed "
        f"size {best['deployed_bytes'] / 1024:.1f} KiB vs {baseline['deployed_bytes'] / 1024:.1f} KiB "
        f"({baseline['deployed_bytes'] / best['deployed_bytes']:.2f}x smaller)",
        highlight=False, soft_wrap=True,
    )
    console.print(f"Saved {result['model_path']}, tune.json and tune.md", highlight=False)
    console.print(f"TensorBoard: tensorboard --logdir {result['log_dir']}", highlight=False)
    return 0


def _mesh_shape(text):
    try:
        shape = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        shape = ()
    if not shape or len(shape) > 2 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"must be BATCHxMODEL (e.g. 2x4) or N, positive integers, got {text!r}")
    return shape


def _add_shard_plan_command(commands):
    plan = commands.add_parser(
        "shard-plan",
        help="show how a saved model's weights and optimizer state would be split over a device mesh (JAX)",
        description=(
            "Loads MODEL.keras, lays it out with tfopt.strategies.get_distribution on a device mesh (JAX backend) "
            "and prints tfopt.strategies.sharding_report: per variable its mesh axes, bytes per device and total "
            "bytes, then the parameter and optimizer totals. --kind model_parallel (default) uses the automatic "
            "Megatron-style layout over a (batch, model) mesh; fsdp shards every large variable over all the mesh's "
            "devices. Without enough accelerators the plan runs on as many virtual CPU devices (bytes do not "
            "depend on the device kind)."
        ),
    )
    plan.add_argument("model", metavar="MODEL.keras", help="a Keras model saved with model.save")
    plan.add_argument("--mesh", type=_mesh_shape, required=True, metavar="BxM",
                      help="the mesh: BATCHxMODEL for model_parallel (1xN: pure model parallelism), N for fsdp")
    plan.add_argument("--kind", choices=("model_parallel", "fsdp"), default="model_parallel",
                      help="the parallelism (default: model_parallel)")
    plan.set_defaults(run=_run_shard_plan, parser=plan)


def _run_shard_plan(args):
    if not os.path.isfile(args.model):
        args.parser.error(f"argument MODEL.keras: no such file: {args.model!r}")
    devices = 1
    for size in args.mesh:
        devices *= size
    if args.kind == "model_parallel" and len(args.mesh) != 2:
        args.parser.error(f"argument --mesh: must be BATCHxMODEL for --kind model_parallel, got {args.mesh[0]}")
    backend = os.environ.setdefault("KERAS_BACKEND", "jax")
    if backend != "jax":
        args.parser.error(f"needs the JAX backend (keras.distribution lays out variables only on JAX); got "
                          f"KERAS_BACKEND={backend!r}")
    if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
    _import_keras_quietly()
    import warnings

    import keras

    from tfopt.strategies import auto_layout_map, get_distribution, sharding_report

    available = keras.distribution.list_devices()
    if len(available) < devices:
        available = keras.distribution.list_devices("cpu")
    if len(available) < devices:
        args.parser.error(f"argument --mesh: {devices} devices needed, {len(available)} available")
    chosen = available[:devices]
    reference = keras.models.load_model(args.model, compile=False)
    layout_map = None
    if args.kind == "model_parallel":
        mesh = keras.distribution.DeviceMesh(args.mesh, ["batch", "model"], chosen)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the table gives each replicated variable's reason
            layout_map = auto_layout_map(reference, mesh)
        distribution = get_distribution("model_parallel", layout_map, model=reference, mesh_shape=args.mesh,
                                        devices=chosen)
    else:
        distribution = get_distribution("fsdp", mesh_shape=(devices,), devices=chosen)
    with distribution.scope(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")  # saved unbuilt
        model = keras.models.load_model(args.model)
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            optimizer.build(model.trainable_variables)
        report = sharding_report(model, layout_map=layout_map)
    shape = " x ".join(map(str, args.mesh))
    print(f"tfopt shard-plan: {args.model}, --kind {args.kind}, mesh {shape} on {devices} {chosen[0].split(':')[0]} "
          "devices")
    print(report)
    return 0


# Errors that tfopt's checks raise for a user's input (their messages start "Argument `...`"), and training stopped
# by NonFiniteGuard: reported in one line with exit status 2. Anything else is a bug in tfopt.
_USER_ERRORS = (TypeError, ValueError, FloatingPointError)


def _user_message(error):
    """The error's message on one line, without the `Argument `x`:` prefix of a check (the CLI names the flag)."""
    return " ".join(str(error).split())


def _is_user_error(error):
    if isinstance(error, FloatingPointError):
        return True
    return isinstance(error, _USER_ERRORS) and str(error).startswith(("Argument", "Only one of"))


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = getattr(getattr(args, "parser", None), "prog", parser.prog)
    try:
        return args.run(args)
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as error:  # noqa: BLE001 - the one place the command turns errors into exit statuses
        if debug:
            raise
        if _is_user_error(error):
            sys.stderr.write(f"{prog}: error: {_user_message(error)}\n")
            return 2
        sys.stderr.write(f"{prog}: internal error (a bug in tfopt, please report it): {type(error).__name__}: "
                         f"{_user_message(error)[:500]} (run again with --debug for the traceback)\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
