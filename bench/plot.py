"""The soak's samples drawn as a small SVG (hand-written: no plotting dependency).

One panel per resource (RSS, open file descriptors, event-loop tasks, sessions), time along
the bottom; the warm-up is shaded, and the medians of the first and last thirds after it
(what the flatness verdict compares) are dashed lines.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

WIDTH, PANEL, LEFT, RIGHT, TOP, GAP = 640, 110, 64, 30, 28, 34
#: the least height a panel shows, as a share of its largest value: a flat line looks flat
LEAST_SPAN = 0.25
#: panels: title, sample key(s) with their colours, scale of the values, flatness key
PANELS: tuple[tuple[str, tuple[tuple[str, str], ...], float, str | None], ...] = (
    ("RSS (MiB)", (("rss_kib", "#1f77b4"),), 1 / 1024, "rss_kib"),
    ("open file descriptors", (("fds", "#2ca02c"),), 1.0, "fds"),
    ("event-loop tasks", (("tasks", "#9467bd"),), 1.0, "tasks"),
    ("sessions: gateway (red), client (grey)", (("sessions", "#d62728"), ("kept", "#999999")),
     1.0, None),
)


def soak_svg(result: dict[str, Any]) -> str:
    """The SVG document of one soak result (its ``samples``, ``warmup_s`` and ``flat``)."""
    samples = result["samples"]
    end = max((s["t_s"] for s in samples), default=1.0) or 1.0
    minutes = end >= 120
    unit, per = ("min", 60.0) if minutes else ("s", 1.0)
    plot_width = WIDTH - LEFT - RIGHT
    height = TOP + len(PANELS) * (PANEL + GAP)

    def x(t: float) -> float:
        return LEFT + plot_width * t / end

    title = (f"vmcp soak: {result['sessions_kept']} sessions kept, "
             f"{result['new_sessions_per_s']:g} new/s, half closed, half abandoned, "
             f"{result['minutes']:g} min")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
           f'<text x="{LEFT}" y="16" font-size="13">{escape(title)}</text>']
    for index, (name, series, scale, flat_key) in enumerate(PANELS):
        top = TOP + index * (PANEL + GAP) + 14
        values = [s[key] * scale for s in samples for key, _ in series]
        low, high = min(values, default=0.0), max(values, default=1.0)
        if high - low < abs(high) * LEAST_SPAN:
            middle, half = (high + low) / 2, abs(high) * LEAST_SPAN / 2
            low, high = middle - half, middle + half
        span = (high - low) or 1.0
        low, high = low - span * 0.1, high + span * 0.1

        def y(value: float, top: float = top, low: float = low, high: float = high) -> float:
            return top + PANEL - PANEL * (value - low) / (high - low)

        label = name
        if flat_key is not None:
            flat = result["flat"][flat_key]
            if flat["ratio"] is not None:
                label += f"  last third / first third = {flat['ratio']}x"
        out.append(f'<text x="{LEFT}" y="{top - 4}">{escape(label)}</text>')
        warm = x(min(result["warmup_s"], end)) - LEFT
        out.append(f'<rect x="{LEFT}" y="{top}" width="{warm:.1f}" height="{PANEL}" '
                   'fill="#eeeeee"/>')
        out.append(f'<rect x="{LEFT}" y="{top}" width="{plot_width}" height="{PANEL}" '
                   'fill="none" stroke="#888888"/>')
        for value in (low + (high - low) * 0.1, high - (high - low) * 0.1):
            out.append(f'<text x="{LEFT - 4}" y="{y(value) + 4:.1f}" text-anchor="end">'
                       f'{_number(value)}</text>')
        if flat_key is not None:
            for which, colour in (("first", "#444444"), ("last", "#ff7f0e")):
                if (level := result["flat"][flat_key][which]) is not None:
                    out.append(f'<line x1="{x(result["warmup_s"]):.1f}" x2="{LEFT + plot_width}"'
                               f' y1="{y(level * scale):.1f}" y2="{y(level * scale):.1f}" '
                               f'stroke="{colour}" stroke-dasharray="4 3"/>')
        for key, colour in series:
            points = " ".join(f"{x(s['t_s']):.1f},{y(s[key] * scale):.1f}" for s in samples)
            out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                       'stroke-width="1.5"/>')
        bottom = top + PANEL + 12
        for tick in range(5):
            t = end * tick / 4
            out.append(f'<text x="{x(t):.1f}" y="{bottom}" text-anchor="middle">'
                       f'{t / per:.1f} {unit}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
