"""The name for values the app handles as JSON it does not model.

Graph's payloads and callers' request bodies are JSON documents whose shape the code checks
where it reads them (`isinstance`, `.get`, `jsonbody.check`); typing them field by field would
copy Graph's schema. `JsonValue` marks those boundaries, so any other `Any` stands out.
"""

from typing import Any, TypeAlias

JsonValue: TypeAlias = Any
"""A parsed JSON value (object, array, string, number, bool or null) whose shape is checked where it is read."""
