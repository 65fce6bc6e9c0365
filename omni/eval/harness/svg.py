"""Inline SVG charts for the report: horizontal bars, histograms and audio waveforms, as plain strings.

Every chart has a viewBox and an explicit width, so it keeps its size in any browser, and carries its own
text (title, axis values); nothing loads from elsewhere.
"""

from __future__ import annotations

import math
from html import escape

import numpy as np

from omni.eval.metrics.signals import mono

PALETTE = ("#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477", "#66aa00")
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def system_color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def bar_chart(
    title: str,
    labels: list[str],
    values: list[float | None],
    unit: str = "",
    note: str = "",
    percent: bool = False,
    axis: tuple[float, float] | None = None,
    reference: tuple[str, float] | None = None,
    target: tuple[float, float] | None = None,
    remarks: list[str | None] | None = None,
) -> str:
    """One horizontal bar per label (a system) on one axis shared by all of them: 0-100% for a share
    (`percent`: values in [0, 1]), else `axis` or the values' own range padded by a quarter, so that one
    system alone does not fill the width. `reference` (name, value) draws a dashed line, `target` a shaded
    band; a label's `remarks` entry (e.g. "not meaningful: noise") replaces its bar; None shows as "n/a"."""
    width, label_width, row, top = 460, 120, 22, 34
    span = width - label_width - 110  # room for the value after the longest bar
    marks = [v for v in values if v is not None and math.isfinite(v)]
    marks += [reference[1]] if reference is not None and math.isfinite(reference[1]) else []
    if percent:
        low, high = 0.0, 1.0
    elif axis is not None:
        low, high = axis
    else:
        low, high = min([0.0, *marks]), max([0.0, *marks])
        low, high = (low * 1.25, high * 1.25) if (low, high) != (0.0, 0.0) else (0.0, 1.0)
    # Bars grow from zero, or from the bottom of an all-negative axis (LUFS, dBFS: longer is louder).
    origin = low if high <= 0 else max(low, 0.0)

    def x(value: float) -> float:
        return label_width + span * (min(max(value, low), high) - low) / (high - low)

    height = top + row * len(labels) + 24
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<text x="0" y="14" {FONT} font-weight="bold">{escape(title)}</text>',
    ]
    if note:
        parts.append(f'<text x="0" y="28" {FONT} fill="#666">{escape(note)}</text>')
    bottom = top + row * len(labels)
    if target is not None:
        parts.append(
            f'<rect class="target" x="{x(target[0]):.1f}" y="{top}" width="{x(target[1]) - x(target[0]):.1f}" '
            f'height="{bottom - top}" fill="#109618" fill-opacity="0.12"><title>target {target[0]:g} to '
            f"{target[1]:g} {escape(unit)}</title></rect>"
        )
    for i, (label, value) in enumerate(zip(labels, values)):
        y = top + i * row
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 14}" {FONT} text-anchor="end">{escape(label)}</text>'
        )
        remark = remarks[i] if remarks is not None else None
        if remark is not None or value is None or not math.isfinite(value):
            text = remark or "n/a"
            parts.append(f'<text x="{label_width}" y="{y + 14}" {FONT} fill="#999">{escape(text)}</text>')
            continue
        shown = f"{100 * value:.0f}%" if percent else f"{format_value(value)} {unit}".strip()
        start, end = sorted((x(origin), x(value)))
        parts.append(
            f'<rect class="bar" x="{start:.1f}" y="{y + 3}" width="{max(end - start, 1.0):.1f}" '
            f'height="{row - 6}" fill="{system_color(i)}"><title>{escape(label)}: {escape(shown)}</title></rect>'
            f'<text x="{max(end, x(origin)) + 4:.1f}" y="{y + 14}" {FONT}>{escape(shown)}</text>'
        )
    if reference is not None and math.isfinite(reference[1]):
        ref_x = x(reference[1])
        parts.append(
            f'<line class="reference" x1="{ref_x:.1f}" y1="{top - 2}" x2="{ref_x:.1f}" y2="{bottom + 2}" '
            f'stroke="#222" stroke-dasharray="4,3"><title>{escape(reference[0])}: '
            f"{escape(format_value(reference[1]))}</title></line>"
        )
    axis_text = (lambda v: f"{100 * v:.0f}%") if percent else (lambda v: f"{format_value(v)} {unit}".strip())
    parts.append(
        f'<line x1="{label_width}" y1="{bottom + 2}" x2="{label_width + span}" y2="{bottom + 2}" stroke="#999"/>'
        f'<text x="{label_width}" y="{bottom + 16}" {FONT} fill="#666">{escape(axis_text(low))}</text>'
        f'<text x="{label_width + span}" y="{bottom + 16}" {FONT} fill="#666" text-anchor="end">'
        f"{escape(axis_text(high))}</text>"
    )
    if reference is not None and math.isfinite(reference[1]):
        parts.append(
            f'<text x="{width - 4}" y="{bottom + 16}" {FONT} fill="#222" text-anchor="end">- - '
            f"{escape(reference[0])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def histogram(
    title: str,
    values: list[float],
    low: float,
    high: float,
    bins: int,
    unit: str = "",
    color: str = PALETTE[0],
) -> str:
    """Counts of `values` in `bins` equal bins over [low, high] (outliers in the end bins), with a zero line."""
    width, height, left, bottom, top = 300, 150, 28, 22, 22
    counts = (
        np.histogram(np.clip(values, low, high), bins=bins, range=(low, high))[0]
        if values
        else np.zeros(bins)
    )
    peak = max(int(counts.max()), 1)
    plot_w, plot_h = width - left - 6, height - top - bottom
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<text x="0" y="14" {FONT} font-weight="bold">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>',
    ]
    bar = plot_w / bins
    for i, count in enumerate(counts):
        if count:
            h = plot_h * count / peak
            parts.append(
                f'<rect x="{left + i * bar + 0.5:.1f}" y="{top + plot_h - h:.1f}" width="{bar - 1:.1f}" '
                f'height="{h:.1f}" fill="{color}"><title>{int(count)}</title></rect>'
            )
    zero = left + plot_w * (0 - low) / (high - low)
    if low < 0 < high:
        parts.append(
            f'<line x1="{zero:.1f}" y1="{top}" x2="{zero:.1f}" y2="{top + plot_h}" stroke="#333" stroke-dasharray="3,2"/>'
        )
    for value, anchor, x in ((low, "start", left), (0, "middle", zero), (high, "end", left + plot_w)):
        if low <= value <= high:
            parts.append(
                f'<text x="{x:.1f}" y="{height - 6}" {FONT} text-anchor="{anchor}">{value:g} {escape(unit)}</text>'
            )
    parts.append(f'<text x="{left - 4}" y="{top + 10}" {FONT} text-anchor="end">{peak}</text>')
    parts.append("</svg>")
    return "".join(parts)


