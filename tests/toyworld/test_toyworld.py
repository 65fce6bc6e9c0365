"""The toy world: deterministic clips whose ground truth matches the pixels and the sound exactly."""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pytest

from omni.cli import main
from omni.cli.toyworld import add_subcommands, register, run_render
from omni.toyworld import (
    COLORS,
    MOTIONS,
    PITCH_OF_COLOR,
    RGB_OF_COLOR,
    SHAPES,
    ObjectSpec,
    SceneSpec,
    bounces,
    canonical_caption,
    caption,
    object_masks,
    render,
    sample_scene,
)
from omni.toyworld.captions import ADJECTIVES_OF_SIZE, NOUNS_OF_SHAPE
from omni.toyworld.motion import travel_limits, world_positions
from omni.toyworld.render import object_coverage_frames
from omni.toyworld.sound import BEEP_SECONDS, HEADROOM_PEAK, ambience


def _media():
    """omni.media's writer and reader, or skip (media IO is built separately)."""
    try:
        from omni.media import read_video, write_mp4
    except ImportError:
        pytest.skip("omni.media (write_mp4 / read_video) is not available")
    return write_mp4, read_video


def _horizontal(x: float = 20.0, vx: float = 55.0, **scene) -> SceneSpec:
    return SceneSpec(
        objects=(ObjectSpec("circle", "red", "small", "horizontal", (x, 30.0), (vx, 0.0)),), **scene
    )


# --- determinism ---------------------------------------------------------------------------------


def test_same_seed_renders_identical_clip_and_other_seeds_differ():
    first, again = render(sample_scene(7)), render(sample_scene(7))
    assert np.array_equal(first.frames, again.frames)
    assert np.array_equal(first.audio, again.audio)
    assert first.caption == again.caption
    others = [render(sample_scene(seed)) for seed in (8, 9)]
    for other in others:
        assert not np.array_equal(first.frames, other.frames)
        assert not np.array_equal(first.audio, other.audio)


def test_clip_has_the_default_format():
    clip = render(sample_scene(3))
    assert clip.frames.shape == (33, 64, 64, 3) and clip.frames.dtype == np.uint8
    assert clip.audio.shape == (33000,) and clip.audio.dtype == np.float32
    assert clip.fps == 16 and clip.sample_rate == 16000
    assert np.abs(clip.audio).max() <= HEADROOM_PEAK


def test_format_is_configurable():
    scene = sample_scene(1, fps=24.0, num_frames=17, width=96, height=48)
    clip = render(scene)
    assert clip.frames.shape == (17, 48, 96, 3)
    assert clip.audio.shape == (round(17 / 24 * 16000),)


def test_scene_round_trips_through_json():
    scenes = [sample_scene(seed) for seed in range(6)] + [sample_scene(4, motion="trajectory", num_objects=2)]
    for scene in scenes:
        assert SceneSpec.from_dict(json.loads(json.dumps(scene.to_dict()))) == scene


def test_sampling_honours_constraints():
    scene = sample_scene(11, shape="triangle", color="cyan", motion="orbit", num_objects=2, pan=True)
    first = scene.objects[0]
    assert (first.shape, first.color, first.motion) == ("triangle", "cyan", "orbit")
    assert len(scene.objects) == 2 and scene.objects[1].color != "cyan"
    assert any(scene.pan) and scene.backdrop == "texture"
    both = sample_scene(12, color=("blue", "yellow"))
    assert [o.color for o in both.objects] == ["blue", "yellow"]


def test_sampled_scenes_cover_the_vocabulary_with_measurable_events():
    scenes = [sample_scene(seed) for seed in range(150)]
    objects = [o for s in scenes for o in s.objects]
    assert {o.shape for o in objects} == set(SHAPES)
    assert {o.color for o in objects} == set(COLORS)
    assert {o.motion for o in objects} == set(MOTIONS) - {"trajectory"}
    assert any(len(s.objects) == 2 for s in scenes) and any(any(s.pan) for s in scenes)
    for scene in scenes:
        times = sorted(b.time for o in scene.objects for b in bounces(scene, o))
        assert np.all(np.diff(times) >= 0.15), "beeps of one scene must be separate events"
        for obj in scene.objects:
            hits = bounces(scene, obj)
            if obj.motion in ("horizontal", "vertical", "diagonal"):
                assert 1 <= len(hits) <= 8
            else:
                assert hits == ()


