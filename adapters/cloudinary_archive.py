"""The chart archive on Cloudinary, through the cloudinary SDK's signed upload.

The account comes from CLOUDINARY_URL and is passed to every SDK call as
options (api_key, api_secret, cloud_name, upload_prefix), so nothing is set
on the SDK's global `cloudinary.config()`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import cloudinary.exceptions
import cloudinary.uploader

from core.errors import ArchiveRejected, ArchiveUnavailable
from core.models import ArchivedChart
from core.ports import ChartArchive
from core.settings import Settings

logger = logging.getLogger(__name__)

URL_FORM = "cloudinary://API_KEY:API_SECRET@CLOUD_NAME"
SIGNATURE_ALGORITHMS = ("sha1", "sha256")
# NOTE: a chosen bound, not a measured one. A chart of up to 20 MB is expected to upload well within it.
UPLOAD_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class CloudinaryAccount:
    """The cloud and API credentials that CLOUDINARY_URL names."""

    cloud_name: str
    api_key: str
    api_secret: str = field(repr=False)
    signature_algorithm: str = "sha1"


def parse_cloudinary_url(url: str) -> CloudinaryAccount:
    """Read `cloudinary://API_KEY:API_SECRET@CLOUD_NAME[?signature_algorithm=sha256]`.

    Raises ValueError naming the missing or invalid part, with a message that never contains the secret.
    """
    parsed = urlparse(url)
    if parsed.scheme != "cloudinary":
        raise ValueError(f"CLOUDINARY_URL is invalid: it must start with cloudinary://, as in {URL_FORM}")
    missing = [name for name, value in (("API_KEY", parsed.username), ("API_SECRET", parsed.password),
                                         ("CLOUD_NAME", parsed.hostname)) if not value]
    if missing:
        raise ValueError(f"CLOUDINARY_URL is invalid: {' and '.join(missing)} missing, expected {URL_FORM}")
    # The SDK reads query parameters of CLOUDINARY_URL as configuration. Of those, only the signature
    # algorithm changes how an upload is signed.
    algorithm = parse_qs(parsed.query).get("signature_algorithm", ["sha1"])[0]
    if algorithm not in SIGNATURE_ALGORITHMS:
        raise ValueError(f"CLOUDINARY_URL is invalid: signature_algorithm {algorithm!r} is not sha1 or sha256")
    return CloudinaryAccount(cloud_name=parsed.hostname, api_key=parsed.username, api_secret=parsed.password,
                             signature_algorithm=algorithm)


class CloudinaryChartArchive:
    """ChartArchive on Cloudinary: one signed upload per chart, public id = image id, never overwritten.

    Uploading a chart again (a retry after a lost response) keeps a single
    copy because `overwrite` is false. Cloudinary then returns the asset
    already stored, marked `"existing": true`.
    """

    def __init__(self, account: CloudinaryAccount, *, root_folder: str, upload_prefix: str | None = None,
                 timeout_seconds: float = UPLOAD_TIMEOUT_SECONDS) -> None:
        self.account = account
        self.root_folder = root_folder.strip("/")
        self.upload_prefix = upload_prefix.rstrip("/") if upload_prefix else None
        self.timeout_seconds = timeout_seconds

    def _options(self, image_id: str, folder: str) -> dict[str, Any]:
        options: dict[str, Any] = {
            "public_id": image_id,
            "folder": f"{self.root_folder}/{folder}" if self.root_folder else folder,
            "resource_type": "image",
            "overwrite": False,
            "filename": image_id,
            "api_key": self.account.api_key,
            "api_secret": self.account.api_secret,
            "cloud_name": self.account.cloud_name,
            "signature_algorithm": self.account.signature_algorithm,
            "timeout": self.timeout_seconds,
            # Explicit None keeps a CLOUDINARY_URL in the environment (read by the SDK's global config at
            # import) from adding an upload preset or an OAuth token to these requests.
            "upload_preset": None,
            "oauth_token": None,
        }
        if self.upload_prefix:
            options["upload_prefix"] = self.upload_prefix
        return options

    def _without_secret(self, text: str) -> str:
        return text.replace(self.account.api_secret, "[API_SECRET]")

    async def upload(self, image_id: str, data: bytes, *, folder: str) -> ArchivedChart:
        """Upload one chart into ROOT_FOLDER/`folder` in a worker thread, so the event loop never waits on it.

        Raises ArchiveRejected when Cloudinary rejects the file itself (HTTP 400), and ArchiveUnavailable
        for the SDK's other errors (network, timeout, credentials, server error) and for an unexpected reply.
        """
        options = self._options(image_id, folder)
        try:
            result = await asyncio.to_thread(cloudinary.uploader.upload, data, **options)
        except cloudinary.exceptions.BadRequest as error:
            # NOTE: Cloudinary's status for a stale timestamp (a host clock over an hour off) was not checked.
            # If it is 400, those uploads are dropped as rejected instead of being retried.
            raise ArchiveRejected(self._describe(image_id, options["folder"], error)) from None
        except (cloudinary.exceptions.Error, ValueError, OSError) as error:
            # `from None`: the SDK's exception is not chained, so only the cleaned message reaches a traceback.
            raise ArchiveUnavailable(self._describe(image_id, options["folder"], error)) from None

        public_id, secure_url = result.get("public_id"), result.get("secure_url")
        if not isinstance(public_id, str) or not isinstance(secure_url, str):
            raise ArchiveUnavailable(f"Cloudinary upload of image {image_id} returned no public_id or secure_url")
        if result.get("existing"):
            logger.info("chart already in Cloudinary image=%s public_id=%s", image_id, public_id)
        return ArchivedChart(image_id=image_id, public_id=public_id, secure_url=secure_url)

    def _describe(self, image_id: str, folder: str, error: Exception) -> str:
        detail = self._without_secret(f"{type(error).__name__}: {error}")
        return f"Cloudinary upload of image {image_id} to folder {folder} failed: {detail}"


def build_chart_archive(settings: Settings) -> ChartArchive | None:
    """Create the Cloudinary archive from CLOUDINARY_URL, or return None when it is not set.

    Raises ValueError when CLOUDINARY_URL is set but malformed.
    """
    if settings.cloudinary_url is None or not settings.cloudinary_url.get_secret_value():
        logger.info("chart archive off: CLOUDINARY_URL is not set, charts stay in MongoDB only")
        return None
    account = parse_cloudinary_url(settings.cloudinary_url.get_secret_value())
    logger.info("chart archive on Cloudinary cloud=%s folder=%s", account.cloud_name, settings.cloudinary_folder)
    return CloudinaryChartArchive(account, root_folder=settings.cloudinary_folder,
                                  upload_prefix=settings.cloudinary_upload_prefix)
