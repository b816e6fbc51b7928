"""Every text the /journal command sends, as Telegram HTML with all user text escaped."""

from __future__ import annotations

from datetime import datetime

from bot.telegram.formatting import escape
from core.journal.errors import EntryAlreadyClosed, InvalidJournalEntry, JournalEntryNotFound, JournalParseError
from core.journal.guided import GUIDED_STEPS, GuidedStep
from core.journal.models import EntryQuery, JournalEntry
from core.journal.parser import FIELD_NAMES
from core.journal.service import EntryPage
from core.journal.stats import JournalStats, TagStats

# Error messages quote at most this many characters of the token that failed.
TOKEN_QUOTE_CHARS = 40
# Tags with the most trades shown in /journal stats, so the message stays under Telegram's 4096 characters.
MAX_TAG_ROWS = 15

ADD_FORM = (
    "<code>/journal add SYMBOL long|short ENTRY size SIZE [sl PRICE] [tp PRICE] [exit PRICE] "
    "[fees AMOUNT] [opened YYYY-MM-DD] [#tag ...] [note TEXT]</code>\n"
    "For example: <code>/journal add BTCUSDT long 42000 sl 41000 tp 45000 size 0.5 #breakout note retest</code>\n"
    "Prices may be written 42,000 or 42k. Send <code>/journal add</code> alone to be asked field by field."
)
LIST_FORM = "<code>/journal list [open|closed] [SYMBOL] [#tag]</code>"
SHOW_FORM = "<code>/journal show ID</code>"
CLOSE_FORM = "<code>/journal close ID PRICE [fees AMOUNT]</code> (fees are added to those already recorded)"
EDIT_FORM = (
    "<code>/journal edit ID FIELD VALUE</code>\n"
    "Fields: symbol, side, entry, exit, size, sl, tp, fees, opened, closed, tags, note. "
    "<code>none</code> clears sl, tp, exit, tags and note."
)
DELETE_FORM = "<code>/journal delete ID</code>"
STATS_FORM = "<code>/journal stats [all|week|month|year|90d]</code>"
EXPORT_FORM = "<code>/journal export</code>"

FORMS = {"add": ADD_FORM, "list": LIST_FORM, "show": SHOW_FORM, "close": CLOSE_FORM, "edit": EDIT_FORM,
         "delete": DELETE_FORM, "stats": STATS_FORM, "export": EXPORT_FORM}

JOURNAL_HELP = (
    "📒 <b>Trade journal</b>\n\n"
    f"{ADD_FORM}\n\n"
    f"{LIST_FORM}: five entries a page, newest first\n"
    f"{SHOW_FORM}\n"
    f"{CLOSE_FORM}\n"
    f"{EDIT_FORM}\n"
    f"{DELETE_FORM}\n"
    f"{STATS_FORM}: win rate, P&amp;L, profit factor, R and the equity curve\n"
    f"{EXPORT_FORM}: all your entries as a CSV file\n\n"
    "Reply with <code>/journal add ...</code> to one of my chart analyses to link the entry to it."
)

NO_ENTRIES = "📒 Your journal has no entries yet. Add one with <code>/journal add BTCUSDT long 42000 size 0.5</code>."
NOTHING_TO_EXPORT = "📒 Your journal has no entries yet, so there is nothing to export."
FOREIGN_BUTTON = "This button is invalid or belongs to another user's journal."
STALE_BUTTON = "This message can no longer be changed. Send /journal list for a fresh one."
JOURNAL_FAILED = "❌ The journal command failed on our side. Please try again in a minute."
GUIDED_CANCELLED = "Cancelled. The journal entry was not saved."
NOTHING_TO_CANCEL = "There is nothing to cancel."
GUIDED_DRAFT_GONE = (
    "That journal entry was already saved, cancelled or left unanswered for an hour. "
    "Send <code>/journal add</code> to start again."
)
QUESTION_TITLE = "📝 New journal entry"

