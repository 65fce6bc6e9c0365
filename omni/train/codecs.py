"""Train the codecs of a preset (video VAE, audio VAE, vocoder) on clips, then assemble a pipeline folder.

The classes are diffusers' own (`AutoencoderKLWan`, `AutoencoderKLLTX2Audio`, `LTX2Vocoder`) in the
preset's small configurations. Losses: L1 reconstruction + a small KL for the VAEs (log-mel L1 for audio),
multi-resolution STFT + log-mel L1 for the vocoder. The video loss weights foreground pixels (those far
from the frame's background colour) `foreground_weight` times more: with a plain L1 a VAE first learns the
background, which is most of every frame, and small objects stay invisible for thousands of steps. Each
stage is saved when it finishes, so a rerun skips finished stages; within a stage, progress is saved every
`checkpoint_minutes` (omni/train/partial.py), so a rerun goes on from there. The result is an `OmniPipeline` folder
(random transformer) that `omni prepare` encodes data with, plus `codecs_report.json` with held-out
reconstruction PSNR and mel errors.
"""

from __future__ import annotations

import json
import math
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLLTX2Audio, AutoencoderKLWan
from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm
from tqdm.auto import tqdm

from omni.audio.mel import MelConfig, MelSpectrogram
from omni.config import read_json
from omni.pipelines import inputs
from omni.pipelines.loading import resolve_device
from omni.pipelines.presets import PresetConfig, build_pipeline, load_preset
from omni.train.partial import StageCheckpoint, StageState

