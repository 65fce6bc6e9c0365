"""The trainer end to end on the tiny preset: the loss falls, a killed run resumes exactly, torchrun works."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from omni.config import ConfigError
from omni.data.prepare import PrepareConfig, default_format, prepare
from omni.data.sources import build_source
from omni.pipelines.pipeline_omni import OmniPipeline
from omni.train.config import load_train_config
from omni.train.trainer import Trainer, build_model, train

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data(tmp_path_factory, tiny_pipeline):
    root = tmp_path_factory.mktemp("train")
    codecs = root / "codecs"
    tiny_pipeline.save_pretrained(codecs)
    fmt = default_format(tiny_pipeline, fps=8, height=32, width=32, frames=[17])
    source = build_source("toyworld", fmt, count=8, seed=0)
    prepare(
        source,
        tiny_pipeline,
        root / "shards",
        PrepareConfig(fmt, 32, shard_size=4),
        codecs=codecs,
        progress=False,
    )
    return root


def overrides(data, run, **extra):
    return {
        "data.shards": str(data / "shards"),
        "model.codecs": str(data / "codecs"),
        "checkpoint.dir": str(run),
        "log.every": 1,
        **extra,
    }


@pytest.mark.slow
def test_loss_falls_and_the_export_loads(data, tmp_path):
    config = load_train_config("tiny", overrides(data, tmp_path, steps=60, **{"checkpoint.every": 60}))
    result = Trainer(config).fit()
    first, last = sum(result.losses[:10]) / 10, sum(result.losses[-10:]) / 10
    assert last < 0.85 * first, (first, last)
    pipe = OmniPipeline.from_pretrained(result.export)
    out = pipe(
        "a red ball bouncing", task="t2av", num_inference_steps=2, height=32, width=32, fps=8, progress=False
    )
    assert out.frames.shape[1:] == (16, 32, 32, 3)


def test_a_stopped_run_exports_its_newest_checkpoint_without_training(data, tmp_path):
    config = load_train_config("tiny", overrides(data, tmp_path / "run", steps=20, **{"checkpoint.every": 3}))
    with pytest.raises(FileNotFoundError, match="no complete checkpoint in .*run to export"):
        train(config, export_only=tmp_path / "early")
    Trainer(config).fit(max_steps=7)  # stopped at step 7 of 20 (a stop saves a checkpoint)
    log = (tmp_path / "run" / "log.jsonl").read_text()
    result = train(config, export_only=tmp_path / "export")
    assert result.steps == 7 and result.export == tmp_path / "export"
    assert (tmp_path / "run" / "log.jsonl").read_text() == log  # nothing trained, nothing logged
    assert not (tmp_path / "run" / "export").exists()  # the run's own export folder is left alone
    pipe = OmniPipeline.from_pretrained(result.export)
    out = pipe("a red ball", task="t2i", num_inference_steps=2, height=32, width=32, progress=False)
    assert out.images.shape == (1, 32, 32, 3)


def _run_cli(data, run, steps, **extra):
    sets = [f"--set={k}={v}" for k, v in overrides(data, run, steps=steps, **extra).items()]
    command = [sys.executable, "-m", "omni.cli", "train", "--config", "tiny", *sets]
    return subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _losses(run) -> dict[int, float]:
    """Loss per step; a resumed run logs steps again after its checkpoint, and the last record wins."""
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records}


@pytest.mark.slow
def test_a_killed_run_resumes_with_the_same_losses(data, tmp_path):
    steps = 24
    uninterrupted = _run_cli(data, tmp_path / "a", steps, **{"checkpoint.every": 8})
    assert uninterrupted.wait(timeout=300) == 0, uninterrupted.stderr.read()[-2000:]

    killed = _run_cli(data, tmp_path / "b", steps, **{"checkpoint.every": 8})
    deadline = time.time() + 300
    while not (tmp_path / "b" / "step_00000008" / "trainer.json").is_file():
        assert killed.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    resumed = _run_cli(data, tmp_path / "b", steps, **{"checkpoint.every": 8})
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()[-2000:]
    assert "resumed from" in resumed.stderr.read()

    expected, got = _losses(tmp_path / "a"), _losses(tmp_path / "b")
    assert sorted(got) == sorted(expected) == list(range(1, steps + 1))
    assert all(got[s] == expected[s] for s in expected), [
        (s, expected[s], got[s]) for s in expected if got[s] != expected[s]
    ]


@pytest.mark.slow
def test_torchrun_trains_with_fsdp_on_two_processes(data, tmp_path):
    sets = [
        f"--set={k}={v}"
        for k, v in overrides(
            data, tmp_path, steps=6, **{"checkpoint.every": 3, "data.batch_size": 2}
        ).items()
    ]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29531",
        "-m",
        "omni.train",
        "--config",
        "tiny",
        *sets,
    ]
    run = subprocess.run(
        command,
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(_losses(tmp_path)) == list(range(1, 7))
    assert (tmp_path / "step_00000006" / "trainer.json").is_file()
    OmniPipeline.from_pretrained(tmp_path / "export")


@pytest.mark.slow
def test_a_trained_model_warm_starts_with_a_new_layer(data, tmp_path, capsys):
    """model.transformer arguments apply over an init folder: the new layer starts at zero and trains."""
    first = Trainer(load_train_config("tiny", overrides(data, tmp_path / "a", steps=2))).fit()
    warm = {"model.preset": None, "model.init": str(first.export), "model.transformer": {"pooled_text": True}}
    result = Trainer(load_train_config("tiny", overrides(data, tmp_path / "b", steps=3, **warm))).fit()
    assert "4 weight(s) new to" in capsys.readouterr().err
    transformer = OmniPipeline.from_pretrained(result.export).transformer
    assert transformer.config.pooled_text
    assert transformer.experts["video"].text_pool.weight.abs().sum() > 0  # trained away from its zero start
    with pytest.raises(ConfigError, match="over an init folder it may only add layers"):
        build_model(
            load_train_config(
                "tiny", overrides(data, tmp_path / "d", **{**warm, "model.transformer": {"ffn_dim": 40}})
            )
        )
    with pytest.raises(ConfigError, match=r"changes what the trained weights .* mean \(\['prediction'\]\)"):
        build_model(
            load_train_config(
                "tiny",
                overrides(data, tmp_path / "f", **{**warm, "model.transformer": {"prediction": "sample"}}),
            )
        )
    with pytest.raises(ConfigError, match="model.transformer.pooled_text: expected bool, found 'false'"):
        build_model(
            load_train_config(
                "tiny",
                overrides(data, tmp_path / "e", **{**warm, "model.transformer": {"pooled_text": "false"}}),
            )
        )
    with pytest.raises(ConfigError, match=r"model.transformer: unknown argument\(s\) \['pooled'\]"):
        Trainer(
            load_train_config(
                "tiny", overrides(data, tmp_path / "c", **{**warm, "model.transformer": {"pooled": True}})
            )
        )


def test_self_conditioned_training_trains_the_estimates_embedding(data, tmp_path):
    """`self_condition` in the recipe feeds a model built to read its own estimate; a model without the option,
    or a share outside [0, 1], is refused before training starts."""
    with pytest.raises(ConfigError, match="self_condition: 2.0 is not a probability"):
        load_train_config("tiny", overrides(data, tmp_path / "a", self_condition=2.0))
    with pytest.raises(ConfigError, match="set model.transformer.self_condition: true"):
        Trainer(load_train_config("tiny", overrides(data, tmp_path / "b", self_condition=0.5)))
    config = load_train_config(
        "tiny",
        overrides(
            data,
            tmp_path / "c",
            steps=2,
            self_condition=1.0,
            **{"model.transformer": {"self_condition": True}},
        ),
    )
    transformer = OmniPipeline.from_pretrained(Trainer(config).fit().export).transformer
    assert transformer.config.self_condition
    assert transformer.experts["video"].self_condition_embedding.weight.abs().sum() > 0


def test_a_focused_loss_needs_data_that_marks_subjects(data, tmp_path):
    with pytest.raises(ConfigError, match="focus_weight: 2.0 needs data that marks its subjects' boxes"):
        Trainer(load_train_config("tiny", overrides(data, tmp_path, focus_weight=2.0)))


def test_numbers_written_without_a_dot_are_numbers(data, tmp_path):
    # YAML 1.1 reads 1e-4 as a string; `omni train --help` shows --set optim.lr=1e-4
    from omni.cli.train import _override

    key, value = _override("optim.lr=1e-4")
    config = load_train_config("tiny", overrides(data, tmp_path, **{key: value}))
    assert config.optim.lr == 1e-4
    with pytest.raises(ConfigError, match="optim.lr: expected a number, found 'fast'"):
        load_train_config("tiny", overrides(data, tmp_path, **{"optim.lr": "fast"}))


@pytest.mark.parametrize("slowdown, warned", [(10.0, True), (1.0, False)])
def test_bf16_autocast_on_a_cpu_without_bf16_units_is_called_out(
    data, tmp_path, capsys, monkeypatch, slowdown, warned
):
    """Emulated bf16 made the toy recipe's steps 7x longer on an AVX2 CPU; the trainer says so up front."""
    monkeypatch.setattr("omni.train.trainer.cpu_bf16_slowdown", lambda: slowdown)
    config = load_train_config("tiny", overrides(data, tmp_path, **{"parallel.mixed_precision": "bf16"}))
    Trainer(config)
    err = capsys.readouterr().err
    assert ("10.0x as long as an fp32 one" in err and "parallel.mixed_precision=fp32" in err) == warned


