"""A fake Cloudinary Upload API on 127.0.0.1, for the cloudinary SDK pointed at it through `upload_prefix`.

It serves `POST /v1_1/<cloud>/image/upload` and checks the API key and then
the signature as Cloudinary does. The signature is the SHA-1 (or SHA-256) hex
digest of the signed string followed by the API secret. The signed string
contains every parameter except file, api_key, resource_type, cloud_name
and signature, as sorted `key=value` pairs joined by `&`. Signature version 2
sends an `&` inside a value as `%26`.

Failures return Cloudinary's `{"error": {"message": ...}}` body. Public ids
are built as in fixed folder mode (`folder/public_id`). With `overwrite`
false, an upload to an existing public id returns the stored asset marked
`"existing": true`. Stored files are served back at their `secure_url`, over
plain HTTP on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from PIL import Image

from tests.fakes.serving import serve_locally

UNSIGNED_PARAMS = {"file", "api_key", "resource_type", "cloud_name", "signature"}


@dataclass
class ScriptedFailure:
    """One upload that fails with `status`. With `after_store` the file is stored first, as when a reply is lost."""

    status: int = 500
    after_store: bool = False


@dataclass
class StoredAsset:
    """A file kept under its public id, with the reply fields Cloudinary returns for it."""

    data: bytes
    reply: dict[str, Any]


@dataclass
class FakeCloudinaryServer:
    """Upload API of one cloud with one API key and secret."""

    cloud_name: str = "chartbot-test"
    api_key: str = "614335564976464"
    api_secret: str = "fake-secret-3kq9ZL1pWx"
    signature_algorithm: str = "sha1"
    # Every upload request's form fields except the file, in arrival order, accepted or not.
    requests: list[dict[str, str]] = field(default_factory=list)
    assets: dict[str, StoredAsset] = field(default_factory=dict)
    failures: list[ScriptedFailure] = field(default_factory=list)
    # How many uploads wrote a file (a first upload or an overwrite). An `existing` reply writes none.
    writes: int = 0

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._versions = itertools.count(int(time.time()))
        self.url = ""

    @property
    def cloudinary_url(self) -> str:
        """CLOUDINARY_URL of this fake's account."""
        return f"cloudinary://{self.api_key}:{self.api_secret}@{self.cloud_name}"

    def fail(self, times: int, *, status: int = 500, after_store: bool = False) -> None:
        """Fail the next `times` uploads with `status`."""
        self.failures.extend(ScriptedFailure(status=status, after_store=after_store) for _ in range(times))

    async def start(self) -> str:
        """Start serving; returns the base URL for CLOUDINARY_UPLOAD_PREFIX."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1_1/{cloud}/image/upload", self._upload)
        app.router.add_get("/{cloud}/image/upload/v{version:[0-9]+}/{path:.+}", self._deliver)
        self._runner, self.url = await serve_locally(app)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    def string_to_sign(params: dict[str, str]) -> str:
        """Return the signed fields as sorted `key=value` pairs joined by `&`."""
        return "&".join(sorted(f"{key}={value}".replace("&", "%26")
                               for key, value in params.items() if key not in UNSIGNED_PARAMS and value))

    def expected_signature(self, params: dict[str, str]) -> str:
        """Return the signature Cloudinary expects for these form fields."""
        digest = hashlib.sha256 if self.signature_algorithm == "sha256" else hashlib.sha1
        return digest((self.string_to_sign(params) + self.api_secret).encode()).hexdigest()

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        params = {key: value for key, value in form.items() if isinstance(value, str)}
        upload = form.get("file")
        self.requests.append(params)

        if request.match_info["cloud"] != self.cloud_name:
            return _error(401, f"Invalid cloud_name {request.match_info['cloud']}")
        if params.get("api_key") != self.api_key:
            return _error(401, f"Unknown API key {params.get('api_key', '')}")
        expected = self.expected_signature(params)
        if params.get("signature") != expected:
            return _error(401, f"Invalid Signature {params.get('signature', '')}. "
                               f"String to sign - '{self.string_to_sign(params)}'.")
        if "timestamp" not in params:
            return _error(400, "Missing required parameter - timestamp")
        if not isinstance(upload, web.FileField):
            return _error(400, "Missing required parameter - file")

        data = upload.file.read()
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None and not failure.after_store:
            return _error(failure.status, f"scripted failure {failure.status}")
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height, image_format = image.width, image.height, (image.format or "").lower()
        except OSError:
            return _error(400, "Invalid image file")
        image_format = "jpg" if image_format == "jpeg" else image_format

        public_id = "/".join(part for part in (params.get("folder"), params.get("public_id")) if part)
        existing = self.assets.get(public_id)
        if existing is not None and params.get("overwrite") in ("0", "false"):
            reply = {**existing.reply, "existing": True}
        else:
            reply = self._store(public_id, params, data, width=width, height=height, image_format=image_format,
                                original_filename=upload.filename)
        if failure is not None:
            return _error(failure.status, f"scripted failure {failure.status}")
        return web.json_response(reply)

    def _store(self, public_id: str, params: dict[str, str], data: bytes, *, width: int, height: int,
               image_format: str, original_filename: str) -> dict[str, Any]:
        version = next(self._versions)
        path = f"{self.cloud_name}/image/upload/v{version}/{public_id}.{image_format}"
        reply = {
            "asset_id": hashlib.md5(f"{public_id}:{version}".encode()).hexdigest(),
            "public_id": public_id,
            "version": version,
            "version_id": hashlib.md5(str(version).encode()).hexdigest(),
            "signature": hashlib.sha1(f"public_id={public_id}&version={version}{self.api_secret}".encode()).hexdigest(),
            "width": width,
            "height": height,
            "format": image_format,
            "resource_type": "image",
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tags": [],
            "bytes": len(data),
            "type": "upload",
            "etag": hashlib.md5(data).hexdigest(),
            "placeholder": False,
            "url": f"{self.url}/{path}",
            "secure_url": f"{self.url}/{path}",
            "asset_folder": params.get("folder", ""),
            "display_name": params.get("public_id", public_id),
            "original_filename": original_filename,
            "api_key": self.api_key,
        }
        self.assets[public_id] = StoredAsset(data=data, reply=reply)
        self.writes += 1
        return reply

    async def _deliver(self, request: web.Request) -> web.Response:
        public_id, _, image_format = request.match_info["path"].rpartition(".")
        asset = self.assets.get(public_id)
        if (asset is None or request.match_info["cloud"] != self.cloud_name
                or str(asset.reply["version"]) != request.match_info["version"] or asset.reply["format"] != image_format):
            return web.Response(status=404)
        content_type = "image/jpeg" if image_format == "jpg" else f"image/{image_format}"
        return web.Response(body=asset.data, content_type=content_type)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message}}, status=status)