def test_lanes_put_the_motion_where_its_word_says_and_leave_other_scenes_as_they_were():
    assert all(sample_scene(seed) == sample_scene(seed, lanes=0.0) for seed in range(20))
    for seed in range(20):
        scene = sample_scene(seed, motion=("horizontal", "vertical")[seed % 2], lanes=1.0)
        path = world_positions(scene, scene.objects[0], np.arange(scene.num_frames) / scene.fps)
        lo_x, hi_x, lo_y, hi_y = travel_limits(scene, scene.objects[0])
        across, along = (1, 0) if seed % 2 == 0 else (0, 1)
        middle = ((lo_x + hi_x) / 2, (lo_y + hi_y) / 2)[across]
        assert np.abs(path[:, across] - middle).max() <= 2.0 + 1e-9  # the lane: the middle of its travel
        assert np.ptp(path[:, along]) > 0.8 * (hi_x - lo_x, hi_y - lo_y)[along]  # and across the room
        low = (lo_x, lo_y)[along]
        assert low <= path[0, along] <= low + 2.0 and path[1, along] > path[0, along]  # from the left / top
        assert 1 <= len(bounces(scene, scene.objects[0])) <= 4
    # The word says where the object is at every moment: the paths of one motion agree within a few px.
    for motion in ("horizontal", "vertical", "diagonal", "orbit"):
        paths = []
        for seed in range(40):
            scene = sample_scene(seed, motion=motion, lanes=1.0, num_objects=1, size="small")
            paths.append(world_positions(scene, scene.objects[0], np.arange(scene.num_frames) / scene.fps))
        assert np.std(paths, axis=0).max() < 6.0, motion
    orbit = sample_scene(3, motion="orbit", lanes=1.0, num_objects=1).objects[0]
    assert orbit.phase == -np.pi / 2 and orbit.angular_speed > 0  # from the top, clockwise on screen
    for seed in range(60):  # every shape and size, one object or two: the orbit stays in the arena
        assert sample_scene(seed, motion="orbit", lanes=1.0).objects[0].orbit_radius > 0
    with pytest.raises(ValueError, match="lanes is a probability in"):
        sample_scene(0, lanes=1.5)


def test_motion_weights_draw_the_motions_unevenly_and_leave_the_default_draw_as_it_was():
    weights = {"orbit": 2, "still": 2, "horizontal": 1, "vertical": 1, "diagonal": 1}
    assert all(sample_scene(seed) == sample_scene(seed, motion_weights=None) for seed in range(20))
    drawn = [
        sample_scene(seed, num_objects=1, motion_weights=weights).objects[0].motion for seed in range(700)
    ]
    share = {motion: drawn.count(motion) / len(drawn) for motion in weights}
    assert 0.22 < share["orbit"] < 0.35 and 0.22 < share["still"] < 0.35  # 2/7 each
    assert all(0.09 < share[m] < 0.2 for m in ("horizontal", "vertical", "diagonal"))  # 1/7 each
    only = {
        sample_scene(seed, num_objects=2, motion_weights={"orbit": 1}).objects[1].motion for seed in range(30)
    }
    assert only == {"orbit"}  # a motion left out is not drawn, for every object
    assert (
        sample_scene(5, motion="still", motion_weights={"orbit": 1}).objects[0].motion == "still"
    )  # asked for
    for bad, message in [
        ({"spinning": 1}, r"unknown motion\(s\) \['spinning'\]"),
        ({"orbit": -1}, "orbit has weight -1"),
        ({"orbit": 0}, "every motion weight 0"),
        ([1, 2], "maps motions to relative weights"),
    ]:
        with pytest.raises(ValueError, match=message):
            sample_scene(0, motion_weights=bad)


