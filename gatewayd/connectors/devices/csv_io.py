"""Devices as CSV: the export (no secrets; cells a spreadsheet would run as formulas made plain
text) and reading an import file into rows (pure: checking a row against the registry is the
caller's job).

An import file has a header row. Known columns: name (required), kind (ws | lorawan; a row with a
dev_eui is LoRaWAN), tags (separated by commas), id (a row whose id is an existing device is
refused: re-importing an export creates nothing twice), and for LoRaWAN dev_eui, app_eui,
app_key (OTAA) or dev_addr, nwk_s_key, app_s_key (ABP), class. Other columns (the export's
status, created, ...) are ignored. Commas or semicolons separate cells; UTF-8, with or without BOM.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any, Iterable

from ...textsafe import FORMULA_STARTS, csv_cell

EXPORT_COLUMNS = ("id", "name", "kind", "tags", "enabled", "status", "created", "last_seen",
                  "dev_eui", "app_eui", "activation", "class", "dev_addr")
LORAWAN_COLUMNS = ("dev_eui", "app_eui", "app_key", "dev_addr", "nwk_s_key", "app_s_key", "class")
IMPORT_COLUMNS = ("id", "name", "kind", "tags", *LORAWAN_COLUMNS)
SECRET_COLUMNS = frozenset({"app_key", "nwk_s_key", "app_s_key"})
MAX_IMPORT_BYTES = 1024 * 1024
MAX_IMPORT_ROWS = 5000
MAX_CELL_CHARS = 1200


class ImportRefused(ValueError):
    """The file as a whole cannot be read (the message says why)."""


@dataclass
class ImportRow:
    line: int                                  # line number in the file (the header is line 1)
    cells: dict[str, str]                      # known columns, stripped
    problem: str | None = None                 # why it is refused, once checked
    args: dict[str, Any] = field(default_factory=dict)  # device.create arguments, once checked

    @property
    def kind(self) -> str:
        kind = self.cells.get("kind", "").lower()
        return kind or ("lorawan" if self.cells.get("dev_eui") else "ws")

    def public(self) -> dict[str, Any]:
        """What a page may show: never the keys, only whether they were given."""
        shown = {k: v for k, v in self.cells.items() if k not in SECRET_COLUMNS}
        return {"line": self.line, "kind": self.kind, "cells": shown, "problem": self.problem,
                "keys": sorted(k for k in SECRET_COLUMNS if self.cells.get(k))}


def export_devices(devices: Iterable[dict[str, Any]], lorawan_classes: dict[str, str]) -> str:
    """`devices` as public() gives them; `lorawan_classes`: DevEUI -> class."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for device in devices:
        lorawan = device.get("lorawan") or {}
        row = {"id": device["id"], "name": device["name"], "kind": device["kind"], "tags": ",".join(device["tags"]),
               "enabled": "true" if device["enabled"] else "false", "status": device["status"],
               "created": device.get("created") or "", "last_seen": device.get("last_seen") or "",
               "dev_eui": lorawan.get("dev_eui") or "", "app_eui": lorawan.get("app_eui") or "",
               "activation": lorawan.get("activation") or "",
               "class": lorawan_classes.get(lorawan.get("dev_eui") or "", ""), "dev_addr": lorawan.get("dev_addr") or ""}
        writer.writerow([csv_cell(row[c]) for c in EXPORT_COLUMNS])
    return out.getvalue()


def _plain(value: str) -> str:
    """A cell as typed: the quote the export put before a would-be formula taken off again."""
    value = value.strip()
    if value.startswith("'") and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value


def read_import(data: bytes) -> tuple[list[ImportRow], list[str]]:
    """The rows of an import file and the columns it has that are ignored. Raises ImportRefused."""
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportRefused(f"the file is larger than {MAX_IMPORT_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused("the file is not UTF-8 text (save it as CSV UTF-8)") from None
    if "\x00" in text:
        raise ImportRefused("the file is not text")
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise ImportRefused("the file is empty: it needs a header row (name, kind, tags, ...) and rows")
        columns = [h.strip().lower().lstrip("\ufeff") for h in header]
        if "name" not in columns:
            raise ImportRefused("the header row has no 'name' column")
        duplicated = sorted({c for c in columns if c and columns.count(c) > 1})
        if duplicated:
            raise ImportRefused(f"the header row has {', '.join(duplicated)} more than once")
        rows: list[ImportRow] = []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(rows) >= MAX_IMPORT_ROWS:
                raise ImportRefused(f"the file has more than {MAX_IMPORT_ROWS} rows; split it")
            known = {col: _plain(value) for col, value in zip(columns, cells) if col in IMPORT_COLUMNS}
            row = ImportRow(reader.line_num, known)
            if len(cells) > len(columns):
                row.problem = f"{len(cells)} cells, the header has {len(columns)}"
            elif any(len(v) > MAX_CELL_CHARS for v in known.values()):
                row.problem = f"a cell is longer than {MAX_CELL_CHARS} characters"
            rows.append(row)
    except csv.Error as exc:
        raise ImportRefused(f"line {reader.line_num}: {exc}") from None
    ignored = [c for c in columns if c and c not in IMPORT_COLUMNS]
    return rows, ignored