def test_the_slowdown_is_measured_on_this_machine():
    from omni.train.metrics import cpu_bf16_slowdown

    # a ratio of two measured matmul speeds, not a constant: CPUs with AMX run bf16 tens of times faster
    assert 0.001 < cpu_bf16_slowdown() < 1000


def test_a_run_that_never_used_some_weights_resumes(data, tmp_path):
    """Image-only training never reaches the motion-control embedding, so the optimizer holds no state for
    it. Resuming such a run failed with "Missing key in checkpoint state_dict"; it must resume, with the
    losses of a run that was not stopped."""
    settings = {"tasks": {"t2i": 1.0}, "checkpoint.every": 100}
    full = Trainer(load_train_config("tiny", overrides(data, tmp_path / "a", steps=6, **settings))).fit()
    config = load_train_config("tiny", overrides(data, tmp_path / "b", steps=6, **settings))
    Trainer(config).fit(max_steps=3)  # a stop saves a checkpoint
    resumed = Trainer(config)
    assert resumed.resume() and resumed.step == 3
    control = resumed.model.experts["video"].control_embedding.weight
    assert control not in resumed.optimizer.state  # no made-up state: it starts as in an unstopped run
    resumed.fit()
    assert _losses(tmp_path / "b") == _losses(tmp_path / "a") == dict(enumerate(full.losses, start=1))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 64):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGES = {
    "truncated shard": lambda c: _truncate(c / "__0_0.distcp"),
    "flipped bytes": lambda c: _flip(c / "__0_0.distcp"),
    "truncated metadata": lambda c: _truncate(c / ".metadata"),
    "garbage trainer state": lambda c: (c / "trainer.json").write_text("{garbage"),
    # A checkpoint written before manifests existed: the failed load is what finds the damage.
    "truncated shard, no manifest": lambda c: (_truncate(c / "__0_0.distcp"), (c / "manifest.json").unlink()),
}


