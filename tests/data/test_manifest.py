"""JSONL manifests: paths relative to the manifest's folder, strict errors that name the line and the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omni.data.manifest import ManifestEntry, ManifestError, read_manifest, write_manifest


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_reads_entries_with_relative_and_absolute_paths(tmp_path):
    elsewhere = tmp_path / "elsewhere" / "b.mp4"
    (tmp_path / "data").mkdir()
    manifest = write_lines(
        tmp_path / "data" / "clips.jsonl",
        [
            json.dumps({"video": "clips/a.mp4", "caption": "a red ball"}),
            "",
            json.dumps({"video": str(elsewhere), "caption": "a blue square", "audio": "sound/b.wav"}),
        ],
    )
    entries = read_manifest(manifest)
    folder = (tmp_path / "data").resolve()
    assert entries == [
        ManifestEntry(folder / "clips/a.mp4", "a red ball", None, line=1),
        ManifestEntry(elsewhere, "a blue square", folder / "sound/b.wav", line=3),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"video": "a.mp4", "caption": "x", "audo": "a.wav"}',
            r"clips\.jsonl:2: unknown key\(s\) \['audo'\]",
        ),
        ('{"video": "a.mp4"}', r"clips\.jsonl:2: missing required key 'caption'"),
        ('{"caption": "x"}', r"clips\.jsonl:2: missing required key 'video'"),
        ('{"video": "a.mp4", "caption": 7}', r"clips\.jsonl:2: 'caption' must be a string, got int 7"),
        ('{"video": ["a.mp4"], "caption": "x"}', r"clips\.jsonl:2: 'video' must be a string, got list"),
        ('{"video": "a.mp4", "caption": "  "}', r"clips\.jsonl:2: 'caption' must not be empty"),
        ('{"video": "a.mp4", "caption": "x",}', r"clips\.jsonl:2: not valid JSON"),
        ('["a.mp4", "x"]', r"clips\.jsonl:2: expected a JSON object, found list"),
    ],
)
def test_a_bad_line_names_the_line_and_key(tmp_path, line, message):
    manifest = write_lines(tmp_path / "clips.jsonl", ['{"video": "ok.mp4", "caption": "fine"}', line])
    with pytest.raises(ManifestError, match=message):
        read_manifest(manifest)


def test_an_empty_or_missing_manifest_is_an_error(tmp_path):
    with pytest.raises(ManifestError, match="holds no clips"):
        read_manifest(write_lines(tmp_path / "empty.jsonl", ["", "  "]))
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        read_manifest(tmp_path / "nope.jsonl")


def test_write_manifest_round_trips_and_keeps_the_folder_movable(tmp_path):
    outside = tmp_path / "outside.mp4"
    entries = [
        ManifestEntry(tmp_path / "data" / "clips" / "a.mp4", "a red ball"),
        ManifestEntry(outside, "a green triangle", tmp_path / "data" / "a.wav"),
    ]
    path = write_manifest(tmp_path / "data" / "clips.jsonl", entries)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records == [
        {"video": "clips/a.mp4", "caption": "a red ball"},
        {"video": str(outside.resolve()), "caption": "a green triangle", "audio": "a.wav"},
    ]
    assert [(e.video, e.caption, e.audio) for e in read_manifest(path)] == [
        (e.video.resolve(), e.caption, e.audio if e.audio is None else e.audio.resolve()) for e in entries
    ]


def test_write_manifest_refuses_an_empty_caption(tmp_path):
    with pytest.raises(ManifestError, match="caption must not be empty"):
        write_manifest(tmp_path / "m.jsonl", [ManifestEntry(tmp_path / "a.mp4", " ")])
    assert not (tmp_path / "m.jsonl").exists()
