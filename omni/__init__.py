"""omni: one diffusion transformer that generates video, images and audio together."""

__version__ = "0.1.0"

from omni.models import LatentStream, OmniTransformer  # noqa: E402

__all__ = ["LatentStream", "OmniTransformer", "__version__"]
