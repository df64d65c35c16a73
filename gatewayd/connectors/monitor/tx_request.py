"""TX requests from monitoring clients (the ResIOT "tx" object, sent on /monitor/communications or
POSTed to /api/tx): read leniently as to field-name case, strictly as to values, and the reply."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Mapping

from gatewayd.errors import ProtocolError

from .resiot import (CONNECTOR_NAME, DEVICE_ID, HEX_TEXT, MAX_CONNECTOR_CHARS, MAX_DEVICE_ID_CHARS, compact_json,
                     connector_name, is_eui, normalize_device_key, quote)


MAX_TX_FRAME_CHARS = 16 * 1024
MAX_TX_PAYLOAD_BYTES = 242
MAX_REFERENCE_CHARS = 128
MAX_WS_COMMAND_CHARS = 64
TX_WINDOWS = ("RX1", "RX2", "BOTH")  # a TX request's receive window; comm_tx Extra.window echoes it
DEFAULT_TX_WINDOW = "BOTH"
_PORT_TEXT = re.compile(r"[0-9]{1,3}")


class TxError(ProtocolError):
    """A TX request that cannot be accepted; `details` goes back to the client verbatim."""

    def __init__(self, details: str, reference: str = ""):
        super().__init__("bad_tx", details)
        self.details = details
        self.reference = reference


@dataclass(frozen=True)
class TxRequest:
    payload: bytes
    app_eui: str  # lower-case hex, "" when not given
    dev_eui: str  # lower-case EUI, or a non-LoRaWAN device id verbatim
    dev_is_eui: bool
    connector: str  # plain name, "" = the connector the device was last heard on
    port: int
    ws_command: str | None
    reference: str
    raw: bool
    confirm: bool
    window: str = DEFAULT_TX_WINDOW


_MISSING = object()


class _Fields:
    """Case-insensitive access to a TX object's fields (clients write DevEUI, DevEui, ...)."""

    def __init__(self, obj: Mapping[str, object]):
        self._by_name: dict[str, list[tuple[str, object]]] = {}
        for key, value in obj.items():
            self._by_name.setdefault(key.lower(), []).append((key, value))

    def get(self, name: str, reference: str) -> object:
        """The value of `name`, or _MISSING when absent or null (null means "not given")."""
        entries = self._by_name.get(name.lower(), [])
        values = [value for _, value in entries]
        if len(entries) > 1 and not _all_same_scalar(values):
            spellings = " and ".join(key for key, _ in entries)
            raise TxError(f"{name} is given twice with different values ({spellings})", reference)
        if not entries or values[0] is None:
            return _MISSING
        return values[0]


def _all_same_scalar(values: list[object]) -> bool:
    first = values[0]
    scalars = (str, int, float, bool, type(None))
    return all(
        isinstance(v, scalars) and type(v) is type(first) and v == first for v in values
    )


def _optional_str(fields: _Fields, name: str, reference: str) -> str:
    value = fields.get(name, reference)
    if value is _MISSING:
        return ""
    if not isinstance(value, str):
        raise TxError(f"{name} must be a string", reference)
    return value


def _optional_bool(fields: _Fields, name: str, reference: str) -> bool:
    value = fields.get(name, reference)
    if value is _MISSING:
        return False
    if not isinstance(value, bool):
        raise TxError(f"{name} must be true or false", reference)
    return value


def _read_reference(fields: _Fields) -> str:
    value = fields.get("Reference", "")
    if value is _MISSING:
        return ""
    if not isinstance(value, str):
        raise TxError("Reference must be a string", "")
    if len(value) > MAX_REFERENCE_CHARS:
        raise TxError(f"Reference is {len(value)} characters long, the limit is {MAX_REFERENCE_CHARS}", "")
    return value


def _read_function(fields: _Fields, reference: str) -> None:
    value = fields.get("function", reference)
    if value is _MISSING:
        raise TxError('function is required and must be "TX"', reference)
    if not isinstance(value, str):
        raise TxError('function must be the string "TX"', reference)
    if value != "TX":
        raise TxError(f'function {quote(value)} is not supported, only "TX" is', reference)


def _read_dev_eui(fields: _Fields, reference: str) -> str:
    value = fields.get("DevEui", reference)
    if value is _MISSING or value == "":
        raise TxError("DevEui is required", reference)
    if not isinstance(value, str):
        raise TxError("DevEui must be a string", reference)
    if not DEVICE_ID.fullmatch(value):
        raise TxError(
            "DevEui must be a device EUI (16 hex digits) or a device id of 1 to "
            f"{MAX_DEVICE_ID_CHARS} printable ASCII characters without spaces",
            reference,
        )
    return normalize_device_key(value)


