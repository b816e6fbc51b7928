"""Preparing chart images for the vision model: token counts, orientation, metadata, crop and limits."""

from __future__ import annotations

import io
import json

import pytest
import pytesseract
from PIL import Image, PngImagePlugin

from tests.conftest import BAD_INPUTS, CHARTS
from workers.chart_reader import ChartUnreadable, axis_ocr, read_chart
from workers.image_prep import image_tokens, prepare_chart
from workers.reading import findings_from_reading

RENDERED = CHARTS / "rendered"
REAL = CHARTS / "real"
MAX_PIXELS = 40_000_000
CHART_FILES = sorted(RENDERED.glob("*.png")) + sorted(REAL.glob("*.jpg"))

needs_tesseract = pytest.mark.skipif(axis_ocr.tesseract_version() is None, reason="Tesseract is not installed")


def _prepare(path, detail="high"):
    data = path.read_bytes()
    reading = read_chart(data)
    return prepare_chart(data, chart_area=reading.chart_area, detail=detail, max_pixels=MAX_PIXELS)


@pytest.mark.parametrize(
    ("width", "height", "detail", "tokens"),
    [
        (1920, 1080, "high", 1105),  # 1365x768: 3 x 2 tiles
        (512, 512, "high", 255),  # one tile
        (4096, 1024, "high", 765),  # 2048x512: 4 x 1 tiles
        (640, 356, "high", 425),  # no scaling: 2 x 1 tiles
        (1170, 2532, "high", 1445),  # 946x2048, then 768x1662: 2 x 4 tiles
        (1920, 1080, "low", 85),
        (64, 64, "low", 85),
    ],
)
def test_image_tokens_by_openai_rule(width, height, detail, tokens):
    assert image_tokens(width, height, detail) == tokens


def test_image_tokens_unknown_detail():
    with pytest.raises(ValueError, match="detail must be 'low' or 'high', not 'auto'"):
        image_tokens(100, 100, "auto")


def test_known_chart_prepared_exactly():
    prepared = _prepare(RENDERED / "rendered-03.png")
    record = prepared.record
    assert prepared.mime_type == "image/png"
    assert (record.original_width, record.original_height) == (1280, 720)
    assert (record.width, record.height) == (748, 512)
    assert record.cropped is True
    assert record.detail == "high"
    assert record.tokens_original == 1105
    assert record.tokens_sent == 425
    with Image.open(io.BytesIO(prepared.data)) as image:
        assert image.format == "PNG"
        assert image.size == (748, 512)


@pytest.mark.parametrize("path", CHART_FILES, ids=lambda path: path.name)
def test_prepared_never_costlier(path):
    prepared = _prepare(path)
    record = prepared.record
    assert record.tokens_sent <= record.tokens_original
    with Image.open(io.BytesIO(prepared.data)) as image:
        assert image.size == (record.width, record.height)
    assert record.tokens_sent == image_tokens(record.width, record.height, "high")


def test_uncut_chart_sent_whole():
    # A 640-pixel screenshot with 5-pixel labels: one tile fewer would shrink them to 4 pixels.
    prepared = _prepare(REAL / "tradingview-01.jpg")
    record = prepared.record
    assert (record.width, record.height) == (640, 356)
    assert record.cropped is False
    assert record.tokens_original == 425
    assert record.tokens_sent == 425
    with Image.open(io.BytesIO(prepared.data)) as image:
        assert image.format == "PNG"


def test_low_detail_costs_85_tokens():
    prepared = _prepare(RENDERED / "rendered-03.png", detail="low")
    record = prepared.record
    assert record.tokens_original == 85
    assert record.tokens_sent == 85
    assert max(record.width, record.height) == 512


def _oriented_image(image_format: str = "JPEG") -> bytes:
    """A 200x100 image, left half red and right half blue, tagged to be turned 90 degrees clockwise."""
    image = Image.new("RGB", (200, 100), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 100, 100))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    options = {"JPEG": {"quality": 95}, "WEBP": {"lossless": True}}.get(image_format, {})
    image.save(buffer, format=image_format, exif=exif, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
def test_exif_orientation_applied(image_format):
    data = _oriented_image(image_format)
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.size, image.getexif()[0x0112]) == (image_format, (200, 100), 6)
    prepared = prepare_chart(data, chart_area=None, detail="high", max_pixels=MAX_PIXELS)
    assert (prepared.record.original_width, prepared.record.original_height) == (100, 200)
    with Image.open(io.BytesIO(prepared.data)) as image:
        assert image.size == (100, 200)
        top = image.convert("RGB").getpixel((50, 20))
        bottom = image.convert("RGB").getpixel((50, 180))
    # Turned clockwise, the red left half is on top.
    assert top[0] > 200
    assert top[2] < 60
    assert bottom[2] > 200
    assert bottom[0] < 60