def test_motion_weights_can_draw_keypoint_paths_which_the_default_draw_never_does():
    assert all(sample_scene(seed).objects[0].motion != "trajectory" for seed in range(200))
    weights = {"orbit": 2, "still": 2, "horizontal": 1, "vertical": 1, "diagonal": 1}
    # a weight of 0 for paths draws exactly what the same weights drew without the key
    assert all(
        sample_scene(seed, motion_weights=weights)
        == sample_scene(seed, motion_weights={**weights, "trajectory": 0})
        for seed in range(50)
    )
    scenes = [
        sample_scene(seed, num_objects=1, motion_weights={"trajectory": 1, "still": 1}) for seed in range(40)
    ]
    paths = [s for s in scenes if s.objects[0].motion == "trajectory"]
    assert 10 < len(paths) < 30
    for scene in paths[:3]:
        assert len(scene.objects[0].keypoints) == 4
        assert "along a path" in canonical_caption(scene)
        centers = render(scene).ground_truth.objects[0].centers
        assert np.ptp(centers[:, 0]) + np.ptp(centers[:, 1]) > 5  # it moves


# --- geometry and ground truth ---------------------------------------------------------------------


def test_ground_truth_centres_match_rendered_masks():
    for seed in (0, 3, 5, 17, 23):
        scene = sample_scene(seed, num_objects=2, pan=seed % 2 == 1)
        clip = render(scene)
        for frame in range(0, scene.num_frames, 4):
            masks = object_masks(scene, frame)
            for obj, truth, mask in zip(scene.objects, clip.ground_truth.objects, masks):
                if truth.visible_fraction[frame] < 1:
                    continue
                rows, cols = np.nonzero(mask)
                centroid = np.array([cols.mean() + 0.5, rows.mean() + 0.5])
                assert np.abs(centroid - truth.centers[frame]).max() < 0.5
                x0, y0, x1, y1 = truth.bboxes[frame]
                assert x0 - 1 <= cols.min() <= cols.max() < x1 + 1
                assert y0 - 1 <= rows.min() <= rows.max() < y1 + 1
                # Fully covered pixels show exactly the object's colour.
                coverage = object_coverage_frames(scene, obj)[frame]
                assert np.all(clip.frames[frame][coverage == 1] == RGB_OF_COLOR[obj.color])


def test_coverage_weighted_centre_matches_to_supersampling_precision():
    scene = sample_scene(2, shape="triangle", size="small", motion="diagonal", num_objects=1)
    coverage = object_coverage_frames(scene, scene.objects[0])
    truth = render(scene).ground_truth.objects[0]
    ys, xs = np.mgrid[0 : scene.height, 0 : scene.width] + 0.5
    for frame in (0, 10, 20):
        weight = coverage[frame]
        centre = np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()
        assert np.abs(centre - truth.centers[frame]).max() < 0.1  # 4 x 4 samples per pixel


def test_bounces_happen_exactly_when_the_edge_meets_the_wall():
    scene = sample_scene(21, motion="diagonal", num_objects=1, pan=True)
    obj = scene.objects[0]
    lo_x, hi_x, lo_y, hi_y = travel_limits(scene, obj)
    walls = {"left": (0, lo_x), "right": (0, hi_x), "top": (1, lo_y), "bottom": (1, hi_y)}
    hits = bounces(scene, obj)
    assert hits
    for hit in hits:
        axis, limit = walls[hit.wall]
        around = world_positions(scene, obj, np.array([hit.time - 1e-3, hit.time, hit.time + 1e-3]))[:, axis]
        assert around[1] == pytest.approx(limit, abs=1e-9)
        assert around[0] == pytest.approx(around[2], abs=1e-9)  # it came in and went back out


def test_orbit_and_still_objects_never_beep():
    for motion in ("orbit", "still"):
        scene = sample_scene(5, motion=motion, num_objects=1)
        clip = render(scene)
        assert bounces(scene, scene.objects[0]) == ()
        assert np.allclose(clip.audio, ambience(scene), atol=1e-6)


def test_orbit_moves_at_constant_angular_speed():
    scene = sample_scene(6, motion="orbit", num_objects=1)
    obj = scene.objects[0]
    times = np.linspace(0, 2, 50)
    offset = world_positions(scene, obj, times) - np.asarray(obj.position)
    assert np.allclose(np.hypot(*offset.T), obj.orbit_radius)
    angles = np.unwrap(np.arctan2(offset[:, 1], offset[:, 0]))
    assert np.allclose(np.diff(angles) / np.diff(times), obj.angular_speed)