def test_a_damaged_checkpoint_is_skipped_for_the_newest_intact_one(data, tmp_path, capsys):
    import shutil

    from omni.train.checkpoint import CheckpointError

    settings = {"checkpoint.every": 2, "checkpoint.keep_last": 2}
    pristine = tmp_path / "pristine"
    Trainer(load_train_config("tiny", overrides(data, pristine, steps=4, **settings))).fit()
    assert sorted(p.name for p in pristine.glob("step_*")) == ["step_00000002", "step_00000004"]
    for name, damage in DAMAGES.items():
        run = tmp_path / name.replace(" ", "_")
        shutil.copytree(pristine, run)
        damage(run / "step_00000004")
        trainer = Trainer(load_train_config("tiny", overrides(data, run, steps=4, **settings)))
        assert trainer.resume() and trainer.step == 2, name
        err = capsys.readouterr().err
        assert f"skipping damaged checkpoint {run / 'step_00000004'}: " in err, name
        assert f"resumed from {run / 'step_00000002'}" in err and "Traceback" not in err, name
    damage(run / "step_00000002")
    with pytest.raises(CheckpointError, match="no checkpoint in .* can be resumed from"):
        Trainer(load_train_config("tiny", overrides(data, run, steps=4, **settings))).resume()


def test_logged_mfu_is_at_most_one_whatever_the_peak(data, tmp_path, monkeypatch):
    """A CPU peak measured while the machine was busy once gave mfu=2.5 in log.jsonl."""
    monkeypatch.setenv("OMNI_PEAK_TFLOPS", "1e-9")
    config = load_train_config("tiny", overrides(data, tmp_path, steps=3))
    Trainer(config).fit()
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(0 < r["mfu"] <= 1 for r in records)


