"""The Cloudinary chart archive: the real cloudinary SDK against the fake Upload API, charts read from FerretDB.

The fake server runs on the test's own event loop, so every upload here also
shows that the SDK call runs off the loop: a blocking call would leave the
fake unable to reply.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import aiohttp
import cloudinary
import pytest
import pytest_asyncio
from PIL import Image

from adapters.cloudinary_archive import (
    CloudinaryAccount,
    CloudinaryChartArchive,
    build_chart_archive,
    parse_cloudinary_url,
)
from adapters.mongo import MongoAnalysisRepository, MongoImageStore, ensure_indexes
from adapters.redis_jobs import RedisJobRegistry
from core.archive import archive_charts, retry_pending_archives
from core.errors import ArchiveRejected, ArchiveUnavailable
from core.jobs import JobKind
from core.models import Analysis, ArchivedChart, ImageInfo, Platform, StoredImage
from core.settings import Settings
from core.usage_records import Reservation
from tests.conftest import CHARTS
from tests.fakes.cloudinary_server import FakeCloudinaryServer
from workers.jobs.names import MAINTENANCE_TASK_NAME
from workers.jobs.tasks import maintenance

CHART = (CHARTS / "rendered" / "rendered-00.png").read_bytes()
SECOND_CHART = (CHARTS / "rendered" / "rendered-01.png").read_bytes()
START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest_asyncio.fixture
async def cloudinary_server():
    server = FakeCloudinaryServer()
    await server.start()
    yield server
    await server.stop()


def _archive(server: FakeCloudinaryServer, *, api_secret: str | None = None) -> CloudinaryChartArchive:
    account = CloudinaryAccount(cloud_name=server.cloud_name, api_key=server.api_key,
                                api_secret=api_secret or server.api_secret)
    return CloudinaryChartArchive(account, root_folder="chartbot", upload_prefix=server.url)


def _info(data: bytes) -> ImageInfo:
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    return ImageInfo(mime_type="image/png", width=width, height=height, size_bytes=len(data),
                     sha256=hashlib.sha256(data).hexdigest())


async def _stored_analysis(mongo_db, analysis_id: str, charts: list[bytes], *, minutes: int = 0) -> Analysis:
    """Store the charts in MongoDB's image store and add an analysis of user telegram 12345 for them."""
    await ensure_indexes(mongo_db)
    images = MongoImageStore(mongo_db)
    stored = []
    for index, data in enumerate(charts):
        image_id = f"{analysis_id}-{index}"
        await images.put(image_id, _info(data), data)
        stored.append(StoredImage(image_id=image_id, info=_info(data)))
    analysis = Analysis(
        id=analysis_id, platform=Platform.TELEGRAM, user_id="12345", chat_id="12345", images=stored,
        units=len(charts), created_at=START + timedelta(minutes=minutes),
        reservation=Reservation(analysis_id=analysis_id, platform="telegram", user_id="12345", units=len(charts),
                                day="2026-05-01", period="2026-05-01T00:00:00+00:00"),
    )
    await MongoAnalysisRepository(mongo_db).add(analysis)
    return analysis


async def _fetch(url: str) -> bytes:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        return await response.read()


async def test_upload_signed_into_user_folder(cloudinary_server):
    archive = _archive(cloudinary_server)

    chart = await archive.upload("a1-0", CHART, folder="telegram-12345")

    assert len(cloudinary_server.requests) == 1
    params = cloudinary_server.requests[0]
    assert set(params) == {"folder", "public_id", "overwrite", "timestamp", "api_key", "signature"}
    assert params["folder"] == "chartbot/telegram-12345"
    assert params["public_id"] == "a1-0"
    assert params["overwrite"] == "0"
    assert params["api_key"] == cloudinary_server.api_key
    assert abs(int(params["timestamp"]) - time.time()) < 600
    assert params["signature"] == cloudinary_server.expected_signature(params)
    assert len(params["signature"]) == 40
    assert chart.image_id == "a1-0"
    assert chart.public_id == "chartbot/telegram-12345/a1-0"
    assert chart.secure_url.startswith(f"{cloudinary_server.url}/chartbot-test/image/upload/v")
    assert chart.secure_url.endswith("/chartbot/telegram-12345/a1-0.png")
    assert await _fetch(chart.secure_url) == CHART
    # The account went into the call's options, not into the SDK's global configuration.
    assert cloudinary.config().api_secret != cloudinary_server.api_secret


async def test_sha256_account_signs_with_sha256(cloudinary_server):
    cloudinary_server.signature_algorithm = "sha256"
    account = parse_cloudinary_url(cloudinary_server.cloudinary_url + "?signature_algorithm=sha256")
    archive = CloudinaryChartArchive(account, root_folder="chartbot", upload_prefix=cloudinary_server.url)

    chart = await archive.upload("a2-0", CHART, folder="discord-77")

    params = cloudinary_server.requests[0]
    assert len(params["signature"]) == 64
    assert params["signature"] == cloudinary_server.expected_signature(params)
    assert chart.public_id == "chartbot/discord-77/a2-0"