def test_trajectory_interpolates_its_keypoints():
    keypoints = ((0.0, 15.0, 15.0), (1.0, 45.0, 20.0), (2.0, 30.0, 45.0))
    scene = SceneSpec(
        objects=(ObjectSpec("square", "blue", "small", "trajectory", (15.0, 15.0), keypoints=keypoints),)
    )
    positions = world_positions(scene, scene.objects[0], np.array([0.0, 0.5, 1.0, 1.5, 3.0]))
    assert positions.tolist() == [[15, 15], [30, 17.5], [45, 20], [37.5, 32.5], [30, 45]]


def test_camera_pan_moves_backdrop_and_objects_together():
    obj = ObjectSpec("square", "green", "small", "still", (32.0, 32.0))
    scene = SceneSpec(objects=(obj,), backdrop="texture", pan=(8.0, 0.0))  # 0.25 px per frame
    clip = render(scene)
    truth = clip.ground_truth
    assert np.allclose(truth.camera_offsets[:, 0], np.linspace(-4, 4, 33))
    assert np.allclose(truth.objects[0].centers[:, 0], 32 - truth.camera_offsets[:, 0])
    # Four frames later the camera has moved 1 px right, so the room shows 1 px further left.
    later, first = clip.frames[4].astype(int), clip.frames[0].astype(int)
    room = ~(object_masks(scene, 0)[0] | object_masks(scene, 4)[0])
    room = room[:, 1:] & room[:, :-1]
    assert np.abs(later[:, :-1] - first[:, 1:])[room].max() <= 1
    assert np.abs(later - first).max() > 5  # and the room did visibly move


# --- sound -----------------------------------------------------------------------------------------


def test_beeps_start_exactly_at_the_bounce_times():
    scene = _horizontal()
    clip = render(scene)
    beeps = clip.audio.astype(np.float64) - ambience(scene)
    hits = bounces(scene, scene.objects[0])
    assert len(hits) >= 2
    for hit in hits:
        start = int(np.ceil(hit.time * scene.sample_rate))
        assert np.abs(beeps[start - 200 : start]).max() < 1e-6  # silent up to the hit
        assert np.abs(beeps[start : start + 50]).max() > 0.05  # sounding right after it
        assert np.abs(beeps[start + round(BEEP_SECONDS * scene.sample_rate) + 2 :][:200]).max() < 1e-6


def test_beep_pitch_follows_colour_and_timbre_follows_shape():
    spectra = {}
    for shape in SHAPES:
        obj = ObjectSpec(shape, "green", "small", "horizontal", (20.0, 30.0), (55.0, 0.0))
        scene = SceneSpec(objects=(obj,))
        hit = bounces(scene, obj)[0]
        start = int(np.ceil(hit.time * scene.sample_rate))
        segment = render(scene).audio[start + 160 : start + 960].astype(np.float64)
        spectrum = np.abs(np.fft.rfft(segment * np.hanning(segment.size), 1 << 15))
        freqs = np.fft.rfftfreq(1 << 15, 1 / scene.sample_rate)
        assert freqs[spectrum.argmax()] == pytest.approx(PITCH_OF_COLOR["green"], abs=1.0)
        third = spectrum[np.abs(freqs - 3 * PITCH_OF_COLOR["green"]) < 5].max() / spectrum.max()
        spectra[shape] = third
    assert spectra["circle"] < 0.01 < spectra["triangle"] < spectra["square"]


def test_pitches_are_at_least_two_semitones_apart():
    pitches = sorted(PITCH_OF_COLOR.values())
    assert all(12 * np.log2(b / a) >= 2 - 1e-3 for a, b in zip(pitches, pitches[1:]))
    assert pitches[0] >= 300 and pitches[-1] <= 1000


