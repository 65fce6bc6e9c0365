"""The training loop: one flow-matching objective over every task, on one process or many (`torchrun`).

All randomness of a step (tasks, timesteps, noise, condition dropout) comes from a generator seeded by
(seed, data-parallel rank, step), and the batch of a step is a function of the step too, so a resumed run
reproduces the losses of an uninterrupted one.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from tqdm.auto import tqdm

from omni.config import ConfigError, to_dict
from omni.models.transformer import OmniTransformer
from omni.models.weights import check_safetensors_only, check_weights_fit, read_safetensors_header
from omni.train.checkpoint import CheckpointManager
from omni.train.config import TrainConfig
from omni.train.distributed import DistInfo, init_distributed, shutdown
from omni.train.ema import EMA
from omni.train.metrics import cpu_bf16_slowdown, peak_flops
from omni.train.objective import flow_matching_loss, focus_needs_boxes
from omni.train.parallelize import parallelize


@dataclass
class TrainResult:
    steps: int
    last_loss: float
    losses: list[float]
    export: Path | None


def step_generator(seed: int, dp_rank: int, step: int) -> torch.Generator:
    """The CPU generator for everything random in one step."""
    return torch.Generator().manual_seed((seed * 1_000_003 + dp_rank) * 1_000_033 + step)


def lr_lambda(config: TrainConfig):
    """Linear warmup, then constant, cosine or linear decay to `min_lr_ratio`. transformers'
    `get_cosine_with_min_lr_schedule_with_warmup` has the same cosine and floor, but its first step runs at
    lr 0 (a step that trains nothing) and it has no linear decay to a floor; diffusers' schedules have no floor."""
    optim = config.optim

    def factor(step: int) -> float:
        if step < optim.warmup_steps:
            return (step + 1) / optim.warmup_steps
        if optim.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - optim.warmup_steps) / max(1, config.steps - optim.warmup_steps))
        shape = 0.5 * (1 + math.cos(math.pi * progress)) if optim.schedule == "cosine" else 1 - progress
        return optim.min_lr_ratio + (1 - optim.min_lr_ratio) * shape

    return factor


def parameter_groups(model: torch.nn.Module, lr: float, lr_scale: dict[str, float]) -> list[dict]:
    """The optimizer's parameter groups: one at `lr`, then one per multiplier of `lr_scale` (parameter-name
    glob -> multiplier; the first matching glob wins). A multiplier of 0 freezes the matching parameters: they
    stop requiring gradients and join no group. A glob that matches no parameter is an error, and so is
    freezing every parameter."""
    if not lr_scale:
        return [{"params": list(model.parameters()), "lr": lr}]
    groups: dict[float, list[torch.nn.Parameter]] = {1.0: []}
    used = dict.fromkeys(lr_scale, 0)
    for name, parameter in model.named_parameters():
        pattern = next((p for p in lr_scale if fnmatch.fnmatchcase(name, p)), None)
        scale = 1.0 if pattern is None else float(lr_scale[pattern])
        if pattern is not None:
            used[pattern] += 1
        groups.setdefault(scale, []).append(parameter)
    unused = [pattern for pattern, count in used.items() if not count]
    if unused:
        names = [name for name, _ in model.named_parameters()]
        raise ConfigError(
            f"optim.lr_scale: {unused} match no parameter of this model (names look like {names[0]!r}, "
            f"{names[len(names) // 2]!r}); use * for any part of a name"
        )
    frozen = groups.pop(0.0, [])
    if not any(groups.values()):
        raise ConfigError(
            f"optim.lr_scale: {lr_scale} freezes every parameter of this model; nothing would train"
        )
    for parameter in frozen:
        parameter.requires_grad_(False)
    return [{"params": params, "lr": lr * scale} for scale, params in groups.items() if params]


# Arguments that keep every weight's shape but change what the weights compute: a warm start refuses them.
REINTERPRETING_ARGUMENTS = ("prediction", "rope_theta", "rope_time_scale")


