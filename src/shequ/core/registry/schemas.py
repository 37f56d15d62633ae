"""Pydantic in/out shapes of registry imports: an error of one cell, the result of one file."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RowError(BaseModel):
    """One problem in an imported file, where the user sees it: sheet row and column header.

    ``row`` counts like the spreadsheet does (the header is row 1, the first data row is row 2;
    0 means the file as a whole). ``value`` shows personal data masked.
    """

    row: int
    column: str = ""
    value: str = ""
    reason: str

    def __str__(self) -> str:
        where = f"第 {self.row} 行" if self.row else "文件"
        col = f"「{self.column}」" if self.column else ""
        val = f"（{self.value}）" if self.value else ""
        return f"{where}{col}{val}: {self.reason}"


class ImportResult(BaseModel):
    """What an accepted import did."""

    kind: str
    filename: str
    source: str
    batch_id: int
    rows: int
    created: int
    updated: int
    unplaced: int = 0  # rows whose address did not resolve to a place (imported unplaced)
    conflicts: int = 0  # fields where another source's value was kept (see docs/import.md)
    warnings: list[RowError] = Field(default_factory=list)
    seconds: float = 0.0
