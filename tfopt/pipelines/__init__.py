"""The pipelines on top of the library: what the `tfopt` command runs, built only from tfopt's public pieces.

Public objects:
    compress, load_data: the fine-tune-and-compress pipeline behind `tfopt compress`, and its data-file reader.
    plot_accuracy_vs_size: the demo's accuracy-vs-size picture (Pareto front, labels that never overlap).

`tfopt.demo` (the demo's stages) and `tfopt.cli` (the command) sit above this package.
"""

from tfopt.pipelines.accuracy_size_plot import plot_accuracy_vs_size
from tfopt.pipelines.compress import compress, load_data

__all__ = ["compress", "load_data", "plot_accuracy_vs_size"]
