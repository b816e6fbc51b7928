"""The guided form of /journal add: one question per field, the answers kept in a draft.

The draft is a plain model so that a store outside the bot process (Redis)
can keep it between messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from core.journal.errors import InvalidJournalEntry, JournalParseError
from core.journal.models import EntryFields, Side, check_levels
from core.journal.parser import FIELD_NAMES, parse_note, parse_number, parse_side, parse_symbol, parse_tags

COMMAND = "guided"
SKIP_WORDS = {"skip", "-"}


@dataclass(frozen=True)
class GuidedStep:
    """One question of the guided form: the field it fills and whether "skip" is allowed."""

    field: str
    optional: bool


GUIDED_STEPS = (
    GuidedStep("symbol", optional=False),
    GuidedStep("side", optional=False),
    GuidedStep("entry_price", optional=False),
    GuidedStep("size", optional=False),
    GuidedStep("stop_loss", optional=True),
    GuidedStep("take_profit", optional=True),
    GuidedStep("exit_price", optional=True),
    GuidedStep("fees", optional=True),
    GuidedStep("tags", optional=True),
    GuidedStep("note", optional=True),
)


class GuidedDraft(BaseModel):
    """A guided entry in progress: the answers so far, by EntryFields name, and the next step's index."""

    step: int = Field(default=0, ge=0, le=len(GUIDED_STEPS))
    values: dict[str, Any] = Field(default_factory=dict)
    analysis_id: str | None = None
    started_at: datetime

    @property
    def current(self) -> GuidedStep | None:
        """Return the step whose question is waiting for an answer, or None when every field is answered."""
        return GUIDED_STEPS[self.step] if self.step < len(GUIDED_STEPS) else None

    @property
    def complete(self) -> bool:
        """Return True once every question has an answer."""
        return self.current is None


def _parse_answer(field: str, text: str) -> Any:
    tokens = text.split()
    if field == "note":
        return parse_note(text, command=COMMAND)
    if field == "tags":
        return list(parse_tags([t if t.startswith("#") else f"#{t}" for t in tokens], command=COMMAND))
    if len(tokens) != 1:
        raise JournalParseError(f"send one value for the {FIELD_NAMES[field]}",
                                token=tokens[1] if len(tokens) > 1 else None, command=COMMAND)
    token = tokens[0]
    if field == "symbol":
        return parse_symbol(token, command=COMMAND)
    if field == "side":
        return parse_side(token, command=COMMAND).value
    return parse_number(token, field=field, command=COMMAND, allow_zero=field == "fees")


def apply_answer(draft: GuidedDraft, text: str) -> GuidedDraft:
    """Record the answer to the current question and move to the next one.

    Raises JournalParseError naming the bad token, including a stop loss or
    take profit on the wrong side of the entry; the draft is then unchanged.
    """
    step = draft.current
    if step is None:
        return draft
    try:
        values = _apply(step, dict(draft.values), text.strip())
    except JournalParseError as error:
        error.field = step.field
        raise
    return draft.model_copy(update={"values": values, "step": draft.step + 1})


def _apply(step: GuidedStep, values: dict[str, Any], answer: str) -> dict[str, Any]:
    if answer.lower() in SKIP_WORDS:
        if not step.optional:
            raise JournalParseError(f"the {FIELD_NAMES[step.field]} is required", token=answer, command=COMMAND)
        values.pop(step.field, None)
    else:
        values[step.field] = _parse_answer(step.field, answer)
        if step.field in ("stop_loss", "take_profit"):
            try:
                check_levels(Side(values["side"]), values["entry_price"], values.get("stop_loss"),
                             values.get("take_profit"))
            except InvalidJournalEntry as error:
                raise JournalParseError(f"the {FIELD_NAMES[error.field]} {error.reason}", token=answer,
                                        command=COMMAND) from None
    return values


def draft_fields(draft: GuidedDraft) -> EntryFields:
    """Return the entry a complete draft describes."""
    return EntryFields(**draft.values, analysis_id=draft.analysis_id)