async def test_wrong_secret_raises_without_secret(cloudinary_server, mongo_db, caplog):
    caplog.set_level(logging.DEBUG)
    wrong_secret = "wrong-secret-Qz81"
    archive = _archive(cloudinary_server, api_secret=wrong_secret)

    with pytest.raises(ArchiveUnavailable) as raised:
        await archive.upload("a3-0", CHART, folder="telegram-12345")
    message = str(raised.value)
    assert message.startswith("Cloudinary upload of image a3-0 to folder chartbot/telegram-12345 failed: "
                              "AuthorizationRequired: Invalid Signature ")
    assert wrong_secret not in message
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__ is True
    assert not isinstance(raised.value, ArchiveRejected)

    analysis = await _stored_analysis(mongo_db, "a3", [CHART])
    stored = await archive_charts(analysis, analyses=MongoAnalysisRepository(mongo_db),
                                  images=MongoImageStore(mongo_db), archive=archive)
    assert stored.archive_pending is True
    assert stored.archived == []
    assert "chart upload to the archive failed analysis=a3 image=a3-0" in caplog.text
    assert wrong_secret not in caplog.text
    assert cloudinary_server.assets == {}


async def test_retried_upload_stays_one_copy(cloudinary_server):
    archive = _archive(cloudinary_server)
    # The first upload is stored but its reply is lost, as after a timeout.
    cloudinary_server.fail(1, after_store=True)

    with pytest.raises(ArchiveUnavailable, match="GeneralError: scripted failure 500"):
        await archive.upload("a4-0", CHART, folder="telegram-12345")
    chart = await archive.upload("a4-0", CHART, folder="telegram-12345")

    assert len(cloudinary_server.requests) == 2
    assert cloudinary_server.writes == 1
    assert list(cloudinary_server.assets) == ["chartbot/telegram-12345/a4-0"]
    first_reply = cloudinary_server.assets["chartbot/telegram-12345/a4-0"].reply
    assert chart == ArchivedChart(image_id="a4-0", public_id="chartbot/telegram-12345/a4-0",
                                  secure_url=first_reply["secure_url"])


async def test_archive_charts_stores_urls(cloudinary_server, mongo_db):
    analysis = await _stored_analysis(mongo_db, "a5", [CHART, SECOND_CHART])
    analyses = MongoAnalysisRepository(mongo_db)

    result = await archive_charts(analysis, analyses=analyses, images=MongoImageStore(mongo_db),
                                  archive=_archive(cloudinary_server))

    stored = await analyses.get("a5")
    assert stored == result
    assert stored.archive_pending is False
    assert [chart.image_id for chart in stored.archived] == ["a5-0", "a5-1"]
    assert [chart.public_id for chart in stored.archived] == ["chartbot/telegram-12345/a5-0",
                                                              "chartbot/telegram-12345/a5-1"]
    assert await _fetch(stored.archived[0].secure_url) == CHART
    assert await _fetch(stored.archived[1].secure_url) == SECOND_CHART
    raw = await mongo_db.analyses.find_one({"_id": "a5"})
    assert raw["archived"][0]["secure_url"] == stored.archived[0].secure_url
    assert raw["archive_pending"] is False


async def test_failed_upload_completed_by_retry(cloudinary_server, mongo_db):
    analysis = await _stored_analysis(mongo_db, "a6", [CHART, SECOND_CHART])
    analyses, images, archive = MongoAnalysisRepository(mongo_db), MongoImageStore(mongo_db), _archive(cloudinary_server)
    cloudinary_server.fail(1)

    first = await archive_charts(analysis, analyses=analyses, images=images, archive=archive)

    assert first.archive_pending is True
    assert [chart.image_id for chart in first.archived] == ["a6-1"]
    assert [pending.id for pending in await analyses.archive_pending(limit=10)] == ["a6"]

    assert await retry_pending_archives(analyses=analyses, images=images, archive=archive, limit=10) == 1

    stored = await analyses.get("a6")
    assert stored.archive_pending is False
    assert [chart.image_id for chart in stored.archived] == ["a6-1", "a6-0"]
    assert await _fetch(stored.archived[1].secure_url) == CHART
    assert cloudinary_server.writes == 2
    assert await analyses.archive_pending(limit=10) == []
    assert await retry_pending_archives(analyses=analyses, images=images, archive=archive, limit=10) == 0
    assert len(cloudinary_server.requests) == 3