# A clip source yields (frames (F, H, W, 3) uint8, audio (C, N) float32) for a seed.
ClipSource = Callable[[int], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class CodecTraining:
    video_steps: int = 3000
    video_batch: int = 4
    video_frames: int = 9  # 1 + 2 chunks: trains the causal decoder's cache from one chunk to the next
    video_lr: float = 1e-3
    foreground_weight: float = 20.0
    # If > 0, replaces foreground_weight: each frame's foreground pixels together carry this share of the
    # frame's loss, whatever their number, so a small object weighs as much as a large one (a flat weight
    # leaves small objects' shapes to a handful of pixels). Per-pixel weights are capped at 50x the mean.
    foreground_share: float = 0.0
    # Pixels within this many of the foreground weigh as foreground too, so both sides of an object's edge
    # weigh the same. With the weight on the object's own pixels only, a pixel the decoder is unsure of
    # costs more left as room than painted as object (at weight 5, from a 1 in 6 chance on), so it grows
    # objects by a pixel or two all round, which rounds a small square's corners and a triangle's tips.
    foreground_margin: int = 0
    # Weight of an L1 loss on the spatial differences between neighbouring pixels (a gradient-difference
    # loss): a plain L1 is met as well by a blurred edge as by a sharp one that is a pixel off, so corners
    # round off; matching the differences too keeps them. 0 = off.
    edge_weight: float = 0.0
    # Weight of a patch discriminator's (hinge) verdict on decoded frames, scaled each step by the ratio of
    # the reconstruction loss's gradient norm to its own at the decoder's last layer. An L1 decoder unsure
    # of where an edge lies draws it blurred (every edge of the toy VAE spread over about 3 px); an
    # adversarial one has to draw it sharp. 0 = off.
    adversarial_weight: float = 0.0
    adversarial_start: int = 100  # steps the discriminator trains alone before the decoder answers to it
    # "mode": the decoder sees the posterior mean. "sample": it sees a sample; with the tiny KL weight the
    # encoder's initial std of 1 drowns the latent, and the decoder first learns to ignore it.
    video_latents: str = "mode"
    video_init: str = ""  # a video VAE folder to continue training from ("" = random init)
    # A trained video VAE of another temporal compression to start from: its weights are copied wherever
    # name and shape match; the temporal layers one has and the other lacks start fresh (or are dropped).
    video_transplant: str = ""
    # "all": encoder and decoder. "decoder": the encoder is frozen, so the latent space (and a transformer
    # trained on it) stays valid while the decoder sharpens.
    video_train: str = "all"
    image_every: int = 0  # every n-th video VAE step trains on single frames (0 = never)
    audio_steps: int = 3000
    audio_batch: int = 8
    vocoder_steps: int = 4000
    vocoder_batch: int = 8
    vocoder_segment_frames: int = 48  # mel frames per vocoder training segment
    # share of vocoder segments that contain a frame drawn by loudness: the toy world's beeps fill a few
    # percent of a clip, and uniformly drawn segments teach the vocoder mostly the quiet room sound
    vocoder_focus: float = 0.0
    vocoder_lr: float = 3e-4
    vocoder_init: str = ""  # a vocoder folder to continue training from ("" = random init)
    audio_lr: float = 3e-4
    kl_weight: float = 1e-6
    seed: int = 0
    eval_clips: int = 16
    device: str = "auto"  # auto (a CUDA GPU when present), cpu, cuda, cuda:N
    # Processes rendering the next clips while the codecs train (0 = render in the training process). On
    # a GPU a step takes less than rendering its clips in one process does; the clips and their order are
    # the same whatever the number.
    workers: int = 0
    # A stage in progress is saved this often (stages/<name>.partial.safetensors), so a run stopped midway
    # loses at most these minutes: rerun the same command to go on. 0 = only finished stages are saved.
    checkpoint_minutes: float = 5.0

    def __post_init__(self) -> None:
        if self.video_latents not in ("mode", "sample"):
            raise ValueError(f"video_latents must be 'mode' or 'sample', got {self.video_latents!r}")
        if self.video_init and self.video_transplant:
            raise ValueError(
                "give video_init (continue the same architecture) or video_transplant (start from a VAE "
                f"of another temporal compression), not both: got {self.video_init!r} and {self.video_transplant!r}"
            )
        if self.video_train not in ("all", "decoder"):
            raise ValueError(f"video_train must be 'all' or 'decoder', got {self.video_train!r}")
        if self.foreground_margin < 0:
            raise ValueError(f"foreground_margin must be >= 0 pixels, got {self.foreground_margin}")
        if self.adversarial_weight < 0 or self.adversarial_start < 0:
            raise ValueError(
                f"adversarial_weight and adversarial_start must be >= 0, got {self.adversarial_weight} "
                f"and {self.adversarial_start}"
            )
        if not 0.0 <= self.vocoder_focus <= 1.0:
            raise ValueError(f"vocoder_focus must be in [0, 1], got {self.vocoder_focus}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0 processes, got {self.workers}")
        if self.eval_clips < 1:
            raise ValueError(
                f"eval_clips must be >= 1, got {self.eval_clips}: the held-out clips also give the latent "
                "mean and std that normalise the latents the transformer sees"
            )
        for name in ("video_steps", "audio_steps", "vocoder_steps"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"{name} must be >= 0 (0: keep the initial weights), got {getattr(self, name)}"
                )
        if self.checkpoint_minutes < 0:
            raise ValueError(f"checkpoint_minutes must be >= 0 (0: never), got {self.checkpoint_minutes}")


class ToyworldSource:
    """The toy world as a clip source: the scene of each seed, rendered `num_frames` long. A class, not a
    closure, so that worker processes can be handed it."""

    def __init__(self, num_frames: int) -> None:
        self.num_frames = num_frames

    def __call__(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        from omni.data.toyworld import render, sample_scene

        rendered = render(sample_scene(seed, num_frames=self.num_frames))
        return rendered.frames, rendered.audio[None]


def toyworld_source(num_frames: int) -> ClipSource:
    return ToyworldSource(num_frames)


class Clips:
    """The clips of consecutive seeds, in order. With workers, the next `2 * workers` are rendered ahead in
    other processes (spawned, so a CUDA context is never forked); the source must then be picklable."""

    def __init__(self, source: ClipSource, start: int, workers: int = 0) -> None:
        self.source, self.seed, self.workers = source, start, workers
        self.pool: ProcessPoolExecutor | None = None
        self.pending: deque[Future] = deque()

    def __enter__(self) -> Clips:
        if self.workers:
            context = multiprocessing.get_context("spawn")
            self.pool = ProcessPoolExecutor(self.workers, mp_context=context)
        return self

    def __exit__(self, *_) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None

    @property
    def position(self) -> int:
        """The seed of the next clip `next` returns."""
        return self.seed - len(self.pending)

    def seek(self, seed: int) -> None:
        """Go on from the clip of `seed` (a resumed stage), dropping clips rendered ahead."""
        for future in self.pending:
            future.cancel()
        self.pending.clear()
        self.seed = seed

    def _take_seed(self) -> int:
        self.seed += 1
        return self.seed - 1

    def __next__(self) -> tuple[np.ndarray, np.ndarray]:
        if self.pool is None:
            return self.source(self._take_seed())
        while len(self.pending) < 2 * self.workers:
            self.pending.append(self.pool.submit(self.source, self._take_seed()))
        return self.pending.popleft().result()

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return self


def _video_batch(clips: Clips, size: int, frames: int, generator) -> Tensor:
    batch = []
    for _ in range(size):
        video, _ = next(clips)
        start = int(torch.randint(0, len(video) - frames + 1, (), generator=generator))
        batch.append(inputs.frames_to_tensor(video[start : start + frames]))
    return torch.cat(batch)  # (B, 3, F, H, W) in [-1, 1]


def _mel_batch(clips: Clips, size: int, mel: MelSpectrogram) -> tuple[Tensor, Tensor]:
    """(B, C, T, n_mels) log-mel with T = 1 + 4k, and the (B, C, N) waveforms, on `mel`'s device."""
    audios = [torch.from_numpy(next(clips)[1]) for _ in range(size)]
    length = min(a.shape[-1] for a in audios)
    waveform = torch.stack([a[:, :length] for a in audios]).to(mel.window.device)
    spec = mel(waveform)
    return spec[:, :, : inputs.whole_latent_frames(spec.shape[2], 4)], waveform


# (n_fft, hop) of the vocoder's STFT loss; 2048-point frames (7.8 Hz bins) resolve the beeps' pitch
STFT_RESOLUTIONS = ((512, 128), (256, 64), (1024, 256), (2048, 512))


def stft_loss(pred: Tensor, target: Tensor, resolutions=STFT_RESOLUTIONS) -> Tensor:
    """Multi-resolution STFT loss: spectral convergence + log-magnitude L1, averaged over resolutions."""
    loss = pred.new_zeros(())
    for n_fft, hop in resolutions:
        window = torch.hann_window(n_fft, device=pred.device)
        mags = [
            torch.stft(x.flatten(0, -2), n_fft, hop, window=window, return_complex=True).abs().clamp(min=1e-5)
            for x in (pred, target)
        ]
        loss = (
            loss + (mags[1] - mags[0]).norm() / mags[1].norm() + (mags[1].log() - mags[0].log()).abs().mean()
        )
    return loss / len(resolutions)


def _fit(
    name: str,
    steps: int,
    params,
    lr: float,
    step_fn: Callable[[int], Tensor],
    state: StageState | None = None,
    checkpoint: StageCheckpoint | None = None,
) -> list[float]:
    """Train `steps` steps of AdamW (100 warm-up steps, cosine to 10% of `lr`). With a checkpoint, the
    stage's `state` (plus this optimizer) is saved between steps whenever it is due, and a saved state is
    restored first, so the run goes on where the last one stopped."""
    if steps == 0:
        return []  # keep the weights as they are (e.g. only assemble a folder from a given VAE)
    optimizer = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    start, losses = 0, []
    if checkpoint is not None:
        if state is None:
            raise ValueError("a stage checkpoint needs the stage's state to save")
        state.optimizers["stage"] = optimizer
        start, losses = checkpoint.restore(state)
        if start:
            print(f"{name}: going on from step {start} of {steps} ({checkpoint.path})")
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / steps))),
        last_epoch=start - 1,  # a restored optimizer holds each group's initial_lr
    )
    bar = tqdm(range(start, steps), desc=name, dynamic_ncols=True, initial=start, total=steps)
    for step in bar:
        loss = step_fn(step)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        if checkpoint is not None and checkpoint.due() and step + 1 < steps:
            checkpoint.save(step + 1, losses, state)  # between steps: weights, optimizer, clips agree
    return losses