def test_overlapping_beeps_are_scaled_down_not_clipped():
    # Two mirror-image objects hit the side walls at the same instants.
    objects = (
        ObjectSpec("square", "red", "small", "horizontal", (20.0, 15.0), (60.0, 0.0)),
        ObjectSpec("square", "blue", "small", "horizontal", (44.0, 45.0), (-60.0, 0.0)),
        ObjectSpec("square", "yellow", "small", "horizontal", (20.0, 32.0), (60.0, 0.0)),
    )
    clip = render(SceneSpec(objects=objects))
    assert np.abs(clip.audio).max() == pytest.approx(HEADROOM_PEAK, rel=1e-6)


def test_ambient_room_sound_is_quiet():
    for ambient in ("hum", "noise"):
        scene = sample_scene(4, motion="still", num_objects=1, ambient=ambient)
        rms = np.sqrt(np.mean(render(scene).audio.astype(np.float64) ** 2))
        assert 10 ** (-40 / 20) < rms < 10 ** (-30 / 20)


# --- captions --------------------------------------------------------------------------------------


def test_captions_name_colour_and_shape_and_vary():
    captions = set()
    for seed in range(40):
        scene = sample_scene(seed)
        text = caption(scene)
        captions.add(text)
        for obj in scene.objects:
            assert obj.color in text
            assert any(noun in text.split() or f"{noun};" in text for noun in NOUNS_OF_SHAPE[obj.shape])
            assert any(adjective in text.split() for adjective in ADJECTIVES_OF_SIZE[obj.size])
        assert scene.room in text
        if any(o.motion in ("horizontal", "vertical", "diagonal") for o in scene.objects):
            assert "beep" in text
    assert len(captions) == 40
    scene = sample_scene(3)
    assert len({caption(scene, seed) for seed in range(30)}) > 10


def test_canonical_caption_is_stable():
    scene = SceneSpec(
        objects=(ObjectSpec("circle", "red", "small", "horizontal", (20.0, 30.0), (40.0, 0.0)),), room="sand"
    )
    expected = "a small red ball bouncing left and right in a sand room; it beeps at every bounce"
    assert canonical_caption(scene) == expected
    assert canonical_caption(SceneSpec.from_dict(scene.to_dict())) == expected
    two = sample_scene(3, num_objects=2, pan=True)
    assert canonical_caption(two) == canonical_caption(sample_scene(3, num_objects=2, pan=True))
    assert "camera pans" in canonical_caption(two)


# --- bad specs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (lambda: ObjectSpec("hexagon", "red", "small", "still", (32.0, 32.0)), ["'hexagon'", "circle"]),
        (lambda: ObjectSpec("circle", "purple", "small", "still", (32.0, 32.0)), ["'purple'", "magenta"]),
        (lambda: ObjectSpec("circle", "red", "huge", "still", (32.0, 32.0)), ["'huge'", "small"]),
        (lambda: ObjectSpec("circle", "red", "small", "spin", (32.0, 32.0)), ["'spin'", "orbit"]),
        (lambda: ObjectSpec("circle", "red", "small", "horizontal", (32.0, 32.0), (5.0, 5.0)), ["vy == 0"]),
        (lambda: ObjectSpec("circle", "red", "small", "orbit", (32.0, 32.0)), ["orbit_radius"]),
        (lambda: SceneSpec(objects=(), room="grey"), ["at least one object"]),
        (lambda: _horizontal(fps=0), ["fps", "0"]),
        (lambda: _horizontal(fps=-16.0), ["fps", "-16"]),
        (lambda: _horizontal(width=60), ["width", "60", "multiple of 16"]),
        (lambda: _horizontal(num_frames=32), ["num_frames", "32", "1 + 4k"]),
        (lambda: _horizontal(room="purple"), ["'purple'", "sand"]),
        (lambda: _horizontal(backdrop="stripes"), ["'stripes'", "texture"]),
        (lambda: _horizontal(pan=(8.0, 0.0)), ["texture", "'flat'"]),
        (lambda: _horizontal(x=2.0), ["leaves the arena", "2.0"]),
        (lambda: sample_scene(0, color="purple"), ["'purple'", "red"]),
        (lambda: sample_scene(0, motion="spin"), ["'spin'", "orbit"]),
        (lambda: sample_scene(0, color=("red", "red")), ["distinct colours"]),
        (lambda: sample_scene(0, num_objects=3), ["num_objects", "3"]),
        (lambda: SceneSpec.from_dict({**_horizontal().to_dict(), "gravity": 9.8}), ["gravity"]),
        (lambda: object_masks(_horizontal(), 33), ["frame 33", "0..32"]),
    ],
)
def test_bad_specs_are_rejected_by_name(build, named):
    with pytest.raises(ValueError) as error:
        build()
    for text in named:
        assert text in str(error.value)