QUESTIONS = {
    "symbol": "Which symbol did you trade? For example BTCUSDT.",
    "side": "Long or short?",
    "entry_price": "At what price did you enter? For example 42000, 42,000.50 or 42.5k.",
    "size": "What size, in units of the asset? For example 0.5.",
    "stop_loss": "Where is your stop loss? Send skip if you had none.",
    "take_profit": "Where is your take profit? Send skip if you had none.",
    "exit_price": "At what price did you exit? Send skip if the trade is still open.",
    "fees": "How much did you pay in fees, in the quote currency? Send skip for none.",
    "tags": "Tags for the trade, for example #breakout #retest? Send skip for none.",
    "note": "A note about the trade? Send skip for none.",
}
PLACEHOLDERS = {"symbol": "BTCUSDT", "side": "long or short", "entry_price": "42000", "size": "0.5"}


def format_number(value: float, *, max_decimals: int = 8) -> str:
    """Return a price or size with thousands separators and no trailing zeros, e.g. 42,000 or 0.00012."""
    text = f"{round(value, max_decimals) + 0.0:,.{max_decimals}f}"
    return text.rstrip("0").rstrip(".")


def format_amount(value: float) -> str:
    """Return a signed amount of quote currency: two decimals from 1 up, eight below, e.g. +1,498.5 or -0.0004."""
    decimals = 2 if abs(value) >= 1 else 8
    text = format_number(abs(value), max_decimals=decimals)
    if text == "0":
        return "0"
    return ("+" if value > 0 else "-") + text


def format_percent(value: float) -> str:
    """Return a signed percentage with two decimals, e.g. +7.13%."""
    return f"{value:+.2f}%"


def format_r(value: float) -> str:
    """Return a signed R multiple with two decimals, e.g. +3.00R."""
    return f"{value:+.2f}R"


def format_time(value: datetime) -> str:
    """Return a UTC time as 2026-05-01 09:30 UTC."""
    return f"{value:%Y-%m-%d %H:%M} UTC"


def _quote(token: str) -> str:
    if len(token) > TOKEN_QUOTE_CHARS:
        token = token[:TOKEN_QUOTE_CHARS] + "…"
    return f"<code>{escape(token)}</code>"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def parse_problem(error: JournalParseError) -> str:
    """Return the first line of a parse error: the token that failed and why."""
    if error.token is None:
        return f"❌ {escape(_sentence(error.reason))}."
    return f"❌ {_quote(error.token)}: {escape(error.reason)}."


def parse_error(error: JournalParseError) -> str:
    """Explain a command that could not be read and show its right form."""
    return f"{parse_problem(error)}\n\nUse: {FORMS[error.command]}"


def unknown_subcommand(word: str) -> str:
    """Reply to /journal followed by a word that is not one of its commands."""
    return f"❌ {_quote(word)} is not a journal command.\n\n{JOURNAL_HELP}"


def not_found(short_id: int) -> str:
    """Reply to a command for an entry number the user does not have."""
    return f"❌ You have no journal entry #{short_id}. /journal list shows your entries."


def already_closed(error: EntryAlreadyClosed) -> str:
    """Reply to /journal close for an entry that has an exit price already."""
    return (
        f"❌ Entry #{error.short_id} is already closed at {format_number(error.exit_price)}. "
        f"To change the exit price, send <code>/journal edit {error.short_id} exit PRICE</code>."
    )


def invalid_entry(error: InvalidJournalEntry, short_id: int | None = None) -> str:
    """Explain a value that breaks a rule of the entry as a whole."""
    text = f"❌ The {FIELD_NAMES.get(error.field, error.field)} {escape(error.reason)}."
    if short_id is not None:
        text += f" Entry #{short_id} was not changed."
    return text


