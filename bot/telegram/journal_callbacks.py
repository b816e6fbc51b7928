"""Callback data of the journal's inline buttons, signed for the user who may press them.

Telegram returns callback data exactly as the bot set it, but a modified
client can send any data. Each payload therefore ends in an HMAC-SHA256 tag
over the user id and the payload, keyed from the bot token, so that a forged
or another user's button is rejected before any lookup. Every repository call
is also scoped to the presser, so even a valid tag reaches only their entries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from core.journal.models import EntryQuery, EntryStatus

PREFIX = "j"
# Telegram rejects callback data longer than 64 bytes.
MAX_CALLBACK_BYTES = 64
# 12 base64url characters keep 72 bits of the tag, which fits the 64-byte limit beside the longest filter.
TAG_CHARS = 12
_STATUS_CODES = {None: "a", EntryStatus.OPEN: "o", EntryStatus.CLOSED: "c"}
_STATUSES = {code: status for status, code in _STATUS_CODES.items()}


@dataclass(frozen=True)
class PageButton:
    """Show page `page` of the listing filtered by `query`."""

    page: int
    query: EntryQuery


@dataclass(frozen=True)
class DeleteButton:
    """Delete entry `short_id` (confirm) or keep it."""

    short_id: int
    confirm: bool


def callback_key(bot_token: str) -> bytes:
    """Derive the signing key from the bot token, which every bot process shares."""
    return hmac.new(b"chartbot journal buttons", bot_token.encode(), hashlib.sha256).digest()


def _tag(key: bytes, user_id: str, body: str) -> str:
    digest = hmac.new(key, f"{user_id}|{body}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:TAG_CHARS]


def _sign(key: bytes, user_id: str, body: str) -> str:
    data = f"{PREFIX}|{body}|{_tag(key, user_id, body)}"
    if len(data.encode()) > MAX_CALLBACK_BYTES:
        raise ValueError(f"callback data is {len(data.encode())} bytes, over Telegram's {MAX_CALLBACK_BYTES}")
    return data


def page_data(key: bytes, user_id: str, page: int, query: EntryQuery) -> str:
    """Return the signed callback data of a Prev or Next button."""
    body = f"p|{page}|{_STATUS_CODES[query.status]}|{query.symbol or ''}|{query.tag or ''}"
    return _sign(key, user_id, body)


def delete_data(key: bytes, user_id: str, short_id: int, *, confirm: bool) -> str:
    """Return the signed callback data of the Delete (confirm) or Keep button."""
    return _sign(key, user_id, f"{'d' if confirm else 'k'}|{short_id}")


def read(key: bytes, user_id: str, data: str | None) -> PageButton | DeleteButton | None:
    """Return the action of a pressed button, or None when the data is not a journal button signed for this user."""
    if not data or not data.startswith(f"{PREFIX}|"):
        return None
    body, _, tag = data[len(PREFIX) + 1 :].rpartition("|")
    if not hmac.compare_digest(tag.encode(), _tag(key, user_id, body).encode()):
        return None
    fields = body.split("|")
    try:
        if fields[0] == "p" and len(fields) == 5:
            query = EntryQuery(status=_STATUSES[fields[2]], symbol=fields[3] or None, tag=fields[4] or None)
            return PageButton(page=int(fields[1]), query=query)
        if fields[0] in ("d", "k") and len(fields) == 2:
            return DeleteButton(short_id=int(fields[1]), confirm=fields[0] == "d")
    except (KeyError, ValueError):
        return None
    return None
