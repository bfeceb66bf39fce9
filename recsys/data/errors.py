"""The one error bad input raises: it names the file, the column and example rows."""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["DataError"]


class DataError(ValueError):
    """Input data is unusable; the message says where (file, column) and shows bad rows."""

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        column: str | None = None,
        examples: Sequence[Any] | None = None,
        hint: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = file
        self.column = column
        self.examples = list(examples or [])[:5]
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.file:
            where.append(f"file {self.file!r}")
        if self.column:
            where.append(f"column {self.column!r}")
        text = (", ".join(where) + ": " if where else "") + self.problem
        if self.examples:
            text += "\n  examples of bad rows:\n" + "\n".join(f"    {e}" for e in self.examples)
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text
