"""Learned-metric plugins: tiny random models saved to local folders load offline and score; missing or
broken weights make a metric unavailable with a one-line reason; the Fréchet distance is exact."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from omni.conditioning.text import DEFAULT_TEXT_ENCODER, text_encoder_path
from omni.config import ConfigError
from omni.eval.harness.decoded import DecodedMedia
from omni.eval.harness.score import score_results
from omni.eval.harness.suite import suite_from_dict
from omni.eval.learned import (
    FrechetVideoDistance,
    InceptionI3d,
    frechet_distance,
    gaussian_fit,
    load_learned_metrics,
    locate_weights,
)
from omni.eval.learned.i3d import same_padding
from omni.media import write_mp4
from omni.toyworld import render, sample_scene

TEXT = dict(
    hidden_size=32, intermediate_size=37, num_attention_heads=2, num_hidden_layers=2, vocab_size=30522
)
VISION = dict(
    hidden_size=32,
    intermediate_size=37,
    num_attention_heads=2,
    num_hidden_layers=2,
    image_size=32,
    patch_size=8,
)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """clip/ (CLIP), dino/ (DINOv2), clap/ (CLAP) and i3d/ folders of tiny random models, as users lay them out."""
    from transformers import (
        AutoTokenizer,
        BitImageProcessor,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        Dinov2Config,
        Dinov2Model,
    )

    root = tmp_path_factory.mktemp("weights")
    tokenizer = AutoTokenizer.from_pretrained(text_encoder_path(DEFAULT_TEXT_ENCODER))
    torch.manual_seed(0)
    clip = CLIPModel(
        CLIPConfig(
            text_config=TEXT | {"max_position_embeddings": 64}, vision_config=VISION, projection_dim=16
        )
    )
    clip.save_pretrained(root / "clip")
    tokenizer.save_pretrained(root / "clip")
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        root / "clip"
    )
    Dinov2Model(Dinov2Config(**{k: v for k, v in VISION.items()})).save_pretrained(root / "dino")
    BitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        root / "dino"
    )
    audio = dict(
        hidden_size=32, patch_embeds_hidden_size=16, depths=[1, 1], num_attention_heads=[2, 2], window_size=8
    )
    clap = ClapModel(
        ClapConfig(
            text_config=TEXT | {"max_position_embeddings": 80, "projection_dim": 16},
            audio_config=audio | {"projection_dim": 16, "enable_fusion": False},
            projection_dim=16,
        )
    )
    clap.save_pretrained(root / "clap")
    tokenizer.save_pretrained(root / "clap")
    ClapFeatureExtractor(truncation="rand_trunc").save_pretrained(root / "clap")
    from safetensors.torch import save_file

    (root / "i3d").mkdir()
    i3d = InceptionI3d()
    for (
        module
    ) in i3d.modules():  # variance-preserving init, so features of a random net still differ by input
        if isinstance(module, torch.nn.Conv3d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    state = {k: v.half() for k, v in i3d.state_dict().items() if not k.endswith("num_batches_tracked")}
    save_file(state, root / "i3d" / "model.safetensors")
    return root


@pytest.fixture(scope="module")
def clips() -> list[DecodedMedia]:
    out = []
    for seed in range(3):
        clip = render(sample_scene(seed, num_objects=1, motion="horizontal"))
        out.append(
            DecodedMedia(Path(f"{seed}.mp4"), clip.frames, clip.fps, clip.audio[None], clip.sample_rate)
        )
    return out


ITEM = suite_from_dict(
    {"name": "s", "items": [{"id": "a", "task": "t2av", "prompt": "a red ball bouncing"}]}
).items[0]


def test_every_plugin_loads_offline_from_local_folders_and_scores(weights, clips):
    plugins, unavailable = load_learned_metrics(weights)
    assert unavailable == {} and {p.name for p in plugins} == {"clip", "dino", "clap", "i3d"}
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    values = {}
    for plugin in plugins:
        values |= plugin.item_metrics(ITEM, clips[0])
    assert set(values) == {"clip_score", "dino_subject_consistency", "clap_score"}
    assert all(np.isfinite(v) for v in values.values())
    assert -100 <= values["clip_score"] <= 100 and -100 <= values["clap_score"] <= 100
    still = DecodedMedia(Path("s.mp4"), np.repeat(clips[0].frames[:1], 8, axis=0), 16.0, None, None)
    dino = next(p for p in plugins if p.name == "dino")
    assert dino.item_metrics(ITEM, still)["dino_subject_consistency"] == pytest.approx(1.0, abs=1e-5)


def test_siglip_folder_is_read_as_the_text_video_metric(tmp_path, clips):
    from transformers import AutoTokenizer, SiglipConfig, SiglipImageProcessor, SiglipModel

    SiglipModel(
        SiglipConfig(text_config=TEXT | {"max_position_embeddings": 64}, vision_config=VISION)
    ).save_pretrained(tmp_path / "clip")
    AutoTokenizer.from_pretrained(text_encoder_path(DEFAULT_TEXT_ENCODER)).save_pretrained(tmp_path / "clip")
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path / "clip")
    plugins, unavailable = load_learned_metrics(tmp_path)
    assert [p.name for p in plugins] == ["clip"] and set(unavailable) == {"dino", "clap", "i3d"}
    assert np.isfinite(plugins[0].item_metrics(ITEM, clips[0])["clip_score"])


def test_missing_or_broken_weights_make_metrics_unavailable_not_errors(tmp_path):
    plugins, unavailable = load_learned_metrics(None)
    assert plugins == [] and set(unavailable) == {"clip", "dino", "clap", "i3d"}
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "config.json").write_text('{"model_type": "bert"}')
    (tmp_path / "dino").mkdir()
    (tmp_path / "dino" / "config.json").write_text("{not json")
    (tmp_path / "i3d").mkdir()
    (tmp_path / "i3d" / "model.safetensors").write_bytes(b"garbage")
    plugins, unavailable = load_learned_metrics(tmp_path)
    assert plugins == []
    assert "'bert' model; expected clip or siglip" in unavailable["clip"]
    assert unavailable["dino"].startswith("dino: cannot load")
    assert unavailable["i3d"].startswith("i3d: cannot read")
    assert "looked for" in unavailable["clap"]
    assert all("\n" not in reason for reason in unavailable.values())


def test_an_unparsable_or_foreign_config_makes_any_plugin_unavailable(tmp_path):
    for name in ("clip", "dino", "clap"):
        (tmp_path / name).mkdir()
    (tmp_path / "clip" / "config.json").write_text("{not json")
    (tmp_path / "dino" / "config.json").write_text('{"model_type": "clip"}')
    (tmp_path / "clap" / "config.json").write_text('{"model_type": "bert"}')
    plugins, unavailable = load_learned_metrics(tmp_path)
    assert plugins == []
    assert unavailable["clip"].startswith("clip: cannot load")
    assert "'clip' model; expected dinov2 or dinov2_with_registers or vit" in unavailable["dino"]
    assert "'bert' model; expected clap" in unavailable["clap"]


def test_pickle_weights_are_refused_not_loaded(tmp_path, weights):
    import shutil

    shutil.copytree(weights / "dino", tmp_path / "dino")
    (tmp_path / "dino" / "pytorch_model.bin").write_bytes(b"not loaded")
    plugins, unavailable = load_learned_metrics(tmp_path)
    assert plugins == [] and "refusing pickle-format weights" in unavailable["dino"]


def test_weights_can_be_named_in_a_yaml_file(tmp_path, weights):
    listing = tmp_path / "weights.yaml"
    listing.write_text(yaml.safe_dump({"dino": str(weights / "dino"), "i3d": "nowhere"}))
    located = locate_weights(listing)
    assert located.dino == str(weights / "dino") and located.clip is None
    plugins, unavailable = load_learned_metrics(listing)
    assert [p.name for p in plugins] == ["dino"] and "no model.safetensors" in unavailable["i3d"]
    listing.write_text("dinov2: x\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['dinov2'\]"):
        locate_weights(listing)


def test_frechet_distance_matches_the_closed_form():
    rng = np.random.default_rng(0)
    mean_a, mean_b = rng.normal(size=5), rng.normal(size=5)
    var_a, var_b = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    assert frechet_distance(mean_a, np.diag(var_a), mean_b, np.diag(var_b)) == pytest.approx(
        expected, rel=1e-10
    )
    # A shared rotation leaves the distance unchanged; full covariances take the same path.
    rotation = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    rotated = frechet_distance(
        rotation @ mean_a,
        rotation @ np.diag(var_a) @ rotation.T,
        rotation @ mean_b,
        rotation @ np.diag(var_b) @ rotation.T,
    )
    assert rotated == pytest.approx(expected, rel=1e-8)
    features = rng.normal(size=(50, 8))
    assert frechet_distance(*gaussian_fit(features), *gaussian_fit(features)) == pytest.approx(0, abs=1e-9)
    with pytest.raises(ValueError, match="shapes do not match"):
        frechet_distance(mean_a, np.eye(5), mean_b[:4], np.eye(4))


def test_i3d_has_the_reference_layout_and_tf_same_padding():
    model = InceptionI3d()
    keys = set(model.state_dict())
    for key in (
        "Conv3d_1a_7x7.conv3d.weight",
        "Conv3d_1a_7x7.bn.running_var",
        "Mixed_4f.b1b.conv3d.weight",
        "logits.conv3d.bias",
    ):
        assert key in keys
    assert model.Mixed_5c.b3b.conv3d.out_channels == 128
    assert same_padding((16, 224, 224), (7, 7, 7), (2, 2, 2)) == [2, 3, 2, 3, 2, 3]
    assert same_padding((5, 9, 9), (3, 3, 3), (2, 2, 2)) == [1, 1, 1, 1, 1, 1]
    with torch.no_grad():
        video = torch.randn(2, 3, 8, 32, 32)
        assert model.eval()(video).shape == (2, 400)
        assert model(video, features=True).shape == (2, 1024)


def test_fvd_is_zero_against_itself_and_positive_against_other_clips(weights, clips, tmp_path):
    fvd = FrechetVideoDistance.from_folder(weights / "i3d")
    fvd.size = 32  # 224 in real use; the plumbing is the same
    own = [fvd.item_features(ITEM, clip) for clip in clips]
    noise = DecodedMedia(
        Path("n.mp4"), np.random.default_rng(0).integers(0, 255, (10, 64, 64, 3), np.uint8), 16.0, None, None
    )
    other = [fvd.item_features(ITEM, noise), *own[:2]]
    result = fvd.set_metrics(
        {"reference": own, "copy": list(own), "other": other, "lonely": own[:1]}, "reference"
    )
    assert result["copy"]["fvd"] == pytest.approx(0, abs=1e-3)
    assert result["other"]["fvd"] > 1e-3 and "lonely" not in result  # one clip has no covariance
    assert fvd.set_metrics({"a": own}, None) == {}


def test_score_reports_learned_metrics_and_fvd_against_the_reference(weights, clips, tmp_path):
    plugins, unavailable = load_learned_metrics(weights)
    for plugin in plugins:
        if isinstance(plugin, FrechetVideoDistance):
            plugin.size = 32
    suite = suite_from_dict(
        {"name": "s", "items": [{"id": f"c{i}", "task": "t2av", "prompt": "a ball"} for i in range(3)]}
    )
    for system in ("reference", "model"):
        for i, clip in enumerate(clips):
            frames = clip.frames if system == "reference" else clip.frames[:, ::-1]
            write_mp4(tmp_path / system / f"c{i}.mp4", frames, clip.fps, clip.audio, clip.sample_rate)
    scores = score_results(tmp_path, suite, learned=plugins, unavailable=unavailable, progress=False)
    model = scores["systems"]["model"]
    assert model["summary"]["fvd"] > 0 and scores["systems"]["reference"]["summary"]["fvd"] == pytest.approx(
        0, abs=1e-6
    )
    assert model["summary"]["clip_score"] is not None and model["summary"]["clap_score"] is not None
    assert scores["learned"] == {
        "clip": "available",
        "dino": "available",
        "clap": "available",
        "i3d": "available",
    }
