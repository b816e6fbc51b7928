"""MongoDB repositories on PyMongo's async API.

They stay inside what FerretDB v1 supports: no transactions, no TTL indexes,
and no reliance on findAndModify being atomic.
"""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any

from bson import Binary
from pydantic import BaseModel
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError
from pymongo.asynchronous.database import AsyncDatabase

from core.models import Analysis, ChartFindings, ImageInfo

logger = logging.getLogger(__name__)

# Chunks stay well below MongoDB's 16 MiB document limit.
IMAGE_CHUNK_BYTES = 4 * 1024 * 1024


def to_bson(value: Any) -> Any:
    """Convert pydantic models and enums inside `value` into plain BSON-ready values."""
    if isinstance(value, BaseModel):
        return to_bson(value.model_dump(mode="python"))
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {key: to_bson(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_bson(item) for item in value]
    return value


def connect(url: str) -> AsyncMongoClient:
    """Create a client that returns timezone-aware UTC datetimes."""
    return AsyncMongoClient(url, tz_aware=True, appname="chartbot")


async def ensure_indexes(db: AsyncDatabase) -> None:
    """Create the indexes every repository relies on; safe to run at each start."""
    await db.analyses.create_index(
        [("platform", ASCENDING), ("user_id", ASCENDING), ("created_at", DESCENDING)], name="user_newest_first"
    )
    await db.analyses.create_index([("status", ASCENDING), ("created_at", ASCENDING)], name="status_created")
    await db.analyses.create_index([("archive_pending", ASCENDING), ("created_at", ASCENDING)],
                                   name="archive_pending")
    await db.chart_image_chunks.create_index(
        [("image_id", ASCENDING), ("n", ASCENDING)], name="image_chunk", unique=True
    )
    logger.info("MongoDB indexes ready database=%s", db.name)


class MongoAnalysisRepository:
    """Analysis records in `analyses`, keyed by the analysis id; the chart reader's findings in
    `analysis_findings` and the model's structured result in `analysis_results` under the same id.

    The findings (every bar, swing and level) and the result are most of a
    record's size and are written once. Kept apart, the records the workers
    read and update several times per analysis stay small: FerretDB v1 finds
    even an `_id` by reading the collection's documents in turn, so its time
    grows with their size. `get` returns a record with its result (read only
    when the record's `result_stored` flag is set) and without its findings; `findings`
    reads them.
    """

    def __init__(self, db: AsyncDatabase) -> None:
        self._collection = db.analyses
        self._findings = db.analysis_findings
        self._results = db.analysis_results

    async def add(self, analysis: Analysis) -> None:
        document = to_bson(analysis)
        document["_id"] = document.pop("id")
        findings = document.pop("findings", [])
        result = document.pop("result", None)
        if result is not None:
            await self._store_result(analysis.id, result)
            document["result_stored"] = True
        await self._collection.insert_one(document)
        if findings:
            await self._store_findings(analysis.id, findings)

    async def _store_result(self, analysis_id: str, result: dict) -> None:
        # The result goes in before the record points at it, so a reader never finds the flag without it.
        await self._results.replace_one({"_id": analysis_id}, {"_id": analysis_id, "result": result}, upsert=True)

    async def _with_result(self, document: dict[str, Any]) -> dict[str, Any]:
        if document.pop("result_stored", False):
            stored = await self._results.find_one({"_id": document["_id"]})
            if stored is None:
                logger.error("analysis result missing analysis=%s", document["_id"])
            else:
                document["result"] = stored["result"]
        return document

    async def _store_findings(self, analysis_id: str, findings: list) -> None:
        try:
            await self._findings.insert_one({"_id": analysis_id, "findings": findings})
        except DuplicateKeyError:
            # A job delivered again read the same chart again; the first reading stays.
            logger.info("findings already stored analysis=%s", analysis_id)

    async def findings(self, analysis_id: str) -> list[ChartFindings]:
        """Return the chart reader's findings of one analysis, or an empty list."""
        document = await self._findings.find_one({"_id": analysis_id})
        return [] if document is None else [ChartFindings.model_validate(f) for f in document["findings"]]

    async def get(self, analysis_id: str) -> Analysis | None:
        document = await self._collection.find_one({"_id": analysis_id})
        return None if document is None else _to_analysis(await self._with_result(document))

    async def update(self, analysis_id: str, changes: dict[str, Any]) -> None:
        changes = dict(changes)
        if "findings" in changes:
            await self._store_findings(analysis_id, to_bson({"findings": changes.pop("findings")})["findings"])
        if "result" in changes:
            result = changes.pop("result")
            if result is not None:
                await self._store_result(analysis_id, to_bson(result))
            changes["result_stored"] = result is not None
        if not changes:
            return
        result = await self._collection.update_one({"_id": analysis_id}, {"$set": to_bson(changes)})
        if result.matched_count == 0:
            raise KeyError(f"analysis {analysis_id} not found")

    async def list_for_user(self, platform: str, user_id: str, *, limit: int, skip: int = 0) -> list[Analysis]:
        cursor = self._collection.find({"platform": platform, "user_id": user_id}).sort("created_at", DESCENDING)
        return [_to_analysis(await self._with_result(document)) async for document in cursor.skip(skip).limit(limit)]

    async def count_for_user(self, platform: str, user_id: str) -> int:
        return await self._collection.count_documents({"platform": platform, "user_id": user_id})

    async def archive_pending(self, *, limit: int) -> list[Analysis]:
        cursor = self._collection.find({"archive_pending": True}).sort("created_at", ASCENDING)
        return [_to_analysis(await self._with_result(document)) async for document in cursor.limit(limit)]


def _to_analysis(document: dict[str, Any]) -> Analysis:
    document = dict(document)
    document["id"] = document.pop("_id")
    return Analysis.model_validate(document)


class MongoImageStore:
    """Chart images as metadata in `chart_images` and 4 MiB binary chunks in `chart_image_chunks`.

    A chunk's `_id` is IMAGE_ID:N, so reading an image is lookups by `_id`:
    FerretDB v1 serves those from its primary key, but filters on any other
    field by reading every chunk (650 ms per image with 2,000 images stored).
    """

    def __init__(self, db: AsyncDatabase) -> None:
        self._images = db.chart_images
        self._chunks = db.chart_image_chunks

    async def put(self, image_id: str, info: ImageInfo, data: bytes) -> None:
        chunks = [
            {"_id": f"{image_id}:{n}", "image_id": image_id, "n": n,
             "data": Binary(data[start : start + IMAGE_CHUNK_BYTES])}
            for n, start in enumerate(range(0, len(data), IMAGE_CHUNK_BYTES))
        ]
        await self._chunks.insert_many(chunks, ordered=True)
        # The metadata goes last: an image is complete once its record exists.
        await self._images.insert_one({"_id": image_id, "chunks": len(chunks), **to_bson(info)})

    async def get(self, image_id: str) -> bytes:
        record = await self._images.find_one({"_id": image_id})
        if record is None:
            raise KeyError(image_id)
        ids = [f"{image_id}:{n}" for n in range(record["chunks"])]
        chunks = [await self._chunks.find_one({"_id": chunk_id}) for chunk_id in ids]
        if None in chunks:
            # Chunks stored before they had these ids.
            chunks = [chunk async for chunk in self._chunks.find({"image_id": image_id}).sort("n", ASCENDING)]
        parts = [bytes(chunk["data"]) for chunk in chunks]
        if len(parts) != record["chunks"]:
            raise KeyError(f"{image_id} has {len(parts)} of {record['chunks']} chunks")
        return b"".join(parts)

    async def delete(self, image_id: str) -> None:
        await self._images.delete_one({"_id": image_id})
        await self._chunks.delete_many({"image_id": image_id})
