"""docs/monitoring.md's field table against the envelopes: every CommType, every field."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from gatewayd.connectors.monitor.resiot import COMM_TYPES, Communication, to_envelope

DOC = Path(__file__).resolve().parents[2] / "docs" / "monitoring.md"
ROW = re.compile(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$")


def documented_fields() -> dict[str, set[str]]:
    text = DOC.read_text()
    section = text.split("### Field by field", 1)[1].split("\n## ", 1)[0]
    by_type: dict[str, set[str]] = {t: set() for t in COMM_TYPES}
    for line in section.splitlines():
        match = ROW.match(line)
        if not match:
            continue
        field, where = match.group(1), match.group(2).strip()
        assert all(match.group(i).strip() for i in (3, 4, 5)), f"row {field} has an empty cell"
        types = COMM_TYPES if where == "all" else [t.strip() for t in where.split(",")]
        for comm_type in types:
            assert comm_type in by_type, f"row {field} names unknown CommType {comm_type!r}"
            by_type[comm_type].add(field)
    return by_type


def built(comm_type: str) -> dict:
    comm = Communication(comm_type=comm_type, connector="lorawan", dev_eui="0732227A557D8679",
                         dt=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), seq=1, port=1,
                         gateway_euis=("218000AC0000A05F",), payload=b"\x01", extra={"k": 1},
                         command="TX", reference="r", confirmation=True, error="TOO_LATE")
    return to_envelope(comm, timezone.utc)


def test_the_table_lists_exactly_the_fields_of_every_comm_type():
    table = documented_fields()
    for comm_type in COMM_TYPES:
        envelope = built(comm_type)
        assert envelope["CommType"] == comm_type
        assert set(envelope) == table[comm_type], comm_type


def test_the_table_can_fail():
    table = documented_fields()
    assert "Error" not in table["comm_rx"] and "Error" in table["comm_txsendack"]
    assert "Command" in table["comm_tx"] and "Reference" in table["comm_gwtx"]


def test_the_downlink_steps_share_the_reference_in_resiot_order():
    """ResIOT's up/down page: gwtx, txinfo, txsendack, txsendconfirm, txconfirm, each with Reference."""
    steps = ["comm_gwtx", "comm_txinfo", "comm_txsendack", "comm_txsendconfirm", "comm_txconfirm"]
    assert [t for t in COMM_TYPES if t in steps] == ["comm_gwtx", "comm_txinfo", "comm_txsendack",
                                                      "comm_txsendconfirm", "comm_txconfirm"]
    for comm_type in steps:
        assert built(comm_type)["Reference"] == "r", comm_type
    assert built("comm_txsendconfirm")["Error"] == "TOO_LATE" and "Error" not in built("comm_txinfo")
    assert "Error" in documented_fields()["comm_txsendconfirm"]