def rejection(error: JournalParseError | JournalEntryNotFound | EntryAlreadyClosed | InvalidJournalEntry) -> str:
    """Explain why a journal command was rejected."""
    if isinstance(error, JournalParseError):
        return parse_error(error)
    if isinstance(error, JournalEntryNotFound):
        return not_found(error.short_id)
    if isinstance(error, EntryAlreadyClosed):
        return already_closed(error)
    return invalid_entry(error)


def _headline(entry: JournalEntry) -> str:
    return f"<b>#{entry.short_id} {escape(entry.symbol)} {entry.side.value}</b> · {entry.status.value}"


def _pnl_text(entry: JournalEntry) -> str:
    text = f"{format_amount(entry.pnl)} ({format_percent(entry.pnl_percent)})"
    if entry.r_multiple is not None:
        text += f" · {format_r(entry.r_multiple)}"
    return text


def entry_card(entry: JournalEntry) -> str:
    """Render every recorded field of an entry and its P&L and R once closed."""
    lines = [_headline(entry), f"Entry: {format_number(entry.entry_price)} · size {format_number(entry.size)}"]
    if entry.stop_loss is not None:
        lines.append(f"Stop loss: {format_number(entry.stop_loss)} (risk {format_amount(entry.risk).lstrip('+')})")
    if entry.take_profit is not None:
        lines.append(f"Take profit: {format_number(entry.take_profit)}")
    if entry.exit_price is not None:
        lines.append(f"Exit: {format_number(entry.exit_price)}")
    if entry.fees:
        lines.append(f"Fees: {format_number(entry.fees)}")
    if entry.pnl is not None:
        lines.append(f"P&amp;L: {_pnl_text(entry)}")
    lines.append(f"Opened: {format_time(entry.opened_at)}")
    if entry.closed_at is not None:
        lines.append(f"Closed: {format_time(entry.closed_at)}")
    if entry.tags:
        lines.append("Tags: " + " ".join(f"#{escape(tag)}" for tag in entry.tags))
    if entry.note:
        lines.append(f"Note: {escape(entry.note)}")
    if entry.analysis_id:
        lines.append("📎 Linked to your chart analysis")
    return "\n".join(lines)


def entry_added(entry: JournalEntry) -> str:
    """Confirm a new entry."""
    return f"✅ Added entry #{entry.short_id}.\n\n{entry_card(entry)}"


def entry_closed(entry: JournalEntry) -> str:
    """Confirm a closed trade with its result."""
    return f"✅ Closed entry #{entry.short_id}.\n\n{entry_card(entry)}"


def entry_edited(entry: JournalEntry, field: str) -> str:
    """Confirm an edit."""
    return f"✅ Changed the {FIELD_NAMES[field]} of entry #{entry.short_id}.\n\n{entry_card(entry)}"


def confirm_delete(entry: JournalEntry) -> str:
    """Ask before deleting an entry."""
    return f"🗑 Delete this entry? This cannot be undone.\n\n{entry_card(entry)}"


def entry_deleted(short_id: int) -> str:
    """Confirm a deletion."""
    return f"🗑 Entry #{short_id} deleted."


def entry_kept(short_id: int) -> str:
    """Confirm that a deletion was called off."""
    return f"Entry #{short_id} kept."


def already_deleted(short_id: int) -> str:
    """Reply to a Delete button for an entry that is gone."""
    return f"Entry #{short_id} was already deleted."


def _list_line(entry: JournalEntry) -> str:
    line = f"<b>#{entry.short_id}</b> {escape(entry.symbol)} {entry.side.value} {format_number(entry.size)} @ "
    line += format_number(entry.entry_price)
    if entry.exit_price is None:
        line += " · open"
    else:
        line += f" → {format_number(entry.exit_price)} · {_pnl_text(entry)}"
    if entry.tags:
        line += " " + " ".join(f"#{escape(tag)}" for tag in entry.tags)
    return line


def _query_words(query: EntryQuery) -> list[str]:
    words = []
    if query.status is not None:
        words.append(query.status.value)
    if query.symbol is not None:
        words.append(escape(query.symbol))
    if query.tag is not None:
        words.append(f"#{escape(query.tag)}")
    return words


