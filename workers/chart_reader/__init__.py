"""The offline chart reader: decides whether an image is a price chart and measures it without a model.

`read_chart` takes the bytes of an image and returns a ChartReading; it
raises ChartUnreadable for input that is not a decodable still image.
"""

from workers.chart_reader.errors import ChartUnreadable
from workers.chart_reader.models import Bar, ChartReading, Level, SwingPoint
from workers.chart_reader.reader import read_chart

__all__ = ["Bar", "ChartReading", "ChartUnreadable", "Level", "SwingPoint", "read_chart"]
