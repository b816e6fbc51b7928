"""A fake Telegram Bot API server on 127.0.0.1 that the real python-telegram-bot talks to.

Tests inject user updates, serve files for getFile, and read every call the
bot made and the chat as the user would see it after edits.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.serving import serve_locally

TELEGRAM_HTML_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
                      "tg-spoiler", "blockquote", "span"}
_TAG = re.compile(r"<(/?)([a-zA-Z-]+)[^<>]*>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


def html_parse_error(text: str) -> str | None:
    """Return Telegram's complaint when `text` is not valid Telegram HTML, else None."""
    stack: list[str] = []
    position = 0
    for match in _TAG.finditer(text):
        between = text[position : match.start()]
        if "<" in between or ">" in between:
            return "Bad Request: can't parse entities: unexpected < or >"
        position = match.end()
        closing, name = match.group(1), match.group(2).lower()
        if name not in TELEGRAM_HTML_TAGS:
            return f"Bad Request: can't parse entities: unsupported start tag \"{name}\""
        if closing:
            if not stack or stack.pop() != name:
                return f"Bad Request: can't parse entities: unmatched end tag \"{name}\""
        else:
            stack.append(name)
    if "<" in text[position:] or ">" in text[position:]:
        return "Bad Request: can't parse entities: unexpected < or >"
    if stack:
        return f"Bad Request: can't parse entities: unclosed tag \"{stack[-1]}\""
    for ampersand in re.finditer("&", text):
        if not _ENTITY.match(text, ampersand.start()):
            return "Bad Request: can't parse entities: unescaped &"
    return None


def html_to_plain(text: str) -> str:
    """Return what a client shows of Telegram HTML: the text without tags, entities decoded."""
    return html.unescape(_TAG.sub("", text))


BOT_USER = {"id": 999000, "is_bot": True, "first_name": "ChartBot", "username": "chartbot_test_bot"}


@dataclass
class SentMessage:
    """A message the bot sent, with its text after any edits."""

    chat_id: int
    message_id: int
    text: str
    parse_mode: str | None
    reply_to: int | None
    edits: int = 0
    reply_markup: dict[str, Any] | None = None
    # Every text the message showed, first to last, with the monotonic time it was set.
    history: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class Upload:
    """A photo or document the bot sent: the uploaded bytes, or the URL or file_id it gave in their place."""

    method: str
    chat_id: int
    data: bytes
    filename: str | None
    caption: str | None
    parse_mode: str | None
    reply_to: int | None
    url: str | None = None
    # Photos sent in one sendMediaGroup call share this id.
    media_group_id: str | None = None


