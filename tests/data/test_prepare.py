"""`omni prepare`: latents equal the pipeline's encoders, bad clips are skipped and counted, runs resume."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from omni.cli import main
from omni.conditioning.text import encode_text
from omni.data.prepare import prepare
from omni.data.sources import build_source, manifest_source
from omni.media import read_video

# bf16 keeps 8 significant bits: stored values are within 2^-8 of the float32 ones (relative).
BF16 = dict(rtol=2**-7, atol=1e-6)


def run(clip_files, pipe, codecs, config, out: Path, **kwargs):
    source = manifest_source(clip_files.manifest, config.format)
    return prepare(source, pipe, out, config, codecs=codecs, progress=False, **kwargs)


def read_index(folder: Path) -> dict:
    return json.loads((folder / "index.json").read_text())


def stored(folder: Path, shard: int, key: str) -> torch.Tensor:
    with safe_open(str(folder / f"shard_{shard:05d}.safetensors"), framework="pt") as file:
        return file.get_tensor(key)


@pytest.fixture(scope="module")
def prepared(clip_files, tiny_pipeline, codecs, prepare_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "shards"
    summary = run(clip_files, tiny_pipeline, codecs, prepare_config, out)
    return out, summary


def test_latents_equal_the_pipeline_encoders_of_the_same_clip(prepared, clip_files, tiny_pipeline):
    out, _ = prepared
    clip = read_video(clip_files.folder / "exact.mp4")  # already 8 fps and 32x32: only cut to 17 frames
    frames, audio = clip.frames[:17], clip.audio[:, : 17 * 2000]
    expected = {
        "video": tiny_pipeline.encode_video(frames)[0],
        "audio": tiny_pipeline.encode_audio(audio)[0],
        "reference": tiny_pipeline.encode_video(frames[8:9])[0],
    }
    for name, tensor in expected.items():
        value = stored(out, 0, f"0.{name}")
        assert value.dtype == torch.bfloat16
        torch.testing.assert_close(value.float(), tensor, **BF16, msg=name)
    caption = "a red ball bouncing left and right"  # exact.mp4's caption in the manifest
    text, mask = encode_text(tiny_pipeline.text_encoder, tiny_pipeline.tokenizer, [caption], 32)
    torch.testing.assert_close(stored(out, 0, "0.text").float(), text[0], **BF16)
    assert torch.equal(stored(out, 0, "0.text_mask"), mask[0])


def test_bad_clips_are_skipped_counted_and_listed(prepared, clip_files):
    out, summary = prepared
    index = read_index(out)
    assert index["samples"] == 4 and index["clips"] == 7
    assert index["skipped_by_reason"] == {"missing_file": 1, "unreadable": 1, "too_short": 1}
    assert {Path(e["source"]).name: e["reason"] for e in index["skipped"]} == clip_files.skipped
    assert summary.skipped == index["skipped_by_reason"] and summary.samples == 4
    assert "skipped 3 (missing_file 1, unreadable 1, too_short 1)" in summary.line()

    records = [
        r for shard in index["shards"] for r in json.loads((out / shard["sidecar"]).read_text())["samples"]
    ]
    assert tuple(Path(r["source"]).name for r in records) == clip_files.usable
    assert [r["frames"] for r in records] == [17, 9, 17, 9]
    assert [r["audio_source"] for r in records] == ["track", "track", "silence", "file"]
    assert index["silent_clips"] == 1
    assert records[3]["audio_padding_samples"] == 18000 - 8000  # a 0.5 s wav under a 9-frame (1.125 s) clip


def test_index_describes_codecs_clocks_and_buckets(prepared, codecs, tiny_pipeline):
    out, _ = prepared
    index = read_index(out)
    assert index["codecs"] == str(codecs.resolve())
    assert index["text_encoder"] == tiny_pipeline.config.text_encoder_source
    assert (index["fps"], index["height"], index["width"], index["frames"]) == (8.0, 32, 32, [9, 17])
    assert index["sample_rate"] == 16000 and index["max_text_tokens"] == 32
    assert index["video_frame_seconds"] == tiny_pipeline.vae_temporal / 8.0
    assert index["audio_frame_seconds"] == tiny_pipeline.audio_frame_seconds
    assert {frames: b["samples"] for frames, b in index["buckets"].items()} == {"9": 2, "17": 2}
    assert index["buckets"]["17"]["shapes"]["video"] == [4, 5, 4, 4]
    assert [s["samples"] for s in index["shards"]] == [2, 2]
    with safe_open(str(out / "empty_text.safetensors"), framework="pt") as file:
        empty = file.get_tensor("text")
    text, _ = encode_text(tiny_pipeline.text_encoder, tiny_pipeline.tokenizer, [""], 32)
    torch.testing.assert_close(empty.float(), text, **BF16)


def test_a_killed_run_resumes_to_the_same_files_without_reencoding(
    prepared, clip_files, tiny_pipeline, codecs, prepare_config, tmp_path, monkeypatch
):
    reference, _ = prepared
    out = tmp_path / "shards"

    def kill(record):
        raise KeyboardInterrupt(f"killed after {record.file}")

    with pytest.raises(KeyboardInterrupt):
        run(clip_files, tiny_pipeline, codecs, prepare_config, out, on_shard=kill)
    assert not (out / "index.json").exists()  # the index is written last
    first = (out / "shard_00000.safetensors").stat()

    encoded = []
    encode_video = tiny_pipeline.encode_video
    monkeypatch.setattr(
        tiny_pipeline, "encode_video", lambda frames: encoded.append(len(frames)) or encode_video(frames)
    )
    summary = run(clip_files, tiny_pipeline, codecs, prepare_config, out)
    assert encoded == [17, 1, 9, 1]  # only the second shard's clips (video + reference frame each)
    assert (summary.reused_shards, summary.shards, summary.clips) == (1, 2, 4)
    again = (out / "shard_00000.safetensors").stat()
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    for name in sorted(p.name for p in reference.iterdir()):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name

    encoded.clear()
    summary = run(clip_files, tiny_pipeline, codecs, prepare_config, out)  # a finished run: nothing to do
    assert encoded == [] and summary.reused_shards == 2
    assert read_index(out) == read_index(reference)


def test_a_folder_with_other_settings_or_files_is_refused(
    prepared, clip_files, tiny_pipeline, codecs, prepare_config, tmp_path
):
    out, _ = prepared
    config = dataclasses.replace(prepare_config, shard_size=3)
    with pytest.raises(ValueError, match=r"different settings \(shard_size changed\)"):
        run(clip_files, tiny_pipeline, codecs, config, out)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty and holds no `omni prepare` run"):
        run(clip_files, tiny_pipeline, codecs, config, tmp_path)


def test_cli_prepares_the_same_folder_as_the_api(prepared, clip_files, codecs, tmp_path, capsys):
    reference, _ = prepared
    out = tmp_path / "cli"
    argv = ["prepare", "--manifest", str(clip_files.manifest), "--model", str(codecs), "--out", str(out)]
    argv += [
        "--fps",
        "8",
        "--size",
        "32",
        "--frames",
        "9,17",
        "--shard-size",
        "2",
        "--device",
        "cpu",
        "--no-progress",
    ]
    assert main(argv) == 0
    assert read_index(out) == read_index(reference)
    assert "prepared 4 samples in 2 shards" in capsys.readouterr().out


def test_cli_errors_name_the_problem(clip_files, codecs, tmp_path, capsys, monkeypatch):
    base = [
        "prepare",
        "--model",
        str(codecs),
        "--out",
        str(tmp_path / "out"),
        "--no-progress",
        "--device",
        "cpu",
    ]
    assert main([*base, "--toyworld"]) == 2
    assert "--toyworld needs --count N" in capsys.readouterr().err
    assert main([*base, "--manifest", str(clip_files.manifest), "--count", "3"]) == 2
    assert "--count and --seed apply to --toyworld only" in capsys.readouterr().err
    assert main([*base, "--manifest", str(clip_files.manifest), "--frames", "10"]) == 2
    assert "num_frames=10 breaks the video VAE's 1 + 4k rule" in capsys.readouterr().err


def test_toyworld_clips_are_rendered_straight_into_shards(tiny_pipeline, codecs, prepare_config, tmp_path):
    """`--toyworld` renders clips from seeds in the requested format, without writing any mp4."""
    from omni.toyworld import COLORS

    source = build_source("toyworld", prepare_config.format, count=3, seed=5)
    summary = prepare(source, tiny_pipeline, tmp_path, prepare_config, codecs=codecs, progress=False)

    index = read_index(tmp_path)
    assert summary.samples == index["samples"] == 3 and index["skipped"] == []
    assert index["source"] == {
        "kind": "toyworld",
        "count": 3,
        "seed": 5,
        "fps": 8.0,
        "height": 32,
        "width": 32,
        "num_frames": 17,
        "sample_rate": 16000,
    }
    assert not list(tmp_path.glob("*.mp4"))
    sidecar = json.loads((tmp_path / "shard_00000.json").read_text())
    assert [r["clip"] for r in sidecar["samples"]] == ["toy_5", "toy_6"]
    assert all(any(c in r["caption"] for c in COLORS) for r in sidecar["samples"])
