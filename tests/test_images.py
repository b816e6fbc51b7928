"""Image checks in the core, on the shared charts and broken files."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from core.errors import ImageProblem, InvalidChartImage
from core.images import inspect_image
from tests.conftest import BAD_INPUTS, CHARTS

LIMITS = {"max_bytes": 20 * 1024 * 1024, "max_pixels": 40_000_000, "min_side": 64}

BAD_INPUT_PROBLEMS = {
    "animated.gif": (ImageProblem.UNSUPPORTED_FORMAT, "GIF image"),
    "document.pdf": (ImageProblem.NOT_AN_IMAGE, "not a PNG, JPEG or WebP file"),
    "empty.png": (ImageProblem.EMPTY, "the file is empty"),
    "pixel-flood.png": (ImageProblem.TOO_MANY_PIXELS, "60000x60000 pixels"),
    "script.svg": (ImageProblem.NOT_AN_IMAGE, "not a PNG, JPEG or WebP file"),
    "text-named-png.png": (ImageProblem.NOT_AN_IMAGE, "not a PNG, JPEG or WebP file"),
    "tiny.png": (ImageProblem.TOO_SMALL, "6x4 pixels"),
}


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("name", sorted(BAD_INPUT_PROBLEMS))
def test_bad_input_refused(name):
    problem, detail = BAD_INPUT_PROBLEMS[name]
    with pytest.raises(InvalidChartImage) as caught:
        inspect_image((BAD_INPUTS / name).read_bytes(), **LIMITS)
    assert caught.value.problem is problem
    assert caught.value.detail == detail


def test_truncated_png_refused_as_corrupt():
    with pytest.raises(InvalidChartImage) as caught:
        inspect_image((BAD_INPUTS / "truncated.png").read_bytes(), **LIMITS)
    assert caught.value.problem is ImageProblem.CORRUPT
    assert caught.value.detail.startswith("PNG data cannot be decoded")


@pytest.mark.parametrize("folder", ["real", "rendered"])
def test_every_shared_chart_accepted(folder):
    files = sorted((CHARTS / folder).glob("*.[jp][pn]g"))
    assert len(files) >= 10
    for path in files:
        data = path.read_bytes()
        info = inspect_image(data, **LIMITS)
        expected = "image/jpeg" if path.suffix == ".jpg" else "image/png"
        assert info.mime_type == expected, path.name
        assert info.size_bytes == len(data)
        with Image.open(path) as image:
            assert (info.width, info.height) == image.size


def test_webp_accepted():
    data = _encode(Image.new("RGB", (300, 200), "white"), "WEBP")
    info = inspect_image(data, **LIMITS)
    assert (info.mime_type, info.width, info.height) == ("image/webp", 300, 200)


def test_animated_png_refused():
    frames = [Image.new("RGB", (100, 100), color) for color in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "PNG", save_all=True, append_images=frames[1:])
    with pytest.raises(InvalidChartImage) as caught:
        inspect_image(buffer.getvalue(), **LIMITS)
    assert caught.value.problem is ImageProblem.ANIMATED
    assert caught.value.detail == "2 frames"


def test_pixel_limit_checked_before_decoding():
    data = _encode(Image.new("RGB", (3000, 2000), "white"), "PNG")
    with pytest.raises(InvalidChartImage) as caught:
        inspect_image(data, max_bytes=LIMITS["max_bytes"], max_pixels=5_000_000, min_side=64)
    assert caught.value.problem is ImageProblem.TOO_MANY_PIXELS
    assert caught.value.detail == "3000x2000 pixels"


def test_file_over_byte_limit_refused():
    data = (CHARTS / "rendered" / "rendered-00.png").read_bytes()
    with pytest.raises(InvalidChartImage) as caught:
        inspect_image(data, max_bytes=50_000, max_pixels=40_000_000, min_side=64)
    assert caught.value.problem is ImageProblem.TOO_LARGE
    assert caught.value.detail == f"{len(data) / 1_000_000:.1f} MB"


def test_bmp_refused_as_unsupported():
    data = _encode(Image.new("RGB", (200, 200), "white"), "BMP")
    with pytest.raises(InvalidChartImage) as caught:
        inspect_image(data, **LIMITS)
    assert caught.value.problem is ImageProblem.UNSUPPORTED_FORMAT
    assert caught.value.detail == "BMP image"