def build_model(config: TrainConfig, verbose: bool = True) -> OmniTransformer:
    """A fresh model from the preset, or the transformer of an existing folder, with `model.transformer`
    arguments applied over either. Over a folder, the arguments may only add layers (e.g. pooled_text):
    those start at their initialisation (named on stderr when `verbose`), every other weight is loaded."""
    overrides = dict(config.model.transformer)
    parameters = dict(inspect.signature(OmniTransformer.__init__).parameters)
    parameters.pop("self")
    unknown = sorted(set(overrides) - set(parameters))
    if unknown:
        raise ConfigError(f"model.transformer: unknown argument(s) {unknown}; allowed: {sorted(parameters)}")
    for name, value in overrides.items():  # a YAML "false" string would otherwise switch a flag on
        default = parameters[name].default
        if (
            isinstance(default, (bool, int, float))
            and type(value) not in {bool: (bool,), int: (int,), float: (int, float)}[type(default)]
        ):
            raise ConfigError(f"model.transformer.{name}: expected {type(default).__name__}, found {value!r}")
    if config.model.preset is not None:
        from omni.pipelines.presets import build_transformer, load_preset

        torch.manual_seed(config.seed)
        return build_transformer(load_preset(config.model.preset), **overrides)
    folder = Path(config.model.init)
    if (folder / "transformer" / "config.json").is_file():
        folder = folder / "transformer"
    if not overrides:
        return OmniTransformer.from_pretrained(folder)
    saved = OmniTransformer.load_config(folder)
    reread = sorted(
        k
        for k in REINTERPRETING_ARGUMENTS
        if k in overrides and overrides[k] != saved.get(k, parameters[k].default)
    )
    if reread:
        raise ConfigError(
            f"model.transformer {overrides} changes what the trained weights of {folder} mean ({reread}); "
            "over an init folder it may only add layers"
        )
    check_safetensors_only(folder)
    check_weights_fit(folder, OmniTransformer, saved)  # the folder is whole and matches its own config
    files = sorted(folder.glob("*.safetensors"))
    before = {k: shape for path in files for k, (shape, _) in read_safetensors_header(path).items()}
    torch.manual_seed(config.seed)
    model = OmniTransformer.from_config({**saved, **overrides})
    after = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    reshaped = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    dropped = sorted(before.keys() - after.keys())
    if reshaped or dropped:
        raise ConfigError(
            f"model.transformer {overrides} changes or removes trained weights of {folder} "
            f"(e.g. {(reshaped + dropped)[:3]}); over an init folder it may only add layers"
        )
    state = {}
    for path in files:
        state.update(load_file(str(path)))
    model.load_state_dict(state, strict=False)
    added = sorted(after.keys() - before.keys())
    if added and verbose:
        print(
            f"{len(added)} weight(s) new to {folder} start at their initialisation: {added}", file=sys.stderr
        )
    return model


