"""The unified transformer, its token streams and conversion from Wan."""

from omni.models.streams import EXPERTS, MODALITIES, LatentStream
from omni.models.transformer import OmniTransformer

__all__ = ["EXPERTS", "MODALITIES", "LatentStream", "OmniTransformer"]
