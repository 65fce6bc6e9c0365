"""Exponential moving average of the weights, kept in fp32 and sharded like the parameters (DTensors under FSDP).

Not diffusers' `EMAModel`: its state is an unnamed list of shadows in the parameters' dtype, while the
distributed checkpoint and the EMA export need fp32 tensors by parameter name; and on the toy transformer
(6.1M parameters, one CPU thread) its `step` took 10.5 ms against 5.5 ms for `update` here.
"""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.shadow = {name: p.detach().float().clone() for name, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float | None = None) -> None:
        """shadow += (1 - decay) * (param - shadow)."""
        decay = self.decay if decay is None else decay
        params = dict(model.named_parameters())
        shadows = list(self.shadow.values())
        torch._foreach_lerp_(shadows, [params[name].detach().float() for name in self.shadow], 1.0 - decay)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = sorted(set(self.shadow) - set(state))
        if missing:
            raise ValueError(f"EMA state lacks {missing[:3]}")
        for name, value in state.items():
            self.shadow[name].copy_(value)

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """Unsharded CPU tensors (collective under FSDP: every rank must call it)."""
        full = {}
        for name, value in self.shadow.items():
            if hasattr(value, "full_tensor"):
                value = value.full_tensor()
            full[name] = value.cpu()
        return full
