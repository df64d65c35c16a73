"""Devices as CSV, in-process: the export escapes formulas and holds no secrets; the import reader
takes what spreadsheets write and refuses what it cannot read, with the reason."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gatewayd.connectors.devices.csv_io import (MAX_IMPORT_BYTES, MAX_IMPORT_ROWS, ImportRefused, export_devices,
                                                read_import)

DEVICE = {"id": "d1", "name": "=HYPERLINK(\"http://evil\")", "kind": "ws", "tags": ["floor1", "t"], "enabled": True,
          "status": "offline", "created": "2026-06-12T10:00:00Z", "last_seen": None}
LORA = {"id": "d2", "name": "Meter", "kind": "lorawan", "tags": [], "enabled": False, "status": "disabled",
        "created": "2026-06-12T10:00:00Z", "last_seen": None,
        "lorawan": {"dev_eui": "70b3d57ed0000001", "app_eui": "0000000000000000", "dev_addr": None,
                    "activation": "otaa", "relax_fcnt": False}}


def test_export_neutralises_formulas_and_reads_back():
    text = export_devices([DEVICE, LORA], {"70b3d57ed0000001": "C"})
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["name"] == "'=HYPERLINK(\"http://evil\")" and rows[0]["tags"] == "floor1,t"
    assert rows[1]["dev_eui"] == "70b3d57ed0000001" and rows[1]["class"] == "C" and rows[1]["enabled"] == "false"
    assert "app_key" not in rows[1] and "token" not in text
    back, ignored = read_import(text.encode())
    assert [r.cells["name"] for r in back] == [DEVICE["name"], "Meter"]  # the export's quote is taken off again
    assert [r.kind for r in back] == ["ws", "lorawan"] and [r.line for r in back] == [2, 3]
    assert ignored == ["enabled", "status", "created", "last_seen", "activation"]


def test_semicolons_bom_blank_lines_and_keys_kept_out_of_public_view():
    data = "\ufeffName;Kind;dev_eui;app_key\r\nPump;lorawan;70b3d57ed0000002;2b7e151628aed2a6abf7158809cf4f3c\r\n;;;\r\n".encode()
    rows, _ = read_import(data)
    assert len(rows) == 1 and rows[0].cells["app_key"].startswith("2b7e")
    shown = rows[0].public()
    assert "app_key" not in shown["cells"] and shown["keys"] == ["app_key"]


@pytest.mark.parametrize("data, message", [
    (b"", "empty"), (b"kind,tags\nws,a\n", "no 'name' column"), (b"name,name\nx,y\n", "name more than once"),
    (b"\xff\xfename\n", "not UTF-8"), (b"name\n\"open", "line"),
    (b"name\n" + b"x\n" * (MAX_IMPORT_ROWS + 1), f"more than {MAX_IMPORT_ROWS} rows"),
    (b"name\n" + b"x" * MAX_IMPORT_BYTES, "larger than"),
])
def test_unreadable_files_are_refused_with_the_reason(data, message):
    with pytest.raises(ImportRefused, match=message):
        read_import(data)


def test_rows_with_too_many_cells_are_refused_alone():
    rows, _ = read_import(b"name,tags\nok,a\nbad,a,extra\n")
    assert [r.problem for r in rows] == [None, "3 cells, the header has 2"]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_give_rows_or_a_reason(data):
    try:
        rows, _ = read_import(b"name,kind,tags\n" + data)
    except ImportRefused:
        return
    for row in rows:
        assert set(row.cells) <= {"name", "kind", "tags"}