def test_rerunning_a_finished_run_says_so_and_exports_again(data, tmp_path, capsys):
    from omni.cli import main

    sets = overrides(data, tmp_path / "run", steps=3, **{"checkpoint.every": 2})
    Trainer(load_train_config("tiny", sets)).fit(max_steps=2)
    args = [arg for key, value in sets.items() for arg in ("--set", f"{key}={value}")]
    assert main(["train", "--config", "tiny", *args]) == 0
    assert "trained 1 step to step 3, last loss" in capsys.readouterr().out  # resumed at step 2
    assert main(["train", "--config", "tiny", *args]) == 0
    out = capsys.readouterr().out
    assert "step 3 of 3: nothing left to train; exported" in out and "nan" not in out


def test_a_killed_data_worker_is_reported_as_such_not_as_a_bug(data, tmp_path, monkeypatch, capsys):
    """Killing the run's processes by name (or the out-of-memory killer) can take a data worker first."""
    from omni.cli import main

    def dead_worker(*args, **kwargs):
        raise RuntimeError("DataLoader worker (pid 6923) is killed by signal: Terminated.")
        yield

    monkeypatch.setattr("omni.data.shards.LatentShards.batches", dead_worker)
    sets = overrides(data, tmp_path / "run", steps=3)
    assert (
        main(["train", "--config", "tiny", *[a for k, v in sets.items() for a in ("--set", f"{k}={v}")]]) == 2
    )
    err = capsys.readouterr().err
    assert "a data worker stopped before step 1" in err and "killed by signal: Terminated" in err
    assert "rerun the same command" in err and "bug" not in err


def test_lr_scale_gives_matching_layers_their_own_learning_rate(data, tmp_path):
    sets = overrides(data, tmp_path / "run", steps=2, **{"optim.lr_scale": {"*patch_embedding*": 10}})
    trainer = Trainer(load_train_config("tiny", sets))
    base, scaled = trainer.optimizer.param_groups
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    assert {names[id(p)] for p in scaled["params"]} == {n for n in names.values() if "patch_embedding" in n}
    assert scaled["lr"] == pytest.approx(10 * base["lr"])
    before = {names[id(p)]: p.detach().clone() for p in scaled["params"]}
    trainer.fit()  # trains, checkpoints and resumes with its groups
    assert any(not torch.equal(before[n], p) for n, p in trainer.model.named_parameters() if n in before)
    again = Trainer(load_train_config("tiny", {**sets, "steps": 3}))
    assert again.resume()  # the optimizer's state loads into the same groups
    again.fit()
    assert again.step == 3 and len(again.optimizer.param_groups) == 2
    assert len((tmp_path / "run" / "log.jsonl").read_text().splitlines()) == 3  # resumed at step 2


def test_lr_scale_zero_freezes_matching_layers_and_resumes(data, tmp_path):
    sets = overrides(data, tmp_path / "run", steps=2, **{"optim.lr_scale": {"*experts.video*": 0}})
    trainer = Trainer(load_train_config("tiny", sets))
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    trained = {names[id(p)] for group in trainer.optimizer.param_groups for p in group["params"]}
    assert trained and not any("experts.video" in n for n in trained)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.fit()
    after = dict(trainer.model.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in before if "experts.video" in n)
    assert any(not torch.equal(before[n], after[n]) for n in trained)
    again = Trainer(load_train_config("tiny", {**sets, "steps": 3}))
    assert again.resume()  # the optimizer's state loads with the frozen weights left out
    again.fit()
    assert again.step == 3
    assert all(torch.equal(before[n], p) for n, p in again.model.named_parameters() if "experts.video" in n)


@pytest.mark.parametrize(
    "scale, message",
    [
        ({"*nothing_like_this*": 2.0}, r"\['\*nothing_like_this\*'\] match no parameter"),
        ({"*control*": -1}, "multiplier >= 0"),
        ({"*control*": True}, "multiplier >= 0"),
        ({"*": 0}, "freezes every parameter"),
    ],
)
def test_a_bad_lr_scale_is_refused_before_training(data, tmp_path, scale, message):
    with pytest.raises(ConfigError, match=message):
        Trainer(load_train_config("tiny", overrides(data, tmp_path, steps=2, **{"optim.lr_scale": scale})))
    assert not (tmp_path / "log.jsonl").exists()