def test_two_objects_of_one_colour_are_rejected():
    red = ObjectSpec("circle", "red", "small", "still", (20.0, 20.0))
    with pytest.raises(ValueError, match="distinct colours"):
        SceneSpec(objects=(red, ObjectSpec("square", "red", "small", "still", (44.0, 44.0))))


# --- speed, files and CLI --------------------------------------------------------------------------


def test_rendering_is_fast():
    scenes = [sample_scene(seed, num_objects=2, pan=True) for seed in range(5)]
    render(scenes[0])  # warm up
    start = time.perf_counter()
    for scene in scenes:
        render(scene)
    per_clip = (time.perf_counter() - start) / len(scenes)
    assert per_clip < 0.25, f"{1000 * per_clip:.0f} ms per clip; training renders thousands"


def test_render_to_files_writes_mp4_and_json(tmp_path):
    _, read_video = _media()
    from omni.toyworld import render_to_files

    scene = sample_scene(5)
    video_path, record_path = render_to_files(scene, tmp_path, "clip")
    record = json.loads(record_path.read_text())
    assert SceneSpec.from_dict(record["scene"]) == scene
    assert record["caption"] == caption(scene)
    assert len(record["ground_truth"]["objects"]) == len(scene.objects)
    decoded = read_video(video_path)
    assert decoded.frames.shape == (33, 64, 64, 3)
    assert decoded.sample_rate == scene.sample_rate


def test_cli_registers_toyworld_render():
    parser = argparse.ArgumentParser(prog="omni")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["toyworld", "render", "--seed", "5", "--count", "3", "--out", "clips"])
    assert args.run is run_render
    assert (args.seed, args.count, args.fps, args.frames, args.size) == (5, 3, 16.0, 33, 64)
    own = argparse.ArgumentParser()
    add_subcommands(own)
    with pytest.raises(SystemExit):
        own.parse_args(["render", "--count", "0", "--out", "x"])


def test_cli_rejects_a_bad_format_by_name(tmp_path):
    with pytest.raises(SystemExit, match="width must be a positive multiple of 16, got 20"):
        main(["toyworld", "render", "--out", str(tmp_path), "--size", "20"])


def test_cli_renders_clips(tmp_path, capsys):
    _media()
    assert main(["toyworld", "render", "--seed", "3", "--count", "2", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "toy_000003.json",
        "toy_000003.mp4",
        "toy_000004.json",
        "toy_000004.mp4",
    ]
    assert "wrote 2 clips" in capsys.readouterr().out


def test_the_clip_source_draws_lanes_when_asked():
    from omni.data.clips import ClipFormat
    from omni.data.sources import build_source

    fmt = ClipFormat(fps=16.0, height=64, width=64, frames=(33,), sample_rate=16000, audio_channels=1)
    clips = list(build_source("toyworld", fmt, count=3, seed=40, lanes=1.0))
    for index, clip in enumerate(clips):
        expected = render(sample_scene(40 + index, lanes=1.0))
        assert np.array_equal(clip.load().frames, expected.frames)
    with pytest.raises(ValueError, match="lanes is the share of scenes in lanes"):
        build_source("toyworld", fmt, count=1, seed=0, lanes=-0.1)
    weighted = list(build_source("toyworld", fmt, count=2, seed=7, motion_weights={"orbit": 1}))
    for index, clip in enumerate(weighted):
        scene = sample_scene(7 + index, motion_weights={"orbit": 1})
        assert scene.objects[0].motion == "orbit"
        assert np.array_equal(clip.load().frames, render(scene).frames)
    with pytest.raises(ValueError, match="unknown motion"):  # before any clip is rendered
        build_source("toyworld", fmt, count=1, seed=0, motion_weights={"spin": 1})