def _read_app_eui(fields: _Fields, reference: str) -> str:
    value = _optional_str(fields, "AppEui", reference)
    if value and not is_eui(value):
        raise TxError(f"AppEui must be 16 hex digits, got {len(value)} characters", reference)
    return value.lower()


def _read_connector(fields: _Fields, reference: str) -> str:
    value = _optional_str(fields, "Connector", reference)
    name = connector_name(value)
    if name and not CONNECTOR_NAME.fullmatch(name):
        raise TxError(
            f"Connector must be a connector name (lower-case letters, digits, '_', '.', '-', at most "
            f"{MAX_CONNECTOR_CHARS} characters) or the hex of one",
            reference,
        )
    return name


def _read_port(fields: _Fields, reference: str) -> int:
    value = fields.get("Port", reference)
    if value is _MISSING:
        raise TxError("Port is required", reference)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TxError("Port must be an integer or a string of digits", reference)
    if isinstance(value, str):
        if not _PORT_TEXT.fullmatch(value):
            raise TxError("Port must be an integer or a string of digits", reference)
        value = int(value)
    if not 0 <= value <= 255:
        raise TxError(f"Port {value} is out of range 0..255", reference)
    return value


def _read_ws_command(fields: _Fields, reference: str) -> str | None:
    value = _optional_str(fields, "WSCommand", reference)
    if not value:
        return None
    if len(value) > MAX_WS_COMMAND_CHARS or not value.isprintable():
        raise TxError(
            f"WSCommand must be at most {MAX_WS_COMMAND_CHARS} printable characters", reference
        )
    return value


def _read_window(fields: _Fields, reference: str) -> str:
    value = _optional_str(fields, "Window", reference)
    if not value:
        return DEFAULT_TX_WINDOW
    window = value.upper()
    if window not in TX_WINDOWS:
        raise TxError(f"Window {quote(value)} is not one of {', '.join(TX_WINDOWS)}", reference)
    return window


def _read_payload(fields: _Fields, raw: bool, reference: str) -> bytes:
    value = fields.get("Payload", reference)
    if value is _MISSING:
        raise TxError("Payload is required", reference)
    if not isinstance(value, str):
        raise TxError("Payload must be a string", reference)
    if raw:
        try:
            payload = value.encode("utf-8")
        except UnicodeEncodeError:
            raise TxError("Payload is not valid Unicode text", reference) from None
    else:
        if len(value) % 2:
            raise TxError(
                f"Payload must be hex with an even number of digits (Raw is false), got {len(value)} characters",
                reference,
            )
        if not HEX_TEXT.fullmatch(value):
            raise TxError("Payload must be hex digits only (Raw is false)", reference)
        payload = bytes.fromhex(value)
    if len(payload) > MAX_TX_PAYLOAD_BYTES:
        raise TxError(
            f"Payload is {len(payload)} bytes, the limit is {MAX_TX_PAYLOAD_BYTES}", reference
        )
    return payload


def parse_tx(text: str | bytes) -> TxRequest:
    """Validate one TX request frame. Raises TxError (and nothing else) for any bad input."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise TxError("frame is not valid UTF-8") from None
    if len(text) > MAX_TX_FRAME_CHARS:
        raise TxError(f"frame is {len(text)} characters long, the limit is {MAX_TX_FRAME_CHARS}")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise TxError("frame is not valid JSON") from None
    if not isinstance(obj, dict):
        raise TxError("frame must be a JSON object")

    fields = _Fields(obj)
    reference = _read_reference(fields)
    _read_function(fields, reference)
    dev_eui = _read_dev_eui(fields, reference)
    app_eui = _read_app_eui(fields, reference)
    connector = _read_connector(fields, reference)
    port = _read_port(fields, reference)
    ws_command = _read_ws_command(fields, reference)
    raw = _optional_bool(fields, "Raw", reference)
    confirm = _optional_bool(fields, "Confirm", reference)
    payload = _read_payload(fields, raw, reference)
    window = _read_window(fields, reference)
    return TxRequest(
        payload=payload,
        app_eui=app_eui,
        dev_eui=dev_eui,
        dev_is_eui=is_eui(dev_eui),
        connector=connector,
        port=port,
        ws_command=ws_command,
        reference=reference,
        raw=raw,
        confirm=confirm,
        window=window,
    )


def tx_reply(result_ok: bool, details: str, reference: str) -> str:
    return compact_json(
        {"Result": "Success" if result_ok else "Fail", "Details": details, "Reference": reference}
    )
