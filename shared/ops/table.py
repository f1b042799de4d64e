"""Aligned text tables for the terminal (status, rows)."""

from __future__ import annotations

from collections.abc import Sequence


def render(header: Sequence[str], rows: Sequence[Sequence[str]], *, right: frozenset[int] = frozenset()) -> list[str]:
    """Columns as wide as their widest cell, two spaces apart; columns in `right` right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        return "  ".join(padded).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def clip(text: str | None, width: int) -> str:
    """One line of at most `width` characters (an ellipsis marks the cut)."""
    text = (text or "").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"
