"""A Graph page turned into what the repository needs: rows to upsert, ids to delete.

Rules (graph-protocol.md section 4):
- an item with `@removed` is a deletion, never a row. In calendar-view delta,
  `deleted` also stands for changes *outside the window*; we filter by the only
  date we trust, our own rows: a removal of an id we do not hold is a no-op and
  is not reported as a change (the repository deletes only rows it has, scoped
  to the calendar, so a row that moved to another calendar is never hit);
- the same id twice in one page keeps the newer version (the repository's
  newer-wins merge does the same across pages, so replays are harmless);
- cancelled events are ordinary rows (`is_cancelled` is derived from data);
- occurrences and exceptions keep `seriesMasterId`; their masters are fetched
  by `masters.py`;
- a row is the event itself: response annotations (`@odata.type` on delta
  items, `@odata.context` on a single GET) are dropped, so a row has one shape
  whichever call brought it (`@odata.etag` is the item's and stays).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PageItems:
    events: list[dict[str, Any]] = field(default_factory=list)
    removed_ids: list[str] = field(default_factory=list)
    series_ids: set[str] = field(default_factory=set)   # masters referenced by this page's instances

    def __len__(self) -> int:
        return len(self.events) + len(self.removed_ids)


ANNOTATIONS = ("@odata.type", "@odata.context")


def event_row(item: dict[str, Any]) -> dict[str, Any]:
    """The stored data of an event as Graph gave it, without response annotations."""
    return {k: v for k, v in item.items() if k not in ANNOTATIONS}


def split_page(page: dict[str, Any]) -> PageItems:
    """Rows and removals of one page (`value` may be missing or empty: a nextLink page can be empty)."""
    out = PageItems()
    for item in page.get("value") or []:
        if not isinstance(item, dict) or not item.get("id"):
            continue
        if "@removed" in item:
            out.removed_ids.append(item["id"])
            continue
        out.events.append(event_row(item))
        master = item.get("seriesMasterId")
        if master and item.get("type") in ("occurrence", "exception"):
            out.series_ids.add(master)
    return out
