"""A trader's past analyses: pages of them newest first, one analysis reached only by its owner, and its charts."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.models import Analysis, Platform
from core.ports import AnalysisRepository, ImageStore

logger = logging.getLogger(__name__)

PAGE_SIZE = 5


class AnalysisNotFound(LookupError):
    """No analysis with this id belongs to the user: it was never stored, was removed, or is another user's."""

    def __init__(self, analysis_id: str) -> None:
        super().__init__(f"analysis {analysis_id} not found for this user")
        self.analysis_id = analysis_id


@dataclass(frozen=True)
class AnalysisPage:
    """One page of a user's analyses, newest first; `page` counts from 1 and `pages` is at least 1."""

    analyses: list[Analysis]
    page: int
    pages: int
    total: int


@dataclass(frozen=True)
class ChartSource:
    """The source of chart `number` (from 1) of an analysis: an archive URL, stored bytes, or neither when lost."""

    number: int
    url: str | None = None
    data: bytes | None = None

    @property
    def missing(self) -> bool:
        return self.url is None and self.data is None


async def history_page(analyses: AnalysisRepository, platform: Platform, user_id: str, *, page: int,
                       page_size: int = PAGE_SIZE) -> AnalysisPage:
    """Return page `page` of the user's analyses, newest first.

    A page past the end (the listing shrank since its buttons were sent) gives the last page, and a
    page below 1 gives the first.
    """
    total = await analyses.count_for_user(platform.value, user_id)
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    rows = await analyses.list_for_user(platform.value, user_id, limit=page_size, skip=(page - 1) * page_size)
    return AnalysisPage(analyses=rows, page=page, pages=pages, total=total)


async def owned_analysis(analyses: AnalysisRepository, platform: Platform, user_id: str,
                         analysis_id: str) -> Analysis:
    """Return the analysis when it belongs to this user on this platform.

    Raises AnalysisNotFound both when it does not exist and when it is another user's, so a caller
    cannot tell another user's ids from unknown ones.
    """
    analysis = await analyses.get(analysis_id)
    if analysis is None:
        raise AnalysisNotFound(analysis_id)
    if analysis.platform != platform or analysis.user_id != user_id:
        logger.warning("analysis of another user requested analysis=%s owner=%s:%s requester=%s:%s",
                       analysis_id, analysis.platform.value, analysis.user_id, platform.value, user_id)
        raise AnalysisNotFound(analysis_id)
    return analysis


async def chart_sources(analysis: Analysis, images: ImageStore, *, use_archive: bool = True) -> list[ChartSource]:
    """Return where to get each chart of an analysis, in the order the user sent them.

    With `use_archive` a chart uploaded to the archive is given by its URL and not read; any other
    chart is read from the image store. A chart the store no longer has comes back `missing`.
    """
    archived = {chart.image_id: chart.secure_url for chart in analysis.archived} if use_archive else {}
    sources = []
    for number, image in enumerate(analysis.images, start=1):
        if image.image_id in archived:
            sources.append(ChartSource(number=number, url=archived[image.image_id]))
            continue
        try:
            data = await images.get(image.image_id)
        except KeyError:
            logger.warning("chart missing from the image store analysis=%s image=%s", analysis.id, image.image_id)
            sources.append(ChartSource(number=number))
            continue
        sources.append(ChartSource(number=number, data=data))
    return sources
