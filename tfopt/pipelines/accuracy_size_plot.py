"""The demo's picture: test accuracy against compressed size per stage, with the Pareto front drawn.

Stages often tie (the same accuracy at nearly the same size), so labels are not placed beside their points, where
they would cover each other: they stand in one column to the right of the plot, spread apart by at least a line's
height and joined to their points by thin leader lines. The size axis is logarithmic, since the stages span two
orders of magnitude (a 190 KiB baseline, a 20 KiB int8 model). Drawn on a bare Agg canvas (no pyplot), so nothing
global in matplotlib changes for the caller.
"""

import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

DPI = 120
FONT_SIZE = 8


def pareto_front(points):
    """Indices of the points that no other point beats: none is at most as large and at least as accurate.

    Args:
        points: (size, accuracy) pairs.

    Returns:
        The indices on the front, from the smallest size to the largest (accuracy then rises strictly).
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def spread(wanted, gap, low, high, ties=None):
    """Positions as close as possible to `wanted` (any order), at least `gap` apart, inside [low, high] if they fit.

    One pass up from the lowest, one pass down from the highest: positions keep the order of what they want (equal
    wants in ascending order of `ties`, when given), and when there are more than fit between `low` and `high`,
    they run on below `low` rather than overlap.
    """
    ties = ties or [0] * len(wanted)
    order = sorted(range(len(wanted)), key=lambda i: (wanted[i], ties[i]))
    placed = [0.0] * len(wanted)
    previous = -math.inf
    for i in order:
        placed[i] = max(wanted[i], low, previous + gap)
        previous = placed[i]
    following = math.inf
    for i in reversed(order):
        placed[i] = min(placed[i], high, following - gap)
        following = placed[i]
    return placed


def plot_accuracy_vs_size(rows, path):
    """Writes the accuracy-vs-size chart of the demo's stages to `path` (PNG) and returns the matplotlib Figure.

    Args:
        rows: the report's rows: dicts with "stage", "accuracy" (a fraction) and "gzip_bytes".
        path: where to write the PNG.
    """
    sizes = [row["gzip_bytes"] / 1024 for row in rows]
    accuracies = [100 * row["accuracy"] for row in rows]
    front = pareto_front(list(zip(sizes, accuracies)))

    fig = Figure(figsize=(8.4, 4.6), dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0.08, 0.11, 0.56, 0.8))
    on_front = set(front)
    ax.scatter([sizes[i] for i in range(len(rows)) if i not in on_front],
               [accuracies[i] for i in range(len(rows)) if i not in on_front],
               s=28, color="tab:gray", zorder=3, label="stage")
    ax.scatter([sizes[i] for i in front], [accuracies[i] for i in front], s=36, color="tab:blue", zorder=4,
               label="Pareto front (no stage smaller and more accurate)")
    # The front as a staircase: the best accuracy reachable at each size.
    ax.plot([sizes[i] for i in front], [accuracies[i] for i in front], drawstyle="steps-post", color="tab:blue",
            lw=1.2, zorder=2)
    ax.set_xscale("log")
    ax.set_xlim(min(sizes) / 1.5, max(sizes) * 1.5)
    # Ticks at 1, 2 and 5 per decade written as plain numbers; the minor ticks unlabelled (their labels collide).
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    # Accuracy over at least two points, so that noise-level differences do not fill the chart.
    low, high = min(accuracies), max(accuracies)
    pad = max(0.0, 2.0 - (high - low)) / 2
    ax.set_ylim(low - pad - 0.2, min(100.5, high + pad + 0.2))
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_xlabel("gzip-compressed model size (KiB, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("tfopt demo: accuracy vs size per stage")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=FONT_SIZE)

    # Labels in one column right of the axes, in figure pixels, each at its point's height where there is room.
    box = ax.get_window_extent()
    points = ax.transData.transform(list(zip(sizes, accuracies)))
    line = FONT_SIZE * DPI / 72 * 1.35
    # Of points at one height, the one nearest the column takes the lowest label, so leader lines do not cross.
    heights = spread([y for _, y in points], line, box.y0 + line / 2, box.y1 - line / 2, ties=[-x for x, _ in points])
    for row, point, height, size, accuracy in zip(rows, points, heights, sizes, accuracies):
        ax.annotate(f"{row['stage']}  ({accuracy:.2f}%, {size:.1f} KiB)", xy=point, xycoords="figure pixels",
                    xytext=(box.x1 + 18, height), textcoords="figure pixels", va="center", fontsize=FONT_SIZE,
                    arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.55", "shrinkA": 2, "shrinkB": 3,
                                "relpos": (0.0, 0.5)},
                    annotation_clip=False)
    canvas.print_png(path)
    return fig
