"""The `tfopt` command.

    tfopt demo [--out DIR] [--epochs N] [--seed S] [--quiet]

Bad arguments print one line, `tfopt <command>: error: ...`, and exit with status 2; never a traceback.
"""

import argparse
import os
import sys
import tempfile

import tfopt


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
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    demo = commands.add_parser(
        "demo",
        help="train a CNN on the bundled digits data, run every optimization stage, print a before/after report",
        description=(
            "Trains a small CNN baseline on scikit-learn's handwritten digits (1,797 8x8 images, fixed stratified "
            "split), then runs every optimization stage tfopt provides, each measured the same way: test accuracy, "
            "parameters, non-zero parameters, saved size, gzip size and batch-1 latency. Prints the table and "
            "writes report.json, report.md and accuracy_vs_size.png under --out."
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
    demo.set_defaults(run=_run_demo, parser=demo)
    return parser


def _check_writable(parser, out_dir):
    try:
        os.makedirs(out_dir, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir):
            pass
    except OSError as e:
        parser.error(f"argument --out: cannot write to {out_dir!r}: {e.strerror or e}")


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


def _run_demo(args):
    _check_writable(args.parser, args.out)
    _import_keras_quietly()
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from tfopt import demo

    # Piped output has no width; give the table room rather than truncating its cells.
    console = Console(width=None if sys.stdout.isatty() else 120)
    if args.quiet:
        rows = demo.run_demo(args.out, epochs=args.epochs, seed=args.seed)
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
                args.out, epochs=args.epochs, seed=args.seed, make_callbacks=_progress_callbacks(progress)
            )
    table = Table(title="tfopt demo: before / after")
    for key, title in demo.REPORT_COLUMNS:
        table.add_column(title, justify="left" if key == "stage" else "right", no_wrap=key == "stage")
    for row in rows:
        table.add_row(*(demo.format_cell(key, row.get(key)) for key, _ in demo.REPORT_COLUMNS))
    console.print(table)
    console.print(f"Wrote {os.path.join(args.out, 'report.json')}, report.md and accuracy_vs_size.png")
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
