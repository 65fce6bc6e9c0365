"""Media IO: mp4 (H.264 + AAC, sample-exact audio-video sync), wav and png, read and written atomically."""

from omni.media.atomic import atomic_output
from omni.media.audio import read_audio, write_wav
from omni.media.clip import Clip
from omni.media.errors import MediaError
from omni.media.image import read_image, write_png
from omni.media.mp4 import write_mp4
from omni.media.resampling import resample
from omni.media.video import read_video

__all__ = [
    "Clip",
    "MediaError",
    "atomic_output",
    "read_audio",
    "read_image",
    "read_video",
    "resample",
    "write_mp4",
    "write_png",
    "write_wav",
]
