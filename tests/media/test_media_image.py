"""png writing and reading of any image as RGB uint8."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from omni.media import MediaError, read_image, write_png


def gradient(height: int = 24, width: int = 40) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 6, y * 10, (x + y) * 3], axis=-1).astype(np.uint8)


def test_png_round_trip_is_exact(tmp_path):
    image = gradient()
    path = write_png(tmp_path / "frame.png", image)
    read = read_image(path)
    assert read.dtype == np.uint8 and read.flags.writeable
    np.testing.assert_array_equal(read, image)


def test_float_and_torch_images_are_scaled_from_unit_range(tmp_path):
    image = gradient()
    as_float = torch.from_numpy(image).float() / 255
    np.testing.assert_array_equal(read_image(write_png(tmp_path / "f.png", as_float)), image)
    half = np.full((4, 6, 3), 0.5, np.float16)
    assert (read_image(write_png(tmp_path / "h.png", half)) == 128).all()


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [("L", 77, (77, 77, 77)), ("RGBA", (10, 20, 30, 0), (10, 20, 30)), ("P", 0, (0, 0, 0))],
)
def test_grey_alpha_and_palette_images_read_as_rgb(tmp_path, mode, value, expected):
    path = tmp_path / f"{mode}.png"
    Image.new(mode, (5, 3), value).save(path)
    read = read_image(path)
    assert read.shape == (3, 5, 3)
    assert (read == expected).all()


def test_16_bit_grey_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "depth.png"
    Image.fromarray(np.array([[0, 257 * 100, 65535]], np.uint16)).save(path)
    np.testing.assert_array_equal(read_image(path)[0], [[0, 0, 0], [100, 100, 100], [255, 255, 255]])


def test_size_is_height_then_width(tmp_path):
    path = write_png(tmp_path / "wide.png", gradient(24, 40))
    assert read_image(path, size=(12, 30)).shape == (12, 30, 3)
    flat = write_png(tmp_path / "flat.png", np.full((8, 8, 3), 200, np.uint8))
    assert (read_image(flat, size=(16, 4)) == 200).all()  # bicubic keeps a flat colour flat


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to view
    Image.new("RGB", (40, 20), (0, 128, 0)).save(path, exif=exif)
    assert read_image(path).shape == (40, 20, 3)


def test_images_above_the_pixel_limit_are_refused(tmp_path, monkeypatch):
    path = write_png(tmp_path / "big.png", gradient(64, 64))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # 4096 pixels: Pillow only warns here
    with pytest.raises(MediaError, match="decompression bomb"):
        read_image(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # more than twice the limit: Pillow raises
    with pytest.raises(MediaError, match="decompression bomb"):
        read_image(path)


def test_unreadable_images_raise_media_error_naming_the_file(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("definitely not a png\n")
    good = write_png(tmp_path / "good.png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    for path in (text, truncated, tmp_path):
        with pytest.raises(MediaError) as error:
            read_image(path)
        assert str(path) in str(error.value)
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "missing.png")
    with pytest.raises(MediaError, match=r"size must be \(H, W\)"):
        read_image(good, size=(0, 10))


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((8, 8), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((3, 8, 8), np.uint8), "channels first"),
        (np.zeros((8, 8, 4), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((8, 8, 3), np.int32), "dtype int32"),
        (np.full((8, 8, 3), 1.2, np.float32), r"outside \[0, 1\]"),
        (np.full((8, 8, 3), np.nan, np.float32), "not finite"),
        ([[0, 1]], "numpy array or torch tensor"),
    ],
)
def test_write_png_refuses_bad_images_and_writes_nothing(tmp_path, image, message):
    path = tmp_path / "bad.png"
    with pytest.raises(MediaError, match=message) as error:
        write_png(path, image)
    assert str(path) in str(error.value)
    assert os.listdir(tmp_path) == []
