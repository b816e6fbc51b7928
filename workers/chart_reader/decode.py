"""Decode an untrusted upload into an RGB pixel array, checking it before any pixel is decoded."""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from workers.chart_reader.errors import ChartUnreadable

# Pillow plugins tried on the bytes; every other format (SVG, PDF, TIFF, text) is rejected.
READABLE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")

# Below this many pixels a side there is no room for a plot, its bars and a price axis.
MIN_SIDE = 64

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_ORIENTATION_TAG = 0x0112


def _declared_pixels(data: bytes) -> int | None:
    """Read width x height from a PNG header, for an image too large for Pillow to open."""
    if data.startswith(_PNG_SIGNATURE) and len(data) >= 24:
        width = int.from_bytes(data[16:20], "big")
        height = int.from_bytes(data[20:24], "big")
        return width * height
    return None


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Open the header only; raises ChartUnreadable when no allowed format matches."""
    try:
        return Image.open(io.BytesIO(data), formats=READABLE_FORMATS)
    except Image.DecompressionBombError as error:
        # Pillow raises this above twice its MAX_IMAGE_PIXELS, whatever max_pixels is.
        pixels = _declared_pixels(data)
        if pixels is None:
            raise ChartUnreadable("image declares more pixels than can be decoded safely") from error
        limit = min(max_pixels, 2 * int(Image.MAX_IMAGE_PIXELS or max_pixels))
        raise ChartUnreadable(f"image has {pixels} pixels, limit {limit}") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ChartUnreadable("not a decodable still image: send a PNG, JPEG, WebP or BMP screenshot") from error


def _composite_on_white(bgra: np.ndarray) -> np.ndarray:
    """Return RGB from BGRA, showing transparent pixels over white."""
    alpha = bgra[..., 3]
    if alpha.min() == 255:
        return cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGB)
    weight = alpha[..., None].astype(np.float32) / 255.0
    blended = bgra[..., :3].astype(np.float32) * weight + 255.0 * (1.0 - weight)
    return cv2.cvtColor(np.rint(blended).astype(np.uint8), cv2.COLOR_BGR2RGB)


def _decode_with_opencv(data: bytes, image_format: str) -> np.ndarray | None:
    """Decode with OpenCV, faster here than Pillow plus a copy into numpy; None when it cannot.

    JPEGs are decoded in colour mode, which applies their EXIF orientation.
    """
    flags = cv2.IMREAD_COLOR if image_format == "JPEG" else cv2.IMREAD_UNCHANGED
    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    if pixels is None:
        return None
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    if pixels.dtype != np.uint8:
        return None
    if pixels.ndim == 2:
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
    if pixels.shape[2] == 4:
        return _composite_on_white(pixels)
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def _decode_with_pillow(image: Image.Image) -> np.ndarray:
    """Decode with Pillow; raises ChartUnreadable for truncated or damaged data."""
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ChartUnreadable("image data is truncated or damaged: send the original file again") from error
    oriented = ImageOps.exif_transpose(image)
    rgba = np.asarray(oriented.convert("RGBA"))
    return _composite_on_white(np.ascontiguousarray(rgba[..., [2, 1, 0, 3]]))


def _orientation(image: Image.Image, data: bytes) -> int:
    """Return the EXIF orientation tag, 1 (upright) when the image has none."""
    # Looking for the chunk first spares a PNG without one the full decode Pillow does to look for an
    # eXIf chunk written after the pixel data.
    if "exif" not in image.info and b"eXIf" not in data:
        return 1
    try:
        return int(image.getexif().get(_ORIENTATION_TAG, 1))
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ChartUnreadable("image data is truncated or damaged: send the original file again") from error


def decode_image(data: bytes, *, max_pixels: int) -> np.ndarray:
    """Decode a still image into an RGB uint8 array of shape (height, width, 3).

    Parameters: `data` is the file's bytes; `max_pixels` the largest width x
    height accepted, checked on the header before decoding. Raises
    ChartUnreadable for an empty, unknown, animated, truncated, too large or
    too small image. EXIF orientation is applied.
    """
    if not data:
        raise ChartUnreadable("the file is empty")

    with warnings.catch_warnings():
        # The max_pixels check below replaces Pillow's decompression-bomb warning.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = _open(data, max_pixels)
        with image:
            width, height = image.size
            if width * height > max_pixels:
                raise ChartUnreadable(f"image has {width * height} pixels, limit {max_pixels}")
            frames = getattr(image, "n_frames", 1)
            if frames > 1:
                raise ChartUnreadable(f"animated image with {frames} frames: send a still screenshot")
            if min(width, height) < MIN_SIDE:
                raise ChartUnreadable(
                    f"image is {width}x{height} pixels, too small for a chart (at least {MIN_SIDE} a side)"
                )
            # OpenCV decodes only JPEGs in the mode that applies EXIF orientation, so a turned PNG or WebP
            # goes to Pillow.
            turned = image.format != "JPEG" and _orientation(image, data) not in (0, 1)
            pixels = None if turned else _decode_with_opencv(data, image.format or "")
            if pixels is None or pixels.shape[:2] not in ((height, width), (width, height)):
                pixels = _decode_with_pillow(image)
            return pixels
