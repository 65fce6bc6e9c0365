"""Prompts are cleaned as the checkpoint saw them in training."""

import pytest
from diffusers.pipelines.wan.pipeline_wan import prompt_clean

from omni.conditioning.text import clean_prompt, load_text_encoder

PROMPTS = ["  a red &amp;amp; blue\tball\n\n bouncing  ", "Tom &lt;3 &quot;cats&quot;", "plain", ""]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_wan_cleaning_equals_diffusers(prompt):
    assert clean_prompt(prompt, "wan") == prompt_clean(prompt)


def test_omni_models_take_the_prompt_as_given():
    assert clean_prompt(PROMPTS[0], None) == PROMPTS[0]


def test_unknown_cleaning_is_named():
    with pytest.raises(ValueError, match="'t5'"):
        clean_prompt("a ball", "t5")


def test_a_pipeline_folders_encoder_finds_its_tokenizer_beside_it(wan_folders):
    wan, folder, _ = wan_folders("wan2.1-t2v")
    encoder, tokenizer = load_text_encoder(str(folder / "text_encoder"))
    assert type(encoder).__name__ == "UMT5EncoderModel"
    assert tokenizer("a ball").input_ids == wan.tokenizer("a ball").input_ids