def test_metadata_stripped():
    with Image.open(RENDERED / "rendered-03.png") as image:
        text = PngImagePlugin.PngInfo()
        text.add_text("Comment", "account 12345")
        text.add_itxt("Author", "trader")
        exif = Image.Exif()
        exif[0x010F] = "PhoneMaker"
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", pnginfo=text, exif=exif)
    data = buffer.getvalue()
    assert b"tEXt" in data
    assert b"eXIf" in data

    prepared = prepare_chart(data, chart_area=None, detail="high", max_pixels=MAX_PIXELS)
    for chunk in (b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"iCCP"):
        assert chunk not in prepared.data
    with Image.open(io.BytesIO(prepared.data)) as image:
        assert dict(image.getexif()) == {}
        assert "Comment" not in image.info


def test_oriented_jpeg_loses_its_exif():
    prepared = prepare_chart(_oriented_image(), chart_area=None, detail="high", max_pixels=MAX_PIXELS)
    with Image.open(io.BytesIO(prepared.data)) as image:
        assert dict(image.getexif()) == {}


def test_pixel_flood_rejected_before_decoding():
    data = (BAD_INPUTS / "pixel-flood.png").read_bytes()
    with pytest.raises(ChartUnreadable) as raised:
        prepare_chart(data, chart_area=None, detail="high", max_pixels=MAX_PIXELS)
    assert raised.value.reason == "image has 3600000000 pixels, limit 40000000"


def test_pixel_limit_applies_to_real_chart():
    data = (RENDERED / "rendered-01.png").read_bytes()
    with pytest.raises(ChartUnreadable) as raised:
        prepare_chart(data, chart_area=None, detail="high", max_pixels=1_000_000)
    assert raised.value.reason == "image has 2073600 pixels, limit 1000000"


def test_implausible_chart_area_ignored():
    prepared = prepare_chart(
        (RENDERED / "rendered-03.png").read_bytes(), chart_area=(10, 10, 40, 40), detail="high", max_pixels=MAX_PIXELS
    )
    assert prepared.record.cropped is False


def test_chart_area_covers_plot_and_price_labels():
    reading = read_chart((RENDERED / "rendered-01.png").read_bytes())
    findings = findings_from_reading(reading)
    assert findings.chart_area == reading.chart_area
    x0, y0, x1, y1 = reading.chart_area
    px0, py0, px1, py1 = reading.plot_area
    assert x0 <= px0
    assert y0 <= py0
    assert x1 >= px1
    assert y1 >= py1
    # The price labels of this chart end at column 1764, and its rotated dates reach row 960.
    assert x1 >= 1764
    assert y1 >= 960


@needs_tesseract
@pytest.mark.parametrize("name", ["rendered-00.png", "rendered-05.png", "rendered-09.png", "rendered-12.png"])
def test_prepared_chart_keeps_readable_prices(name):
    truth = json.loads((RENDERED / name).with_suffix(".json").read_text())
    prepared = _prepare(RENDERED / name)
    assert prepared.record.cropped is True
    reading = read_chart(prepared.data)
    assert reading.price_axis_read is True
    tolerance = 0.02 * (truth["max_high"] - truth["min_low"])
    assert reading.last_price == pytest.approx(truth["last_close"], abs=tolerance)


@needs_tesseract
@pytest.mark.parametrize("name", ["rendered-00.png", "rendered-05.png", "rendered-09.png"])
def test_prepared_chart_keeps_the_title(name):
    """The symbol and timeframe printed above the plot survive the crop."""
    truth = json.loads((RENDERED / name).with_suffix(".json").read_text())
    prepared = _prepare(RENDERED / name)
    assert prepared.record.cropped is True
    with Image.open(io.BytesIO(prepared.data)) as image:
        top = image.crop((0, 0, image.width, image.height // 8)).resize((image.width * 2, image.height // 4))
        title = pytesseract.image_to_string(top)
    assert f"{truth['symbol']} {truth['timeframe']}" in title