def foreground_mask(x: Tensor, threshold: float = 0.25, margin: int = 0) -> Tensor:
    """(B, 1, F, H, W) True where a pixel differs from its frame's median colour by more than `threshold`
    (in [-1, 1] units) in some channel, or lies within `margin` pixels (a square around it) of such a pixel."""
    background = x.flatten(3).median(-1).values[..., None, None]  # (B, 3, F, 1, 1)
    mask = (x - background).abs().amax(1, keepdim=True) > threshold
    if margin > 0:
        grown = nn.functional.max_pool3d(
            mask.float(), (1, 2 * margin + 1, 2 * margin + 1), stride=1, padding=(0, margin, margin)
        )
        mask = grown > 0
    return mask


def foreground_weights(x: Tensor, weight: float, threshold: float = 0.25, margin: int = 0) -> Tensor:
    """(B, 1, F, H, W) per-pixel loss weights: `weight` on foreground pixels (`foreground_mask`), 1 elsewhere."""
    return 1 + (weight - 1) * foreground_mask(x, threshold, margin).float()


def foreground_share_weights(x: Tensor, share: float, cap: float = 50.0, margin: int = 0) -> Tensor:
    """(B, 1, F, H, W) per-pixel loss weights with mean 1 per frame, the foreground pixels of each frame
    holding `share` of it together (capped at `cap` per pixel); a frame with no foreground weighs evenly."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"foreground_share must be in (0, 1), got {share}")
    foreground = foreground_mask(x, margin=margin).float()
    pixels = foreground[0, 0, 0].numel()
    count = foreground.sum((-2, -1), keepdim=True)  # (B, 1, F, 1, 1)
    on = (share * pixels / count.clamp(min=1)).clamp(max=cap)
    off = (1 - share) * pixels / (pixels - count).clamp(min=1)
    weights = torch.where(foreground.bool(), on, off)
    return torch.where(count > 0, weights, torch.ones_like(weights))


def edge_loss(recon: Tensor, x: Tensor, weights: Tensor) -> Tensor:
    """Weighted L1 between the horizontal and vertical pixel differences of `recon` and `x` (B, C, F, H, W);
    a difference weighs as the larger of its two pixels' `weights` (B, 1, F, H, W)."""
    losses = []
    for dim in (-1, -2):
        n = x.shape[dim] - 1
        pair = torch.maximum(weights.narrow(dim, 0, n), weights.narrow(dim, 1, n))
        losses.append(((recon.diff(dim=dim) - x.diff(dim=dim)).abs() * pair).mean() / pair.mean())
    return sum(losses) / 2


