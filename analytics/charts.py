"""Charts drawn on the server as SVG: no script, no library, nothing fetched from elsewhere.

Colours and sizes are SVG attributes rather than `style`, so the pages' Content-Security-Policy
(no inline styles) holds; every piece of text is escaped, since names come from users.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

# Distinguishable and colour-blind friendly (after Okabe and Ito); grey for "other".
PALETTE = ("#3b5bdb", "#e8590c", "#0ca678", "#ae3ec9", "#f59f00", "#1098ad", "#d6336c")
OTHER = "#adb5bd"
GRID = "#e9ecef"
AXIS_TEXT = "#7b8794"

WIDTH = 960
HEIGHT = 300
LEFT, RIGHT, TOP, BOTTOM = 56, 20, 16, 34


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    values: Sequence[int]
    colour: str


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def axis_step(value: float) -> int:
    """A round step for about five gridlines up to `value`: 1, 2 or 5 times a power of ten."""
    rough = max(value / 5, 1.0)
    magnitude = 10.0 ** math.floor(math.log10(rough))
    for step in (1.0, 2.0, 5.0, 10.0):
        if rough <= step * magnitude:
            return max(1, round(step * magnitude))
    return math.ceil(rough)


def line_chart(
    buckets: Sequence[datetime],
    lines: Sequence[Line],
    *,
    hourly: bool,
    label: str,
    empty_text: str = "No clicks in this window",
) -> Markup:
    """Clicks over time: one line per series, a light area under a single one; `empty_text`
    when there is nothing to draw."""
    n = len(buckets)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    highest = max((max(line.values, default=0) for line in lines), default=0)
    step = axis_step(highest)
    top = max(step, math.ceil(highest / step) * step)

    def x(i: int) -> float:
        return LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(value: float) -> float:
        return TOP + plot_h - plot_h * value / top

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
    ]
    for value in range(0, top + 1, step):
        yy = y(value)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{LEFT - 8}" y="{yy + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="{AXIS_TEXT}">{_short_number(value)}</text>'
        )
    for i in _tick_indices(n, 7):
        parts.append(
            f'<text x="{x(i):.1f}" y="{HEIGHT - 10}" text-anchor="middle" font-size="12" '
            f'fill="{AXIS_TEXT}">{escape(_time_label(buckets[i], hourly))}</text>'
        )
    if n and lines:
        for line in reversed(lines):  # the biggest series is drawn last, on top
            points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(line.values))
            if len(lines) == 1:
                area = f"{x(0):.1f},{y(0):.1f} {points} {x(n - 1):.1f},{y(0):.1f}"
                parts.append(f'<polygon points="{area}" fill="{line.colour}" fill-opacity="0.12"/>')
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{line.colour}" '
                f'stroke-width="2" stroke-linejoin="round" stroke-linecap="round">'
                f"<title>{escape(line.name)}: {_clicks(sum(line.values))}</title></polyline>"
            )
            if n <= 120:
                for i, v in enumerate(line.values):
                    tip = f"{line.name}, {_time_label(buckets[i], hourly)}: {v:,}"
                    parts.append(
                        f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="{3 if n <= 45 else 2}" '
                        f'fill="{line.colour}"><title>{escape(tip)}</title></circle>'
                    )
    else:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" font-size="15" '
            f'fill="{AXIS_TEXT}">{escape(empty_text)}</text>'
        )
    parts.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(0):.1f}" y2="{y(0):.1f}" '
        f'stroke="#cbd2d9" stroke-width="1"/>'
    )
    parts.append("</svg>")
    return _trusted("".join(parts))


def stage_bar(ratio: float, *, gap: bool = False) -> Markup:
    """One stage's visitors as a bar `ratio` of the widest stage's: bars side by side, not a
    funnel, since each stage counts its own visitors. A stage no touchpoint serves is a dashed
    outline."""
    width, height = 100.0, 24.0
    if gap:
        shape = (
            f'<rect x="0.5" y="2" width="99" height="{height - 4}" rx="2" fill="#fff5f5" '
            f'stroke="#fa5252" stroke-width="1" stroke-dasharray="3 2" '
            f'vector-effect="non-scaling-stroke"/>'
        )
    else:
        shown = max(0.0, min(1.0, ratio)) * width
        shape = (
            f'<rect width="{width:g}" height="{height:g}" rx="3" fill="{GRID}"/>'
            f'<rect width="{max(shown, 0.4):.2f}" height="{height:g}" rx="3" fill="{PALETTE[0]}" '
            f'fill-opacity="{0.45 + 0.5 * max(ratio, 0):.2f}"/>'
        )
    return _trusted(
        f'<svg class="stage-bar" viewBox="0 0 {width:g} {height:g}" preserveAspectRatio="none" '
        f'aria-hidden="true" xmlns="http://www.w3.org/2000/svg">{shape}</svg>'
    )


def funnel_bar(reached: float, continued: float | None, *, label: str) -> Markup:
    """A stage's journeys as a bar `reached` of the widest stage's, the part that continued to
    the next stage (`continued`, on the same scale; None on the last stage) drawn darker. `label`
    (escaped) says it in words."""
    width, height = 100.0, 24.0
    shown = max(0.0, min(1.0, reached)) * width
    went_on = max(0.0, min(1.0, continued or 0.0)) * width
    parts = [
        f'<rect width="{width:g}" height="{height:g}" rx="3" fill="{GRID}"/>',
        f'<rect width="{max(shown, 0.4):.2f}" height="{height:g}" rx="3" fill="{PALETTE[0]}" '
        f'fill-opacity="0.3"/>',
    ]
    if went_on > 0:
        parts.append(
            f'<rect width="{went_on:.2f}" height="{height:g}" rx="3" fill="{PALETTE[0]}"/>'
        )
    return _trusted(
        f'<svg class="stage-bar funnel-bar" viewBox="0 0 {width:g} {height:g}" '
        f'preserveAspectRatio="none" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>{"".join(parts)}</svg>'
    )


FLOW_WIDTH = 960
FLOW_NODE = 12  # a node's width
FLOW_LABEL = 190  # room for the labels right of the last column
FLOW_SLOT = 22  # the least height a node takes in its column, so that labels never overlap
FLOW_GAP = 10
FLOW_TOP = 30  # below the steps' names
FLOW_HEIGHT = 240  # the first column's nodes and gaps, before any grows to its label's height


def path_flow(
    paths: Sequence[tuple[Sequence[str], int]],
    names: Mapping[str, str],
    *,
    label: str,
    steps: int = 5,
    empty_text: str = "No journeys in this window",
) -> Markup:
    """Paths as a flow between touchpoints: a column per step (up to `steps`), a node per
    touchpoint at that step as tall as the journeys there, and a band from each node to the next
    step's as wide as the journeys that went that way. `paths` are (touchpoint keys, journeys);
    `names` name the keys. A touchpoint keeps its colour in every column."""
    shown = [(tuple(path[:steps]), n) for path, n in paths if path and n > 0]
    columns = max((len(path) for path, _ in shown), default=0)

    def svg(height: float, parts: Sequence[str]) -> Markup:
        return _trusted(
            f'<svg class="flow-chart" viewBox="0 0 {FLOW_WIDTH} {height:.0f}" role="img" '
            f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
            f"<title>{escape(label)}</title>{''.join(parts)}</svg>"
        )

    if not columns:
        return svg(120, [
            f'<text x="{FLOW_WIDTH / 2}" y="60" text-anchor="middle" font-size="15" '
            f'fill="{AXIS_TEXT}">{escape(empty_text)}</text>'
        ])
    nodes: list[dict[str, int]] = [defaultdict(int) for _ in range(columns)]
    bands: dict[tuple[int, str, str], int] = defaultdict(int)  # (step, from, to): journeys
    for path, n in shown:
        for i, key in enumerate(path):
            nodes[i][key] += n
            if i + 1 < len(path):
                bands[(i, key, path[i + 1])] += n
    colours: dict[str, str] = {}
    for column in nodes:
        for key in sorted(column, key=lambda k: (-column[k], k)):
            colours.setdefault(key, colour(len(colours)))
    tallest = max(len(column) for column in nodes)
    scale = max(4.0 * tallest, FLOW_HEIGHT - FLOW_GAP * (tallest - 1)) / sum(nodes[0].values())
    place = _flow_layout(nodes, bands, scale)
    bottom = max(y + max(tall, FLOW_SLOT) for y, tall in place.values()) + FLOW_GAP
    step_x = (FLOW_WIDTH - FLOW_LABEL - FLOW_NODE - 8) / max(columns - 1, 1)

    def x(i: int) -> float:
        return 8 + i * step_x

    parts = [
        f'<text x="{x(i):.1f}" y="16" font-size="12" fill="{AXIS_TEXT}">Step {i + 1}</text>'
        for i in range(columns)
    ]
    # Each node's bands leave from its top down, in the order of the nodes they go to, and
    # arrive in the order of the nodes they come from: no band crosses another inside a node.
    leaving = {at: y for at, (y, _) in place.items()}
    arriving = dict(leaving)
    for (i, a, b), n in sorted(
        bands.items(), key=lambda band: (place[band[0][:2]], place[(band[0][0] + 1, band[0][2])])
    ):
        thick = max(1.0, n * scale)
        x0, x1, middle = x(i) + FLOW_NODE, x(i + 1), (x(i) + FLOW_NODE + x(i + 1)) / 2
        y0, y1 = leaving[(i, a)], arriving[(i + 1, b)]
        leaving[(i, a)] += thick
        arriving[(i + 1, b)] += thick
        tip = f"{names.get(a, a)} \u2192 {names.get(b, b)}, steps {i + 1}\u2013{i + 2}: "
        parts.append(
            f'<path d="M{x0:.1f},{y0:.1f} C{middle:.1f},{y0:.1f} {middle:.1f},{y1:.1f} '
            f"{x1:.1f},{y1:.1f} L{x1:.1f},{y1 + thick:.1f} C{middle:.1f},{y1 + thick:.1f} "
            f'{middle:.1f},{y0 + thick:.1f} {x0:.1f},{y0 + thick:.1f} Z" fill="{colours[a]}" '
            f'fill-opacity="0.3"><title>{escape(tip + _journeys(n))}</title></path>'
        )
    for (i, key), (y, tall) in place.items():
        value, name = nodes[i][key], names.get(key, key)
        went_on = sum(n for (j, a, _), n in bands.items() if j == i and a == key)
        ended = f", {value - went_on:,} ended here" if i + 1 < columns else ""
        short = name if len(name) <= 26 else name[:25] + "\u2026"
        parts.append(
            f'<rect x="{x(i):.1f}" y="{y:.1f}" width="{FLOW_NODE}" height="{tall:.1f}" rx="2" '
            f'fill="{colours[key]}"><title>{escape(name)}, step {i + 1}: {_journeys(value)}'
            f"{ended}</title></rect>"
            f'<text x="{x(i) + FLOW_NODE + 5:.1f}" y="{y + tall / 2 + 4:.1f}" '
            f'font-size="12" fill="#1f2933" stroke="#ffffff" stroke-width="3" '
            f'paint-order="stroke">{escape(short)} <tspan fill="{AXIS_TEXT}">{value:,}</tspan>'
            "</text>"
        )
    return svg(bottom, parts)


def _flow_layout(
    nodes: Sequence[Mapping[str, int]], bands: Mapping[tuple[int, str, str], int], scale: float
) -> dict[tuple[int, str], tuple[float, float]]:
    """The top and height of each node (step, key). The first column has the most journeys on
    top; each next one puts a node level with the nodes its journeys come from (their weighted
    mean), so that bands cross as little as they can."""
    place: dict[tuple[int, str], tuple[float, float]] = {}
    for i, column in enumerate(nodes):
        def rank(
            key: str, i: int = i, column: Mapping[str, int] = column
        ) -> tuple[float, int, str]:
            sources = [(place[(i - 1, a)][0], n) for (j, a, b), n in bands.items()
                       if j == i - 1 and b == key]
            level = sum(y * n for y, n in sources) / sum(n for _, n in sources) if sources else 0
            return level, -column[key], key

        y = float(FLOW_TOP)
        for key in sorted(column, key=rank):
            tall = max(2.0, column[key] * scale)
            place[(i, key)] = (y, tall)
            y += max(tall, FLOW_SLOT) + FLOW_GAP
    return place


def interval_bar(
    value: float | None, low: float | None, high: float | None, top: float, *, label: str
) -> Markup:
    """A rate and its 95 % interval on a scale from 0 to `top`: a light band from `low` to
    `high`, a dot at `value`. `label` (escaped) is its tooltip."""
    if value is None or low is None or high is None:
        return _trusted("")
    width, height, pad = 80.0, 12.0, 4.0
    span = width - 2 * pad
    scale = top if top > 0 else 1.0

    def x(v: float) -> float:
        return pad + span * max(0.0, min(1.0, v / scale))

    return _trusted(
        f'<svg class="range-bar" width="{width:g}" height="{height:g}" '
        f'viewBox="0 0 {width:g} {height:g}" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>'
        f'<line x1="{pad:g}" x2="{width - pad:g}" y1="6" y2="6" stroke="{GRID}" '
        f'stroke-width="2"/>'
        f'<rect x="{x(low):.1f}" y="2" width="{max(x(high) - x(low), 1.0):.1f}" height="8" '
        f'rx="2" fill="{PALETTE[0]}" fill-opacity="0.25"/>'
        f'<circle cx="{x(value):.1f}" cy="6" r="3" fill="{PALETTE[0]}"/></svg>'
    )


def bar(ratio: float, *, colour_value: str = PALETTE[0]) -> Markup:
    """A small horizontal bar, `ratio` of its cell wide."""
    width = max(0.0, min(1.0, ratio)) * 100
    return _trusted(
        '<svg class="bar" viewBox="0 0 100 8" preserveAspectRatio="none" aria-hidden="true" '
        'xmlns="http://www.w3.org/2000/svg">'
        f'<rect width="100" height="8" rx="2" fill="{GRID}"/>'
        f'<rect width="{width:.2f}" height="8" rx="2" fill="{colour_value}"/></svg>'
    )


def swatch(colour_value: str) -> Markup:
    return _trusted(
        '<svg width="12" height="12" viewBox="0 0 12 12" aria-hidden="true" '
        f'xmlns="http://www.w3.org/2000/svg"><rect width="12" height="12" rx="3" '
        f'fill="{colour_value}"/></svg>'
    )


def _trusted(svg: str) -> Markup:
    # Every string interpolated above is either a number we formatted or passed through escape().
    return Markup(svg)  # noqa: S704


def heat_level(clicks: int, busiest: int) -> int:
    """1 (a few clicks) to 5 (the busiest cell); 0 for none. Square root, so small cells show."""
    if clicks <= 0 or busiest <= 0:
        return 0
    return 1 + min(4, int(math.sqrt(clicks / busiest) * 4.999))


def _tick_indices(n: int, most: int) -> list[int]:
    if n <= 0:
        return []
    if n <= most:
        return list(range(n))
    step = math.ceil((n - 1) / (most - 1))
    return list(range(0, n, step))


def _time_label(moment: datetime, hourly: bool) -> str:
    if hourly:
        return moment.strftime("%b %d %H:00")
    return moment.strftime("%b %d")


def _journeys(count: int) -> str:
    return f"{count:,} journey" if count == 1 else f"{count:,} journeys"


def _clicks(count: int) -> str:
    return f"{count:,} click" if count == 1 else f"{count:,} clicks"


def _short_number(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def scale_bar(
    value: float | None,
    low: float | None,
    high: float | None,
    *,
    bottom: float,
    top: float,
    label: str,
    zero: float | None = None,
) -> Markup:
    """A figure on a scale from `bottom` to `top` (an NPS from -100 to 100, a mean score from 1
    to 7): a light band for its 95 % interval from `low` to `high` (none when there is none), a
    dot at `value`, and a tick at `zero` when the scale has one. `label` (escaped) is its
    tooltip."""
    if value is None:
        return _trusted("")
    width, height, pad = 80.0, 12.0, 4.0
    span = width - 2 * pad
    extent = (top - bottom) or 1.0

    def x(v: float) -> float:
        return pad + span * max(0.0, min(1.0, (v - bottom) / extent))

    parts = [
        f'<line x1="{pad:g}" x2="{width - pad:g}" y1="6" y2="6" stroke="{GRID}" stroke-width="2"/>'
    ]
    if zero is not None:
        parts.append(
            f'<line x1="{x(zero):.1f}" x2="{x(zero):.1f}" y1="1" y2="11" stroke="{AXIS_TEXT}" '
            f'stroke-width="1"/>'
        )
    if low is not None and high is not None:
        parts.append(
            f'<rect x="{x(low):.1f}" y="2" width="{max(x(high) - x(low), 1.0):.1f}" height="8" '
            f'rx="2" fill="{PALETTE[0]}" fill-opacity="0.25"/>'
        )
    parts.append(f'<circle cx="{x(value):.1f}" cy="6" r="3" fill="{PALETTE[0]}"/>')
    return _trusted(
        f'<svg class="range-bar" width="{width:g}" height="{height:g}" '
        f'viewBox="0 0 {width:g} {height:g}" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>{"".join(parts)}</svg>'
    )


NPS_LEVELS = (-30.0, 0.0, 30.0, 60.0)  # where each colour of an NPS cell begins


def nps_level(score: float | None) -> int:
    """1 (below -30) to 5 (60 and above) for an NPS; 0 for none."""
    if score is None:
        return 0
    return 1 + sum(1 for start in NPS_LEVELS if score >= start)
