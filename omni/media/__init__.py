"""Media IO: mp4 (H.264 + AAC, sample-exact audio-video sync), wav and png, read and written atomically."""

from omni.media.atomic import atomic_output
from omni.media.clip import Clip
from omni.media.errors import MediaError

__all__ = ["Clip", "MediaError", "atomic_output"]