class FrameDiscriminator(nn.Module):
    """A patch discriminator on single frames: (N, 3, H, W) in [-1, 1] -> (N, 1, H/8, W/8) realness scores,
    each judging a patch about 40 px across. Spectral-normalised convolutions keep it from overpowering a
    small decoder."""

    def __init__(self, width: int = 32, levels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for level in range(levels):
            out = width * 2**level
            layers += [spectral_norm(nn.Conv2d(channels, out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            channels = out
        layers.append(spectral_norm(nn.Conv2d(channels, 1, 3, padding=1)))
        self.net = nn.Sequential(*layers)

    def forward(self, frames: Tensor) -> Tensor:
        return self.net(frames)


def _frames(video: Tensor) -> Tensor:
    """(B, C, F, H, W) -> (B * F, C, H, W)."""
    return video.transpose(1, 2).flatten(0, 1)


def adversarial_scale(reconstruction: Tensor, adversarial: Tensor, last_layer: Tensor) -> Tensor:
    """How much the adversarial loss must be scaled to pull the last layer as hard as the reconstruction
    loss does: the ratio of their gradient norms there (detached, at most 1e4)."""
    (rec,) = torch.autograd.grad(reconstruction, last_layer, retain_graph=True)
    (adv,) = torch.autograd.grad(adversarial, last_layer, retain_graph=True)
    return (rec.norm() / (adv.norm() + 1e-4)).clamp(max=1e4).detach()


def train_video_vae(
    vae: AutoencoderKLWan, source: ClipSource, cfg: CodecTraining, checkpoint: StageCheckpoint | None = None
) -> list[float]:
    generator = torch.Generator().manual_seed(cfg.seed)
    device = next(vae.parameters()).device
    vae.train().requires_grad_(True)
    decoder_only = cfg.video_train == "decoder"
    if decoder_only:
        vae.encoder.eval().requires_grad_(False)
        vae.quant_conv.eval().requires_grad_(False)

    discriminator = d_optimizer = None
    if cfg.adversarial_weight:
        with torch.random.fork_rng(devices=[]):  # seeded weights, the caller's random state untouched
            torch.manual_seed(cfg.seed)
            discriminator = FrameDiscriminator()
        discriminator = discriminator.to(device)
        d_optimizer = torch.optim.AdamW(discriminator.parameters(), lr=cfg.video_lr, betas=(0.5, 0.9))

    def judged(recon: Tensor, x: Tensor, reconstruction: Tensor, number: int) -> Tensor:
        """One hinge step of the discriminator on (x, recon), then the decoder's adversarial loss."""
        real, fake = _frames(x), _frames(recon)
        discriminator.requires_grad_(True)
        d_loss = (1 - discriminator(real)).relu().mean() + (1 + discriminator(fake.detach())).relu().mean()
        d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        d_optimizer.step()
        if number < cfg.adversarial_start:
            return reconstruction
        discriminator.requires_grad_(False)
        g_loss = -discriminator(fake).mean()
        scale = adversarial_scale(reconstruction, g_loss, vae.decoder.conv_out.weight)
        return reconstruction + cfg.adversarial_weight * scale * g_loss

    def step(number: int) -> Tensor:
        if cfg.image_every and number % cfg.image_every == cfg.image_every - 1:
            # single frames, a batch as many frames as a clip batch: the decoder's first-frame path (every
            # image, every clip's first frame) sees one frame in `video_frames` otherwise
            x = _video_batch(clips, cfg.video_batch * cfg.video_frames, 1, generator)
        else:
            x = _video_batch(clips, cfg.video_batch, cfg.video_frames, generator)
        x = x.to(device)
        with torch.set_grad_enabled(not decoder_only):
            posterior = vae.encode(x).latent_dist
        latents = posterior.mode() if cfg.video_latents == "mode" else posterior.sample(generator)
        recon = vae.decode(latents).sample
        if cfg.foreground_share:
            weights = foreground_share_weights(x, cfg.foreground_share, margin=cfg.foreground_margin)
        else:
            weights = foreground_weights(x, cfg.foreground_weight, margin=cfg.foreground_margin)
        reconstruction = ((recon - x).abs() * weights).mean() / weights.mean()
        if cfg.edge_weight:
            reconstruction = reconstruction + cfg.edge_weight * edge_loss(recon, x, weights)
        if discriminator is not None:
            reconstruction = judged(recon, x, reconstruction, number)
        return reconstruction if decoder_only else reconstruction + cfg.kl_weight * posterior.kl().mean()

    params = [p for p in vae.parameters() if p.requires_grad]
    try:
        with Clips(source, cfg.seed * 10_000_000, cfg.workers) as clips:
            state = StageState({"vae": vae}, clips, {"batch": generator})
            if discriminator is not None:
                state.modules["discriminator"] = discriminator
                state.optimizers["discriminator"] = d_optimizer
            return _fit("video VAE", cfg.video_steps, params, cfg.video_lr, step, state, checkpoint)
    finally:
        vae.requires_grad_(True)


def train_audio_vae(
    vae: AutoencoderKLLTX2Audio,
    mel: MelSpectrogram,
    source: ClipSource,
    cfg: CodecTraining,
    checkpoint: StageCheckpoint | None = None,
) -> list[float]:
    generator = torch.Generator().manual_seed(cfg.seed + 1)
    vae.train()

    def step(_: int) -> Tensor:
        spec, _ = _mel_batch(clips, cfg.audio_batch, mel)
        posterior = vae.encode(spec).latent_dist
        recon = vae.decode(posterior.sample(generator)).sample
        return (recon - spec).abs().mean() + cfg.kl_weight * posterior.kl().mean()

    with Clips(source, cfg.seed * 10_000_000 + 1_000_000, cfg.workers) as clips:
        state = StageState({"audio_vae": vae}, clips, {"sample": generator})
        return _fit(
            "audio VAE", cfg.audio_steps, list(vae.parameters()), cfg.audio_lr, step, state, checkpoint
        )


def train_vocoder(
    vocoder: LTX2Vocoder,
    mel: MelSpectrogram,
    source: ClipSource,
    cfg: CodecTraining,
    checkpoint: StageCheckpoint | None = None,
) -> list[float]:
    generator = torch.Generator().manual_seed(cfg.seed + 2)
    hop = mel.config.hop_length
    vocoder.train()

    def step(_: int) -> Tensor:
        spec, waveform = _mel_batch(clips, cfg.vocoder_batch, mel)
        frames = cfg.vocoder_segment_frames
        whole = spec[:, :, : waveform.shape[-1] // hop]  # frames with all their samples in the clip
        starts = segment_starts(whole, frames, cfg.vocoder_focus, generator)
        segment = torch.stack([spec[i, :, s : s + frames] for i, s in enumerate(starts)])
        target = torch.stack([waveform[i, :, s * hop : (s + frames) * hop] for i, s in enumerate(starts)])
        pred = vocoder(segment)[..., : target.shape[-1]]
        return stft_loss(pred, target) + (mel(pred) - segment).abs().mean()

    with Clips(source, cfg.seed * 10_000_000 + 2_000_000, cfg.workers) as clips:
        state = StageState({"vocoder": vocoder}, clips, {"segments": generator})
        params = list(vocoder.parameters())
        return _fit("vocoder", cfg.vocoder_steps, params, cfg.vocoder_lr, step, state, checkpoint)


def segment_starts(spec: Tensor, frames: int, focus: float, generator: torch.Generator) -> list[int]:
    """A start frame per item of `spec` (B, C, T, n_mels) for a `frames`-long segment: with probability
    `focus` the segment holds a frame drawn in proportion to its power (somewhere in the segment), else
    the start is uniform."""
    length = spec.shape[2]
    if length < frames:
        raise ValueError(
            f"vocoder_segment_frames ({frames}) exceeds the {length} whole mel frames of a training clip"
        )
    power = spec.float().exp().sum(dim=(1, 3)).cpu()  # (B, T); drawn with the CPU generator
    starts = []
    for item in range(spec.shape[0]):
        if float(torch.rand((), generator=generator)) < focus:
            loud = int(torch.multinomial(power[item] / power[item].sum(), 1, generator=generator))
            start = loud - int(torch.randint(0, frames, (), generator=generator))
        else:
            start = int(torch.randint(0, length - frames + 1, (), generator=generator))
        starts.append(min(max(start, 0), length - frames))
    return starts


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


@torch.no_grad()
def evaluate(pipe, source: ClipSource, count: int, seed: int = 987_654_321) -> dict:
    """Held-out reconstruction quality: video PSNR through the VAE, mel L1 through the audio VAE and through
    the audio VAE + vocoder + mel again, and the latent statistics used to normalise."""
    video_psnr, vae_mel, vocoder_mel, video_latents, audio_latents = [], [], [], [], []
    device = pipe.vae.device
    mel = MelSpectrogram(pipe.mel_config).to(device)
    for i in range(count):
        frames, audio = source(seed + i)
        frames = frames[: inputs.whole_latent_frames(len(frames), pipe.vae_temporal)]
        latents = pipe.encode_video(frames)
        video_latents.append(latents)
        video_psnr.append(psnr(pipe.decode_video(latents)[0], frames))
        spec = mel(torch.from_numpy(audio)[None].to(device))
        spec = spec[
            :, :, : inputs.whole_latent_frames(spec.shape[2], pipe.audio_vae.temporal_compression_ratio)
        ]
        z = pipe.audio_vae.encode(spec).latent_dist.mode()
        audio_latents.append(z)
        recon = pipe.audio_vae.decode(z).sample
        vae_mel.append(float((recon - spec).abs().mean()))
        resynth = mel(pipe.vocoder(recon))[:, :, : spec.shape[2]]
        vocoder_mel.append(float((resynth - spec[:, :, : resynth.shape[2]]).abs().mean()))
    video = torch.cat([v.flatten(2) for v in video_latents], dim=2)  # (1, C, N)
    audio = torch.cat([a.transpose(1, 0).flatten(1) for a in audio_latents], dim=1)  # (C, N)
    return {
        "video_psnr_db": float(np.mean(video_psnr)),
        "audio_vae_mel_l1": float(np.mean(vae_mel)),
        "vocoder_mel_l1": float(np.mean(vocoder_mel)),
        "video_latent_mean": video[0].mean(1).tolist(),
        "video_latent_std": video[0].std(1).tolist(),
        "audio_latent_mean": audio.mean(1).tolist(),
        "audio_latent_std": audio.std(1).tolist(),
        "clips": count,
    }


def _check_architecture(folder: Path, wanted, what: str, remedy: str) -> None:
    """Refuse a saved stage or init folder whose architecture differs from the module the preset builds
    (`wanted`, its diffusers config): a rerun after the preset changed would otherwise reuse the old codec."""
    saved = read_json(folder / "config.json", f"the config of {what}")
    for key, value in wanted.items():
        if key.startswith("_") or key in ("latents_mean", "latents_std"):  # latents: set after training
            continue
        if key not in saved:
            raise ValueError(
                f"{folder} lacks {key!r} in its config, which {what} sets to {value!r}; {remedy}"
            )
        if json.loads(json.dumps(saved[key])) != json.loads(json.dumps(value)):
            raise ValueError(
                f"{folder} was trained with {key}={saved[key]!r} but {what} asks for {value!r}; {remedy}"
            )


# The only keys a transplant may change: which levels compress time, and the factor that declares it.
TRANSPLANT_KEYS = ("temperal_downsample", "scale_factor_temporal")


def transplant_video_vae(vae: AutoencoderKLWan, source: Path) -> list[str]:
    """Copy into `vae` the weights of the trained VAE in `source`, which may compress time differently.

    A Wan VAE level that compresses time has a `time_conv` the others lack; every other weight has the
    same name and shape whatever the temporal compression, so a 2x-temporal VAE can start from a trained
    4x one (colours, shapes and the spatial layout already learned) instead of from noise. Any other
    difference of architecture is refused. Returns the names of the weights left at their initial values.
    """
    _check_architecture(
        source,
        {k: v for k, v in vae.config.items() if k not in TRANSPLANT_KEYS},
        "the VAE to transplant into",
        "a transplant may change only " + " and ".join(TRANSPLANT_KEYS),
    )
    old = AutoencoderKLWan.from_pretrained(source).state_dict()
    new = vae.state_dict()
    fresh = [k for k in new if k not in old or old[k].shape != new[k].shape]
    if any("time_conv" not in k for k in fresh):
        raise ValueError(
            f"{source} differs from the VAE to transplant into in more than its temporal layers: "
            f"{[k for k in fresh if 'time_conv' not in k][:4]}"
        )
    vae.load_state_dict({**new, **{k: old[k] for k in new if k not in fresh}})
    return fresh


def train_codecs(
    preset: str | PresetConfig, out: str | Path, cfg: CodecTraining, source: ClipSource | None = None
) -> dict:
    """Train each codec stage that `out` does not hold yet, normalise latents, save the pipeline folder."""
    from omni.pipelines.pipeline_omni import OmniPipeline

    preset = load_preset(preset) if isinstance(preset, str) else preset
    out = Path(out)
    stages = out / "stages"
    device = resolve_device(cfg.device)  # before anything is written
    stages.mkdir(parents=True, exist_ok=True)
    pipe = build_pipeline(preset, seed=cfg.seed).to(device)
    source = source or toyworld_source(33)
    mel = MelSpectrogram(pipe.mel_config).to(device)
    timings = {}
    if cfg.video_train == "decoder" and not cfg.video_init and not (stages / "vae" / "config.json").is_file():
        raise ValueError(
            "video_train='decoder' fine-tunes the decoder of a trained VAE: give video_init (--video-init DIR)"
        )
    stage_list = (  # init: a folder to continue from instead of the preset's random weights
        ("vae", AutoencoderKLWan, cfg.video_init, lambda m, c: train_video_vae(m, source, cfg, c)),
        ("audio_vae", AutoencoderKLLTX2Audio, "", lambda m, c: train_audio_vae(m, mel, source, cfg, c)),
        ("vocoder", LTX2Vocoder, cfg.vocoder_init, lambda m, c: train_vocoder(m, mel, source, cfg, c)),
    )
    for name, _, init, _ in stage_list:  # every folder is checked before any training starts
        wanted, what = getattr(pipe, name).config, f"preset {preset.name}'s {name}"
        if (stages / name / "config.json").is_file():
            _check_architecture(stages / name, wanted, what, "remove the folder to train it again")
        elif init:
            _check_architecture(Path(init), wanted, what, "start from another folder")
        elif (
            name == "vae"
            and cfg.video_transplant
            and not (Path(cfg.video_transplant) / "config.json").is_file()
        ):
            raise FileNotFoundError(f"video_transplant: no VAE config.json in {cfg.video_transplant}")
    for name, cls, init, train in stage_list:
        folder = stages / name
        partial = stages / f"{name}.partial.safetensors"
        if (folder / "config.json").is_file():
            setattr(pipe, name, cls.from_pretrained(folder).to(device))
            partial.unlink(missing_ok=True)  # left by a run stopped between saving the stage and removing it
            continue
        if init:
            setattr(pipe, name, cls.from_pretrained(init).to(device))
        elif name == "vae" and cfg.video_transplant:
            transplant_video_vae(pipe.vae, Path(cfg.video_transplant))
        checkpoint = StageCheckpoint(
            partial, stage_settings(cfg, getattr(pipe, name), mel.config), cfg.checkpoint_minutes
        )
        losses = train(getattr(pipe, name), checkpoint)
        timings[name] = checkpoint.seconds  # every sitting of a stage that was stopped and resumed
        module = getattr(pipe, name).eval()
        tmp = stages / f".tmp-{name}"
        module.save_pretrained(tmp)
        (tmp / "losses.json").write_text(json.dumps(losses))
        tmp.rename(folder)
        checkpoint.remove()
    for module in (pipe.vae, pipe.audio_vae, pipe.vocoder):
        module.eval()
    report = evaluate(pipe, source, cfg.eval_clips)
    pipe.vae.register_to_config(
        latents_mean=report["video_latent_mean"], latents_std=report["video_latent_std"]
    )
    pipe.register_to_config(
        audio_latents_mean=report["audio_latent_mean"], audio_latents_std=report["audio_latent_std"]
    )
    pipe.save_pretrained(out)
    OmniPipeline.from_pretrained(out)  # the folder loads
    report.update(training_seconds=timings, training=asdict(cfg), preset=preset.name)
    tmp = out / ".tmp-codecs_report.json"
    tmp.write_text(json.dumps(report, indent=2))
    tmp.replace(out / "codecs_report.json")  # last, and whole: the report marks a finished run
    return report


def stage_settings(cfg: CodecTraining, module, mel: MelConfig) -> dict:
    """What a stage's partial state must agree with to be resumed: the run's settings, the module's
    architecture (`<class>.<key>`; not the latent statistics, which each run measures anew) and the mel
    features the audio stages train on (`mel.<key>`)."""
    kind = type(module).__name__
    architecture = {
        f"{kind}.{key}": value
        for key, value in module.config.items()
        if not key.startswith("_") and key not in ("latents_mean", "latents_std")
    }
    return {**asdict(cfg), **architecture, **{f"mel.{k}": v for k, v in asdict(mel).items()}}
