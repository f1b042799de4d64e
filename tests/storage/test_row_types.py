"""The row classes the repository returns match the table specs column for column, with their types."""

from __future__ import annotations

import dataclasses
import typing
from datetime import datetime
from typing import Any

import pytest

from shared.storage import schema, types

PYTHON_TYPE = {schema.TEXT: str, schema.TIMESTAMP: datetime, schema.BOOL: bool, schema.INT: int,
               schema.JSON: dict[str, Any]}
ROW_CLASSES = [types.UserRow, types.CalendarRow, types.EventRow, types.AccountState, types.SyncCursor,
               types.CalendarSubscription]


@pytest.mark.parametrize("row_class", ROW_CLASSES, ids=lambda c: c.__name__)
def test_a_row_class_has_one_field_per_column_of_its_spec(row_class: type) -> None:
    hints = typing.get_type_hints(row_class)
    fields = [f.name for f in dataclasses.fields(row_class)]
    assert fields == [c.name for c in row_class.spec.columns]
    for column in row_class.spec.columns:
        assert hints[column.name] == PYTHON_TYPE[column.type] | None, column.name


def test_every_replicated_and_state_table_has_a_row_class() -> None:
    covered = {c.spec.name for c in ROW_CLASSES}
    assert {schema.USERS.name, schema.CALENDARS.name, schema.EVENTS.name, schema.ACCOUNTS.name,
            schema.CURSORS.name, schema.CALENDAR_SUBSCRIPTIONS.name} <= covered
