"""Turn model and user text into Telegram HTML that always parses and fits in a message."""

from __future__ import annotations

import html
import re

# Telegram's limit on one message's text; it counts UTF-16 code units.
TELEGRAM_MESSAGE_LIMIT = 4096

_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_CODE = re.compile(r"`([^`\n]+)`")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*]\s+")


def telegram_length(text: str) -> int:
    """Return the length Telegram counts: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def escape(text: str) -> str:
    """Escape user- or model-supplied text for Telegram HTML."""
    return html.escape(text, quote=False)


def markdown_line_to_html(line: str) -> str:
    """Render one line of the model's light Markdown (headings, bullets, bold, code) as escaped HTML."""
    heading = _HEADING.match(line)
    if heading:
        return f"<b>{escape(heading.group(1))}</b>"
    bullet = _BULLET.match(line)
    prefix = ""
    if bullet:
        prefix = bullet.group(1) + "• "
        line = line[bullet.end() :]
    rendered = escape(line)
    rendered = _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", rendered)
    rendered = _BOLD.sub(lambda m: f"<b>{m.group(1)}</b>", rendered)
    return prefix + rendered


def markdown_to_html(text: str) -> str:
    """Render a block of the model's light Markdown as Telegram HTML, line by line."""
    return "\n".join(markdown_line_to_html(line) for line in text.split("\n"))


def _fits(text: str, limit: int) -> bool:
    return telegram_length(markdown_to_html(text)) <= limit


def _split_long_line(line: str, limit: int) -> list[str]:
    """Cut one line at spaces, and a word longer than a message at a fixed width."""
    pieces: list[str] = []
    current = ""
    for word in line.split(" "):
        candidate = f"{current} {word}" if current else word
        if _fits(candidate, limit):
            current = candidate
            continue
        if current:
            pieces.append(current)
        # Escaping makes a character at most five long ("&amp;"), so limit // 5 always fits.
        width = max(1, limit // 5)
        while not _fits(word, limit):
            pieces.append(word[:width])
            word = word[width:]
        current = word
    if current:
        pieces.append(current)
    return pieces


def _split_paragraph(text: str, limit: int) -> list[str]:
    """Cut a paragraph too long for one message at line breaks, then at spaces."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if _fits(candidate, limit):
            current = candidate
            continue
        if current:
            pieces.append(current)
        parts = [line] if _fits(line, limit) else _split_long_line(line, limit)
        pieces.extend(parts[:-1])
        current = parts[-1]
    if current:
        pieces.append(current)
    return pieces


def render_markdown_messages(text: str, *, header: str = "", footer: str = "",
                             limit: int = TELEGRAM_MESSAGE_LIMIT) -> list[str]:
    """Render model text as Telegram HTML split into messages at paragraph boundaries.

    `header` goes before the first message and `footer` after the last; both are
    HTML already. Every message is at most `limit` UTF-16 code units.
    """
    budget = _budget(header, footer, limit)
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]

    blocks: list[str] = []
    for paragraph in paragraphs:
        if telegram_length(markdown_to_html(paragraph)) <= budget:
            blocks.append(markdown_to_html(paragraph))
        else:
            blocks.extend(markdown_to_html(piece) for piece in _split_paragraph(paragraph, budget))

    return pack_html_blocks(blocks, header=header, footer=footer, limit=limit)


def _budget(header: str, footer: str, limit: int) -> int:
    return limit - max(telegram_length(f"{header}\n\n" if header else ""),
                       telegram_length(f"\n\n{footer}" if footer else ""))


def pack_html_blocks(blocks: list[str], *, header: str = "", footer: str = "",
                     limit: int = TELEGRAM_MESSAGE_LIMIT) -> list[str]:
    """Join HTML blocks with blank lines into as few messages as fit, never splitting a block.

    `header` goes before the first message and `footer` after the last. Each
    block must fit in a message with the header and footer.
    """
    head = f"{header}\n\n" if header else ""
    tail = f"\n\n{footer}" if footer else ""
    budget = _budget(header, footer, limit)
    messages: list[str] = []
    current = ""
    for block in blocks:
        candidate = f"{current}\n\n{block}" if current else block
        if telegram_length(candidate) <= budget:
            current = candidate
        else:
            messages.append(current)
            current = block
    messages.append(current)

    messages[0] = head + messages[0]
    messages[-1] = messages[-1] + tail
    return messages
