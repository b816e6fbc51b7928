"""Find text lines and the price-axis labels: a column of text lines at even vertical steps."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from workers.chart_reader.marks import mark_mask, remove_straight_lines, strip_background


@dataclass(frozen=True)
class TextBox:
    """The bounding box of one line of text, in pixels (x1 and y1 exclusive)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def centre_y(self) -> float:
        """The middle row, where the label's tick points."""
        return (self.y0 + self.y1) / 2


@dataclass(frozen=True)
class LabelColumn:
    """Axis labels: text boxes aligned on one edge and spaced evenly down the image."""

    boxes: tuple[TextBox, ...]  # top to bottom
    side: str  # "left" or "right" half of the image
    step: float  # median vertical distance between neighbouring labels, pixels

    @property
    def x0(self) -> int:
        return min(box.x0 for box in self.boxes)

    @property
    def x1(self) -> int:
        return max(box.x1 for box in self.boxes)

    @property
    def y0(self) -> int:
        return self.boxes[0].y0

    @property
    def y1(self) -> int:
        return self.boxes[-1].y1


def find_text_boxes(marks: np.ndarray, *, image_width: int | None = None, x_offset: int = 0) -> list[TextBox]:
    """Return boxes shaped like one line of short text: a few glyphs wide, one glyph tall.

    Glyphs of a line are joined by a horizontal dilation about half a glyph
    wide. The box must then be wider than tall and as tall as small print.
    `marks` may be a vertical strip of the image, and then `image_width` is
    the whole image's width and `x_offset` the strip's first column.
    """
    height = marks.shape[0]
    width = image_width or marks.shape[1]
    gap = max(3, round(width / 320))
    joined = cv2.dilate(marks, cv2.getStructuringElement(cv2.MORPH_RECT, (gap, 1)))
    count, _, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    max_height = max(14, min(40, height // 20))
    boxes = []
    for x, y, w, h, area in stats[1:count]:
        if not 5 <= h <= max_height:
            continue
        if w < 1.2 * h or w > width * 0.4:
            continue
        if area < 0.3 * w * h:
            continue
        # The dilation widened the box by about half the gap on each side.
        left = int(x + (gap - 1) // 2 + x_offset)
        boxes.append(TextBox(left, int(y), int(x + w - gap // 2 + x_offset), int(y + h)))
    return boxes


def _median_step(centres: list[float]) -> float:
    """Return the median distance between neighbouring sorted centres, or 0.0 for fewer than two."""
    steps = np.diff(np.asarray(centres))
    return float(np.median(steps)) if steps.size else 0.0


def _same_step(step: float, median: float) -> bool:
    """Tell whether a step matches the median step within 12% and 1.5 pixels of rounding."""
    return abs(step - median) <= 0.12 * median + 1.5


def _aligned_groups(boxes: list[TextBox], tolerance: int) -> list[list[TextBox]]:
    """Group boxes whose left edges, or whose right edges, lie within `tolerance` pixels."""
    groups = []
    for edge in ("x0", "x1"):
        ordered = sorted(boxes, key=lambda box: getattr(box, edge))
        current: list[TextBox] = []
        for box in ordered:
            if current and getattr(box, edge) - getattr(current[0], edge) > tolerance:
                groups.append(current)
                current = []
            current.append(box)
        groups.append(current)
    return [group for group in groups if len(group) >= 3]


def _longest_even_run(group: list[TextBox]) -> list[TextBox]:
    """Keep the longest top-to-bottom run of boxes whose vertical steps are all alike."""
    ordered = sorted(group, key=lambda box: box.centre_y)
    # Boxes that overlap vertically are two texts on one row: keep the first.
    rows: list[TextBox] = []
    for box in ordered:
        if rows and box.y0 < rows[-1].y1:
            continue
        rows.append(box)
    if len(rows) < 3:
        return rows
    median = _median_step([box.centre_y for box in rows])
    best: list[TextBox] = []
    current = [rows[0]]
    for previous, box in zip(rows, rows[1:]):
        if _same_step(box.centre_y - previous.centre_y, median):
            current.append(box)
        else:
            current = [box]
        if len(current) > len(best):
            best = list(current)
    return best


def find_label_columns(boxes: list[TextBox], width: int) -> list[LabelColumn]:
    """Return the columns of at least three evenly spaced, edge-aligned text boxes, best first.

    The best column has the most labels. A right-hand column wins a tie
    because charting tools put the price scale on the right by default.
    """
    columns = []
    for group in _aligned_groups(boxes, tolerance=max(3, width // 300)):
        run = _longest_even_run(group)
        if len(run) < 3:
            continue
        step = _median_step([box.centre_y for box in run])
        heights = np.array([box.height for box in run])
        if step < 1.5 * float(np.median(heights)):
            continue
        centre_x = (min(b.x0 for b in run) + max(b.x1 for b in run)) / 2
        side = "right" if centre_x > width / 2 else "left"
        columns.append(LabelColumn(boxes=tuple(run), side=side, step=step))
    columns.sort(key=lambda column: (len(column.boxes), column.side == "right"), reverse=True)
    unique: list[LabelColumn] = []
    for column in columns:
        if any(set(column.boxes) & set(kept.boxes) for kept in unique):
            continue
        unique.append(column)
    return unique


def edge_label_columns(columns: list[LabelColumn], width: int) -> list[LabelColumn]:
    """Keep the label columns near the left or right edge, where price scales sit."""
    return [
        column
        for column in columns
        if (column.side == "right" and column.x0 > 0.7 * width) or (column.side == "left" and column.x1 < 0.3 * width)
    ]


def find_price_labels(rgb: np.ndarray) -> LabelColumn | None:
    """Find the price-axis labels by looking at the outer quarters of the image only.

    This is cheaper than reading the whole image, so the labels can go to
    OCR while the rest is measured. The right quarter is tried first, with
    its own most common colour as the background.
    """
    width = rgb.shape[1]
    for x0, x1 in ((width * 3 // 4, width), (0, width // 4)):
        strip = rgb[:, x0:x1]
        strip = remove_straight_lines(mark_mask(strip, [strip_background(strip)]))
        boxes = find_text_boxes(strip, image_width=width, x_offset=x0)
        columns = edge_label_columns(find_label_columns(boxes, width), width)
        if columns:
            return columns[0]
    return None
