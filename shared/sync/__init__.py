"""Replication engine: one user's calendars and events from Graph into the repository.

Where things happen (one module each):
- `worker.py`    one SyncRequest: coalescing, the per-user lock, lifecycle, subscribe, account state;
- `calendars.py` the calendar list (added, changed, removed with their events);
- `events.py`    which strategy a calendar gets (calendarView/delta or full listing) and its window;
- `delta.py`     one round of pages: Graph pages become rows here (`repo.save_page`), resumable;
- `mapping.py`   a Graph page split into rows to write and ids to delete;
- `masters.py`   series masters fetched once and kept while any occurrence references them;
- `outbound.py`  the outbox (changed rows, recorded by the repository) published to the outbound
                 queue with a de-duplication id, then acknowledged;
- `window.py`    the calendar-view window; `progress.py` logs and the terminal bar.

Rows are written only by the repository (`shared/storage`), inside `save_page`.
"""
