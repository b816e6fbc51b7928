"""Telegram HTML rendering: escaping, light Markdown, and splitting under the length limit."""

from __future__ import annotations

from bot.telegram.formatting import escape, markdown_to_html, render_markdown_messages, telegram_length
from tests.fakes.telegram_server import html_parse_error


def test_escape_covers_html_specials():
    assert escape("a < b & c > d") == "a &lt; b &amp; c &gt; d"


def test_markdown_headings_bullets_bold_code():
    text = "### Key levels\n- **Support** at 41,000\n* `EMA<21>` above"
    assert markdown_to_html(text) == (
        "<b>Key levels</b>\n• <b>Support</b> at 41,000\n• <code>EMA&lt;21&gt;</code> above"
    )


def test_model_html_is_escaped_not_rendered():
    html = markdown_to_html("<script>alert(1)</script> & <b>not bold</b>")
    assert html == "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;not bold&lt;/b&gt;"
    assert html_parse_error(html) is None


def test_short_text_is_one_message_with_header_and_footer():
    messages = render_markdown_messages("**Trend** up\n\nSupport 41k", header="<b>H</b>", footer="<i>F</i>")
    assert messages == ["<b>H</b>\n\n<b>Trend</b> up\n\nSupport 41k\n\n<i>F</i>"]


def test_long_text_split_at_paragraphs_under_limit():
    paragraphs = [f"Paragraph {n}: " + "price & volume " * 60 for n in range(12)]
    messages = render_markdown_messages("\n\n".join(paragraphs), header="<b>H</b>", footer="<i>F</i>")
    # A rendered paragraph is about 1,160 characters, so three fit in a message.
    assert len(messages) == 4
    for message in messages:
        assert telegram_length(message) <= 4096
        assert html_parse_error(message) is None
    joined = "\n\n".join(messages)
    for n in range(12):
        assert joined.count(f"Paragraph {n}: ") == 1
    # No paragraph is cut: each message ends where a paragraph ends.
    assert messages[0].endswith("price &amp; volume")
    assert messages[0].startswith("<b>H</b>\n\n")
    assert messages[-1].endswith("\n\n<i>F</i>")


def test_single_huge_paragraph_and_word_split():
    text = "**" + "x" * 10_000 + "** " + "<&> " * 3000
    messages = render_markdown_messages(text, limit=4096)
    assert len(messages) >= 4
    for message in messages:
        assert telegram_length(message) <= 4096
        assert html_parse_error(message) is None
    assert "".join(messages).count("x") == 10_000


def test_length_counts_utf16_units():
    assert telegram_length("📈") == 2
    messages = render_markdown_messages("📈" * 3000, limit=4096)
    assert len(messages) == 2
    assert all(telegram_length(m) <= 4096 for m in messages)
    # A word longer than a message is cut at a fixed width; the cuts become paragraph breaks.
    assert "".join(messages).replace("\n", "") == "📈" * 3000
