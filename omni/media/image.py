"""Still images: png writing and reading of any image Pillow knows, as RGB uint8."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from omni.media.arrays import check_pixels, pixels_to_uint8, to_numpy
from omni.media.atomic import atomic_output
from omni.media.errors import MediaError
from omni.media.reading import check_readable


def write_png(path: str | os.PathLike[str], image: Any) -> Path:
    """Write an (H, W, 3) RGB image, uint8 or float in [0, 1] (numpy or torch), as a png, atomically."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise MediaError(f"{path}: write_png writes .png files, got suffix {path.suffix!r}")
    pixels = to_numpy(image, f"{path}: image")
    check_pixels(pixels, f"{path}: image", ndim=3)
    pixels = pixels_to_uint8(pixels, f"{path}: image")
    with atomic_output(path) as tmp:
        Image.fromarray(np.ascontiguousarray(pixels)).save(tmp, format="PNG")
    return path


def read_image(path: str | os.PathLike[str], *, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read any image Pillow can open as (H, W, 3) uint8 RGB, optionally resized to `size=(H, W)`.

    EXIF orientation is applied (photos come out upright). Grey, palette and alpha images are
    converted to RGB (alpha is dropped, not composited; 16-bit grey is scaled to 8 bits).
    Resizing is bicubic. Images above `PIL.Image.MAX_IMAGE_PIXELS` are refused (decompression
    bombs), not just warned about.

    Raises:
        FileNotFoundError: `path` does not exist.
        MediaError: not an image, corrupt or truncated, too large, floating-point, or a bad `size`.
    """
    path = check_readable(path)
    if size is not None and (len(size) != 2 or not all(isinstance(n, int) and n > 0 for n in size)):
        raise MediaError(f"{path}: size must be (H, W) with positive integers, got {size!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image = _to_rgb(ImageOps.exif_transpose(image), path)
    except MediaError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise MediaError(f"{path}: image too large, a possible decompression bomb: {error}") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise MediaError(f"{path}: not a readable image: {error}") from error
    if size is not None:
        image = image.resize((size[1], size[0]), Image.Resampling.BICUBIC)
    return np.array(image, dtype=np.uint8)


def _to_rgb(image: Image.Image, path: Path) -> Image.Image:
    """RGB from any mode; Pillow's own conversion would clip 16-bit grey to 255 instead of scaling it."""
    if image.mode == "F":
        raise MediaError(
            f"{path}: floating-point images (mode F) have no agreed range; convert to 8 or 16 bits"
        )
    if image.mode.startswith("I"):  # I;16, I;16B, ... and I, as Pillow opens 16-bit grey
        grey = np.clip(np.round(np.asarray(image, dtype=np.float64) / 257), 0, 255).astype(np.uint8)
        image = Image.fromarray(grey)
    return image.convert("RGB")
