import itertools

import pytest
from matplotlib.text import Annotation, Text

from tfopt.pipelines.accuracy_size_plot import pareto_front, plot_accuracy_vs_size, spread

# The 13 stages of a `tfopt demo` run, with its ties: three stages at 97.77%, "baseline" and "tf.data pipeline" at
# the same size, "folded" and "schedule" side by side.
DEMO_ROWS = [
    ("baseline", 0.9805, 191.0),
    ("tf.data pipeline", 0.9805, 191.1),
    ("schedule", 0.9833, 190.2),
    ("optimizer", 0.9777, 191.4),
    ("pruned", 0.9805, 59.9),
    ("int8 (post-training)", 0.9777, 56.3),
    ("int8 (QAT)", 0.9805, 56.9),
    ("clustered", 0.9749, 41.2),
    ("folded", 0.9833, 189.8),
    ("pruned + int8", 0.9777, 19.5),
    ("channels pruned", 0.9749, 50.5),
    ("distilled student", 0.9777, 38.1),
    ("pruned 90% + teacher", 0.9694, 38.4),
]


def rows(table=DEMO_ROWS):
    return [{"stage": stage, "accuracy": accuracy, "gzip_bytes": kib * 1024} for stage, accuracy, kib in table]


@pytest.fixture(scope="module")
def demo_chart(tmp_path_factory):
    path = tmp_path_factory.mktemp("chart") / "accuracy_vs_size.png"
    fig = plot_accuracy_vs_size(rows(), str(path))
    return path, fig


def label_boxes(fig):
    # The text's own box: Annotation.get_window_extent would add its leader line.
    renderer = fig.canvas.get_renderer()
    return [Text.get_window_extent(a, renderer) for a in fig.axes[0].texts if isinstance(a, Annotation)]


def test_pareto_front_keeps_only_stages_nothing_smaller_beats():
    points = [(191.0, 98.05), (59.9, 98.05), (19.5, 97.77), (38.1, 97.77), (190.2, 98.33), (38.4, 96.94)]
    # 19.5 KiB at 97.77%, then 59.9 KiB reaching 98.05%, then 190.2 KiB reaching 98.33%; 191.0 ties 59.9 but larger.
    assert pareto_front(points) == [2, 1, 4]


def test_pareto_front_keeps_one_of_two_identical_points():
    assert pareto_front([(1.0, 0.5), (1.0, 0.5), (2.0, 0.4)]) == [0]


def test_spread_keeps_order_and_gap_and_moves_nothing_that_has_room():
    placed = spread([5.0, 5.0, 5.0, 50.0], gap=2.0, low=0.0, high=100.0)
    assert placed == [5.0, 7.0, 9.0, 50.0]
    placed = spread([99.0, 99.5, 100.0], gap=2.0, low=0.0, high=100.0)
    assert placed == [96.0, 98.0, 100.0]
    assert spread([5.0, 5.0, 5.0], gap=2.0, low=0.0, high=100.0, ties=[3, 1, 2]) == [9.0, 5.0, 7.0]


def test_chart_is_a_png_with_one_label_per_stage(demo_chart):
    path, fig = demo_chart
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    texts = [a.get_text() for a in fig.axes[0].texts if isinstance(a, Annotation)]
    assert len(texts) == len(DEMO_ROWS)
    assert "pruned + int8  (97.77%, 19.5 KiB)" in texts


def test_no_two_labels_overlap(demo_chart):
    _, fig = demo_chart
    boxes = label_boxes(fig)
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)


def test_labels_stay_inside_the_picture_and_off_the_plot(demo_chart):
    _, fig = demo_chart
    width, height = fig.canvas.get_width_height()
    axes_box = fig.axes[0].get_window_extent()
    for box in label_boxes(fig):
        assert box.x0 >= axes_box.x1 and box.x1 <= width
        assert box.y0 >= 0 and box.y1 <= height


def test_size_axis_is_logarithmic_and_the_front_is_drawn(demo_chart):
    _, fig = demo_chart
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    (front_line,) = ax.lines
    x, y = front_line.get_data()
    assert list(x) == [19.5, 56.9, 189.8]
    assert list(y) == pytest.approx([97.77, 98.05, 98.33])


def test_many_stages_at_one_point_still_do_not_overlap(tmp_path):
    table = [(f"stage {i}", 0.97, 40.0) for i in range(20)]
    fig = plot_accuracy_vs_size(rows(table), str(tmp_path / "chart.png"))
    for a, b in itertools.combinations(label_boxes(fig), 2):
        assert not a.overlaps(b)