class Trainer:
    def __init__(self, config: TrainConfig, dist_info: DistInfo | None = None):
        self.config = config
        self.dist = dist_info or init_distributed(config.parallel.sequence_parallel)
        self.shards = build_samples(config)
        if config.focus_weight > 0 and not self.shards.marks_subjects():
            raise ConfigError(focus_needs_boxes(config.focus_weight))
        model = build_model(config, verbose=self.dist.is_main)
        self.shards.check_transformer(model.config)
        if config.self_condition > 0 and not model.config.get("self_condition", False):
            raise ConfigError(
                f"self_condition: {config.self_condition} needs a model that reads its own estimate: "
                "set model.transformer.self_condition: true"
            )
        model = model.to(self.dist.device).train()
        self.model = parallelize(model, config.parallel, self.dist)
        optim = config.optim
        self.optimizer = torch.optim.AdamW(
            parameter_groups(self.model, optim.lr, optim.lr_scale),
            lr=optim.lr,
            betas=optim.betas,
            eps=optim.eps,
            weight_decay=optim.weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(config))
        self.ema = EMA(self.model, config.ema.decay)
        self.checkpoints = CheckpointManager(config.checkpoint.dir, config.checkpoint.keep_last, self.dist)
        self.step = 0
        self.log_path = Path(config.log.jsonl or Path(config.checkpoint.dir) / "log.jsonl").expanduser()
        self._tensorboard = None
        if config.log.tensorboard:
            try:
                importlib.import_module("torch.utils.tensorboard")
            except ImportError as error:
                raise ValueError(
                    f"log.tensorboard needs the tensorboard package (pip install tensorboard): {error}"
                ) from error
        precision = torch.bfloat16 if config.parallel.mixed_precision == "bf16" else torch.float32
        self._peak = peak_flops(self.dist.device, precision)
        self._check_precision()

    def _check_precision(self) -> None:
        """Say so when bf16 autocast would slow this CPU down: without bf16 units it emulates every matmul."""
        if self.config.parallel.mixed_precision != "bf16" or self.dist.device.type != "cpu":
            return
        slowdown = cpu_bf16_slowdown()
        if slowdown > 1.5 and self.dist.is_main:
            print(
                f"warning: parallel.mixed_precision is bf16, but a bf16 matmul takes {slowdown:.1f}x as long as "
                f"an fp32 one on this CPU ({torch.backends.cpu.get_cpu_capability()}, no bf16 units); "
                "--set parallel.mixed_precision=fp32 trains faster here",
                file=sys.stderr,
            )

    def resume(self) -> bool:
        """Continue from the newest checkpoint that is complete and intact, if any (damaged ones are skipped,
        each named with what is wrong)."""
        found = self.checkpoints.load_newest_intact(
            self.model, self.optimizer, self.ema, self.scheduler, log=self._say
        )
        if found is None:
            return False
        latest, record = found
        self.step = record["step"]
        if self.dist.is_main:
            print(f"resumed from {latest} (step {self.step})", file=sys.stderr)
        return True

    def _say(self, message: str) -> None:
        if self.dist.is_main:
            print(message, file=sys.stderr)

    def _autocast(self):
        if self.config.parallel.mixed_precision == "bf16" and self.dist.world_size == 1:
            return torch.autocast(self.dist.device.type, dtype=torch.bfloat16)
        return torch.autocast(self.dist.device.type, enabled=False)

    def train_step(self, batch) -> dict:
        cfg = self.config
        generator = step_generator(cfg.seed, self.dist.dp_rank, self.step)
        batch = batch.to(self.dist.device)
        start = time.perf_counter()
        with self._autocast():
            out = flow_matching_loss(
                self.model,
                batch,
                self.shards.empty_text,
                self.shards.empty_text_mask,
                cfg.objective,
                generator,
                every_stream=self.dist.world_size > 1,
            )
        out.loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.ema.update(self.model, cfg.ema.decay_at(self.step))
        if self.dist.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        loss = out.loss.detach()
        if self.dist.world_size > 1:  # log the mean over processes, not rank 0's share
            torch.distributed.all_reduce(loss)
            loss = loss / self.dist.world_size
        flops = 3 * batch.batch_size * self.model.forward_flops(_per_sample(out.streams), batch.text.shape[1])
        record = {
            "step": self.step + 1,
            "loss": float(loss),
            **{f"loss/{k}": v for k, v in out.per_modality.items()},
            **{f"task/{k}": v for k, v in out.per_task.items()},
            "grad_norm": float(grad_norm),
            "lr": self.scheduler.get_last_lr()[0],
            "tokens_per_s": out.tokens / seconds / self.dist.sequence_parallel,
            "tflops": flops / seconds / 1e12 / self.dist.sequence_parallel,
            "step_seconds": seconds,
        }
        if self._peak:
            record["mfu"] = self._peak.mfu(record["tflops"] * 1e12)
        return record

    def _log(self, record: dict) -> None:
        if not self.dist.is_main:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.config.log.tensorboard:
            if self._tensorboard is None:
                from torch.utils.tensorboard import SummaryWriter

                self._tensorboard = SummaryWriter(str(self.log_path.parent / "tensorboard"))
            for key, value in record.items():
                if key != "step":
                    self._tensorboard.add_scalar(key, value, record["step"])

    def save(self) -> None:
        self.checkpoints.save(
            self.step, self.model, self.optimizer, self.ema, self.scheduler, {"config": to_dict(self.config)}
        )

    def export(self, out: Path | None = None) -> Path:
        """Write the EMA weights as an OmniPipeline folder (safetensors), atomically. Collective."""
        full = self.ema.full_state_dict()
        out = Path(out or Path(self.config.checkpoint.dir).expanduser() / "export")
        if self.dist.is_main:
            export_pipeline(self.config, self.model.config, full, out)
        self.dist.barrier()
        return out

    def fit(self, max_steps: int | None = None, max_seconds: float | None = None) -> TrainResult:
        """Train until `config.steps` (or `max_steps` more steps, or `max_seconds` of wall time, whichever
        comes first); checkpoint, log and export along the way, and checkpoint + export when time is up."""
        cfg = self.config
        end = cfg.steps if max_steps is None else min(cfg.steps, self.step + max_steps)
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        out_of_time = False
        batches = self.shards.batches(
            cfg.data.batch_size, cfg.seed, self.dist.dp_rank, self.dist.dp_size, self.step
        )
        losses: list[float] = []
        recent: list[dict] = []
        progress = tqdm(
            total=end, initial=self.step, desc="training", disable=not self.dist.is_main, dynamic_ncols=True
        )
        while self.step < end and not out_of_time:
            record = self.train_step(_next_batch(batches, self.step))
            out_of_time = deadline is not None and time.monotonic() >= deadline
            self.step += 1
            losses.append(record["loss"])
            recent.append(record)
            progress.update(1)
            if self.step % cfg.log.every == 0 or self.step == end:
                summary = _average(recent)
                recent.clear()
                self._log(summary)
                postfix = {"loss": f"{summary['loss']:.4f}", "tok/s": f"{summary['tokens_per_s']:.0f}"}
                if "mfu" in summary:
                    postfix["mfu"] = f"{summary['mfu']:.1%}"
                progress.set_postfix(postfix)
            if self.step % cfg.checkpoint.every == 0 or self.step == end or out_of_time:
                self.save()
            if cfg.checkpoint.export_every and self.step % cfg.checkpoint.export_every == 0:
                self.export()
        progress.close()
        exported = self.export() if self.step >= cfg.steps or out_of_time else None
        return TrainResult(self.step, losses[-1] if losses else float("nan"), losses, exported)


