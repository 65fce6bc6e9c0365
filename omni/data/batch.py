"""A batch of pre-encoded training samples: what shards and rendered streams give the trainer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class LatentBatch:
    """Pre-encoded training samples sharing one shape (a bucket).

    video (B, C, F, H, W) and audio (B, C, T, M) normalised latents; reference (B, C, 1, H, W) a standalone
    image latent of each clip (used for references), text (B, Lt, Dt) encoder states with mask (B, Lt);
    motion (B, Fp, 5) per pixel frame the subject's centre x, y and the camera's dx, dy, zoom (NaN where
    unknown), in pixels of frames of `frame_size` (height, width); subject_boxes (B, Fp, 4) per pixel frame the
    box (x0, y0, x1, y1) around each clip's subjects in the same pixels, None when the data marks none.
    """

    video: Tensor | None
    audio: Tensor | None
    text: Tensor
    text_mask: Tensor
    video_frame_seconds: float
    audio_frame_seconds: float
    reference: Tensor | None = None
    motion: Tensor | None = None
    frame_size: tuple[int, int] | None = None
    subject_boxes: Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.text.shape[0]

    def to(self, device: torch.device | str) -> LatentBatch:
        move = lambda x: None if x is None else x.to(device, non_blocking=True)  # noqa: E731
        return LatentBatch(
            move(self.video),
            move(self.audio),
            move(self.text),
            move(self.text_mask),
            self.video_frame_seconds,
            self.audio_frame_seconds,
            move(self.reference),
            self.motion,  # stays on the CPU: control maps are built from it there
            self.frame_size,
            self.subject_boxes,  # stays on the CPU, as motion
        )
