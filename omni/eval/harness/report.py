"""`omni bench report`: one self-contained HTML page from scores.json, plus report.csv and report.json.

The page needs nothing from elsewhere: CSS inline, charts as inline SVG, frame strips as base64 PNG; its
video and audio players link the outputs by paths relative to the page. It holds a per-system summary table,
a chart per metric with every system on one axis (the reference system and a target range marked), AV-offset
histograms, every item's outputs side by side (player, frames, waveform, numbers), and the missing and broken
files. Metrics that need a picture or a sound read "not meaningful" where the output is noise or silence.
"""

from __future__ import annotations

import base64
import csv
import io
import os
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from omni import media
from omni.eval.harness.catalogue import CATALOGUE, METRICS, SET_METRICS, MetricInfo
from omni.eval.harness.run import utc_now
from omni.eval.harness.score import json_safe, load_scores
from omni.eval.harness.suite import IMAGE_SUFFIXES
from omni.eval.harness.svg import bar_chart, format_value, histogram, system_color, waveform
from omni.media.atomic import write_json
from omni.media.video import sample_frames as sample_video_frames

# Mean |difference| of neighbouring pixels over mean |deviation|: i.i.d. noise 1.41, a random-weight decoder's
# output 0.63, toy-world clips 0.11. Above this a clip is taken to be noise.
NOISE_RATIO = 0.5
SILENCE_DBFS = -50.0  # RMS about the mean (a constant offset is silent too)
STRIP_FRAMES = 4
THUMB_HEIGHT = 72
OFFSET_RANGE_MS = (-500.0, 500.0)
OFFSET_BINS = 25  # 40 ms bins
SUMMARY_COLUMNS = (
    "compliant",
    "av_offset_ms",
    "av_determined",
    "motion_smoothness",
    "flicker",
    "loudness_lufs",
    "clipping_ratio",
    "credentials_valid",
    "toy_color_accuracy",
    "toy_motion_accuracy",
    "toy_av_sync_ms",
    "clip_score",
    "generation_seconds",
)