async def test_maintenance_task_retries_uploads(cloudinary_server, mongo_db, redis_client):
    analysis = await _stored_analysis(mongo_db, "a7", [CHART])
    analyses, images, archive = MongoAnalysisRepository(mongo_db), MongoImageStore(mongo_db), _archive(cloudinary_server)
    cloudinary_server.fail(1)
    assert (await archive_charts(analysis, analyses=analyses, images=images, archive=archive)).archive_pending

    registry = RedisJobRegistry(redis_client)
    job_id = await registry.create(name=MAINTENANCE_TASK_NAME, kind=JobKind.IMMEDIATE, args=[])
    # Only taskiq's Context is stood in for: the task reads context.state.runtime, as in a worker.
    runtime = SimpleNamespace(jobs=SimpleNamespace(registry=registry), archive=archive,
                              runner=SimpleNamespace(services=SimpleNamespace(analyses=analyses, images=images)))
    context = SimpleNamespace(state=SimpleNamespace(runtime=runtime))

    result = await maintenance(job_id, context)

    assert result == "removed 0 job records, 0 schedules; archived the charts of 1 analyses"
    stored = await analyses.get("a7")
    assert stored.archive_pending is False
    assert [chart.public_id for chart in stored.archived] == ["chartbot/telegram-12345/a7-0"]


async def test_rejected_file_not_retried(cloudinary_server, mongo_db, caplog):
    analysis = await _stored_analysis(mongo_db, "a8", [CHART])
    # The stored bytes are replaced by a file that only starts like an image, which Cloudinary rejects.
    not_an_image = b"GIF89a but truncated"
    images = MongoImageStore(mongo_db)
    await images.delete("a8-0")
    await images.put("a8-0", _info(CHART), not_an_image)
    analyses = MongoAnalysisRepository(mongo_db)

    with pytest.raises(ArchiveRejected, match="BadRequest: Invalid image file"):
        await _archive(cloudinary_server).upload("a8-0", not_an_image, folder="telegram-12345")
    result = await archive_charts(analysis, analyses=analyses, images=images, archive=_archive(cloudinary_server))

    assert result.archive_pending is False
    assert result.archived == []
    assert await analyses.archive_pending(limit=10) == []
    assert "chart rejected by the archive, not retried analysis=a8 image=a8-0" in caplog.text


async def test_missing_image_skipped(cloudinary_server, mongo_db, caplog):
    analysis = await _stored_analysis(mongo_db, "a9", [CHART])
    images = MongoImageStore(mongo_db)
    await images.delete("a9-0")

    result = await archive_charts(analysis, analyses=MongoAnalysisRepository(mongo_db), images=images,
                                  archive=_archive(cloudinary_server))

    assert result.archive_pending is False
    assert result.archived == []
    assert cloudinary_server.requests == []
    assert "chart not archived because the image store has no such image analysis=a9 image=a9-0" in caplog.text


async def test_unreachable_server_raises_unavailable():
    server = FakeCloudinaryServer()
    await server.start()
    await server.stop()
    archive = _archive(server)

    with pytest.raises(ArchiveUnavailable) as raised:
        await archive.upload("a10-0", CHART, folder="telegram-12345")

    assert raised.value.args[0].startswith("Cloudinary upload of image a10-0 to folder chartbot/telegram-12345 "
                                           "failed: Error: ")
    assert not isinstance(raised.value, ArchiveRejected)


def test_build_chart_archive_without_url(monkeypatch):
    monkeypatch.delenv("CLOUDINARY_URL", raising=False)

    assert build_chart_archive(Settings(_env_file=None)) is None


async def test_build_chart_archive_from_settings(cloudinary_server):
    settings = Settings(_env_file=None, cloudinary_url=cloudinary_server.cloudinary_url,
                        cloudinary_upload_prefix=cloudinary_server.url, cloudinary_folder="charts-prod")

    archive = build_chart_archive(settings)
    chart = await archive.upload("a11-0", CHART, folder="telegram-12345")

    assert isinstance(archive, CloudinaryChartArchive)
    assert archive.account == CloudinaryAccount(cloud_name="chartbot-test", api_key=cloudinary_server.api_key,
                                                api_secret=cloudinary_server.api_secret)
    assert chart.public_id == "charts-prod/telegram-12345/a11-0"
    assert cloudinary_server.api_secret not in repr(archive.account)


@pytest.mark.parametrize(("url", "message"), [
    ("https://key:secret-9x@cloud", "CLOUDINARY_URL is invalid: it must start with cloudinary://, "
                                    "as in cloudinary://API_KEY:API_SECRET@CLOUD_NAME"),
    ("cloudinary://key@cloud", "CLOUDINARY_URL is invalid: API_SECRET missing, "
                               "expected cloudinary://API_KEY:API_SECRET@CLOUD_NAME"),
    ("cloudinary://key:secret-9x@", "CLOUDINARY_URL is invalid: CLOUD_NAME missing, "
                                    "expected cloudinary://API_KEY:API_SECRET@CLOUD_NAME"),
    ("cloudinary://key:secret-9x@cloud?signature_algorithm=md5",
     "CLOUDINARY_URL is invalid: signature_algorithm 'md5' is not sha1 or sha256"),
])
def test_malformed_cloudinary_url_rejected(url, message):
    with pytest.raises(ValueError) as raised:
        parse_cloudinary_url(url)

    assert str(raised.value) == message
    assert "secret-9x" not in str(raised.value)
