"""OmniTransformer: one diffusion transformer over video, image and audio tokens.

Each block keeps per-modality weights (the modality experts: adaLN modulation, norms, QKV/out projections,
FFN) and runs ONE self-attention over the concatenation of every video, image and audio token, then each
expert cross-attends to the text states. The video expert is laid out like diffusers'
`WanTransformerBlock`, so Wan 2.1/2.2 weights initialise it (`omni.models.convert_wan`).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention import FeedForward
from diffusers.models.embeddings import PixArtAlphaTextProjection, TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import FP32LayerNorm
from einops import rearrange
from torch import Tensor, nn

from omni.models.streams import EXPERTS, LatentStream
from omni.ops.attention import attention, use_attention_backend
from omni.ops.rope import apply_rope, rope_frequencies

PREDICTIONS = ("velocity", "sample", "preconditioned")
# Where a sample-predicting head's x_0 is turned into a velocity, sigma is clamped here: below it (the last
# sampler steps, clean condition tokens) the division would amplify the head's error without bound.
SAMPLE_MIN_SIGMA = 0.05
POSITION_OCTAVES = 4  # sin and cos of pi * 2^k * (cell centre / grid size), k < POSITION_OCTAVES, per axis


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """x (B, L, D) * (1 + scale) + shift, with shift/scale (B, G, D) shared by G equal groups of tokens."""
    batch, length, dim = x.shape
    groups = shift.shape[1]
    x = x.view(batch, groups, length // groups, dim)
    return torch.addcmul(shift[:, :, None], x, 1 + scale[:, :, None]).view(batch, length, dim)


def gated(x: Tensor, gate: Tensor) -> Tensor:
    """x (B, L, D) * gate (B, G, D), one gate per group of tokens."""
    batch, length, dim = x.shape
    groups = gate.shape[1]
    return (x.view(batch, groups, length // groups, dim) * gate[:, :, None]).view(batch, length, dim)


def norm_modulate(norm: nn.Module, x: Tensor, shift: Tensor, scale: Tensor, fused: bool = False) -> Tensor:
    """`modulate(norm(x.float()), shift, scale)` in x's dtype, for a LayerNorm without affine weights.

    `fused` runs it as one Triton kernel (`omni_kernels.layer_norm_modulate`).
    """
    if fused:
        return fused_kernels().layer_norm_modulate(x, shift, scale, eps=norm.eps)
    return modulate(norm(x.float()), shift, scale).type_as(x)


def gated_residual(x: Tensor, y: Tensor, gate: Tensor, fused: bool = False) -> Tensor:
    """x + y * gate (B, G, D) in fp32, returned in x's dtype; `fused` runs it as one Triton kernel."""
    if fused:
        return fused_kernels().gated_residual(x, y, gate)
    batch, length, dim = y.shape
    groups = gate.shape[1]
    y = y.float().view(batch, groups, length // groups, dim)
    out = torch.addcmul(x.float().view(batch, groups, length // groups, dim), y, gate[:, :, None])  # one pass
    return out.view(batch, length, dim).type_as(x)


def fused_kernels():
    """`omni_kernels.norms`, the fused Triton norm kernels; a clear error when they cannot be imported."""
    try:
        return importlib.import_module("omni_kernels.norms")
    except ImportError as error:
        raise ValueError(
            f"fused norms need the omni_kernels package and triton (pip install -e '.[gpu]'): {error}"
        ) from error


def clip_positions(frames: int, device=None) -> Tensor:
    """(frames, 2 * POSITION_OCTAVES) features of each latent frame's place in its clip: sin and cos of
    pi * 2^k * t, with t the frame's centre over the clip's length (in (0, 1), whatever the clip's length).
    `frame_positions` gives the same features along a frame's rows and columns."""
    t = (torch.arange(frames, device=device, dtype=torch.float32) + 0.5) / frames
    scales = math.pi * 2.0 ** torch.arange(POSITION_OCTAVES, device=device, dtype=torch.float32)
    angles = t[:, None] * scales
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


def frame_positions(rows: int, cols: int, device=None) -> Tensor:
    """(rows * cols, 4 * POSITION_OCTAVES) features of each token's place in its frame, row-major as the
    tokens: sin and cos of pi * 2^k * y, then of pi * 2^k * x, with (x, y) the cell's centre over the frame's
    width and height (in (0, 1), whatever the frame's size): `clip_positions` along each axis."""
    along_rows, along_cols = clip_positions(rows, device), clip_positions(cols, device)
    return torch.cat([along_rows.repeat_interleave(cols, 0), along_cols.repeat(rows, 1)], dim=-1)


def patch_linear(conv: nn.Conv3d, x: Tensor) -> Tensor:
    """`conv(x)` for a Conv3d whose stride is its kernel (a patch embedding), as (B, F*H*W, D) tokens.

    Computed as one matmul over the patches, which on a CPU takes half the time of the strided convolution.
    """
    pt, ph, pw = conv.kernel_size
    patches = rearrange(x, "b c (f pt) (h ph) (w pw) -> b (f h w) (c pt ph pw)", pt=pt, ph=ph, pw=pw)
    return nn.functional.linear(patches, conv.weight.flatten(1), conv.bias)


class Attention(nn.Module):
    """Wan-layout projections (to_q/k/v, RMS q/k norms across heads, to_out) around `omni.ops.attention`."""

    def __init__(self, dim: int, heads: int, eps: float):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim), nn.Dropout(0.0)])
        self.norm_q = nn.RMSNorm(dim, eps=eps)
        self.norm_k = nn.RMSNorm(dim, eps=eps)
        self.fused_norms = False  # set by OmniTransformer.set_fused_norms

    def project(
        self, x: Tensor, context: Tensor | None = None, rope: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Queries from x (B, L, D); keys/values from context (self-attention when None). Each (B, L, H, Dh).

        `rope` (cos, sin), if given, rotates q and k here; with fused norms it rides in the RMSNorm kernel.
        """
        context = x if context is None else context
        if self.fused_norms:
            norm = fused_kernels().rms_norm_rope
            q = norm(self.to_q(x), self.norm_q.weight, rope, heads=self.heads, eps=self.norm_q.eps)
            k = norm(self.to_k(context), self.norm_k.weight, rope, heads=self.heads, eps=self.norm_k.eps)
        else:
            q = self.norm_q(self.to_q(x)).unflatten(-1, (self.heads, -1))
            k = self.norm_k(self.to_k(context)).unflatten(-1, (self.heads, -1))
            if rope is not None:
                q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        v = self.to_v(context).unflatten(-1, (self.heads, -1))
        return q, k, v

    def project_into(self, x: Tensor, q: Tensor, k: Tensor, v: Tensor) -> None:
        """`project(x)` (self-attention, no RoPE) written into q, k, v: (B, L, D) views of buffers that hold
        every expert's tokens, so the joint attention needs no concatenation. No autograd; fp32 like
        nn.RMSNorm's own arithmetic."""
        for linear, norm, out in (
            (self.to_q, self.norm_q, q),
            (self.to_k, self.norm_k, k),
            (self.to_v, None, v),
        ):
            for row in range(x.shape[0]):  # addmm writes (L, D) matrices: one per batch row of the view
                torch.addmm(linear.bias, x[row], linear.weight.t(), out=out[row])
            if norm is not None:  # nn.RMSNorm's steps, in place
                out.mul_(out.pow(2).mean(-1, keepdim=True).add_(norm.eps).rsqrt_()).mul_(norm.weight)

    def output(self, out: Tensor, like: Tensor) -> Tensor:
        """(B, L, H, Dh) attention output -> (B, L, D) projected."""
        return self.to_out[0](out.flatten(2).type_as(like))

    def forward(self, x: Tensor, context: Tensor, context_mask: Tensor | None = None) -> Tensor:
        """Cross-attention from x (B, L, D) to context (B, Lc, D)."""
        q, k, v = self.project(x, context)
        return self.output(attention(q, k, v, key_padding_mask=context_mask), q)


class ExpertLayer(nn.Module):
    """One modality expert's weights inside a block (the layout of diffusers' `WanTransformerBlock`)."""

    def __init__(
        self,
        dim: int,
        ffn_dim: int,
        heads: int,
        cross_attn_norm: bool,
        eps: float,
        expert: str = "video",
        token_conv: int = 0,
        av_bridge: bool = False,
    ):
        super().__init__()
        if av_bridge:  # the other modality's mean over a token's time window, projected into this expert
            self.av_bridge = nn.Linear(dim, dim)
        if token_conv:  # depthwise, over the token grid: frames x rows x columns (video), time (audio)
            conv = nn.Conv3d if expert == "video" else nn.Conv1d
            self.token_conv = conv(dim, dim, token_conv, padding=token_conv // 2, groups=dim)
        self.norm1 = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.attn1 = Attention(dim, heads, eps)
        self.attn2 = Attention(dim, heads, eps)
        self.norm2 = FP32LayerNorm(dim, eps, elementwise_affine=True) if cross_attn_norm else nn.Identity()
        self.ffn = FeedForward(dim, inner_dim=ffn_dim, activation_fn="gelu-approximate")
        self.norm3 = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.scale_shift_table = nn.Parameter(torch.zeros(1, 6, dim))

    def mix_tokens(self, x: Tensor, grids: list[tuple[int, int, int]], keep: Tensor | None) -> Tensor:
        """x (B, L, D) plus the depthwise convolution of each stream's tokens over its grid (`token_conv`).

        `grids`: each stream's (frames, rows, columns) of tokens, in x's order; `keep` (B, L) bool: tokens out
        of attention (a dropped condition, a missing stream) are zeros to their neighbours, as they are
        invisible to attention.
        """
        inputs = x if keep is None else x * keep[..., None].to(x.dtype)
        parts, start = [], 0
        for f, h, w in grids:
            part = inputs[:, start : start + f * h * w]
            start += f * h * w
            if isinstance(self.token_conv, nn.Conv3d):
                grid = part.unflatten(1, (f, h, w)).permute(0, 4, 1, 2, 3)  # (B, D, f, h, w)
            else:
                grid = part.transpose(1, 2)  # (B, D, T): audio tokens are one a latent frame
            parts.append(self.token_conv(grid.to(self.token_conv.weight.dtype)).flatten(2).transpose(1, 2))
        return x + torch.cat(parts, dim=1).type_as(x)

    def bridge_in(self, x: Tensor, other_means: Tensor, bins: Tensor) -> Tensor:
        """x (B, L, D) plus the projection of the other modality's mean over each token's time window
        (`av_bridge`); other_means (B, W, D), bins (L,) each token's window or -1 (none: it takes nothing)."""
        mixed = self.av_bridge(other_means.to(self.av_bridge.weight.dtype))[:, bins.clamp(min=0)]
        return x + (mixed * (bins >= 0)[None, :, None]).type_as(x)


def window_means(x: Tensor, bins: Tensor, keep: Tensor | None, windows: int) -> Tensor:
    """(B, windows, D) mean of x's tokens (B, L, D) in each time window; bins (L,): each token's window or -1
    (in none); tokens out of attention (`keep` False) count for nothing, as they are invisible to attention.
    An empty window's mean is zero."""
    weight = torch.ones(x.shape[:2], device=x.device, dtype=torch.float32) if keep is None else keep.float()
    slot = torch.where(bins >= 0, bins, windows)  # tokens in no window go to a slot that is dropped
    sums = x.new_zeros(x.shape[0], windows + 1, x.shape[2], dtype=torch.float32)
    sums.index_add_(1, slot, x.float() * weight[..., None])
    counts = weight.new_zeros(x.shape[0], windows + 1).index_add_(1, slot, weight)
    return (sums / counts.clamp(min=1)[..., None])[:, :windows]


class OmniBlock(nn.Module):
    """Joint self-attention over all experts' tokens, then per-expert text cross-attention and FFN."""

    def __init__(
        self,
        dim: int,
        ffn_dims: dict[str, int],
        heads: int,
        cross_attn_norm: bool,
        eps: float,
        token_conv: dict[str, int] | None = None,
        av_bridge: bool = False,
    ):
        super().__init__()
        token_conv = token_conv or {}
        self.experts = nn.ModuleDict(
            {
                name: ExpertLayer(
                    dim,
                    ffn,
                    heads,
                    cross_attn_norm,
                    eps,
                    expert=name,
                    token_conv=token_conv.get(name, 0),
                    av_bridge=av_bridge,
                )
                for name, ffn in ffn_dims.items()
            }
        )
        # The joint self-attention; sequence parallelism swaps in a sharded version from outside.
        self.joint_attention = attention
        self.fused_norms = False  # set by OmniTransformer.set_fused_norms

    def forward(
        self,
        hidden: list[Tensor],
        experts: list[str],
        modulation: list[Tensor],
        rope: tuple[Tensor, Tensor],
        text: Tensor,
        text_mask: Tensor | None,
        key_padding_mask: Tensor | None,
        grids: list[list[tuple[int, int, int]]] | None = None,
        bins: tuple[list[Tensor], int] | None = None,
    ) -> list[Tensor]:
        """hidden[i]: (B, L_i, D) tokens of expert experts[i]; modulation[i]: (B, G_i, 6, D) fp32; grids[i]:
        the token grid of each of its streams (given when the model has `token_conv`); bins: each token's
        time window (-1: none) per expert, and the number of windows (given when the model has `av_bridge`
        and both experts run)."""
        layers = [self.experts[name] for name in experts]
        lengths = [x.shape[1] for x in hidden]
        keeps = [None] * len(hidden)
        if key_padding_mask is not None and (grids is not None or bins is not None):
            keeps = list(key_padding_mask.split(lengths, dim=1))
        if bins is not None:  # 0. video and sound exchange their means over each time window
            token_bins, windows = bins
            means = [window_means(x, b, k, windows) for x, b, k in zip(hidden, token_bins, keeps)]
            hidden = [
                layer.bridge_in(x, other, b)
                for layer, x, other, b in zip(layers, hidden, means[::-1], token_bins)
            ]
        if grids is not None:  # 0. each token takes in its neighbours in space and time
            hidden = [
                layer.mix_tokens(x, g, k) if hasattr(layer, "token_conv") else x
                for layer, x, g, k in zip(layers, hidden, grids, keeps)
            ]
        mods = [
            (layer.scale_shift_table[:, None] + mod.float()).unbind(2)
            for layer, mod in zip(layers, modulation)
        ]

        # 1. Joint self-attention: per-expert projections, one attention over every token.
        fused = self.fused_norms
        # Fused norms rotate q and k inside the RMSNorm kernel, each expert with its slice of the angles.
        expert_ropes = list(zip(*(r.split(lengths, dim=1) for r in rope))) if fused else [None] * len(hidden)
        normed = [
            norm_modulate(layer.norm1, x, shift, scale, fused)
            for layer, x, (shift, scale, *_) in zip(layers, hidden, mods)
        ]
        if len(hidden) > 1 and not fused and self._projects_in_place(normed):
            # Each expert writes its rows of one q, k and v: no copies to join them (inference only).
            q, k, v = (
                normed[0].new_empty(normed[0].shape[0], sum(lengths), normed[0].shape[2]) for _ in "qkv"
            )
            starts = [sum(lengths[:i]) for i in range(len(lengths))]
            for layer, x, start, length in zip(layers, normed, starts, lengths):
                rows = slice(start, start + length)
                layer.attn1.project_into(x, q[:, rows], k[:, rows], v[:, rows])
            q, k, v = (t.unflatten(-1, (layers[0].attn1.heads, -1)) for t in (q, k, v))
        else:
            qkv = [layer.attn1.project(x, rope=r) for layer, x, r in zip(layers, normed, expert_ropes)]
            q, k, v = (torch.cat(parts, dim=1) if len(parts) > 1 else parts[0] for parts in zip(*qkv))
        joint_rope = None if fused else rope
        out = self.joint_attention(q, k, v, key_padding_mask=key_padding_mask, rope=joint_rope).split(
            lengths, 1
        )

        result = []
        for layer, x, o, (_, _, gate, c_shift, c_scale, c_gate) in zip(layers, hidden, out, mods):
            x = gated_residual(x, layer.attn1.output(o, x), gate, fused)
            # 2. Cross-attention to the text states.
            x = x + layer.attn2(layer.norm2(x.float()).type_as(x), text, text_mask)
            # 3. Feed-forward.
            normed = norm_modulate(layer.norm3, x, c_shift, c_scale, fused)
            x = gated_residual(x, layer.ffn(normed), c_gate, fused)
            result.append(x)
        return result

    @staticmethod
    def _projects_in_place(normed: list[Tensor]) -> bool:
        """Whether the experts' projections can be written into joint buffers: no autograd, no autocast, fp32."""
        x = normed[0]
        return (
            not torch.is_grad_enabled()
            and not torch.is_autocast_enabled(x.device.type)
            and all(n.dtype == torch.float32 for n in normed)
        )


class ExpertIO(nn.Module):
    """Per-expert token embedding, time embedding and output head."""

    def __init__(
        self,
        expert: str,
        dim: int,
        freq_dim: int,
        in_channels: int,
        out_channels: int,
        patch,
        eps,
        control: int = 0,
        pooled_text_dim: int = 0,
        head_hidden: int = 0,
        head_conv: int = 0,
        head_features: int = 0,
        self_condition: bool = False,
        position: bool = False,
        frame_index: bool = False,
        input_gate: bool = False,
    ):
        super().__init__()
        if input_gate:  # a per-channel scale of the latents' embedding by noise level (`input_gate`)
            self.input_gate = nn.Linear(dim, dim)
        if position:  # where a video or image token sits in its frame (`position_embedding`)
            self.position_embedding = nn.Linear(4 * POSITION_OCTAVES, dim)
        if frame_index:  # where a video token's frame sits in its clip (`frame_index_embedding`)
            self.frame_index_embedding = nn.Linear(2 * POSITION_OCTAVES, dim)
        if pooled_text_dim:  # the caption's mean state, added to the time embedding (adaLN conditioning)
            self.text_pool = nn.Linear(pooled_text_dim, dim)
        if expert == "video":
            self.patch_embedding = nn.Conv3d(in_channels, dim, kernel_size=patch, stride=patch)
            out_features = out_channels * math.prod(patch)
            if control:  # motion-control maps, patchified like the latents
                self.control_embedding = nn.Conv3d(control, dim, kernel_size=patch, stride=patch)
        else:
            self.patch_embedding = nn.Linear(in_channels, dim)
            out_features = out_channels
        if self_condition:  # the model's previous x_0 estimate, embedded like the latents (no bias: None = 0)
            if expert == "video":
                self.self_condition_embedding = nn.Conv3d(
                    in_channels, dim, kernel_size=patch, stride=patch, bias=False
                )
            else:
                self.self_condition_embedding = nn.Linear(in_channels, dim, bias=False)
        self.time_embedder = TimestepEmbedding(in_channels=freq_dim, time_embed_dim=dim)
        self.time_proj = nn.Linear(dim, 6 * dim)
        self.norm_out = FP32LayerNorm(dim, eps, elementwise_affine=False)
        # A GELU layer before the output projection: a token's values need not be linear in its hidden state.
        if head_hidden:
            self.head_mlp = nn.Sequential(nn.Linear(dim, head_hidden), nn.GELU(approximate="tanh"))
        self.proj_out = nn.Linear(head_hidden or dim, out_features)
        if head_features:  # a feature map beside the output, for the convolutions (`video_head_features`)
            self.head_features = nn.Linear(head_hidden or dim, head_features * math.prod(patch))
        self.scale_shift_table = nn.Parameter(torch.zeros(1, 2, dim))
        # A residual 3x3 convolution pair over each output frame's latent grid (U-ViT's final convolution):
        # a linear head draws each token on its own, so an outline that crosses a token border breaks there.
        if head_conv:
            self.head_conv = nn.Sequential(
                nn.Conv2d(out_channels + head_features, head_conv, 3, padding=1),
                nn.GELU(approximate="tanh"),
                nn.Conv2d(head_conv, out_channels, 3, padding=1),
            )


class OmniTransformer(ModelMixin, ConfigMixin):
    """Denoises video, image and audio latents jointly, each token at its own noise level.

    Args:
        patch_size: (t, h, w) patch of the video expert.
        num_attention_heads, attention_head_dim: joint attention shape; hidden size is their product.
        in_channels, out_channels: video latent channels.
        audio_in_channels: audio latent channels x latent mel bins (one token per audio latent frame); 0 builds
            no audio expert (a video-only model, e.g. a converted Wan checkpoint).
        text_dim: width of the text encoder states.
        freq_dim: sinusoidal timestep embedding width.
        ffn_dim, audio_ffn_dim: FFN widths of the video and audio experts (audio defaults to ffn_dim).
        num_layers: number of `OmniBlock`s.
        cross_attn_norm, qk_norm, eps: as in Wan.
        rope_theta: RoPE base.
        rope_time_scale: RoPE time units per second. 4.0 puts video latent frame i of a 16 fps clip
            (4x temporal compression) at position i, exactly where Wan puts it.
        control_channels: channels of the motion-control maps added to video tokens (0: no motion control).
        pooled_text: also condition every adaLN modulation on the mean of the text states, next to the
            timestep: a direct path for captions that are mostly global attributes (room colour, object
            colour and shape, motion). The projection starts at zero, so enabling it on a trained model
            changes nothing until trained.
        prediction: what the output head predicts. "velocity": the flow velocity (noise - data) itself.
            "sample": the clean latents x_0, turned into the velocity (x_t - x_0) / sigma before `forward`
            returns, so samplers and the training loss are the same for both. A head that predicts x_0
            never has to carry the input's noise through the network, which matters where tokens are wide
            for the hidden state (the toy preset's 8x8 patches of 8 channels: 512 values into 192); at
            4x4 patches (128 values) it learned about twice as fast (docs/research-log.md). sigma is clamped at
            SAMPLE_MIN_SIGMA in the division, so clean tokens stay finite.
            "preconditioned": x_0 = c_skip(sigma) x_t + c_out(sigma) F with F the head's output (EDM's
            preconditioning for unit-variance latents on the flow path x_t = (1 - sigma) x_0 + sigma noise:
            c_skip = (1 - sigma) / D, c_out = sigma / sqrt(D), D = (1 - sigma)^2 + sigma^2). At low noise x_t
            itself carries the clean detail and the head adds a correction, where the "sample" head must
            rebuild every value of a token through the hidden state (512 into 192 at the toy preset's
            patches). The velocity is ((2 sigma - 1) x_t - sqrt(D) F) / D: bounded at every sigma, no clamp.
        mask_text_padding: True: cross-attention skips the text padding (omni's convention). False:
            cross-attention reads every text position, the zero-padded ones included, as Wan checkpoints were
            trained (prompts zero-padded to 512 tokens, no mask); training and sampling then do the same.
        per_token_timesteps: whether the checkpoint learned clean tokens next to noisy ones (omni's models,
            Wan 2.2 TI2V). False (Wan 2.1, Wan 2.2 A14B): one timestep per sample was all it saw, so key frames,
            extension and retakes run but lie outside its training; the pipeline warns.
        video_head_hidden: width of a GELU layer between the video tokens' final norm and their output
            projection (0: a linear head, as Wan). A linear head makes every token's values a linear map of
            its hidden state: with tokens wider than the hidden state (512 values from 192) it can only
            draw what a 192-dimensional subspace of patches holds.
        video_head_conv: hidden channels of a residual pair of 3x3 convolutions applied to every video and
            image frame the head outputs, across token borders (0: none, as Wan). It starts as an exact
            no-op (its last convolution is zero).
        video_head_features: channels of a feature map the head draws beside its output, at every latent
            position, from each token's hidden state, for the residual convolutions to read (0: they read
            the output alone; needs `video_head_conv`). The features carry more of each token's hidden state
            across its borders than its output values do. They widen the first convolution, so a folder
            trained without them cannot take them on.
        self_condition: every expert also embeds a stream's `self_condition`, the model's own x_0 estimate
            from the previous sampling step (in training, from a first forward pass without gradients for a
            share of the samples: `self_condition` in the training config), so the tokens start from a
            common draft instead of deciding the layout each on its own at high noise. Its embedding starts
            at zero, an exact no-op, also when added to a trained folder.
        token_conv: kernel size of a depthwise convolution over each stream's token grid at the start of every
            block (video and image tokens: k x k x k over frames, rows and columns; audio tokens: k over time),
            added to the tokens (0: none, as Wan). Attention must learn where a token's neighbours are; the
            convolution hands each token its neighbours in space and time from the first step, what a clean
            key frame or the frame before tells the next one. It starts at zero, an exact no-op, also when
            added to a trained folder. Not with sequence parallelism (a shard does not hold its neighbours).
        token_conv_experts: the experts whose tokens take the convolution (None: all; `["video"]`: the video
            expert's alone, audio tokens keep their onsets unblurred).
        av_bridge: at the start of every block, each video latent frame's tokens take in a projection of the
            mean of the audio tokens in its time window (one video latent frame long) and each audio token a
            projection of the mean of the video tokens in its window: what is on screen and what is heard at
            the same moment meet from the first step, without attention having to learn to find each other
            (a beep on the bounce). Zero at init, an exact no-op, also when added to a trained folder. Needs
            the audio expert; not with sequence parallelism.
        position_embedding: add to every video and image token where it sits in its frame: sines and cosines
            of its row's and column's centre over the frame's height and width (`POSITION_OCTAVES` octaves
            each), through a linear layer. RoPE tells attention only how far tokens are from each other; a
            token of pure noise then cannot tell the middle of the frame from its edge, and a caption that
            says where the object goes ("bouncing left and right" through the middle) has nowhere to land.
            The coordinates are relative to the frame, so any size of frame takes them. Zero at init, an
            exact no-op, also when added to a trained folder.
        frame_index_embedding: add to every video token where its latent frame sits in the clip: sines and
            cosines of the frame's centre over the clip's length (`POSITION_OCTAVES` octaves), through a linear
            layer. RoPE's time axis is relative too: a token of pure noise cannot tell the clip's first frame
            from its middle, and a caption whose motion fixes where the object is at each moment (a bounce from
            a set start) cannot say it. Relative to the clip's length, so any length takes it. Not on image
            tokens (one frame) nor audio. Zero at init, an exact no-op, also when added to a trained folder.
        input_gate: scale the latents' embedding per channel by a learned function of each token's noise level,
            (1 + g(t)). A token embeds all of its latent values (1536 of them in the toy preset), so at sigma 1
            its embedding is a large vector of pure noise (norm about 47 in the toy model, where the position
            and frame index embeddings reach 10 and 1): what the token could know about where and when it is
            drowns in what it cannot know. The gate lets the model turn the input down where it carries
            nothing. On every expert; zero at init, an exact no-op, also when added to a trained folder.
        signal_input: scale the latents by min(1, (1 - sigma) / sigma), the ratio of their signal to their noise,
            before they are embedded: a token of pure noise embeds nothing (the patch embedding's bias alone),
            one at sigma <= 0.5 is unchanged. At sigma 1 the input carries nothing about the clip, yet its
            embedding dominates the token and the model must learn to see past it: memorising 8 captioned toy
            clips at sigma 1, x_0's error after 80 steps is 0.103 with a noise input and 0.038 with none, and
            the toy model's x_0 there varies with the noise it is given (docs/research-log.md).
            Not a new layer: over a trained folder it changes what the model sees above sigma 0.5, and the
            model must adapt there.
        shared_frame_noise: the share of the noise's variance that is common to all latent frames of a video
            stream, in training and in sampling (`omni.models.streams.frame_noise`; 0: independent noise per
            frame, as Wan). From independent noise each frame's object is placed by its own noise, and a small
            model's clip flickers; with a shared part every frame starts from the same layout, and the model
            learns to move the object from there. Not an architecture change: a trained folder can take it
            on, but it learns under the new noise before its samples gain from it.
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["OmniBlock"]
    _keep_in_fp32_modules = [
        "time_embedder",
        "time_proj",
        "text_pool",
        "scale_shift_table",
        "norm1",
        "norm2",
        "norm3",
    ]
    _skip_layerwise_casting_patterns = ["patch_embedding", "text_embedder", "norm"]

    @register_to_config
    def __init__(
        self,
        patch_size: tuple[int, int, int] = (1, 2, 2),
        num_attention_heads: int = 12,
        attention_head_dim: int = 128,
        in_channels: int = 16,
        out_channels: int = 16,
        audio_in_channels: int = 128,
        text_dim: int = 4096,
        freq_dim: int = 256,
        ffn_dim: int = 8960,
        audio_ffn_dim: int | None = None,
        num_layers: int = 30,
        cross_attn_norm: bool = True,
        qk_norm: str = "rms_norm_across_heads",
        eps: float = 1e-6,
        rope_theta: float = 10000.0,
        rope_time_scale: float = 4.0,
        control_channels: int = 0,
        pooled_text: bool = False,
        prediction: str = "velocity",
        video_head_hidden: int = 0,
        video_head_conv: int = 0,
        video_head_features: int = 0,
        self_condition: bool = False,
        mask_text_padding: bool = True,
        per_token_timesteps: bool = True,
        token_conv: int = 0,
        token_conv_experts: list[str] | None = None,
        av_bridge: bool = False,
        position_embedding: bool = False,
        frame_index_embedding: bool = False,
        input_gate: bool = False,
        signal_input: bool = False,
        shared_frame_noise: float = 0.0,
    ):
        super().__init__()
        if isinstance(shared_frame_noise, bool) or not (
            isinstance(shared_frame_noise, (int, float)) and 0.0 <= shared_frame_noise < 1.0
        ):
            raise ValueError(
                f"shared_frame_noise must be a variance share in [0, 1), got {shared_frame_noise!r}"
            )
        if av_bridge and not audio_in_channels:
            raise ValueError(
                "av_bridge joins video and audio tokens: it needs the audio expert (audio_in_channels)"
            )
        if (
            isinstance(token_conv, bool)
            or not isinstance(token_conv, int)
            or not (token_conv == 0 or (token_conv >= 3 and token_conv % 2))
        ):
            raise ValueError(f"token_conv must be 0 (none) or an odd kernel size >= 3, got {token_conv!r}")
        if token_conv_experts is not None and (
            isinstance(token_conv_experts, str) or not set(token_conv_experts) <= set(EXPERTS)
        ):
            raise ValueError(
                f"token_conv_experts must be a list of experts from {list(EXPERTS)}, got {token_conv_experts!r}"
            )
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction {prediction!r} is not supported; choose one of {list(PREDICTIONS)}")
        if video_head_features and not video_head_conv:
            raise ValueError(
                f"video_head_features ({video_head_features}) feed the head's convolutions: "
                "set video_head_conv too"
            )
        if qk_norm != "rms_norm_across_heads":
            raise ValueError(f"qk_norm {qk_norm!r} is not supported; omni uses 'rms_norm_across_heads'")
        dim = num_attention_heads * attention_head_dim
        patch = tuple(patch_size)
        pooled_dim = text_dim if pooled_text else 0
        if (
            isinstance(audio_in_channels, bool)
            or not isinstance(audio_in_channels, int)
            or audio_in_channels < 0
        ):
            raise ValueError(
                f"audio_in_channels must be an integer >= 0 (0: no audio expert), got {audio_in_channels!r}"
            )
        self.timesteps_proj = Timesteps(num_channels=freq_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.text_embedder = PixArtAlphaTextProjection(text_dim, dim, act_fn="gelu_tanh")
        self.image_embedding = nn.Parameter(torch.zeros(dim))
        self.experts = nn.ModuleDict(
            {
                "video": ExpertIO(
                    "video",
                    dim,
                    freq_dim,
                    in_channels,
                    out_channels,
                    patch,
                    eps,
                    control=control_channels,
                    pooled_text_dim=pooled_dim,
                    head_hidden=video_head_hidden,
                    head_conv=video_head_conv,
                    head_features=video_head_features,
                    self_condition=self_condition,
                    position=position_embedding,
                    frame_index=frame_index_embedding,
                    input_gate=input_gate,
                ),
            }
        )
        ffn_dims = {"video": ffn_dim}
        if audio_in_channels:
            self.experts["audio"] = ExpertIO(
                "audio",
                dim,
                freq_dim,
                audio_in_channels,
                audio_in_channels,
                patch,
                eps,
                pooled_text_dim=pooled_dim,
                self_condition=self_condition,
                input_gate=input_gate,
            )
            ffn_dims["audio"] = audio_ffn_dim or ffn_dim
        conv_kernels = {name: token_conv for name in (token_conv_experts or EXPERTS)}
        self.blocks = nn.ModuleList(
            [
                OmniBlock(dim, ffn_dims, num_attention_heads, cross_attn_norm, eps, conv_kernels, av_bridge)
                for _ in range(num_layers)
            ]
        )
        self.gradient_checkpointing = False
        self.attention_backend: str | None = None
        self._rope_cache: dict[tuple, tuple[Tensor, Tensor]] = {}
        self.fused_norms = False
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """Xavier linears (the text projection too); adaLN-zero: every modulation, the text cross-attention
        output and the heads start at 0."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for io in self.experts.values():
            weight = io.patch_embedding.weight
            nn.init.xavier_uniform_(weight.view(weight.shape[0], -1))
            nn.init.zeros_(io.patch_embedding.bias)
            nn.init.normal_(io.time_embedder.linear_1.weight, std=0.02)
            nn.init.normal_(io.time_embedder.linear_2.weight, std=0.02)
            zero = [io.time_proj.weight, io.time_proj.bias, io.proj_out.weight, io.proj_out.bias]
            if hasattr(io, "text_pool"):  # starts as an exact no-op, also when added to a trained model
                zero += [io.text_pool.weight, io.text_pool.bias]
            for param in zero:
                nn.init.zeros_(param)
            if hasattr(io, "self_condition_embedding"):  # starts as an exact no-op, like control
                nn.init.zeros_(io.self_condition_embedding.weight)
            if hasattr(io, "control_embedding"):  # no control until trained: starts as an exact no-op
                nn.init.zeros_(io.control_embedding.weight)
                nn.init.zeros_(io.control_embedding.bias)
            # exact no-ops, also when added to a trained folder
            for name in ("position_embedding", "frame_index_embedding", "input_gate"):
                if hasattr(io, name):
                    nn.init.zeros_(getattr(io, name).weight)
                    nn.init.zeros_(getattr(io, name).bias)
            nn.init.zeros_(io.scale_shift_table)
            if hasattr(io, "head_conv"):  # starts as an exact no-op
                nn.init.zeros_(io.head_conv[-1].weight)
                nn.init.zeros_(io.head_conv[-1].bias)
        for block in self.blocks:
            for layer in block.experts.values():
                nn.init.zeros_(layer.scale_shift_table)
                nn.init.zeros_(layer.attn2.to_out[0].weight)
                # The token convolution starts as an exact no-op, also when added to a trained model.
                if hasattr(layer, "token_conv"):
                    nn.init.zeros_(layer.token_conv.weight)
                    nn.init.zeros_(layer.token_conv.bias)
                if hasattr(layer, "av_bridge"):
                    nn.init.zeros_(layer.av_bridge.weight)
                    nn.init.zeros_(layer.av_bridge.bias)
        # The text projection stays Xavier like every other linear. Wan's N(0, 0.02) shrinks the caption to
        # a twentieth of its scale (0.02 rms from all-MiniLM's 0.4), and a small model trained on a CPU then
        # takes twice the steps to read it (docs/research-log.md, "the text projection's initial scale").

    def set_attention_backend(self, backend: str | None) -> None:
        """Use attention backend `backend` (a name from `omni.ops.available_backends()`) in this model."""
        if backend is not None:
            from omni.ops.attention import get_backend

            get_backend(backend)
        self.attention_backend = backend

    def set_fused_norms(self, enabled: bool) -> None:
        """Run each block's adaLN, gated residuals and q/k RMSNorm (+ RoPE) as fused Triton kernels.

        Same math as the default PyTorch ops; needs `omni_kernels` (triton) and CUDA tensors, or the CPU under
        TRITON_INTERPRET=1.
        """
        if enabled:
            fused_kernels()
        self.fused_norms = enabled
        for module in self.modules():
            if isinstance(module, (OmniBlock, Attention)):
                module.fused_norms = enabled

    @property
    def has_audio_expert(self) -> bool:
        return "audio" in self.experts

    @property
    def hidden_size(self) -> int:
        return self.config.num_attention_heads * self.config.attention_head_dim

    def forward(
        self, streams: Sequence[LatentStream], text_states: Tensor, text_mask: Tensor | None = None
    ) -> list[Tensor]:
        """Predict the flow velocity (noise - data) for every stream (from the head's x_0 when
        `prediction` is "sample").

        Args:
            streams: the latent streams to denoise together (any mix of video, image and audio).
            text_states: (B, Lt, text_dim) text encoder states.
            text_mask: optional (B, Lt) bool, True for real text tokens.

        Returns:
            One velocity tensor per stream, shaped like its latents.
        """
        if not streams:
            raise ValueError("OmniTransformer needs at least one latent stream")
        with use_attention_backend(self.attention_backend):
            return self._forward(list(streams), text_states, text_mask)

    def _forward(
        self, streams: list[LatentStream], text_states: Tensor, text_mask: Tensor | None
    ) -> list[Tensor]:
        patch = tuple(self.config.patch_size)
        experts = [name for name in EXPERTS if any(s.expert == name for s in streams)]
        if "audio" in experts and not self.has_audio_expert:
            raise ValueError(
                "this model has no audio expert (audio_in_channels = 0): it takes no audio stream"
            )
        by_expert = {name: [s for s in streams if s.expert == name] for name in experts}

        pooled = self._pooled_text(text_states, text_mask) if self.config.pooled_text else None
        hidden, modulation, temb = [], [], []
        for name in experts:
            io = self.experts[name]
            hidden.append(torch.cat([self._embed(io, s) for s in by_expert[name]], dim=1))  # (B, L_e, D)
            t, _ = self._expert_timesteps(by_expert[name], patch)  # (B, G)
            emb = self._time_embedding(io, t)  # (B, G, D) fp32
            if pooled is not None:
                emb = emb + io.text_pool(pooled.to(io.text_pool.weight.dtype)).float()[:, None]
            temb.append(emb)
            modulation.append(io.time_proj(nn.functional.silu(emb)).unflatten(-1, (6, -1)))  # (B, G, 6, D)

        ordered = [s for name in experts for s in by_expert[name]]
        rope = self._rope(ordered, text_states.device)
        key_padding_mask = self._key_padding_mask(ordered, patch)
        text = self.text_embedder(text_states)
        cross_mask = text_mask if self.config.mask_text_padding else None

        grids = None
        if self.config.token_conv:
            grids = [[s.token_grid(patch) for s in by_expert[name]] for name in experts]
        bins = self._time_windows(by_expert, patch) if self.config.av_bridge and len(experts) == 2 else None
        rest = (experts, modulation, rope, text, cross_mask, key_padding_mask, grids, bins)
        for block in self.blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                hidden = self._gradient_checkpointing_func(block, hidden, *rest)
            else:
                hidden = block(hidden, *rest)

        outputs = []
        for name, x, emb in zip(experts, hidden, temb):
            io = self.experts[name]
            shift, scale = (io.scale_shift_table[:, None] + emb[:, :, None]).unbind(2)  # (B, G, D)
            x = modulate(io.norm_out(x.float()), shift, scale).type_as(x)
            x = io.head_mlp(x) if hasattr(io, "head_mlp") else x
            lengths = [math.prod(s.token_grid(patch)) for s in by_expert[name]]
            split = list(zip(by_expert[name], io.proj_out(x).split(lengths, dim=1)))
            parts = [self._unembed(s, part) for s, part in split]
            if hasattr(io, "head_conv"):
                features = [None] * len(parts)
                if hasattr(io, "head_features"):
                    maps = io.head_features(x).split(lengths, dim=1)
                    features = [self._unembed(s, f) for (s, _), f in zip(split, maps)]
                parts = [self._refine(io.head_conv, p, f) for p, f in zip(parts, features)]
            outputs += parts
        if self.config.prediction == "sample":
            outputs = [self._velocity_of_sample(s, x0) for s, x0 in zip(ordered, outputs)]
        elif self.config.prediction == "preconditioned":
            outputs = [self._velocity_of_preconditioned(s, f) for s, f in zip(ordered, outputs)]
        index = {id(s): i for i, s in enumerate(ordered)}
        return [outputs[index[id(s)]] for s in streams]

    def _rope(self, streams: list[LatentStream], device: torch.device) -> tuple[Tensor, Tensor]:
        """(cos, sin) (1, L, 1, Dh/2) for the streams' tokens, cached by their layout on the clip clock
        (a sampler asks for the same layout at every step)."""
        patch = tuple(self.config.patch_size)
        key = (
            str(device),
            *((s.modality, s.token_grid(patch), s.start_seconds, s.frame_seconds) for s in streams),
        )
        cache = self._rope_cache
        if key not in cache:
            positions = torch.cat([s.token_positions(patch, self.config.rope_time_scale) for s in streams])
            cos, sin = rope_frequencies(
                positions.to(device), self.config.attention_head_dim, self.config.rope_theta
            )
            if len(cache) >= 32:
                cache.pop(next(iter(cache)))
            cache[key] = (cos[None, :, None], sin[None, :, None])
        return cache[key]

    def _embed(self, io: ExpertIO, stream: LatentStream) -> Tensor:
        """Latents (and the stream's self-condition estimate) -> (B, L, D) tokens."""
        latents = stream.latents.to(io.patch_embedding.weight.dtype)
        if self.config.signal_input:
            sigma = stream.noise_levels(tuple(self.config.patch_size)).to(latents.device)
            latents = latents * ((1 - sigma) / sigma.clamp(min=1e-6)).clamp(max=1.0).to(latents.dtype)
        estimate = stream.self_condition
        if estimate is not None and not hasattr(io, "self_condition_embedding"):
            raise ValueError(
                "this model does not self-condition (self_condition = false): drop the streams' estimates"
            )
        if stream.modality == "audio":
            tokens = self._gated(io, stream, io.patch_embedding(rearrange(latents, "b c t m -> b t (c m)")))
            if estimate is not None:
                estimate = estimate.to(tokens.dtype)
                tokens = tokens + io.self_condition_embedding(rearrange(estimate, "b c t m -> b t (c m)"))
            return tokens
        # a size the patches do not divide is named here
        f, h, w = stream.token_grid(tuple(self.config.patch_size))
        tokens = self._gated(io, stream, patch_linear(io.patch_embedding, latents))  # (B, F*H*W, D)
        if estimate is not None:
            tokens = tokens + patch_linear(io.self_condition_embedding, estimate.to(tokens.dtype))
        if stream.control is not None:
            if not hasattr(io, "control_embedding"):
                raise ValueError(
                    "this model has no motion control (control_channels = 0); drop the control maps"
                )
            tokens = tokens + patch_linear(io.control_embedding, stream.control.to(tokens.dtype))
        if hasattr(io, "position_embedding"):
            features = frame_positions(h, w, tokens.device).to(io.position_embedding.weight.dtype)
            tokens = tokens + io.position_embedding(features).repeat(f, 1).to(tokens.dtype)
        if hasattr(io, "frame_index_embedding") and stream.modality == "video":
            features = clip_positions(f, tokens.device).to(io.frame_index_embedding.weight.dtype)
            tokens = tokens + io.frame_index_embedding(features).repeat_interleave(h * w, 0).to(tokens.dtype)
        if stream.modality == "image":
            tokens = tokens + self.image_embedding.to(tokens.dtype)
        return tokens

    def _gated(self, io: ExpertIO, stream: LatentStream, tokens: Tensor) -> Tensor:
        """The latents' (B, L, D) embedding times (1 + the `input_gate` of each token's noise level)."""
        if not hasattr(io, "input_gate"):
            return tokens
        timesteps = stream.per_token(stream.timesteps, tuple(self.config.patch_size))  # (B, L)
        gate = io.input_gate(nn.functional.silu(self._time_embedding(io, timesteps)))
        return tokens * (1 + gate.to(tokens.dtype))

    def _unembed(self, stream: LatentStream, tokens: Tensor) -> Tensor:
        """(B, L, out) head output -> a tensor shaped like the stream's latents."""
        if stream.modality == "audio":
            return rearrange(tokens, "b t (c m) -> b c t m", m=stream.latents.shape[-1])
        f, h, w = stream.token_grid(tuple(self.config.patch_size))
        pt, ph, pw = self.config.patch_size
        return rearrange(
            tokens, "b (f h w) (pf ph pw c) -> b c (f pf) (h ph) (w pw)", f=f, h=h, w=w, pf=pt, ph=ph, pw=pw
        )

    @staticmethod
    def _refine(head_conv: nn.Module, latents: Tensor, features: Tensor | None = None) -> Tensor:
        """(B, C, F, H, W) head output + the residual convolutions, frame by frame; they also read the
        head's (B, Cf, F, H, W) feature map where it draws one."""
        frames = rearrange(latents, "b c f h w -> (b f) c h w")
        inputs = frames
        if features is not None:
            inputs = torch.cat([frames, rearrange(features, "b c f h w -> (b f) c h w").type_as(frames)], 1)
        # channels-last: a quarter less time for 3x3 convolutions on a CPU
        inputs = inputs.to(head_conv[0].weight.dtype, memory_format=torch.channels_last)
        refined = frames + head_conv(inputs).type_as(frames)
        return rearrange(refined, "(b f) c h w -> b c f h w", b=latents.shape[0])

    def _velocity_of_sample(self, stream: LatentStream, sample: Tensor) -> Tensor:
        """x_0 predicted for `stream` -> the flow velocity (x_t - x_0) / sigma, in the head's dtype."""
        sigma = stream.noise_levels(tuple(self.config.patch_size)).to(sample.device)
        velocity = (stream.latents.float() - sample.float()) / sigma.clamp(min=SAMPLE_MIN_SIGMA)
        return velocity.to(sample.dtype)

    def _velocity_of_preconditioned(self, stream: LatentStream, head: Tensor) -> Tensor:
        """The head's output F -> the velocity of x_0 = c_skip x_t + c_out F (see `prediction`)."""
        sigma = stream.noise_levels(tuple(self.config.patch_size)).to(head.device)
        d = (1 - sigma).square() + sigma.square()
        velocity = ((2 * sigma - 1) * stream.latents.float() - d.sqrt() * head.float()) / d
        return velocity.to(head.dtype)

    @staticmethod
    def _expert_timesteps(streams: list[LatentStream], patch) -> tuple[Tensor, int]:
        """Timesteps of one expert's tokens as (B, G) for G equal groups of `group_size` tokens.

        One timestep for all of a sample's tokens (the usual sampling step) makes one group; per-frame
        timesteps keep one group per latent frame. Modulation then broadcasts over a group's tokens instead
        of being computed per token: an audio latent frame is one token, and per-token modulation (a 6x wide
        projection of each token's time embedding) would cost audio tokens a sixth more than video tokens.
        """
        grids = [s.token_grid(patch) for s in streams]
        if all(s.timesteps.ndim <= 2 for s in streams):
            values = torch.cat([s.timesteps.reshape(len(s.timesteps), -1) for s in streams], dim=1)  # (B, F)
            if bool((values == values[:, :1]).all()):
                return values[:, :1], sum(math.prod(g) for g in grids)
        per_frame = all(s.timesteps.ndim <= 2 for s in streams) and len({g[1] * g[2] for g in grids}) == 1
        if per_frame:
            frames = [
                s.timesteps[:, None].expand(-1, g[0]) if s.timesteps.ndim == 1 else s.timesteps
                for s, g in zip(streams, grids)
            ]
            return torch.cat(frames, dim=1), grids[0][1] * grids[0][2]
        return torch.cat([s.per_token(s.timesteps, patch) for s in streams], dim=1), 1

    @staticmethod
    def _pooled_text(text_states: Tensor, text_mask: Tensor | None) -> Tensor:
        """(B, Lt, text_dim) -> (B, text_dim): the mean over real tokens (zero where none is real)."""
        if text_mask is None:
            return text_states.float().mean(dim=1)
        weights = text_mask.to(torch.float32)[..., None]
        return (text_states.float() * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)

    def _time_embedding(self, io: ExpertIO, timesteps: Tensor) -> Tensor:
        """(B, G) timesteps -> (B, G, D) fp32 embeddings."""
        freqs = self.timesteps_proj(timesteps.flatten().float())  # (B*G, freq_dim)
        return (
            io.time_embedder(freqs.to(io.time_embedder.linear_1.weight.dtype))
            .float()
            .unflatten(0, timesteps.shape)
        )

    def _time_windows(
        self, by_expert: dict[str, list[LatentStream]], patch: tuple[int, int, int]
    ) -> tuple[list[Tensor], int] | None:
        """Each token's time window for `av_bridge`, per expert: windows are the clip's video latent frames
        (one window per latent frame of the first video stream, from the earliest video stream's start); an
        audio token falls in the window its start time lies in; image and reference tokens, and audio outside
        the video's time span, in none (-1). None when no video stream runs beside the audio."""
        clips = [s for s in by_expert["video"] if s.modality == "video"]
        if not clips:
            return None
        width = clips[0].frame_seconds * patch[0]
        origin = min(s.start_seconds for s in clips)
        bins = {}
        for name, streams in by_expert.items():
            parts = []
            for s in streams:
                frames, rows, cols = s.token_grid(patch)
                start = (s.start_seconds - origin) / width
                step = s.frame_seconds * (patch[0] if name == "video" else 1) / width
                index = torch.floor(start + step * torch.arange(frames, dtype=torch.float64) + 1e-6).long()
                if s.modality not in ("video", "audio"):
                    index = torch.full_like(index, -1)
                parts.append(index.repeat_interleave(rows * cols))
            bins[name] = torch.cat(parts)
        windows = int(bins["video"].max()) + 1
        token_bins = [
            torch.where((b >= 0) & (b < windows), b, -1).to(by_expert[name][0].latents.device)
            for name, b in bins.items()
        ]
        return token_bins, windows

    @staticmethod
    def _key_padding_mask(streams: list[LatentStream], patch) -> Tensor | None:
        if all(s.token_mask is None for s in streams):
            return None
        parts = []
        for s in streams:
            mask = (
                s.token_mask if s.token_mask is not None else torch.ones_like(s.timesteps, dtype=torch.bool)
            )
            parts.append(s.per_token(mask.bool(), patch))
        return torch.cat(parts, dim=1)

    def num_tokens(self, streams: Sequence[LatentStream]) -> int:
        """Tokens per sample over all streams."""
        return sum(math.prod(s.token_grid(tuple(self.config.patch_size))) for s in streams)

    def forward_flops(self, streams: Sequence[LatentStream], text_len: int) -> int:
        """Matmul FLOPs of one forward pass per sample (multiply-add = 2 FLOPs); training is about 3x this."""
        cfg = self.config
        dim = self.hidden_size
        patch = tuple(cfg.patch_size)
        ffn = {"video": cfg.ffn_dim, "audio": cfg.audio_ffn_dim or cfg.ffn_dim}
        tokens = {name: self.num_tokens([s for s in streams if s.expert == name]) for name in EXPERTS}
        total = sum(tokens.values())
        bridge_windows = 0
        if cfg.av_bridge and all(tokens.values()):
            found = self._time_windows({n: [s for s in streams if s.expert == n] for n in EXPERTS}, patch)
            bridge_windows = found[1] if found else 0
        flops = 2 * text_len * (cfg.text_dim * dim + dim * dim)  # text projection
        flops += cfg.num_layers * 4 * total * total * dim  # joint self-attention scores and values
        for name, count in tokens.items():
            if count == 0:
                continue
            io = self.experts[name]
            groups = self._expert_timesteps([s for s in streams if s.expert == name], patch)[0].shape[1]
            per_layer = 2 * count * (6 * dim * dim + 2 * dim * ffn[name])  # q k v out, cross q out, FFN
            per_layer += 2 * text_len * 2 * dim * dim + 4 * count * text_len * dim  # cross-attention to text
            layer = self.blocks[0].experts[name]
            if hasattr(layer, "token_conv"):  # depthwise: each channel of a token takes the kernel's taps
                per_layer += 2 * count * layer.token_conv.weight.numel()
            if bridge_windows:  # the other modality's window means, projected
                per_layer += 2 * bridge_windows * layer.av_bridge.weight.numel()
            flops += cfg.num_layers * per_layer
            flops += 2 * groups * (cfg.freq_dim * dim + dim * dim + dim * 6 * dim)  # time embedding
            flops += 2 * count * (io.patch_embedding.weight[0].numel() * dim + io.proj_out.weight.numel())
            if hasattr(io, "self_condition_embedding") and any(
                s.self_condition is not None for s in streams if s.expert == name
            ):
                flops += 2 * count * io.self_condition_embedding.weight.numel()
            if hasattr(io, "head_mlp"):
                flops += 2 * count * io.head_mlp[0].weight.numel()
            if hasattr(io, "head_features"):
                flops += 2 * count * io.head_features.weight.numel()
            if hasattr(io, "head_conv"):  # both convolutions at every latent position the tokens cover
                positions = count * math.prod(patch)
                flops += 2 * positions * sum(conv.weight.numel() for conv in io.head_conv[::2])
        return flops


def cast_keeping_fp32(model: ModelMixin, dtype: torch.dtype) -> ModelMixin:
    """Cast `model` to `dtype`, keeping its `_keep_in_fp32_modules` (norms, time embedding, modulation) in fp32."""
    nn.Module.to(model, dtype)  # plain nn.Module.to: the fp32 exceptions are handled here
    keep = getattr(model, "_keep_in_fp32_modules", None) or []
    if dtype != torch.float32:
        for name, module in model.named_modules():
            if any(part in keep for part in name.split(".")):
                module.to(torch.float32)
        for name, param in model.named_parameters():
            if name.split(".")[-1] in keep:
                param.data = param.data.float()
    return model
