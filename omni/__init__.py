"""omni: one diffusion transformer that generates video, images and audio together."""

__version__ = "0.1.0"

__all__ = ["LatentStream", "OmniTransformer", "__version__"]


def __getattr__(name: str):
    # The model classes import torch; `import omni` (and so `omni --help`) does not need it.
    if name in ("LatentStream", "OmniTransformer"):
        import omni.models

        return getattr(omni.models, name)
    raise AttributeError(f"module 'omni' has no attribute {name!r}")