def entry_page(page: EntryPage) -> str:
    """Render one page of the journal listing."""
    words = _query_words(page.query)
    if page.total == 0:
        if not words:
            return NO_ENTRIES
        return f"📒 No journal entries match {', '.join(words)}."
    count = f"{page.total} entr{'y' if page.total == 1 else 'ies'}"
    if words:
        count += f" ({', '.join(words)})"
    header = f"📒 <b>Your journal</b>: {count}, page {page.page} of {page.pages}"
    return header + "\n\n" + "\n".join(_list_line(entry) for entry in page.entries)


def _tag_line(row: TagStats) -> str:
    trades = f"{row.trades} trade{'s' if row.trades != 1 else ''}"
    return f"#{escape(row.tag)}: {trades}, {row.win_rate * 100:.1f}% won, {format_amount(row.total_pnl)}"


def stats_text(stats: JournalStats) -> str:
    """Render the statistics of a period."""
    if stats.trades == 0:
        return (
            f"📊 No closed trades ({stats.period.label}); {stats.open_trades} still open. "
            "Close a trade with <code>/journal close ID PRICE</code> to see statistics."
        )
    outcome = f"{stats.wins} won, {stats.losses} lost"
    if stats.breakeven:
        outcome += f", {stats.breakeven} breakeven"
    profit_factor = "none, no losing trades" if stats.profit_factor is None else f"{stats.profit_factor:.2f}"
    if stats.average_r is None:
        average_r = "none, no closed trade has a stop loss"
    else:
        average_r = f"{format_r(stats.average_r)} over {stats.r_trades} trade{'s' if stats.r_trades != 1 else ''}"
    lines = [
        f"📊 <b>Journal stats</b>, {stats.period.label}",
        f"Closed trades: {stats.trades} ({stats.open_trades} open)",
        f"Win rate: {stats.win_rate * 100:.1f}% ({outcome})",
        f"Total P&amp;L: {format_amount(stats.total_pnl)}",
        f"Average P&amp;L: {format_amount(stats.average_pnl)}",
        f"Profit factor: {profit_factor}",
        f"Expectancy: {format_amount(stats.expectancy)} per trade",
        f"Average R: {average_r}",
        f"Best trade: #{stats.best.short_id} {escape(stats.best.symbol)} {format_amount(stats.best.pnl)}",
        f"Worst trade: #{stats.worst.short_id} {escape(stats.worst.symbol)} {format_amount(stats.worst.pnl)}",
    ]
    if stats.tags:
        lines.append("\n<b>By tag</b>")
        lines.extend(_tag_line(row) for row in stats.tags[:MAX_TAG_ROWS])
        hidden = len(stats.tags) - MAX_TAG_ROWS
        if hidden > 0:
            lines.append(f"…and {hidden} more tag{'s' if hidden != 1 else ''} with fewer trades")
    return "\n".join(lines)


def equity_caption(stats: JournalStats) -> str:
    """Caption of the equity-curve photo."""
    trades = f"{stats.trades} closed trade{'s' if stats.trades != 1 else ''}"
    return f"Equity curve: cumulative P&amp;L of {trades}, {stats.period.label}"


def export_caption(count: int) -> str:
    """Caption of the CSV export."""
    return f"📒 Your journal: {count} entr{'y' if count == 1 else 'ies'}."


def question(step: GuidedStep) -> str:
    """Ask the guided form's question for one field."""
    number = GUIDED_STEPS.index(step) + 1
    return (
        f"{QUESTION_TITLE} ({number}/{len(GUIDED_STEPS)})\n{QUESTIONS[step.field]}\n\n"
        "Send /cancel to stop."
    )


def guided_problem(error: JournalParseError, step: GuidedStep) -> str:
    """Explain an answer that could not be read, and ask again."""
    return f"{parse_problem(error)}\n\n{question(step)}"
