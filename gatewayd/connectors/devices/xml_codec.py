"""The XML dialect of the device WebSocket: the messages of the JSON dialect, one XML document
per text frame, e.g. `<event name="door_open" id="8"><zone>2</zone></event>`.

Parsing refuses DTDs, entity declarations and external references ("bad_xml"), and frames over
the size limit ("too_large"). A payload is the message element's children: an element with
children becomes an object, a repeated element a list, and a leaf's text becomes a number or a
boolean when it is a JSON number or `true` / `false` (so "007" stays text), else the text as is.
Payload elements take no attributes. The mapping is lossy for text that looks like a number,
single-item and empty lists, and null (written as an empty element, read back as "").
Attribute values (ids, ts) stay strings.

Error codes: "too_large", "bad_xml", "unknown_type", "invalid".
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_et
from defusedxml import (
    DefusedXmlException,
    DTDForbidden,
    EntitiesForbidden,
    ExternalReferenceForbidden,
)

from .messages import (CLIENT_TYPES, MAX_DEPTH, MAX_DOCUMENT_CHARS, MAX_INT, MIN_INT, Ack, Attendance,
                       ClientMessage, Command, CommandResult, Error, Event, Ping, Pong, Register, Registered,
                       ServerMessage, Telemetry, frame_text)
from ...errors import ProtocolError
from ..terminals.punches import MAX_RECORDS_PER_BATCH, parse_punch, punch_to_record
from ..terminals.fields import describe

_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?", re.ASCII)
_ELEMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*", re.ASCII)
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def decode(text: str | bytes, *, max_chars: int = MAX_DOCUMENT_CHARS) -> ClientMessage:
    """One frame from a device -> message."""
    root = _parse(frame_text(text, max_chars, "bad_xml"))
    build = _BUILDERS.get(root.tag)
    if build is None:
        expected = ", ".join(CLIENT_TYPES)
        raise ProtocolError(
            "unknown_type",
            f"unknown message element {describe(root.tag)}; expected one of {expected}",
        )
    return build(root)


def encode(msg: ClientMessage | ServerMessage) -> str:
    """Message -> one XML element, attribute values in double quotes. TypeError for non-messages;
    ProtocolError("invalid") for payloads XML cannot carry (keys that are not element names,
    lists inside lists, characters XML 1.0 forbids)."""
    to_xml = _ENCODERS.get(type(msg))
    if to_xml is None:
        raise TypeError(f"not a device message: {type(msg).__name__}")
    return to_xml(msg)


# --------------------------------------------------------------------------------------------
# Decoding


def _parse(text: str) -> Element:
    try:
        return safe_et.fromstring(text, forbid_dtd=True)
    except DTDForbidden:
        raise ProtocolError(
            "bad_xml", "document type declarations (<!DOCTYPE ...>) are not allowed"
        ) from None
    except EntitiesForbidden:
        raise ProtocolError("bad_xml", "entity declarations are not allowed") from None
    except ExternalReferenceForbidden:
        raise ProtocolError("bad_xml", "external references are not allowed") from None
    except DefusedXmlException as exc:
        raise ProtocolError("bad_xml", f"refused XML construct: {exc}") from None
    except ParseError as exc:
        raise ProtocolError("bad_xml", f"not well-formed XML: {exc}") from None
    except (UnicodeError, ValueError, LookupError, RecursionError) as exc:
        # e.g. lone surrogates in the text, which cannot be encoded for the parser
        raise ProtocolError("bad_xml", f"unreadable XML: {type(exc).__name__}") from None


def _attribute(element: Element, name: str) -> str:
    value = element.get(name)
    if value is None:
        raise ProtocolError("invalid", f"{element.tag}: missing attribute '{name}'")
    return value


def _payload(element: Element, where: str, depth: int = 1) -> dict:
    """The children of `element` as an object at nesting level `depth`."""
    if (element.text or "").strip() or any((child.tail or "").strip() for child in element):
        raise ProtocolError("invalid", f"{where}: text mixed with elements")
    result: dict = {}
    repeated: set[str] = set()
    for child in element:
        key = child.tag
        if not isinstance(key, str) or key.startswith("{"):
            raise ProtocolError("invalid", f"{where}: namespaced elements are not supported")
        value = _value(child, f"{where}.{key}", depth + 1)
        if key not in result:
            result[key] = value
        elif key in repeated:
            result[key].append(value)
        else:
            result[key] = [result[key], value]
            repeated.add(key)
    return result


def _value(element: Element, where: str, depth: int) -> object:
    if element.attrib:
        raise ProtocolError("invalid", f"{where}: payload elements take no attributes")
    if len(element) == 0:
        return _scalar(element.text or "")
    if depth > MAX_DEPTH:
        raise ProtocolError("invalid", f"{where}: nesting deeper than {MAX_DEPTH} levels")
    return _payload(element, where, depth)


def _scalar(text: str) -> object:
    stripped = text.strip()
    if stripped in ("true", "false"):
        return stripped == "true"
    match = _JSON_NUMBER.fullmatch(stripped) if len(stripped) <= 40 else None
    if match is None:
        return text
    if match.group(1) is None and match.group(2) is None:
        number = int(stripped)
        return number if MIN_INT <= number <= MAX_INT else text
    real = float(stripped)
    return real if math.isfinite(real) else text


def _register(root: Element) -> Register:
    return Register(_attribute(root, "device_id"), _attribute(root, "token"))


def _telemetry(root: Element) -> Telemetry:
    return Telemetry(_payload(root, "telemetry: payload"), root.get("ts"), root.get("id"))


def _event(root: Element) -> Event:
    payload = _payload(root, "event: payload")
    return Event(_attribute(root, "name"), payload, root.get("ts"), root.get("id"))


def _attendance(root: Element) -> Attendance:
    if len(root) > MAX_RECORDS_PER_BATCH:
        raise ProtocolError(
            "invalid", f"attendance: {len(root)} records, the limit is {MAX_RECORDS_PER_BATCH}"
        )
    records = []
    for i, child in enumerate(root):
        if child.tag != "record":
            raise ProtocolError(
                "invalid", f"attendance: expected <record> elements, got {describe(child.tag)}"
            )
        records.append(parse_punch(dict(child.attrib), f"attendance: record[{i}]"))
    return Attendance(records, root.get("id"))


def _command_result(root: Element) -> CommandResult:
    ok = _attribute(root, "ok")
    if ok not in ("true", "false"):
        raise ProtocolError(
            "invalid", f'command_result: ok must be "true" or "false", got {describe(ok)}'
        )
    result = _payload(root, "command_result: result") if len(root) else None
    return CommandResult(_attribute(root, "id"), ok == "true", result, root.get("error"))


_BUILDERS: dict[str, Callable[[Element], ClientMessage]] = {
    "register": _register,
    "telemetry": _telemetry,
    "event": _event,
    "attendance": _attendance,
    "ping": lambda root: Ping(),
    "command_result": _command_result,
}


# --------------------------------------------------------------------------------------------
# Encoding


def _text(value: str, where: str) -> str:
    if _NOT_IN_XML.search(value):
        raise ProtocolError("invalid", f"{where} contains characters XML cannot carry")
    escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # a raw \r would be normalised away by the reader; the character reference survives
    return escaped.replace("\r", "&#13;")


def _attribute_text(value: object, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = _text(value if isinstance(value, str) else repr(value), where)
    return text.replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")


def _element(name: str, attributes: dict[str, object], content: str = "") -> str:
    attrs = "".join(
        f' {key}="{_attribute_text(value, f"{name}: {key}")}"'
        for key, value in attributes.items()
        if value is not None
    )
    return f"<{name}{attrs}>{content}</{name}>" if content else f"<{name}{attrs}/>"


def _payload_xml(payload: dict, where: str) -> str:
    parts = []
    for key, value in payload.items():
        if not _ELEMENT_NAME.fullmatch(key):
            raise ProtocolError(
                "invalid", f"{where}: key {describe(key)} is not a usable XML element name"
            )
        for item in value if isinstance(value, list) else (value,):
            if isinstance(item, list):
                raise ProtocolError(
                    "invalid", f"{where}.{key}: a list inside a list cannot be written as XML"
                )
            parts.append(_element(key, {}, _content(item, f"{where}.{key}")))
    return "".join(parts)


def _content(value: object, where: str) -> str:
    if isinstance(value, dict):
        return _payload_xml(value, where)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return _text(value, where)


def _telemetry_xml(m: Telemetry) -> str:
    payload = _payload_xml(m.payload, "telemetry: payload")
    return _element("telemetry", {"ts": m.ts, "id": m.msg_id}, payload)


def _event_xml(m: Event) -> str:
    payload = _payload_xml(m.payload, "event: payload")
    return _element("event", {"name": m.event, "ts": m.ts, "id": m.msg_id}, payload)


def _attendance_xml(m: Attendance) -> str:
    records = "".join(_element("record", punch_to_record(p)) for p in m.records)
    return _element("attendance", {"id": m.msg_id}, records)


def _command_result_xml(m: CommandResult) -> str:
    result = _payload_xml(m.result, "command_result: result") if m.result else ""
    return _element("command_result", {"id": m.command_id, "ok": m.ok, "error": m.error}, result)


def _command_xml(m: Command) -> str:
    payload = _payload_xml(m.payload, "command: payload")
    return _element("command", {"id": m.command_id, "name": m.command}, payload)


_ENCODERS: dict[type, Callable] = {
    Register: lambda m: _element("register", {"device_id": m.device_id, "token": m.token}),
    Telemetry: _telemetry_xml,
    Event: _event_xml,
    Attendance: _attendance_xml,
    Ping: lambda m: "<ping/>",
    CommandResult: _command_result_xml,
    Registered: lambda m: _element(
        "registered", {"device_id": m.device_id, "server_time": m.server_time}
    ),
    Ack: lambda m: _element("ack", {"id": m.msg_id}),
    Pong: lambda m: _element("pong", {"server_time": m.server_time}),
    Command: _command_xml,
    Error: lambda m: _element("error", {"code": m.code}, _text(m.message, "error: message")),
}