def _next_batch(batches, step: int):
    """The next batch; a data worker that died (the kernel's out-of-memory killer, a stray kill) is reported
    as such, not as a bug: the run's checkpoints are intact and a rerun goes on from the newest."""
    try:
        return next(batches)
    except RuntimeError as error:
        if "DataLoader worker" not in str(error):
            raise
        raise ChildProcessError(
            f"a data worker stopped before step {step + 1} ({error}); if the machine ran out of memory, lower "
            "data.num_workers or data.batch_size; rerun the same command to go on from the last checkpoint"
        ) from error


def codec_pipeline(config: TrainConfig):
    """The pipeline whose codecs and text encoder the data is encoded with: `model.codecs` (a pipeline folder,
    or the name of a preset whose codecs need no training), else the init folder's, else the preset's own."""
    from omni.pipelines.pipeline_omni import OmniPipeline
    from omni.pipelines.presets import build_pipeline, load_preset

    codecs = config.model.codecs
    if codecs is not None and Path(codecs).expanduser().is_dir():
        return OmniPipeline.from_pretrained(Path(codecs).expanduser())
    if codecs is None and config.model.init is not None:
        return OmniPipeline.from_pretrained(config.model.init)
    name = codecs or config.model.preset
    preset = load_preset(name)
    if preset.has_trained_codecs:
        raise ValueError(
            f"preset {name!r} has trained codecs: set model.codecs to the pipeline folder that holds them"
        )
    return build_pipeline(preset)


def build_samples(config: TrainConfig):
    """The training data: `LatentShards` of a prepared folder, or `StreamedSamples` rendered on the fly."""
    if config.data.shards is not None:
        from omni.data.shards import LatentShards

        return LatentShards(config.data.shards)
    from omni.data.prepare import default_format
    from omni.data.stream import StreamedSamples

    pipe = codec_pipeline(config)
    frames = None if config.data.frames is None else (config.data.frames,)
    fmt = default_format(pipe, frames=frames)
    return StreamedSamples(
        config.data.stream,
        pipe,
        fmt,
        pipe.config.max_text_tokens,
        config.data.num_workers,
        options=config.data.options,
    )


def _per_sample(streams):
    """Streams of one sample (shapes only matter) for FLOP counting."""
    from omni.models.streams import LatentStream

    return [
        LatentStream(
            s.modality,
            s.latents[:1],
            s.timesteps[:1],
            s.start_seconds,
            s.frame_seconds,
            self_condition=None if s.self_condition is None else s.self_condition[:1],
        )
        for s in streams
    ]


def _average(records: list[dict]) -> dict:
    keys = {k for r in records for k in r}
    out = {k: sum(r[k] for r in records if k in r) / sum(k in r for r in records) for k in keys}
    out["step"] = records[-1]["step"]
    return out


def export_pipeline(config: TrainConfig, model_config, weights: dict, out: Path) -> None:
    """Assemble transformer weights and the codecs into an OmniPipeline folder at `out` (atomic replace)."""
    model = OmniTransformer.from_config(model_config)
    model.load_state_dict(weights)
    pipe = codec_pipeline(config)
    pipe.transformer = model
    tmp = out.with_name(f".tmp-{out.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(tmp)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def train(
    config: TrainConfig,
    resume: bool = True,
    export_only: str | Path | None = None,
    max_seconds: float | None = None,
) -> TrainResult:
    """Entry point for `omni train` and `torchrun -m omni.train`. With `export_only`, nothing trains: the
    newest checkpoint's EMA weights are written there as a pipeline folder (a run stopped before its end,
    or one to score midway between its exports). `max_seconds` ends this stretch of training early, with
    a checkpoint and an export, so a rerun goes on from there."""
    trainer = Trainer(config)
    try:
        if export_only is not None:
            if not trainer.resume():
                raise FileNotFoundError(
                    f"no complete checkpoint in {config.checkpoint.dir} to export: train first (omni train "
                    "--config ...), or point checkpoint.dir at the run"
                )
            return TrainResult(trainer.step, float("nan"), [], trainer.export(Path(export_only)))
        if resume:
            trainer.resume()
        return trainer.fit(max_seconds=max_seconds)
    finally:
        shutdown()
