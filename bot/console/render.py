"""Show the bot's Telegram HTML replies as plain terminal text."""

from __future__ import annotations

import html
import re

_TAG = re.compile(r"</?[a-zA-Z-]+[^<>]*>")


def html_to_text(text: str) -> str:
    """Drop Telegram HTML tags and unescape entities."""
    return html.unescape(_TAG.sub("", text))


def indent_reply(text: str, prefix: str = "bot> ") -> str:
    """Prefix the first line and indent the rest so a multi-line reply reads as one block."""
    pad = " " * len(prefix)
    lines = text.split("\n")
    return "\n".join([prefix + lines[0], *(pad + line if line else "" for line in lines[1:])])
