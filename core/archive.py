"""Copying an analysis's charts to the chart archive (Cloudinary), apart from the working image store.

The archive is optional: without one, the image store keeps the only copy.
An upload that fails leaves the analysis `archive_pending`, and the
maintenance job calls `retry_pending_archives` until every chart is in.
"""

from __future__ import annotations

import logging

from core.errors import ArchiveRejected, ArchiveUnavailable
from core.models import Analysis, ArchivedChart
from core.ports import AnalysisRepository, ChartArchive, ImageStore

logger = logging.getLogger(__name__)


def archive_folder(analysis: Analysis) -> str:
    """Return the user's folder in the archive, such as `telegram-12345`."""
    return f"{analysis.platform.value}-{analysis.user_id}"


async def archive_charts(analysis: Analysis, *, analyses: AnalysisRepository, images: ImageStore,
                         archive: ChartArchive) -> Analysis:
    """Upload the analysis's charts that are not in `analysis.archived` yet, and store the outcome.

    Sets `archive_pending` when an upload failed and may succeed later, and
    clears it once every chart is archived. A chart that the archive rejects
    for good, or that is missing from the image store, is logged and
    skipped. ArchiveUnavailable from the archive never propagates, but a
    repository error does. Returns the analysis as stored.
    """
    done = {chart.image_id for chart in analysis.archived}
    archived: list[ArchivedChart] = list(analysis.archived)
    folder = archive_folder(analysis)
    pending = False

    for image in analysis.images:
        if image.image_id in done:
            continue
        try:
            chart = await _upload_one(analysis, image.image_id, folder=folder, images=images, archive=archive)
        except ArchiveUnavailable as error:
            logger.warning("chart upload to the archive failed analysis=%s image=%s error=%s",
                           analysis.id, image.image_id, error)
            pending = True
            continue
        if chart is not None:
            archived.append(chart)

    changes = {"archived": archived, "archive_pending": pending}
    if archived == analysis.archived and pending == analysis.archive_pending:
        return analysis
    await analyses.update(analysis.id, changes)
    if pending:
        logger.warning("charts wait for an archive retry analysis=%s user=%s archived=%d of %d",
                       analysis.id, analysis.user_id, len(archived), len(analysis.images))
    return analysis.model_copy(update=changes)


async def _upload_one(analysis: Analysis, image_id: str, *, folder: str, images: ImageStore,
                      archive: ChartArchive) -> ArchivedChart | None:
    """Upload one chart, or return None when it can never be archived.

    Raises ArchiveUnavailable when a retry may work.
    """
    try:
        data = await images.get(image_id)
    except KeyError:
        logger.error("chart not archived because the image store has no such image analysis=%s image=%s",
                     analysis.id, image_id)
        return None
    try:
        chart = await archive.upload(image_id, data, folder=folder)
    except ArchiveRejected as error:
        logger.error("chart rejected by the archive, not retried analysis=%s image=%s error=%s",
                     analysis.id, image_id, error)
        return None
    logger.info("chart archived analysis=%s image=%s public_id=%s", analysis.id, image_id, chart.public_id)
    return chart


async def retry_pending_archives(*, analyses: AnalysisRepository, images: ImageStore, archive: ChartArchive,
                                 limit: int) -> int:
    """Upload the charts of up to `limit` analyses left `archive_pending`, oldest first.

    Returns how many of them have every chart archived now.
    """
    pending = await analyses.archive_pending(limit=limit)
    completed = 0
    for analysis in pending:
        result = await archive_charts(analysis, analyses=analyses, images=images, archive=archive)
        if not result.archive_pending:
            completed += 1
    if pending:
        logger.info("archive retry completed=%d of pending=%d", completed, len(pending))
    return completed