@dataclass
class FakeTelegramServer:
    """The Bot API methods ChartBot calls, backed by in-memory chats."""

    token: str = "123456:TEST-TOKEN"
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    messages: dict[int, SentMessage] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    commands: list[dict[str, Any]] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    callback_answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Photo URLs that sendPhoto and sendMediaGroup reject, as Telegram does when it cannot download one.
    unreachable_urls: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._updates: list[dict[str, Any]] = []
        # Wall-clock time each user message was first handed to the bot by getUpdates, by message id.
        self.served_at: dict[int, float] = {}
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._user_message_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._media_group_ids = itertools.count(1)
        self._new_update = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.webhook: dict[str, Any] | None = None

    async def start(self) -> str:
        """Start serving on a free 127.0.0.1 port; returns the base URL for TELEGRAM_API_URL."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.*}", self._handle_file)
        self._runner, self.url = await serve_locally(app)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # What a test does as the user.

    def add_file(self, data: bytes) -> str:
        """Make `data` downloadable; returns its file_id."""
        file_id = f"file-{next(self._file_ids)}"
        self.files[file_id] = data
        return file_id

    def _push(self, message: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        self._updates.append({"update_id": update_id, "message": message})
        self._new_update.set()
        return message["message_id"]

    def _base_message(self, user_id: int, chat_id: int | None) -> dict[str, Any]:
        chat = chat_id if chat_id is not None else user_id
        return {
            "message_id": next(self._user_message_ids),
            "date": int(time.time()),
            "chat": {"id": chat, "type": "private", "first_name": "Trader"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Trader", "language_code": "en"},
        }

    def send_text(self, user_id: int, text: str, *, chat_id: int | None = None,
                  reply_to_message_id: int | None = None) -> int:
        """Deliver a text message (a command when it starts with /) from a user; returns its message_id.

        `reply_to_message_id` makes it a reply to one of the bot's messages.
        """
        message = self._base_message(user_id, chat_id)
        message["text"] = text
        if reply_to_message_id is not None:
            message["reply_to_message"] = self._message_json(self.messages[reply_to_message_id])
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return self._push(message)

    def send_photo(self, user_id: int, data: bytes, *, caption: str | None = None,
                   width: int = 1280, height: int = 720, chat_id: int | None = None) -> int:
        """Deliver a photo message; the largest size carries `data`."""
        message = self._base_message(user_id, chat_id)
        file_id = self.add_file(data)
        message["photo"] = [
            {"file_id": file_id + "-thumb", "file_unique_id": file_id + "-t", "width": 90, "height": 51,
             "file_size": 1000},
            {"file_id": file_id, "file_unique_id": file_id + "-u", "width": width, "height": height,
             "file_size": len(data)},
        ]
        if caption is not None:
            message["caption"] = caption
        return self._push(message)

    def send_document(self, user_id: int, data: bytes, *, file_name: str, mime_type: str | None,
                      caption: str | None = None, file_size: int | None = None,
                      chat_id: int | None = None) -> int:
        """Deliver a file message; `file_size` overrides the size Telegram reports."""
        message = self._base_message(user_id, chat_id)
        file_id = self.add_file(data)
        document = {"file_id": file_id, "file_unique_id": file_id + "-u", "file_name": file_name,
                    "file_size": len(data) if file_size is None else file_size}
        if mime_type is not None:
            document["mime_type"] = mime_type
        message["document"] = document
        if caption is not None:
            message["caption"] = caption
        return self._push(message)

    def album_updates(self, user_id: int, files: list[bytes], *, media_group_id: str, kind: str = "photo",
                      caption: str | None = None, caption_index: int = 0, file_name: str = "chart.png",
                      mime_type: str = "image/png") -> list[dict[str, Any]]:
        """Return the updates of one album, one per file in message order, without queueing them for getUpdates.

        A test posts them to the bot's webhook itself, in any order and to any process. `kind` is "photo"
        or "document"; the part at `caption_index` carries `caption`.
        """
        updates = []
        for index, data in enumerate(files):
            message = self._base_message(user_id, None)
            message["media_group_id"] = media_group_id
            file_id = self.add_file(data)
            if kind == "photo":
                message["photo"] = [{"file_id": file_id, "file_unique_id": file_id + "-u", "width": 1280,
                                     "height": 720, "file_size": len(data)}]
            else:
                message["document"] = {"file_id": file_id, "file_unique_id": file_id + "-u",
                                       "file_name": file_name, "mime_type": mime_type, "file_size": len(data)}
            if caption is not None and index == caption_index:
                message["caption"] = caption
            updates.append({"update_id": next(self._update_ids), "message": message})
        return updates

    def press_button(self, user_id: int, message_id: int, callback_data: str) -> str:
        """Deliver a callback_query from a user pressing an inline button of a bot message; returns its id.

        `callback_data` is sent as given, so a test can press a button the message does not have.
        """
        sent = self.messages[message_id]
        query_id = f"cq-{next(self._callback_ids)}"
        update_id = next(self._update_ids)
        self._updates.append({
            "update_id": update_id,
            "callback_query": {
                "id": query_id,
                "from": {"id": user_id, "is_bot": False, "first_name": "Trader", "language_code": "en"},
                "message": self._message_json(sent),
                "chat_instance": f"ci-{sent.chat_id}",
                "data": callback_data,
            },
        })
        self._new_update.set()
        return query_id

    def buttons(self, message_id: int) -> list[tuple[str, str]]:
        """Return the (text, callback_data) of every inline button of a bot message, row by row."""
        markup = self.messages[message_id].reply_markup or {}
        return [(button["text"], button.get("callback_data", ""))
                for row in markup.get("inline_keyboard", []) for button in row]

    async def say(self, user_id: int, text: str, *, timeout: float = 20.0) -> list[SentMessage]:
        """Deliver a text from a user in their private chat; returns the bot's new messages there once any arrive."""
        before = {m.message_id for m in self.chat(user_id)}
        self.send_text(user_id, text)

        def new() -> list[SentMessage]:
            return [m for m in self.chat(user_id) if m.message_id not in before]

        await self.wait_for(new, timeout=timeout)
        return new()

    async def press(self, user_id: int, message_id: int, callback_data: str, *,
                    timeout: float = 20.0) -> dict[str, Any]:
        """Press an inline button as a user; returns the parameters of the bot's answerCallbackQuery call."""
        query_id = self.press_button(user_id, message_id, callback_data)
        await self.wait_for(lambda: query_id in self.callback_answers, timeout=timeout)
        return self.callback_answers[query_id]

    # What a test reads.

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    def chat(self, chat_id: int) -> list[SentMessage]:
        """Return the bot's messages in a chat, oldest first, as they stand now."""
        return [m for m in sorted(self.messages.values(), key=lambda m: m.message_id) if m.chat_id == chat_id]

    async def wait_for(self, predicate, *, timeout: float = 30.0, interval: float = 0.05) -> None:
        """Wait until `predicate()` is true; fail the test with AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s; calls: {[c[0] for c in self.calls]}")
            await asyncio.sleep(interval)

    # The Bot API.

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            return await request.json()
        form = await request.post()
        params: dict[str, Any] = {}
        for key, value in form.items():
            if isinstance(value, str) and value[:1] in "{[":
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            params[key] = value
        return params

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _error(code: int, description: str) -> web.Response:
        return web.json_response({"ok": False, "error_code": code, "description": description}, status=code)

    def _message_json(self, sent: SentMessage) -> dict[str, Any]:
        message = {
            "message_id": sent.message_id,
            "date": int(time.time()),
            "chat": {"id": sent.chat_id, "type": "private", "first_name": "Trader"},
            "from": BOT_USER,
            "text": html_to_plain(sent.text) if sent.parse_mode == "HTML" else sent.text,
        }
        if sent.reply_markup and "inline_keyboard" in sent.reply_markup:
            message["reply_markup"] = sent.reply_markup
        return message

    async def _handle_method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await self._params(request)
        self.calls.append((method, params))
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return self._error(404, "Not Found: method not found")
        return await handler(params)

    async def _api_getMe(self, params):
        return self._ok({**BOT_USER, "can_join_groups": True, "can_read_all_group_messages": False,
                         "supports_inline_queries": False})

    async def _api_deleteWebhook(self, params):
        return self._ok(True)

    async def _api_setWebhook(self, params):
        # Every call stays in `calls`; the latest registration is kept here, as Telegram keeps one per bot.
        self.webhook = params
        return self._ok(True)

    async def _api_setMyCommands(self, params):
        self.commands = params.get("commands", [])
        return self._ok(True)

    async def _api_sendChatAction(self, params):
        return self._ok(True)

    async def _api_getUpdates(self, params):
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        if offset > 0:
            # Like Telegram, an offset confirms every earlier update, so a restarted bot does not see it again.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        while True:
            pending = [u for u in self._updates if u["update_id"] >= offset]
            if pending or time.monotonic() >= deadline:
                served = pending[: int(params.get("limit") or 100)]
                now = time.time()
                for update in served:
                    if "message" in update:
                        self.served_at.setdefault(update["message"]["message_id"], now)
                return self._ok(served)
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                pass

    async def _api_sendMessage(self, params):
        text = str(params["text"])
        if len(text.encode("utf-16-le")) // 2 > 4096:
            return self._error(400, "Bad Request: message is too long")
        if params.get("parse_mode") == "HTML" and (problem := html_parse_error(text)):
            return self._error(400, problem)
        reply = params.get("reply_parameters") or {}
        sent = SentMessage(chat_id=int(params["chat_id"]), message_id=next(self._message_ids), text=text,
                           parse_mode=params.get("parse_mode"), reply_to=reply.get("message_id"),
                           reply_markup=params.get("reply_markup"))
        sent.history.append((time.monotonic(), text))
        self.messages[sent.message_id] = sent
        return self._ok(self._message_json(sent))

    async def _api_editMessageText(self, params):
        sent = self.messages.get(int(params["message_id"]))
        if sent is None or sent.chat_id != int(params["chat_id"]):
            return self._error(400, "Bad Request: message to edit not found")
        text = str(params["text"])
        if len(text.encode("utf-16-le")) // 2 > 4096:
            return self._error(400, "Bad Request: message is too long")
        if params.get("parse_mode") == "HTML" and (problem := html_parse_error(text)):
            return self._error(400, problem)
        if text == sent.text and params.get("reply_markup") == sent.reply_markup:
            return self._error(400, "Bad Request: message is not modified: specified new message content and "
                                    "reply markup are exactly the same as a current content and reply markup "
                                    "of the message")
        sent.text = text
        sent.history.append((time.monotonic(), text))
        sent.parse_mode = params.get("parse_mode")
        # Like Telegram, an edit without reply_markup removes the inline keyboard.
        sent.reply_markup = params.get("reply_markup")
        sent.edits += 1
        return self._ok(self._message_json(sent))

    async def _api_editMessageReplyMarkup(self, params):
        sent = self.messages.get(int(params["message_id"]))
        if sent is None or sent.chat_id != int(params["chat_id"]):
            return self._error(400, "Bad Request: message to edit not found")
        sent.reply_markup = params.get("reply_markup")
        return self._ok(self._message_json(sent))

    async def _api_answerCallbackQuery(self, params):
        # Form-encoded requests carry booleans as "true" or "false".
        if "show_alert" in params:
            params = {**params, "show_alert": str(params["show_alert"]).lower() == "true"}
        self.callback_answers[str(params["callback_query_id"])] = params
        return self._ok(True)

    def _sent_media_message(self, chat_id: int, field_name: str, *, caption: str | None,
                            filename: str | None, media_group_id: str | None = None) -> dict[str, Any]:
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Trader"},
            "from": BOT_USER,
        }
        if caption is not None:
            message["caption"] = caption
        if media_group_id is not None:
            message["media_group_id"] = media_group_id
        if field_name == "photo":
            message["photo"] = [{"file_id": "sent-photo", "file_unique_id": "sent-photo-u", "width": 800,
                                 "height": 450}]
        else:
            message["document"] = {"file_id": "sent-document", "file_unique_id": "sent-document-u",
                                   "file_name": filename}
        return message

    async def _upload(self, method: str, field_name: str, params: dict[str, Any]) -> web.Response:
        upload = params.get(field_name)
        # A string is a URL (Telegram downloads it) or the file_id of a file it already has.
        if not isinstance(upload, web.FileField | str) or not upload:
            return self._error(400, f"Bad Request: there is no {field_name} in the request")
        caption = params.get("caption")
        if caption is not None and params.get("parse_mode") == "HTML" and (problem := html_parse_error(caption)):
            return self._error(400, problem)
        reply = params.get("reply_parameters") or {}
        is_file = isinstance(upload, web.FileField)
        if not is_file and upload in self.unreachable_urls:
            return self._error(400, "Bad Request: failed to get HTTP URL content")
        self.uploads.append(Upload(method=method, chat_id=int(params["chat_id"]),
                                   data=upload.file.read() if is_file else b"",
                                   filename=upload.filename if is_file else None, caption=caption,
                                   parse_mode=params.get("parse_mode"), reply_to=reply.get("message_id"),
                                   url=None if is_file else upload))
        return self._ok(self._sent_media_message(int(params["chat_id"]), field_name, caption=caption,
                                                 filename=upload.filename if is_file else None))

    async def _api_sendMediaGroup(self, params):
        media = params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            return self._error(400, "Bad Request: media must contain 2-10 items")
        chat_id = int(params["chat_id"])
        group_id = f"group-{next(self._media_group_ids)}"
        uploads = []
        for item in media:
            if item.get("type") != "photo":
                return self._error(400, f"Bad Request: unsupported media type {item.get('type')!r}")
            caption = item.get("caption")
            if caption is not None and item.get("parse_mode") == "HTML" and (problem := html_parse_error(caption)):
                return self._error(400, problem)
            reference = str(item.get("media") or "")
            url, data = reference, b""
            if reference.startswith("attach://"):
                attached = params.get(reference.removeprefix("attach://"))
                if not isinstance(attached, web.FileField):
                    return self._error(400, f"Bad Request: file {reference} is not attached")
                url, data = None, attached.file.read()
            if not url and not data:
                return self._error(400, "Bad Request: media item has no file")
            if url in self.unreachable_urls:
                return self._error(400, "Bad Request: failed to get HTTP URL content")
            uploads.append(Upload(method="sendMediaGroup", chat_id=chat_id, data=data, filename=None,
                                  caption=caption, parse_mode=item.get("parse_mode"), reply_to=None, url=url,
                                  media_group_id=group_id))
        self.uploads.extend(uploads)
        return self._ok([self._sent_media_message(chat_id, "photo", caption=upload.caption, filename=None,
                                                  media_group_id=group_id) for upload in uploads])

    async def _api_sendPhoto(self, params):
        return await self._upload("sendPhoto", "photo", params)

    async def _api_sendDocument(self, params):
        return await self._upload("sendDocument", "document", params)

    async def _api_getFile(self, params):
        file_id = params["file_id"]
        if file_id not in self.files:
            return self._error(400, "Bad Request: invalid file_id")
        data = self.files[file_id]
        if len(data) > 20 * 1024 * 1024:
            return self._error(400, "Bad Request: file is too big")
        return self._ok({"file_id": file_id, "file_unique_id": file_id + "-u", "file_size": len(data),
                         "file_path": f"documents/{file_id}"})

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        file_id = request.match_info["path"].rsplit("/", 1)[-1]
        if file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id], content_type="application/octet-stream")