def waveform(audio: np.ndarray, sample_rate: int, width: int = 300, height: int = 48) -> str:
    """The min / max envelope of (C, N) or (N,) audio (channels mixed) as a filled SVG path, with its length."""
    mixed = mono(audio)
    columns = min(width, max(mixed.size, 1))
    chunks = np.array_split(mixed, columns) if mixed.size else [np.zeros(1)]
    upper = [float(c.max(initial=0.0)) for c in chunks]
    lower = [float(c.min(initial=0.0)) for c in chunks]
    middle, scale = height / 2, height / 2 - 1
    step = width / len(chunks)
    points = [f"{i * step:.1f},{middle - scale * u:.1f}" for i, u in enumerate(upper)]
    points += [f"{i * step:.1f},{middle - scale * v:.1f}" for i, v in reversed(list(enumerate(lower)))]
    seconds = mixed.size / sample_rate if sample_rate else 0.0
    return (
        f'<svg class="wave" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="waveform, {seconds:.2f} s">'
        f'<rect width="{width}" height="{height}" fill="#f4f6fa"/>'
        f'<line x1="0" y1="{middle}" x2="{width}" y2="{middle}" stroke="#ccd"/>'
        f'<polygon points="{" ".join(points)}" fill="#3366cc"/>'
        f'<text x="{width - 4}" y="12" {FONT} text-anchor="end" fill="#555">{seconds:.2f} s</text></svg>'
    )


def format_value(value: float) -> str:
    """A short, readable number: 3 significant digits, no exponent for everyday magnitudes."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 0.01:
        return f"{value:.3g}"
    return f"{value:.2e}"
