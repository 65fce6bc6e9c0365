"""The one planning type of a task's streams, the same in training and in sampling.

Training plans a batch of clips with a task mask per sample (`omni.train.objective`); the pipeline plans
one request with batch 1, which broadcasts over its samples and guidance rows (`omni.pipelines.tasks`).
Both turn a plan into the transformer's `LatentStream` with `StreamPlan.stream`, so a given frame and a
dropped condition mean the same on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from omni.conditioning.masks import noisy_stream
from omni.models.streams import MODALITIES, LatentStream

REFERENCE_SECONDS = -1.0  # reference images sit one second before the clip starts


@dataclass
class StreamPlan:
    """A latent stream to denoise and what is known about it. Tensors carry a batch dimension B: one per
    training sample, or 1 for a request, which serves every sample and guidance row.

    Attributes:
        modality: "video", "image" or "audio".
        shape: latent shape without batch: (C, F, H, W) for video/image, (C, T, M) for audio.
        start_seconds, frame_seconds: where the stream sits on the clip clock (see `LatentStream`).
        clean: (B, *shape) clean latents; the given values where `clean_mask` is True (in training, the whole
            clip's latents, x_0 of the loss's target noise - x_0).
        clean_mask: (B, F) per latent frame or, for video/image, (B, F, H/ph, W/pw) per token; True = given
            clean. None = all noisy.
        present: (B,) bool, False for samples that lack this stream (all its tokens out of attention);
            None = every sample has it.
        condition: guidance group of the clean tokens ("image" or "audio"); None = never dropped.
        output: False for streams that only condition the others (reference images).
        control: optional (B, Cc, F, H, W) motion-control maps of a video stream.
    """

    modality: str
    shape: tuple[int, ...]
    start_seconds: float = 0.0
    frame_seconds: float = 0.25
    clean: Tensor | None = None
    clean_mask: Tensor | None = None
    present: Tensor | None = None
    condition: str | None = None
    output: bool = True
    control: Tensor | None = None

    def __post_init__(self) -> None:
        name = f"{self.modality} plan"
        if self.modality not in MODALITIES:
            raise ValueError(f"unknown modality {self.modality!r}; choose one of {list(MODALITIES)}")
        self.shape = tuple(self.shape)
        if (self.clean is None) != (self.clean_mask is None):
            raise ValueError(f"{name}: give both clean latents and clean_mask, or neither")
        if self.condition not in (None, "image", "audio"):
            raise ValueError(f"condition must be 'image', 'audio' or None, got {self.condition!r}")
        if self.clean is not None and self.clean.ndim != len(self.shape) + 1:
            raise ValueError(
                f"{name}: clean latents {tuple(self.clean.shape)} need a batch dimension: (B, *{self.shape})"
            )
        given = (self.clean, self.clean_mask, self.present, self.control)
        names = ("clean latents", "clean_mask", "present", "control")
        sizes = {key: tuple(value.shape[:1]) for key, value in zip(names, given) if value is not None}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"{name}: one batch size for all of its tensors, got leading sizes {sizes}")
        batch = self.batch
        if self.clean is not None and tuple(self.clean.shape) != (batch, *self.shape):
            raise ValueError(
                f"{name}: clean latents {tuple(self.clean.shape)} are not (B, *shape) with shape {self.shape}"
            )
        if self.clean_mask is not None:
            self._check_mask(name, batch)
        if self.present is not None and (self.present.dtype != torch.bool or self.present.ndim != 1):
            raise ValueError(
                f"{name}: present must be (B,) bool, got {self.present.dtype} {tuple(self.present.shape)}"
            )
        if self.control is not None and (self.control.ndim != 5 or self.control.shape[2:] != self.shape[1:]):
            raise ValueError(
                f"{name}: control maps {tuple(self.control.shape)} are not (B, Cc, *{self.shape[1:]})"
            )

    def _check_mask(self, name: str, batch: int) -> None:
        mask = self.clean_mask
        per_token = len(self.shape) == 4 and mask.ndim == 4
        if mask.dtype != torch.bool or (mask.ndim != 2 and not per_token):
            raise ValueError(
                f"{name}: clean_mask must be bool (B, F), or (B, F, H/ph, W/pw) for video/image, "
                f"got {mask.dtype} {tuple(mask.shape)}"
            )
        if tuple(mask.shape[:2]) != (batch, self.shape[1]):
            raise ValueError(
                f"{name}: clean_mask covers {mask.shape[1]} frames, latents have {self.shape[1]}"
            )
        if per_token and (self.shape[2] % mask.shape[2] or self.shape[3] % mask.shape[3]):
            raise ValueError(
                f"{name}: clean_mask's token grid {tuple(mask.shape[2:])} does not divide the latents' "
                f"{self.shape[2:]}"
            )

    @property
    def batch(self) -> int:
        """Samples the plan describes (1 when it holds no tensor)."""
        for value in (self.clean, self.clean_mask, self.present, self.control):
            if value is not None:
                return value.shape[0]
        return 1

    @property
    def has_clean(self) -> bool:
        return self.clean_mask is not None and bool(self.clean_mask.any())

    def stream(self, latents: Tensor, timestep: Tensor | float, dropped: dict[str, Tensor]) -> LatentStream:
        """The stream as the transformer sees it (`noisy_stream`): `latents` (N, *shape) at `timestep` (a
        scalar or (N,)), clean tokens at timestep 0, this plan's clean tokens out of attention where its
        condition group is dropped (`dropped`: group -> (N,) bool; a group it does not name is kept), its control
        maps zeroed where `dropped["control"]` is set.
        `latents` must already hold the clean values where they are given (`clean_where`)."""
        if tuple(latents.shape[1:]) != self.shape:
            raise ValueError(
                f"{self.modality} plan: latents {tuple(latents.shape)} are not (N, *shape) "
                f"with shape {self.shape}"
            )
        size, device = latents.shape[0], latents.device
        if self.clean_mask is None:
            clean = torch.zeros(size, self.shape[1], dtype=torch.bool, device=device)
        else:
            clean = self._per_sample(self.clean_mask.to(device), size)
        drop = dropped.get(self.condition) if self.condition is not None else None
        if drop is not None and tuple(drop.shape) != (size,):
            raise ValueError(
                f"{self.modality} plan: dropped[{self.condition!r}] has shape {tuple(drop.shape)}, "
                f"not ({size},): one flag a sample"
            )
        drop = torch.zeros(size, dtype=torch.bool, device=device) if drop is None else drop.to(device)
        present = None if self.present is None else self._per_sample(self.present.to(device), size)
        control = None
        if self.control is not None:
            control = self._per_sample(self.control.to(device, latents.dtype), size)
            control_dropped = dropped.get("control")
            if control_dropped is not None:  # all-zero maps: no camera, no trajectory, as training drops them
                control = torch.where(control_dropped.to(device).view(-1, 1, 1, 1, 1), 0.0, control)
        return noisy_stream(
            self.modality,
            latents,
            clean,
            timestep,
            drop,
            self.start_seconds,
            self.frame_seconds,
            present=present,
            control=control,
        )

    def clean_where(self, x: Tensor) -> Tensor:
        """x (N, *shape) with the plan's clean values written back where they are given."""
        if self.clean_mask is None:
            return x
        clean = self._per_sample(self.clean.to(x), x.shape[0])
        mask = self.clean_mask.to(x.device)  # (B, ...), broadcast with x's N samples like `clean`
        if mask.ndim == 2:
            view = mask.view(mask.shape[0], 1, -1, *([1] * (x.ndim - 3)))
        else:  # per token (B, F, Hp, Wp): expand to latent pixels
            reps = (x.shape[-2] // mask.shape[-2], x.shape[-1] // mask.shape[-1])
            view = mask.repeat_interleave(reps[0], -2).repeat_interleave(reps[1], -1)[:, None]
        return torch.where(view, clean, x)

    def _per_sample(self, value: Tensor, size: int) -> Tensor:
        """`value` (B, ...) for `size` samples: as it is when B == size, broadcast when B == 1."""
        if value.shape[0] == size:
            return value
        if value.shape[0] != 1:
            raise ValueError(
                f"{self.modality} plan holds {value.shape[0]} samples, not 1 or the {size} asked for"
            )
        return value.expand(size, *value.shape[1:])
