"""atomic_output: readers see the old file or the complete new one, never a partial write or a stray temp file."""

from __future__ import annotations

import os

import pytest

from omni.media import atomic_output


def test_success_replaces_the_target_and_creates_parent_directories(tmp_path):
    path = tmp_path / "nested" / "dir" / "take.mp4"
    with atomic_output(path) as tmp:
        assert tmp.parent == path.parent and tmp.suffix == ".mp4" and tmp != path
        assert not path.exists()  # nothing visible at the target while writing
        tmp.write_bytes(b"new")
    assert path.read_bytes() == b"new"
    assert os.listdir(path.parent) == ["take.mp4"]


def test_failure_keeps_the_existing_target_and_removes_the_temp_file(tmp_path):
    path = tmp_path / "take.wav"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="encoder died"), atomic_output(path) as tmp:
        tmp.write_bytes(b"half a fi")
        raise RuntimeError("encoder died")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["take.wav"]


def test_interrupt_before_anything_was_written_leaves_no_file(tmp_path):
    path = tmp_path / "take.png"
    with pytest.raises(KeyboardInterrupt), atomic_output(path):
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_written_file_gets_the_usual_permissions(tmp_path):
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"x")
    with atomic_output(tmp_path / "atomic.bin") as tmp:
        tmp.write_bytes(b"x")
    assert (tmp_path / "atomic.bin").stat().st_mode == plain.stat().st_mode
