"""Check an uploaded file before anything is reserved or stored.

The file type is sniffed from its bytes, because a file name or a declared
MIME type can lie. The dimensions are read from the header and checked
against a pixel limit before any pixel is decoded. Then the image is decoded
once to catch truncation.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from core.errors import ImageProblem, InvalidChartImage
from core.models import ImageInfo

@dataclass(frozen=True)
class ImageLimits:
    """Limits on an uploaded chart: bytes, pixels (width x height) and the smallest side in pixels."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    min_side: int = 64


_FORMAT_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}

# Formats Pillow could open but that the bot does not take as a chart screenshot.
_OTHER_IMAGE_SIGNATURES = {
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


def _sniff(data: bytes) -> str | None:
    """Return PNG, JPEG or WEBP when the bytes start like one of them."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _declared_size(data: bytes, kind: str) -> str:
    """Describe the size a header declares, for an image too large for Pillow to open."""
    if kind == "PNG" and len(data) >= 24:
        width = int.from_bytes(data[16:20], "big")
        height = int.from_bytes(data[20:24], "big")
        return f"{width}x{height} pixels"
    return "more pixels than can be decoded safely"


def inspect_image(data: bytes, *, max_bytes: int, max_pixels: int, min_side: int) -> ImageInfo:
    """Validate an uploaded chart image and return its metadata.

    Parameters: `data` is the file's bytes; `max_bytes` the largest file size
    in bytes; `max_pixels` the largest width x height; `min_side` the smallest
    width or height in pixels. Raises InvalidChartImage with the problem found.
    """
    if not data:
        raise InvalidChartImage(ImageProblem.EMPTY, "the file is empty")
    if len(data) > max_bytes:
        raise InvalidChartImage(ImageProblem.TOO_LARGE, f"{len(data) / 1_000_000:.1f} MB")

    kind = _sniff(data)
    if kind is None:
        for signature, name in _OTHER_IMAGE_SIGNATURES.items():
            if data.startswith(signature):
                raise InvalidChartImage(ImageProblem.UNSUPPORTED_FORMAT, f"{name} image")
        raise InvalidChartImage(ImageProblem.NOT_AN_IMAGE, "not a PNG, JPEG or WebP file")

    with warnings.catch_warnings():
        # The pixel limit below replaces Pillow's own decompression-bomb warning.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=[kind])
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            raise InvalidChartImage(ImageProblem.CORRUPT, f"unreadable {kind} header: {error}") from error
        except Image.DecompressionBombError as error:
            raise InvalidChartImage(ImageProblem.TOO_MANY_PIXELS, _declared_size(data, kind)) from error

        with image:
            width, height = image.size
            if width * height > max_pixels:
                raise InvalidChartImage(ImageProblem.TOO_MANY_PIXELS, f"{width}x{height} pixels")
            if min(width, height) < min_side:
                raise InvalidChartImage(ImageProblem.TOO_SMALL, f"{width}x{height} pixels")
            if getattr(image, "n_frames", 1) > 1:
                raise InvalidChartImage(ImageProblem.ANIMATED, f"{image.n_frames} frames")
            try:
                image.load()
            except (OSError, SyntaxError, ValueError) as error:
                raise InvalidChartImage(ImageProblem.CORRUPT, f"{kind} data cannot be decoded: {error}") from error

    return ImageInfo(
        mime_type=_FORMAT_MIME[kind],
        width=width,
        height=height,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
