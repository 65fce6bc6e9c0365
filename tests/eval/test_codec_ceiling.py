"""scripts/measure_codec_ceiling.py: the suite's true clips score perfectly before the codecs."""

import pytest

from tests.helpers import load_script


@pytest.mark.slow
def test_true_clips_score_perfectly_and_codec_clips_are_scored(tiny_pipeline):
    module = load_script("measure_codec_ceiling")
    table = module.ceiling(tiny_pipeline, scenes=1)
    truth, coded = table["true clips"], table["through the codecs"]
    assert truth["color_accuracy"] == truth["shape_accuracy"] == truth["motion_accuracy"] == 1.0
    assert set(coded) == set(module.KEYS)  # random codecs: values of any size, but every metric reported
