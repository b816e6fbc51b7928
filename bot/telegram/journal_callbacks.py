"""Callback data of the journal's inline buttons, signed for the user who may press them.

Each payload is signed for the presser (bot.telegram.signed_callbacks), so a
forged or another user's button is rejected before any lookup. Every
repository call is also scoped to the presser, so even a valid tag reaches
only their entries.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.telegram import signed_callbacks
from core.journal.models import EntryQuery, EntryStatus

PREFIX = "j"
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
    """Derive the signing key of the journal buttons from the bot token, which every bot process shares."""
    return signed_callbacks.callback_key(bot_token, purpose="journal")


def _sign(key: bytes, user_id: str, body: str) -> str:
    return signed_callbacks.sign(key, PREFIX, user_id, body)


def page_data(key: bytes, user_id: str, page: int, query: EntryQuery) -> str:
    """Return the signed callback data of a Prev or Next button."""
    body = f"p|{page}|{_STATUS_CODES[query.status]}|{query.symbol or ''}|{query.tag or ''}"
    return _sign(key, user_id, body)


def delete_data(key: bytes, user_id: str, short_id: int, *, confirm: bool) -> str:
    """Return the signed callback data of the Delete (confirm) or Keep button."""
    return _sign(key, user_id, f"{'d' if confirm else 'k'}|{short_id}")


def read(key: bytes, user_id: str, data: str | None) -> PageButton | DeleteButton | None:
    """Return the action of a pressed button, or None when the data is not a journal button signed for this user."""
    body = signed_callbacks.verify(key, PREFIX, user_id, data)
    if body is None:
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
