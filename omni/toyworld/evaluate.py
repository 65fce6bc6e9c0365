"""Capability metrics of a model on the toy world, against ground truth, with weights-free detectors.

A fixed prompt suite (scenes from seeds, prompts = their canonical captions) is generated with every
capability the engine offers, and each output is scored: attributes and audio-video sync (t2av), first-frame
fidelity (i2v), beat alignment (a2v), onset alignment (v2a), trajectory error under motion control,
attribute persistence and boundary jumps over a 4x extension, exactness outside a retake, and subject
identity across the shots of a project.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from omni.media.geometry import whole_latent_frames
from omni.toyworld import (
    BOUNCING_MOTIONS,
    COLORS,
    ROOMS,
    SHAPES,
    canonical_caption,
    render,
    sample_scene,
)
from omni.toyworld.detectors.audio import detect_beeps
from omni.toyworld.detectors.metrics import chance_errors, match_events, pieces, score_clip, shape_iou
from omni.toyworld.detectors.motion import visual_bounces
from omni.toyworld.detectors.segment import segment_frames
from omni.toyworld.detectors.shape import classify_shape, track_shape, track_size
from omni.toyworld.detectors.tracks import track_objects

MOTIONS_EVALUATED = ("horizontal", "vertical", "diagonal", "orbit", "still")
EVENT_MATCH_SECONDS = 0.25  # generated events further than this from any reference count as misses


@dataclass
class EvalSettings:
    seeds: int = 8
    first_seed: int = 10_000  # outside the training seeds' range of a typical recipe
    steps: int | None = None
    guidance: float | None = None
    capabilities: tuple[str, ...] = (
        "t2i",
        "t2av",
        "i2v",
        "a2v",
        "v2a",
        "trajectory",
        "extension",
        "retake",
        "project",
    )


@dataclass
class Report:
    values: dict[str, Any] = field(default_factory=dict)
    details: dict[str, list] = field(default_factory=dict)

    def add(self, key: str, detail: dict) -> None:
        self.details.setdefault(key, []).append(detail)


def suite_scene(seed: int, motion: str | None = None, **constraints):
    """One object, a motion from the evaluated set: the scenes every capability is scored on."""
    rng = np.random.default_rng(seed)
    motion = motion or MOTIONS_EVALUATED[int(rng.integers(len(MOTIONS_EVALUATED)))]
    return sample_scene(seed, num_objects=1, motion=motion, pan=False, **constraints)


def _mean(values) -> float:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(values)) if values else float("nan")


def _median_abs(values) -> float:
    return float(np.median(np.abs(values))) if len(values) else float("nan")


def _track(frames: np.ndarray, fps: float, color: str):
    return track_objects(frames, fps).tracks.get(color)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


class ToyworldEvaluation:
    def __init__(self, pipe, settings: EvalSettings, progress: bool = True):
        self.pipe = pipe
        self.settings = settings
        self.progress = progress
        self.run = dict(num_inference_steps=settings.steps, guidance_scale=settings.guidance, progress=False)
        self.generation_seconds: list[float] = []

    def generate(self, prompt: str, **kwargs):
        start = time.perf_counter()
        out = self.pipe(prompt, **self.run, **kwargs)
        if kwargs.get("task", "t2av") == "t2av":
            self.generation_seconds.append(time.perf_counter() - start)
        return out

    def seeds(self) -> range:
        return range(self.settings.first_seed, self.settings.first_seed + self.settings.seeds)

    # -------------------------------------------------------------------------------- capabilities

    def t2av(self, report: Report) -> None:
        for seed in self.seeds():
            scene = suite_scene(seed)
            out = self.generate(canonical_caption(scene), task="t2av", seed=seed)
            frames = out.frames[0]
            scores = score_clip(frames, out.audio[0], out.fps, out.sample_rate, scene)
            # The asked-for colour must be found AND be the clip's main object: noise shows every colour.
            tracks = track_objects(frames, out.fps).tracks
            main = max(tracks, key=lambda c: np.nanmean(tracks[c].areas), default=None)
            scores["color_accuracy"] = float(main == scene.objects[0].color)
            scores["shape_accuracy"] *= scores["color_accuracy"]
            scores["shape_iou"] *= scores["color_accuracy"]
            scores["size_accuracy"] *= scores["color_accuracy"]
            detail = {k: v for k, v in scores.items() if k != "objects"}
            report.add(
                "t2av",
                {
                    "seed": seed,
                    "prompt": canonical_caption(scene),
                    **detail,
                    "main_object": main,
                    "motion_asked": scene.objects[0].motion,
                    "motion_detected": scores["objects"][0].get("motion"),
                    "detected": scores["objects"],
                },
            )

    def t2i(self, report: Report) -> None:
        """An image of the scene's first frame: the main object's colour, shape, outline (shape IoU) and how
        many pieces of its colour the image shows (1 when the object is drawn whole, once)."""
        for seed in self.seeds():
            scene = suite_scene(seed)
            out = self.generate(canonical_caption(scene), task="t2i", seed=seed)
            frame = out.images[:1]  # (1, H, W, 3): a one-frame clip for the detectors
            detections = segment_frames(frame)[0]
            main = detections[0] if detections else None
            obj = scene.objects[0]
            right_color = main is not None and main.color == obj.color
            shape = classify_shape(main.asymmetry, main.corner_ratio) if right_color else None
            iou = shape_iou([[main]], obj, scene.radius(obj)) if right_color else 0.0
            report.add(
                "t2i",
                {
                    "seed": seed,
                    "prompt": canonical_caption(scene),
                    "color_correct": bool(right_color),
                    "shape": shape,
                    "shape_correct": shape == obj.shape,
                    "shape_iou": iou,
                    "pieces": pieces([detections], obj.color),
                },
            )

    def i2v(self, report: Report) -> None:
        for seed in self.seeds():
            scene = suite_scene(seed)
            key = render(scene).frames[0]
            out = self.generate(canonical_caption(scene), task="i2v", image=key, seed=seed)
            report.add("i2v", {"seed": seed, "first_frame_psnr_db": _psnr(out.frames[0, 0], key)})

    def a2v(self, report: Report) -> None:
        """The clip's own beeps drive the video: visual bounces should land on them."""
        for seed in self.seeds():
            scene = suite_scene(seed, motion=BOUNCING_MOTIONS[seed % 3])
            truth = render(scene)
            beeps = np.array([b.time for o in truth.ground_truth.objects for b in o.bounces])
            out = self.generate(
                canonical_caption(scene),
                task="a2v",
                audio=truth.audio,
                audio_sample_rate=scene.sample_rate,
                seed=seed,
            )
            track = _track(out.frames[0], out.fps, scene.objects[0].color)
            bounces = (
                np.array([b.time for b in visual_bounces(track.times, track.motion_track)])
                if track is not None
                else np.zeros(0)
            )
            matching = match_events(beeps, bounces, EVENT_MATCH_SECONDS)
            chance = chance_errors(
                beeps, bounces, len(out.frames[0]) / out.fps, EVENT_MATCH_SECONDS, seed=seed
            )
            report.add(
                "a2v",
                {
                    "seed": seed,
                    "errors_frames": (matching.errors * out.fps).tolist(),
                    "chance_errors_frames": (chance * out.fps).tolist(),
                    "misses": matching.misses,
                    "false_alarms": matching.false_alarms,
                    "beeps": len(beeps),
                },
            )

    def v2a(self, report: Report) -> None:
        """The clip's own picture drives the sound: beeps should start at the visual bounces."""
        for seed in self.seeds():
            scene = suite_scene(seed, motion=BOUNCING_MOTIONS[seed % 3])
            truth = render(scene)
            bounces = np.array([b.time for o in truth.ground_truth.objects for b in o.bounces])
            out = self.generate(
                canonical_caption(scene), task="v2a", video=truth.frames, video_fps=scene.fps, seed=seed
            )
            onsets = np.array([b.time for b in detect_beeps(out.audio[0], out.sample_rate)])
            matching = match_events(bounces, onsets, EVENT_MATCH_SECONDS)
            duration = len(truth.frames) / scene.fps
            chance = chance_errors(bounces, onsets, duration, EVENT_MATCH_SECONDS, seed=seed)
            report.add(
                "v2a",
                {
                    "seed": seed,
                    "errors_frames": (matching.errors * scene.fps).tolist(),
                    "chance_errors_frames": (chance * scene.fps).tolist(),
                    "misses": matching.misses,
                    "false_alarms": matching.false_alarms,
                    "bounces": len(bounces),
                },
            )

    def trajectory(self, report: Report) -> None:
        from omni.conditioning.motion import Trajectory

        for seed in self.seeds():
            scene = suite_scene(seed, motion="trajectory")
            truth = render(scene)
            path = truth.ground_truth.objects[0].centers
            out = self.generate(
                canonical_caption(scene),
                task="t2v",
                trajectory=Trajectory(path),
                num_frames=len(path),
                seed=seed,
            )
            track = _track(out.frames[0], out.fps, scene.objects[0].color)
            if track is None:
                report.add("trajectory", {"seed": seed, "error_px": None, "found": False})
                continue
            found = track.present
            error = np.linalg.norm(track.centroids[found] - path[found], axis=1)
            report.add(
                "trajectory",
                {"seed": seed, "error_px": float(error.mean()), "found_fraction": float(found.mean())},
            )

    def extension(self, report: Report) -> None:
        """2 s, then extended to 4x in 2 s chunks: do colour and shape persist, does the object jump at joins?"""
        for seed in list(self.seeds())[: max(1, self.settings.seeds // 2)]:
            scene = suite_scene(seed, motion=BOUNCING_MOTIONS[seed % 3])
            prompt = canonical_caption(scene)
            first = self.generate(prompt, task="t2av", seed=seed)
            out = self.generate(
                prompt,
                task="extend",
                video=first.frames[0],
                video_fps=first.fps,
                audio=first.audio[0],
                audio_sample_rate=first.sample_rate,
                seconds=3 * len(first.frames[0]) / first.fps,
                seed=seed,
            )
            frames, fps = out.frames[0], out.fps
            segment = len(first.frames[0])
            color, shape = scene.objects[0].color, scene.objects[0].shape
            kept, jumps = [], []
            track_all = _track(frames, fps, color)
            for i in range(4):
                part = frames[i * segment : (i + 1) * segment]
                track = _track(part, fps, color)
                kept.append(track is not None and track_shape(track) == shape)
            if track_all is not None:
                steps = np.linalg.norm(np.diff(track_all.centroids, axis=0), axis=1)
                typical = np.nanmedian(steps)
                for join in range(segment, len(frames), segment):
                    if join < len(frames):
                        jumps.append(
                            float(max(0.0, steps[join - 1] - typical))
                            if not np.isnan(steps[join - 1])
                            else None
                        )
            report.add(
                "extension",
                {"seed": seed, "segments_kept": kept, "boundary_jumps_px": jumps, "frames": len(frames)},
            )

    def retake(self, report: Report) -> None:
        for seed in list(self.seeds())[: max(1, self.settings.seeds // 2)]:
            scene = suite_scene(seed, motion=BOUNCING_MOTIONS[seed % 3])
            truth = render(scene)
            start, end = 0.75, 1.25
            out = self.generate(
                canonical_caption(scene),
                task="retake",
                video=truth.frames,
                video_fps=scene.fps,
                audio=truth.audio,
                audio_sample_rate=scene.sample_rate,
                start=start,
                end=end,
                seed=seed,
            )
            times = np.arange(len(truth.frames)) / scene.fps
            outside = (times < start) | (times > end)
            frames = out.frames[0]
            error = np.abs(frames[outside].astype(np.float64) - truth.frames[outside]).mean() / 255
            whole = whole_latent_frames(len(truth.frames), self.pipe.vae_temporal)
            roundtrip = self.pipe.decode_video(self.pipe.encode_video(truth.frames[:whole]))[0]
            vae_error = np.abs(roundtrip.astype(np.float64) - truth.frames[: len(roundtrip)]).mean() / 255
            report.add(
                "retake",
                {
                    "seed": seed,
                    "outside_error": float(error),
                    "vae_roundtrip_error": float(vae_error),
                    "inside_changed": bool((frames[~outside] != truth.frames[~outside]).any()),
                },
            )

    def project(self, report: Report) -> None:
        """One subject across three rooms with subject memory: is it recognisably the same in every shot?"""
        from omni.apps.project import Project, ProjectRunner, Shot, ShotDefaults
        from omni.models.weights import weights_sha256

        for seed in list(self.seeds())[: max(1, self.settings.seeds // 4)]:
            rng = np.random.default_rng(seed)
            color, shape = COLORS[int(rng.integers(6))], SHAPES[int(rng.integers(3))]
            rooms = rng.choice(ROOMS, 3, replace=False)
            shots = []
            for i, (room, motion) in enumerate(zip(rooms, ("horizontal", "vertical", "orbit"))):
                scene = sample_scene(
                    seed + i,
                    num_objects=1,
                    color=color,
                    shape=shape,
                    size="large",
                    motion=motion,
                    room=str(room),
                    pan=False,
                )
                shots.append(
                    Shot(f"shot{i}", canonical_caption(scene), seconds=2.0, subject="hero", transition="cut")
                )
            project = Project(
                shots, ShotDefaults(seed=seed, steps=self.settings.steps, guidance=self.settings.guidance)
            )
            with tempfile.TemporaryDirectory() as cache:
                runner = ProjectRunner(
                    self.pipe,
                    project,
                    Path(cache),
                    Path(cache),
                    weights_sha256(self.pipe.transformer),
                    progress=False,
                )
                _, _, results = runner.run()
            identities = []
            for _, result in results:
                track = _track(result.frames, project.defaults.fps, color)
                identities.append(
                    None
                    if track is None
                    else (color, track_shape(track), track_size(track, result.frames.shape[1]))
                )
            same = [identity is not None and identity == (color, shape, "large") for identity in identities]
            report.add(
                "project",
                {
                    "seed": seed,
                    "identities": [list(i) if i else None for i in identities],
                    "consistent": same,
                },
            )

    # ------------------------------------------------------------------------------------ summary

    def evaluate(self) -> Report:
        report = Report()
        steps = [getattr(self, name) for name in self.settings.capabilities]
        for step in tqdm(steps, desc="toy-world capabilities", disable=not self.progress):
            step(report)
        report.values = summarize(report, self.generation_seconds)
        return report


def motion_chance(pairs: list[tuple[str, str | None]]) -> float:
    """The motion accuracy chance gives: the asked and detected motions of the clips paired at random, sum over
    motions of (share of clips asked for it) x (share of clips detected with it). A model that draws the same
    motion for every caption scores this share of the clips asking for that motion."""
    if not pairs:
        return float("nan")
    asked, detected = Counter(a for a, _ in pairs), Counter(m for _, m in pairs)
    return sum(asked[m] * detected[m] for m in asked) / len(pairs) ** 2


def summarize(report: Report, seconds: list[float]) -> dict[str, Any]:
    d = report.details
    values: dict[str, Any] = {}
    if "t2i" in d:
        values["t2i_color_accuracy"] = _mean(r["color_correct"] for r in d["t2i"])
        values["t2i_shape_accuracy"] = _mean(r["shape_correct"] for r in d["t2i"])
        values["t2i_shape_iou"] = _mean(r["shape_iou"] for r in d["t2i"])
        values["t2i_pieces"] = _mean(r["pieces"] for r in d["t2i"])
        values["t2i_one_piece"] = _mean(r["pieces"] == 1 for r in d["t2i"])
    if "t2av" in d:
        values["color_accuracy"] = _mean(r["color_accuracy"] for r in d["t2av"])
        values["shape_accuracy"] = _mean(r["shape_accuracy"] for r in d["t2av"])
        values["size_accuracy"] = _mean(r["size_accuracy"] for r in d["t2av"])
        values["motion_accuracy"] = _mean(r["motion_accuracy"] for r in d["t2av"])
        values["motion_chance_accuracy"] = motion_chance(
            [(r["motion_asked"], r["motion_detected"]) for r in d["t2av"]]
        )
        values["shape_iou"] = _mean(r["shape_iou"] for r in d["t2av"])
        values["direction_error_deg"] = _mean(r["direction_error_deg"] for r in d["t2av"])
        # how far the asked motion's track is from the detector's test for it (below 1 passes), by motion
        for motion in ("still", "horizontal", "vertical", "orbit"):
            gaps = [r["detected"][0]["motion_gap"] for r in d["t2av"] if r["motion_asked"] == motion]
            gaps = [g for g in gaps if not np.isnan(g)]
            values[f"motion_gap_{motion}"] = float(np.median(gaps)) if gaps else float("nan")
        values["pieces"] = _mean(r["pieces"] for r in d["t2av"])
        sync = [e for r in d["t2av"] for e in r["av_sync_errors_ms"]]
        values["av_sync_median_ms"] = _median_abs(sync)
        for q in (25, 75, 90):
            values[f"av_sync_p{q}_ms"] = float(np.percentile(np.abs(sync), q)) if sync else float("nan")
        values["av_sync_pairs"] = len(sync)
        values["beeps_per_clip"] = _mean(
            len(o["beeps"]) for r in d["t2av"] for o in r["detected"] if o["color_found"]
        )
        values["pitch_accuracy"] = _mean(r["pitch_color_agreement"] for r in d["t2av"])
    if "i2v" in d:
        values["i2v_first_frame_psnr_db"] = _mean(r["first_frame_psnr_db"] for r in d["i2v"])
    for key, name, total in (
        ("a2v", "a2v_beat_error_median_frames", "beeps"),
        ("v2a", "v2a_onset_error_median_frames", "bounces"),
    ):
        if key in d:
            errors = [e for r in d[key] for e in r["errors_frames"]]
            values[name] = _median_abs(errors)
            values[f"{key}_matched_fraction"] = len(errors) / max(1, sum(r[total] for r in d[key]))
            # the same events at random times: the error median that chance alone gives at their density
            values[f"{name[: -len('_median_frames')]}_chance_frames"] = _median_abs(
                [e for r in d[key] for e in r["chance_errors_frames"]]
            )
            detected = len(errors) + sum(r["false_alarms"] for r in d[key])
            values[f"{key}_precision"] = len(errors) / detected if detected else float("nan")
    if "trajectory" in d:
        values["trajectory_error_px"] = _mean(r["error_px"] for r in d["trajectory"])
    if "extension" in d:
        values["extension_attribute_persistence"] = _mean(
            k for r in d["extension"] for k in r["segments_kept"][1:]
        )
        values["extension_boundary_jump_px"] = _mean(
            j for r in d["extension"] for j in r["boundary_jumps_px"]
        )
    if "retake" in d:
        values["retake_outside_error"] = _mean(r["outside_error"] for r in d["retake"])
        values["retake_vae_roundtrip_error"] = _mean(r["vae_roundtrip_error"] for r in d["retake"])
    if "project" in d:
        values["project_identity_consistency"] = _mean(c for r in d["project"] for c in r["consistent"])
    if seconds:  # t2av clips were generated (not for an --only run without them)
        values["seconds_per_clip"] = _mean(seconds)
    return values


TARGETS = {
    "color_accuracy": (">=", 0.90),
    "shape_accuracy": (">=", 0.80),
    "motion_accuracy": (">=", 0.80),
    "av_sync_median_ms": ("<=", 62.5),
    "pitch_accuracy": (">=", 0.80),
    "i2v_first_frame_psnr_db": (">=", 25.0),
    "a2v_beat_error_median_frames": ("<=", 2.0),
    "v2a_onset_error_median_frames": ("<=", 1.0),
    "trajectory_error_px": ("<=", 4.0),
    "extension_attribute_persistence": (">=", 0.90),
    "project_identity_consistency": (">=", 0.90),
}


def met(key: str, value: float) -> bool | None:
    if key not in TARGETS or value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    op, target = TARGETS[key]
    return value >= target if op == ">=" else value <= target


def format_table(values: dict[str, Any]) -> str:
    lines = [f"{'metric':<36} {'value':>10}  {'target':>9}  met"]
    for key, value in values.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        target = f"{TARGETS[key][0]} {TARGETS[key][1]:g}" if key in TARGETS else ""
        verdict = {True: "yes", False: "NO", None: ""}[met(key, value)]
        lines.append(f"{key:<36} {shown:>10}  {target:>9}  {verdict}")
    return "\n".join(lines)
