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


def _dead_pid() -> int:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_temporaries_orphaned_by_a_killed_writer_are_removed_by_the_next_write(tmp_path):
    orphan = tmp_path / f".clip.omni{_dead_pid()}-0123456789ab.tmp.mp4"
    live = tmp_path / f".clip.omni{os.getppid()}-0123456789ab.tmp.mp4"  # its writer still runs
    someone_elses = tmp_path / ".clip.0123456789ab.tmp.mp4"
    for path in (orphan, live, someone_elses):
        path.write_bytes(b"half a clip")
    with atomic_output(tmp_path / "other.mp4") as tmp:
        tmp.write_bytes(b"new")
    assert not orphan.exists() and live.exists() and someone_elses.exists()


def test_check_writable_refuses_directories_and_leaves_nothing(tmp_path):
    from omni.media.atomic import OutputPathError, check_writable

    (tmp_path / "taken.png").mkdir()
    with pytest.raises(OutputPathError, match="is a directory"):
        check_writable(tmp_path / "taken.png")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputPathError, match="file is a file, not a folder"):
        check_writable(tmp_path / "file" / "sub" / "out.png")
    assert check_writable(tmp_path / "new" / "out.png") == tmp_path / "new" / "out.png"
    assert os.listdir(tmp_path / "new") == []
