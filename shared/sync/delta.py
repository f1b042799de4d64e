"""One round of pages for one calendar: where Graph pages become rows.

A round starts from a stored nextLink (resume after a crash), a stored
deltaLink (incremental) or the initial URL (full). Links are followed
verbatim. Each page is written as it arrives, in one repository transaction
with the cursor (`repo.save_page`): the cursor holds the page's nextLink, and
the deltaLink replaces it only with the last page, so a killed worker resumes
where it stopped and never skips a page.

A round without a link to start from is *full*: every id it writes is
remembered, and when the last page is stored `finish_full_round` deletes the
calendar's rows that did not come back. That one mechanism covers the first
backfill, 410 `SyncStateNotFound` / `resyncRequired` (drop the link, start
over), a moved window, a RESYNC, and calendars listed in full instead of delta.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from shared.graph import GraphError
from shared.storage.rows import PreparedEvents
from shared.sync import masters
from shared.sync.context import SyncContext
from shared.sync.mapping import PageItems, split_page
from shared.sync.window import same_window

log = logging.getLogger("shared.sync")
RESYNC_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})


@dataclass(frozen=True)
class Source:
    """Where a calendar's new round begins, and whether rounds end with a deltaLink."""

    path: str
    params: dict[str, str] = field(default_factory=dict)
    delta: bool = True
    label: str = ""


def is_resync_required(exc: GraphError) -> bool:
    """410 Gone, or a sync-state error code: the link is dead, only a new full round helps."""
    return exc.status == 410 or (exc.code or "").lower() in RESYNC_CODES


def sync_calendar(ctx: SyncContext, calendar_id: str, source: Source) -> None:
    """Bring one calendar's rows up to date (resume, incremental or full, as the cursor says)."""
    repo, user = ctx.repo, ctx.user_id
    cursor = repo.get_cursor(user, calendar_id)
    if cursor is not None and not same_window((cursor.window_start, cursor.window_end), ctx.window):
        log.info("sync %s: %s window moved; new reconciling round", ctx.progress.label or user, source.label)
        repo.clear_cursor(user, calendar_id)  # rows stay; the full round deletes only those not returned
        cursor = None
    if cursor is not None and cursor.full_round and not cursor.next_link:
        # Every page of a full round was stored but the worker died before reconciling: finish it now.
        repo.finish_full_round(user, calendar_id)
        masters.reconcile(ctx, calendar_id)
        cursor = repo.get_cursor(user, calendar_id)
    if ctx.full and not (cursor is not None and cursor.full_round and cursor.next_link):
        repo.clear_cursor(user, calendar_id)
        cursor = None

    if cursor is not None and cursor.next_link:
        start: tuple[str, dict[str, str] | None, bool, bool] = (cursor.next_link, None, bool(cursor.full_round), True)
    elif source.delta and cursor is not None and cursor.delta_link:
        start = (cursor.delta_link, None, False, False)
    else:
        start = (source.path, source.params, True, False)
    try:
        _round(ctx, calendar_id, source, *start)
    except GraphError as exc:
        if not is_resync_required(exc):
            raise
        log.warning("sync %s: %s sync state gone (%s %s); dropping the link for a full round",
                    ctx.progress.label or user, source.label, exc.status, exc.code)
        repo.clear_cursor(user, calendar_id)
        _round(ctx, calendar_id, source, source.path, source.params, True, False)


def _round(ctx: SyncContext, calendar_id: str, source: Source, url: str, params: dict[str, str] | None,
           full_round: bool, resumed: bool) -> None:
    """Fetch page n+1 while page n is written (one request ahead, never more), write in order."""
    repo, user = ctx.repo, ctx.user_id
    round_masters = masters.RoundMasters(ctx, calendar_id, full_round)
    deleted_any = False
    delta_link: str | None = None
    if source.delta:
        ctx.delta_rounds += 1

    def fetch(link: str, query: dict[str, str] | None) -> tuple[dict[str, Any], PageItems, PreparedEvents]:
        """Page n+1 read, decoded and mapped to rows while page n is stored: mapping is Python work that
        then runs while the main thread waits on the database (it releases the GIL there)."""
        page = ctx.graph.get(link, params=query, headers=ctx.page_headers)
        items = split_page(page)
        return page, items, repo.prepare_events(user, calendar_id, items.events)

    with ThreadPoolExecutor(1, thread_name_prefix="page") as ahead:
        pending: Future[tuple[dict[str, Any], PageItems, PreparedEvents]] | None = ahead.submit(fetch, url, params)
        while pending is not None:  # links carry their own query after the first request
            page, items, prepared = pending.result()
            next_link = page.get("@odata.nextLink")
            delta_link = page.get("@odata.deltaLink")
            if source.delta and not next_link and not delta_link:
                raise GraphError(None, "InvalidResponse", "a delta page carried neither nextLink nor deltaLink")
            pending = ahead.submit(fetch, next_link, None) if next_link else None
            result = repo.save_page(user, calendar_id, events=prepared, removed_ids=items.removed_ids,
                                    next_link=next_link, delta_link=delta_link, window=ctx.window,
                                    full_round=full_round)
            round_masters.after_page(items, next_link, delta_link)
            if pending is not None and ctx.publish_ahead is not None and not pending.done():
                ctx.publish_ahead()  # the time Graph takes to answer, not spent idle
            deleted_any = deleted_any or any(c.kind == "deleted" for c in result.changes)
            ctx.progress.page(source.label, len(items))
    if full_round:
        deleted_any = bool(repo.finish_full_round(user, calendar_id)) or deleted_any
    if resumed or deleted_any:  # only then can a master be orphaned, or one be missing
        masters.reconcile(ctx, calendar_id)