CSS = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: right; vertical-align: top; }
th { background: #f4f6fa; } td.name, th.name { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 18px; }
.chart, .wave { display: block; }
.item { margin: 14px 0; } .item h3 { font-size: 14px; margin: 4px 0; }
.outputs { display: flex; flex-wrap: wrap; gap: 14px; }
.output { border: 1px solid #e3e3e3; padding: 6px; font-size: 12px; width: 300px; }
.strip { display: block; image-rendering: pixelated; }
.missing { color: #a33; } .note { color: #666; font-size: 12px; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
video, audio { display: block; width: 288px; margin: 4px 0; }
"""


@dataclass
class Output:
    """What the page shows of one readable output: frames, sound, and whether either is noise or silence."""

    strip: str | None = None
    audio: np.ndarray | None = None
    sample_rate: int | None = None
    empty: set[str] = field(default_factory=set)  # "video" (noise) and / or "audio" (silence)

    def remark(self, info: MetricInfo) -> str | None:
        """'not meaningful: ...' when a stream the metric needs is noise or silence."""
        reasons = [{"video": "noise", "audio": "silence"}[s] for s in info.needs if s in self.empty]
        return f"not meaningful: {' and '.join(reasons)}" if reasons else None


def write_report(results_dir: str | Path, out: str | Path | None = None) -> tuple[Path, Path, Path]:
    """Write the HTML report (default `<results_dir>/report.html`) and report.csv / report.json next to it."""
    results_dir = Path(results_dir)
    scores = load_scores(results_dir)
    out = Path(out) if out is not None else results_dir / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    html = render_html(scores, results_dir, out.parent)
    csv_path, json_path = out.with_suffix(".csv"), out.with_suffix(".json")
    with media.atomic_output(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    with media.atomic_output(csv_path) as tmp:
        tmp.write_text(render_csv(scores), encoding="utf-8")
    write_json(json_path, report_json(scores))
    return out, csv_path, json_path


def render_html(scores: dict[str, Any], results_dir: Path, page_dir: Path | None = None) -> str:
    """The page, for a report written into `page_dir` (default: the results folder)."""
    systems = list(scores["systems"])
    suite = scores["suite"]
    outputs = read_outputs(scores, results_dir)
    sections = [
        f"<h1>omni benchmark: suite {escape(suite['name'])}</h1>",
        f'<p class="note">{suite["items"]} items, {len(systems)} systems; scored {escape(scores["created"])}, '
        f"report written {utc_now()}. "
        f"Learned metrics: {escape(_learned_note(scores))}.</p>",
        "<h2>Summary</h2>",
        summary_table(scores, outputs),
        "<h2>Metrics</h2>",
        '<div class="charts">' + "".join(metric_charts(scores, outputs)) + "</div>",
        "<h2>Audio-video offset</h2>",
        '<p class="note">Offset of sound events after picture events per output (positive: audio late), for '
        "outputs whose offset is determined; undetermined ones are counted in the title.</p>",
        '<div class="charts">' + "".join(offset_histograms(scores)) + "</div>",
        "<h2>Missing and broken files</h2>",
        problems_section(scores),
        "<h2>Outputs</h2>",
        items_section(scores, results_dir, page_dir or results_dir, outputs),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>omni benchmark: {escape(suite['name'])}</title><style>{CSS}</style></head><body>"
        + "\n".join(sections)
        + "</body></html>\n"
    )


def summary_table(scores: dict[str, Any], outputs: dict[tuple[str, str], Output]) -> str:
    columns = [METRICS[key] for key in SUMMARY_COLUMNS] + list(SET_METRICS)
    columns = [
        info
        for info in columns
        if any(_summary(scores, s).get(info.key) is not None for s in scores["systems"])
    ]
    head = "".join(
        f'<th title="{escape(info.key)}">{escape(info.label)}<br>{_unit(info)}</th>' for info in columns
    )
    rows = []
    for index, (system, entry) in enumerate(scores["systems"].items()):
        summary = entry["summary"]
        counts = f"{summary['scored']} / {summary['items']}"
        if summary["missing"] or summary["broken"]:
            counts += (
                f' <span class="missing">({summary["missing"]} missing, {summary["broken"]} broken)</span>'
            )
        cells = "".join(
            f'<td><span class="note">{escape(remark)}</span></td>'
            if (remark := system_remark(scores, outputs, system, info))
            else f"<td>{_cell(summary.get(info.key), info)}</td>"
            for info in columns
        )
        swatch = f'<span class="swatch" style="background:{system_color(index)}"></span>'
        rows.append(f'<tr><td class="name">{swatch}{escape(system)}</td><td>{counts}</td>{cells}</tr>')
    return (
        f'<table class="summary"><tr><th class="name">system</th><th>scored</th>{head}</tr>{"".join(rows)}</table>'
        '<p class="note">Shares are over the outputs a metric applies to; "AV offset" is the median |offset| of '
        "determined outputs. Full definitions: docs/benchmarking.md.</p>"
    )


def read_outputs(scores: dict[str, Any], results_dir: Path) -> dict[tuple[str, str], Output]:
    """Frames, audio and noise / silence of every readable output, keyed by (system, item)."""
    outputs = {}
    for system, entry in scores["systems"].items():
        for item_id, item in entry["items"].items():
            if item["status"] != "ok":
                continue
            path, output = results_dir / item["file"], Output()
            try:
                frames = sample_frames(path, STRIP_FRAMES)
            except (media.MediaError, OSError):
                frames = []
            if frames:
                output.strip = frame_strip(frames)
                if path.suffix.lower() not in IMAGE_SUFFIXES and noise_ratio(frames) > NOISE_RATIO:
                    output.empty.add("video")
            try:
                if item["metrics"].get("has_audio"):
                    output.audio, output.sample_rate = media.read_audio(path)
            except (media.MediaError, OSError):
                pass
            if output.audio is not None and is_silent(output.audio):
                output.empty.add("audio")
            outputs[system, item_id] = output
    return outputs


def noise_ratio(frames: list[np.ndarray]) -> float:
    """Mean |difference| of horizontally neighbouring pixels over mean |deviation| from the frame's mean."""
    grey = np.stack(frames).astype(np.float32).mean(axis=-1)  # (F, H, W)
    spread = np.abs(grey - grey.mean(axis=(1, 2), keepdims=True)).mean()
    return float(np.abs(np.diff(grey, axis=-1)).mean() / max(spread, 1e-6))


def is_silent(audio: np.ndarray) -> bool:
    centred = audio - audio.mean(axis=-1, keepdims=True)
    return float(np.sqrt(np.mean(centred**2))) < 10 ** (SILENCE_DBFS / 20)


def system_remark(
    scores: dict[str, Any], outputs: dict[tuple[str, str], Output], system: str, info: MetricInfo
) -> str | None:
    """'not meaningful: ...' when every output of `system` that `info` applies to is noise or silence where
    the metric needs a picture or a sound (silence has no loudness value at all, but says why)."""
    found = {
        outputs[system, item_id].remark(info)
        for item_id, item in scores["systems"][system]["items"].items()
        if (system, item_id) in outputs
        and (item["metrics"].get(info.key) is not None or outputs[system, item_id].remark(info))
    }
    return found.pop() if len(found) == 1 and None not in found else None


def metric_charts(scores: dict[str, Any], outputs: dict[tuple[str, str], Output]) -> list[str]:
    """A bar chart per metric with at least one value: one bar per system (fixed order and colour) on the
    metric's axis, the reference system's value marked, "not meaningful" where `system_remark` says so."""
    systems = list(scores["systems"])
    reference = scores.get("reference")
    charts = []
    for info in (*CATALOGUE, *SET_METRICS):
        values = [_summary(scores, s).get(info.key) for s in systems]
        if all(v is None for v in values):
            continue
        remarks = [system_remark(scores, outputs, system, info) for system in systems]
        marked = None
        if reference in scores["systems"] and _summary(scores, reference).get(info.key) is not None:
            marked = (reference, float(_summary(scores, reference)[info.key]))
        note = {"higher": "higher is better", "lower": "lower is better"}.get(info.better, "")
        share = info.unit == "share"
        charts.append(
            bar_chart(
                info.label,
                systems,
                values,
                "" if share else info.unit,
                note,
                percent=share,
                axis=info.axis,
                reference=marked,
                target=info.target,
                remarks=remarks,
            )  # fmt: skip
        )
    return charts


def offset_histograms(scores: dict[str, Any]) -> list[str]:
    charts = []
    for index, (system, entry) in enumerate(scores["systems"].items()):
        offsets, undetermined = [], 0
        for item in entry["items"].values():
            metrics = item.get("metrics", {})
            if "av_determined" not in metrics:
                continue
            if metrics["av_offset_ms"] is None:
                undetermined += 1
            else:
                offsets.append(metrics["av_offset_ms"])
        title = f"{system}: {len(offsets)} determined, {undetermined} not"
        charts.append(histogram(title, offsets, *OFFSET_RANGE_MS, OFFSET_BINS, "ms", system_color(index)))
    return charts


def problems_section(scores: dict[str, Any]) -> str:
    rows = []
    for system, entry in scores["systems"].items():
        for item_id, item in entry["items"].items():
            if item["status"] == "missing":
                rows.append((system, item_id, "missing", "no output file"))
            elif item["status"] == "broken":
                rows.append((system, item_id, "broken", item.get("error", "")))
            for metric, error in item.get("metric_errors", {}).items():
                rows.append((system, item_id, f"{metric} failed", error))
        for name in entry.get("unmatched_files", []):
            rows.append((system, name, "unmatched", "matches no suite item (ignored)"))
    if not rows:
        return "<p>None: every system has a readable output for every item.</p>"
    body = "".join(
        f'<tr><td class="name">{escape(s)}</td><td class="name">{escape(i)}</td>'
        f'<td class="name missing">{escape(kind)}</td><td class="name">{escape(detail)}</td></tr>'
        for s, i, kind, detail in rows
    )
    return f'<table class="problems"><tr><th class="name">system</th><th class="name">item / file</th><th class="name">problem</th><th class="name">detail</th></tr>{body}</table>'


def items_section(
    scores: dict[str, Any], results_dir: Path, page_dir: Path, outputs: dict[tuple[str, str], Output]
) -> str:
    """Per item, every system's output side by side: a player, a frame strip, the waveform, a few numbers."""
    item_ids = list(next(iter(scores["systems"].values()))["items"]) if scores["systems"] else []
    blocks = []
    for item_id in item_ids:
        cards = [
            _output_card(
                system, entry["items"][item_id], results_dir, page_dir, outputs.get((system, item_id))
            )
            for system, entry in scores["systems"].items()
        ]
        blocks.append(
            f'<div class="item"><h3>{escape(item_id)}</h3><div class="outputs">{"".join(cards)}</div></div>'
        )
    return "".join(blocks)


def _output_card(
    system: str, item: dict[str, Any], results_dir: Path, page_dir: Path, output: Output | None
) -> str:
    if item["status"] != "ok" or output is None:
        return f'<div class="output"><b>{escape(system)}</b><br><span class="missing">{escape(item["status"])}</span></div>'
    path = results_dir / item["file"]
    link = quote(Path(os.path.relpath(path.resolve(), page_dir.resolve())).as_posix())
    parts = [f'<b>{escape(system)}</b> <a class="note" href="{link}">{escape(Path(item["file"]).name)}</a>']
    suffix = path.suffix.lower()
    if suffix in (".mp4", ".webm", ".mov", ".m4v"):
        parts.append(f'<video controls preload="metadata" src="{link}"></video>')
    elif suffix in (".wav", ".mp3", ".flac", ".ogg", ".m4a"):
        parts.append(f'<audio controls preload="metadata" src="{link}"></audio>')
    if output.strip is not None:
        parts.append(
            f'<img class="strip" alt="frames of {escape(item["file"])}" src="data:image/png;base64,{output.strip}">'
        )
    if output.audio is not None:
        parts.append(waveform(output.audio, output.sample_rate))
    metrics, notes = item["metrics"], item.get("notes", {})
    facts = []
    if metrics.get("av_determined") is not None:
        offset = metrics.get("av_offset_ms")
        remark = output.remark(METRICS["av_offset_ms"])
        if remark is not None:
            facts.append(f"AV offset {remark}")
        elif offset is not None:
            facts.append(f"AV offset {format_value(offset)} ms")
        else:
            facts.append(f"AV offset undetermined ({notes.get('av_sync', '')})")
    for key in ("loudness_lufs", "motion_smoothness", "credentials"):
        if metrics.get(key) is not None:
            value = metrics[key]
            remark = output.remark(METRICS[key]) if key in METRICS else None
            shown = remark or (format_value(value) if isinstance(value, float) else value)
            facts.append(f"{key.replace('_', ' ')} {shown}")
    parts.append(f'<div class="note">{escape("; ".join(facts))}</div>')
    return f'<div class="output">{"".join(parts)}</div>'


def frame_strip(frames: list[np.ndarray], height: int = THUMB_HEIGHT) -> str:
    """Base64 PNG of `frames` side by side, `height` px high."""
    from PIL import Image

    thumbs = []
    for frame in frames:
        image = Image.fromarray(frame)
        width = max(1, round(image.width * height / image.height))
        resample = Image.Resampling.NEAREST if image.height < height else Image.Resampling.LANCZOS
        thumbs.append(image.resize((width, height), resample))
    gap = 3
    strip = Image.new("RGB", (sum(t.width for t in thumbs) + gap * (len(thumbs) - 1), height), "white")
    x = 0
    for thumb in thumbs:
        strip.paste(thumb, (x, 0))
        x += thumb.width + gap
    buffer = io.BytesIO()
    strip.save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def sample_frames(path: Path, count: int) -> list[np.ndarray]:
    """`count` RGB frames spread evenly over the video at `path`, or the image itself."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return [media.read_image(path)]
    return sample_video_frames(path, count)


def render_csv(scores: dict[str, Any]) -> str:
    """One row per system and item: status, file, then every metric (union of keys, catalogue order first)."""
    keys: list[str] = [info.key for info in CATALOGUE]
    for entry in scores["systems"].values():
        for item in entry["items"].values():
            keys += [k for k in item.get("metrics", {}) if k not in keys]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["system", "item", "status", "file", *keys])
    for system, entry in scores["systems"].items():
        for item_id, item in entry["items"].items():
            metrics = item.get("metrics", {})
            writer.writerow(
                [
                    system,
                    item_id,
                    item["status"],
                    item.get("file") or "",
                    *(_csv(metrics.get(k)) for k in keys),
                ]
            )
    return buffer.getvalue()


def report_json(scores: dict[str, Any]) -> dict[str, Any]:
    """The per-system summaries and the metric definitions they use."""
    return json_safe(
        {
            "suite": scores["suite"],
            "scored": scores["created"],
            "reference": scores.get("reference"),
            "learned": scores.get("learned", {}),
            "metrics": {
                info.key: {
                    "label": info.label,
                    "unit": info.unit,
                    "better": info.better,
                    "summary": info.summary,
                }
                for info in (*CATALOGUE, *SET_METRICS)
            },
            "systems": {system: entry["summary"] for system, entry in scores["systems"].items()},
        }
    )


def _summary(scores: dict[str, Any], system: str) -> dict[str, Any]:
    return scores["systems"][system]["summary"]


def _learned_note(scores: dict[str, Any]) -> str:
    learned = scores.get("learned") or {}
    return ", ".join(f"{name} {state}" for name, state in learned.items()) or "none requested"


def _unit(info: MetricInfo) -> str:
    return f'<span class="note">{escape(info.unit)}</span>' if info.unit else ""


def _cell(value: Any, info: MetricInfo) -> str:
    if value is None:
        return '<span class="note">n/a</span>'
    if info.unit == "share":
        return f"{100 * value:.0f}%"
    return escape(format_value(float(value)))


def _csv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
