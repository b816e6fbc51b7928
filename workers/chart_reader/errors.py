"""The one exception the chart reader raises on purpose."""

from __future__ import annotations


class ChartUnreadable(Exception):
    """The input is not a still image the reader can decode.

    `reason` is a plain-words message that can be shown to the user as is.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
