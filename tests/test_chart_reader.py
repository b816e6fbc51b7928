"""The offline chart reader on the shared chart images, the bad inputs and charts drawn here."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.conftest import BAD_INPUTS, CHARTS
from workers.chart_reader import ChartReading, ChartUnreadable, read_chart
from workers.chart_reader import axis_ocr

RENDERED = CHARTS / "rendered"
REAL = CHARTS / "real"
NOT_CHARTS = CHARTS / "not-charts"

needs_tesseract = pytest.mark.skipif(axis_ocr.tesseract_version() is None, reason="Tesseract is not installed")

# The reason expected for each bad input. A file added later needs only a non-empty reason.
BAD_INPUT_REASONS = {
    "animated.gif": "animated image with 3 frames",
    "document.pdf": "not a decodable still image",
    "empty.png": "the file is empty",
    "pixel-flood.png": "image has 3600000000 pixels, limit 40000000",
    "script.svg": "not a decodable still image",
    "text-named-png.png": "not a decodable still image",
    "tiny.png": "image is 6x4 pixels, too small for a chart",
    "truncated.png": "image data is truncated or damaged",
}


def _truth(name: str) -> dict:
    return json.loads((RENDERED / name).with_suffix(".json").read_text())


def _read(path: Path, **options) -> ChartReading:
    return read_chart(path.read_bytes(), **options)


def _files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.is_file())


@pytest.mark.parametrize(
    "name",
    [
        "rendered-01.png",
        "rendered-03.png",
        "rendered-05.png",
        "rendered-08.png",
        # EURUSD moves 0.3%, and only the price axis shows that this is sideways.
        pytest.param("rendered-09.png", marks=needs_tesseract),
        "rendered-14.png",
    ],
)
def test_rendered_chart_type_trend_and_last_bar(name):
    truth = _truth(name)
    reading = _read(RENDERED / name)
    assert reading.is_chart is True
    assert reading.chart_type == truth["chart_type"]
    assert reading.trend == truth["trend"]
    assert reading.last_bar_direction == truth["last_bar_direction"]


def test_rendered_01_is_a_falling_ohlc_chart():
    reading = _read(RENDERED / "rendered-01.png")
    assert reading.is_chart is True
    assert reading.chart_type == "ohlc"
    assert reading.trend == "down"


@pytest.mark.parametrize(
    "name",
    ["rendered-01.png", "rendered-04.png", "rendered-06.png", "rendered-10.png", "rendered-13.png", "rendered-14.png"],
)
def test_bar_count_within_ten_percent(name):
    truth = _truth(name)
    reading = _read(RENDERED / name, use_ocr=False)
    assert truth["chart_type"] in ("candle", "ohlc")
    assert abs(reading.bar_count - truth["bars"]) <= 0.1 * truth["bars"]
    assert len(reading.bars) == reading.bar_count


@needs_tesseract
def test_price_axis_maps_rows_to_prices():
    truth = _truth("rendered-14.png")
    reading = _read(RENDERED / "rendered-14.png")
    assert reading.price_axis_read is True
    assert reading.ocr_available is True
    assert reading.last_price == pytest.approx(truth["last_close"], rel=0.005)
    prices = [point.price for point in reading.swing_highs + reading.swing_lows] + [
        level.price for level in reading.levels
    ]
    assert prices
    for price in prices:
        assert truth["min_low"] * 0.98 <= price <= truth["max_high"] * 1.02


def test_plot_area_leaves_out_volume_panel():
    # rendered-00 draws its price panel from row 108 to row 556 and volume below it.
    reading = _read(RENDERED / "rendered-00.png", use_ocr=False)
    x0, y0, x1, y1 = reading.plot_area
    assert y0 >= 108
    assert y1 <= 556
    assert x0 < x1


def test_fractions_stay_on_the_axis():
    reading = _read(RENDERED / "rendered-03.png", use_ocr=False)
    fractions = [point.fraction for point in reading.swing_highs + reading.swing_lows]
    fractions += [level.fraction for level in reading.levels]
    assert fractions
    assert all(0.0 <= fraction <= 1.0 for fraction in fractions)
    assert all(level.touches >= 2 for level in reading.levels)
    assert all(level.kind in ("support", "resistance") for level in reading.levels)


@pytest.mark.parametrize(
    "name", ["tradingview-01.jpg", "tradingview-06.jpg", "tradingview-09.jpg", "tradingview-16.jpg"]
)
def test_real_screenshot_accepted(name):
    reading = _read(REAL / name, use_ocr=False)
    assert reading.is_chart is True
    assert reading.chart_type in ("candle", "ohlc", "line")
    assert reading.trend in ("up", "down", "sideways")


@pytest.mark.parametrize("name", _files(NOT_CHARTS))
def test_not_chart_refused(name):
    reading = _read(NOT_CHARTS / name)
    assert reading.is_chart is False
    assert reading.chart_type is None
    assert reading.bars == ()
    assert reading.trend is None
    assert "not recognised as a price chart" in reading.notes


@pytest.mark.parametrize("name", _files(BAD_INPUTS))
def test_bad_input_raises_plain_reason(name):
    with pytest.raises(ChartUnreadable) as raised:
        _read(BAD_INPUTS / name)
    assert raised.value.reason
    assert BAD_INPUT_REASONS.get(name, "") in raised.value.reason
    assert str(raised.value) == raised.value.reason


def test_pixel_limit_is_the_callers():
    buffer = io.BytesIO()
    Image.new("RGB", (100, 100), "white").save(buffer, "PNG")
    with pytest.raises(ChartUnreadable) as raised:
        read_chart(buffer.getvalue(), max_pixels=5000)
    assert raised.value.reason == "image has 10000 pixels, limit 5000"


def test_ocr_turned_off_reads_chart_and_says_so():
    reading = _read(RENDERED / "rendered-03.png", use_ocr=False)
    assert reading.is_chart is True
    assert reading.trend == "up"
    assert reading.price_axis_read is False
    assert reading.last_price is None
    assert "price axis labels not read: OCR was turned off" in reading.notes
    assert all(level.price is None for level in reading.levels)
    assert all(point.price is None for point in reading.swing_highs + reading.swing_lows)


def test_missing_tesseract_reported(monkeypatch):
    monkeypatch.setattr(axis_ocr.pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    axis_ocr.tesseract_version.cache_clear()
    try:
        reading = _read(RENDERED / "rendered-03.png")
    finally:
        axis_ocr.tesseract_version.cache_clear()
    assert reading.is_chart is True
    assert reading.trend == "up"
    assert reading.ocr_available is False
    assert reading.price_axis_read is False
    assert "price axis labels not read: Tesseract is not installed" in reading.notes


def _drawn_chart(last_two: list[tuple[int, int, int, int]]) -> bytes:
    """Draw eight rising candles and then `last_two` as (open, high, low, close) rows, with a price scale."""
    image = Image.new("RGB", (800, 500), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([40, 30, 700, 450], outline=(0, 0, 0))
    for step in range(6):
        row = 450 - step * 80
        draw.line([(700, row), (705, row)], fill=(0, 0, 0))
        draw.text((710, row - 6), f"{100 + 10 * step}.00", fill=(0, 0, 0))
    candles = []
    for i in range(8):
        low = 400 - i * 28
        body = 20 + (i % 3) * 12
        candles.append((low - 8, low - 8 - body - 6, low, low - 8 - body))
    for index, (open_row, high, low, close) in enumerate(candles + last_two):
        x = 80 + index * 62
        colour = (38, 166, 154) if close < open_row else (239, 83, 80)
        draw.line([(x, high), (x, low)], fill=colour, width=2)
        draw.rectangle([x - 12, min(open_row, close), x + 12, max(open_row, close)], fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_drawn_rising_candles_end_in_hammer():
    # Ninth candle rises; the tenth has a small body on top of a long lower wick.
    data = _drawn_chart([(190, 150, 200, 160), (140, 126, 215, 128)])
    reading = read_chart(data, use_ocr=False)
    assert reading.is_chart is True
    assert reading.chart_type == "candle"
    assert reading.bar_count == 10
    assert reading.trend == "up"
    assert reading.last_bar_direction == "up"
    assert reading.last_bar_patterns == ("hammer",)


def test_drawn_candles_end_in_bearish_engulfing():
    # A small rising candle, then a falling one whose body covers it.
    data = _drawn_chart([(190, 175, 200, 180), (170, 165, 215, 205)])
    reading = read_chart(data, use_ocr=False)
    assert reading.bar_count == 10
    assert reading.last_bar_direction == "down"
    assert "bearish_engulfing" in reading.last_bar_patterns


@needs_tesseract
def test_drawn_chart_price_scale_read():
    data = _drawn_chart([(190, 150, 200, 160), (140, 126, 215, 128)])
    reading = read_chart(data)
    assert reading.price_axis_read is True
    # The scale runs from 100.00 at row 450 to 150.00 at row 50; the last close is drawn at row 128.
    assert reading.last_price == pytest.approx(100 + (450 - 128) / 8, abs=0.5)
