"""One progress bar per generation: extend's chunks and the decodes count on it, the stage in its label."""

import re

import numpy as np


def bar_lines(err: str) -> list[str]:
    return [line for line in re.split(r"[\r\n]", err) if "step" in line]


def test_extend_shows_one_bar_over_its_chunks_with_decoding_stages(tiny_pipeline, capsys):
    video, audio = np.zeros((17, 64, 64, 3), np.uint8), np.zeros((1, 17000), np.float32)
    capsys.readouterr()
    tiny_pipeline(
        "x", task="extend", video=video, video_fps=16, audio=audio, audio_sample_rate=16000, seconds=2,
        chunk_seconds=1, num_inference_steps=3,
    )  # fmt: skip
    lines = bar_lines(capsys.readouterr().err)
    totals = {int(m[1]) for line in lines for m in [re.search(r"\| *\d+/(\d+) \[", line)] if m}
    assert totals == {2 * (3 + 2)}  # one bar: 2 chunks x (3 steps + video and audio decodes)
    for stage in ("chunk 1/2 denoising", "chunk 2/2 encoding the conditions", "chunk 2/2 decoding video"):
        assert any(line.startswith(stage) for line in lines), stage


def test_a_clip_counts_its_decodes_and_progress_false_prints_nothing(tiny_pipeline, capsys):
    capsys.readouterr()
    tiny_pipeline("x", task="t2av", seconds=1, num_inference_steps=2)
    lines = bar_lines(capsys.readouterr().err)
    assert any(line.startswith("decoding audio") and "3/4" in line for line in lines)
    tiny_pipeline("x", task="t2av", seconds=1, num_inference_steps=2, progress=False)
    assert capsys.readouterr().err == ""
