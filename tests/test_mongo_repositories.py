"""MongoDB repositories on the test server (FerretDB, or mongod where installed) through PyMongo."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from pymongo.errors import DuplicateKeyError

from adapters.mongo import IMAGE_CHUNK_BYTES, MongoAnalysisRepository, MongoImageStore, ensure_indexes
from core.analysis_result import AnalysisResult, ModelReport
from core.models import Analysis, AnalysisStatus, ChartFindings, ImageInfo, Platform, StoredImage, TokenUsage
from core.usage_records import Reservation
from tests.fakes.openai_server import default_report

START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _info(data: bytes) -> ImageInfo:
    return ImageInfo(mime_type="image/png", width=800, height=600, size_bytes=len(data),
                     sha256=hashlib.sha256(data).hexdigest())


def _analysis(analysis_id: str, *, user_id: str = "9", minutes: int = 0) -> Analysis:
    return Analysis(
        id=analysis_id, platform=Platform.TELEGRAM, user_id=user_id, chat_id="9", message_id="3",
        caption="trend?", images=[StoredImage(image_id=f"{analysis_id}-0", info=_info(b"x"))],
        units=1, created_at=START + timedelta(minutes=minutes),
        reservation=Reservation(analysis_id=analysis_id, platform="telegram", user_id=user_id, units=1,
                                day="2026-05-01", period="2026-05-01T00:00:00+00:00"),
    )


async def test_analysis_round_trip_and_update(mongo_db):
    await ensure_indexes(mongo_db)
    repository = MongoAnalysisRepository(mongo_db)
    original = _analysis("a1")
    await repository.add(original)
    assert await repository.get("a1") == original

    await repository.update("a1", {"status": AnalysisStatus.DONE, "usage": TokenUsage(input_tokens=7, output_tokens=3),
                                   "finished_at": START + timedelta(seconds=9)})
    updated = await repository.get("a1")
    assert updated.status is AnalysisStatus.DONE
    assert updated.usage == TokenUsage(input_tokens=7, output_tokens=3)
    assert updated.finished_at == START + timedelta(seconds=9)
    raw = await mongo_db.analyses.find_one({"_id": "a1"})
    assert raw["status"] == "done"
    assert raw["platform"] == "telegram"


async def test_analysis_duplicate_id_rejected(mongo_db):
    repository = MongoAnalysisRepository(mongo_db)
    await repository.add(_analysis("dup"))
    with pytest.raises(DuplicateKeyError):
        await repository.add(_analysis("dup"))


async def test_update_of_missing_analysis_raises(mongo_db):
    with pytest.raises(KeyError):
        await MongoAnalysisRepository(mongo_db).update("nope", {"status": AnalysisStatus.DONE})


async def test_list_for_user_newest_first(mongo_db):
    await ensure_indexes(mongo_db)
    repository = MongoAnalysisRepository(mongo_db)
    for minutes, analysis_id in [(5, "b"), (1, "a"), (9, "c")]:
        await repository.add(_analysis(analysis_id, minutes=minutes))
    await repository.add(_analysis("other", user_id="10", minutes=20))
    assert [a.id for a in await repository.list_for_user("telegram", "9", limit=10)] == ["c", "b", "a"]
    assert [a.id for a in await repository.list_for_user("telegram", "9", limit=2)] == ["c", "b"]


async def test_indexes_created(mongo_db):
    await ensure_indexes(mongo_db)
    await ensure_indexes(mongo_db)
    analyses = await mongo_db.analyses.index_information()
    assert analyses["user_newest_first"]["key"] == [("platform", 1), ("user_id", 1), ("created_at", -1)]
    chunks = await mongo_db.chart_image_chunks.index_information()
    assert chunks["image_chunk"]["unique"] is True


async def test_image_store_round_trip_across_chunks(mongo_db):
    await ensure_indexes(mongo_db)
    store = MongoImageStore(mongo_db)
    data = bytes(range(256)) * (IMAGE_CHUNK_BYTES * 2 // 256 + 1000)
    await store.put("img-1", _info(data), data)
    assert await store.get("img-1") == data
    assert await mongo_db.chart_image_chunks.count_documents({"image_id": "img-1"}) == 3

    await store.delete("img-1")
    with pytest.raises(KeyError):
        await store.get("img-1")
    assert await mongo_db.chart_image_chunks.count_documents({"image_id": "img-1"}) == 0


async def test_findings_stored_apart_once(mongo_db):
    repository = MongoAnalysisRepository(mongo_db)
    await repository.add(_analysis("f1"))
    first = [ChartFindings(is_chart=True, confidence=0.91, chart_type="candle", bar_count=120)]
    second = [ChartFindings(is_chart=False, confidence=0.2)]

    await repository.update("f1", {"findings": first, "attempts": 1})
    await repository.update("f1", {"findings": second})

    assert await repository.findings("f1") == first
    stored = await repository.get("f1")
    assert stored.findings == []
    assert stored.attempts == 1
    assert "findings" not in await mongo_db.analyses.find_one({"_id": "f1"})
    assert await repository.findings("missing") == []


async def test_result_stored_apart_and_read_back(mongo_db):
    repository = MongoAnalysisRepository(mongo_db)
    await repository.add(_analysis("r1"))
    assert (await repository.get("r1")).result is None
    report = ModelReport.model_validate(default_report(2))
    result = AnalysisResult.from_report(report)

    await repository.update("r1", {"result": result, "status": AnalysisStatus.DONE})

    stored = await repository.get("r1")
    assert stored.result == result
    assert stored.status is AnalysisStatus.DONE
    raw = await mongo_db.analyses.find_one({"_id": "r1"})
    assert "result" not in raw
    assert raw["result_stored"] is True
    [listed] = await repository.list_for_user("telegram", "9", limit=5)
    assert listed.result == result

    await repository.add(_analysis("r2", minutes=1).model_copy(update={"result": result}))
    assert (await repository.get("r2")).result == result
