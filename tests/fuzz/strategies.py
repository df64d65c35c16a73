"""Structure-aware inputs for the fuzz targets: almost-valid documents are what find bugs."""

from __future__ import annotations

import base64
import json

from hypothesis import strategies as st

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=30), st.sampled_from(["", " ", "true", "1", "-0", "1e999", "\u0000", "\ud800"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5) |
                           st.dictionaries(st.text(max_size=10), inner, max_size=5), max_leaves=25)


def objects(known: dict[str, st.SearchStrategy]) -> st.SearchStrategy[dict]:
    """Objects with a random subset of the known fields (valid or not) plus stray ones."""
    field = st.sampled_from(sorted(known)).flatmap(lambda k: st.tuples(st.just(k), known[k] | json_values))
    return st.tuples(st.lists(field, max_size=len(known) + 2),
                     st.dictionaries(st.text(max_size=8), json_values, max_size=2)).map(
        lambda parts: {**parts[1], **dict(parts[0])})


def serialised(objs: st.SearchStrategy) -> st.SearchStrategy[bytes]:
    def render(obj, quirk: int) -> bytes:
        text = json.dumps(obj, allow_nan=True, ensure_ascii=quirk % 2 == 0)
        if quirk == 2:
            text = text.replace("}", ",}").replace("]", ",]")
        if quirk == 3:
            text = "\ufeff" + text.replace('":', ' " :')
        return text.encode("utf-8", "surrogatepass")
    return st.builds(render, objs, st.integers(0, 5))


def mutated(base: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """A document with a few random byte edits (flip, delete, insert, truncate)."""
    def edit(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
        buf = bytearray(data)
        for kind, at, value in edits:
            if not buf:
                break
            at %= len(buf)
            if kind == 0:
                buf[at] ^= value or 1
            elif kind == 1:
                del buf[at]
            elif kind == 2:
                buf.insert(at, value)
            else:
                del buf[at:]
        return bytes(buf)
    return st.builds(edit, base, st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1 << 16), st.integers(0, 255)),
                                          max_size=4))


ids = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=70)

device_json_docs = serialised(objects({
    "type": st.sampled_from(["register", "telemetry", "event", "attendance", "ping", "command_result", "x"]),
    "device_id": ids, "token": ids, "id": ids | st.integers(), "payload": json_values, "event": ids,
    "ts": st.sampled_from(["2026-06-12T09:00:00Z", "2026-13-40T99:00:00Z", "x"]), "ok": st.booleans(),
    "result": json_values, "error": st.text(max_size=40),
    "records": st.lists(objects({"enrollid": st.integers(), "time": st.text(max_size=20), "mode": st.integers()}),
                        max_size=3)}))

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,8}", fullmatch=True)
attr_values = st.text(max_size=15).map(lambda t: t.replace('"', "&quot;").replace("<", "&lt;").replace("&", "&amp;"))


def _render_element(name: str, attrs: list[tuple[str, str]], text: str, kids: list[str]) -> str:
    attributes = "".join(f' {key}="{value}"' for key, value in attrs)
    return f"<{name}{attributes}>{text}{''.join(kids)}</{name}>"


def _element(depth: int) -> st.SearchStrategy[str]:
    children = st.lists(_element(depth - 1), max_size=3) if depth > 0 else st.just([])
    return st.builds(_render_element, names, st.lists(st.tuples(names, attr_values), max_size=3), attr_values,
                     children)


XML_NASTIES = [
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><telemetry>&b;</telemetry>',
    '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><telemetry><v>&x;</v></telemetry>',
    "<telemetry><![CDATA[<x>]]></telemetry>", "<telemetry><!-- c --><v>1</v></telemetry>",
    "<?pi x?><ping/>", "<telemetry>" * 50 + "</telemetry>" * 50, "<ping xmlns='urn:x'/>",
]
device_xml_docs = st.one_of(
    st.builds(lambda root, body: f"<{root}>{body}</{root}>".encode("utf-8", "surrogatepass"),
              st.sampled_from(["telemetry", "event", "attendance", "register", "ping", "command_result", "x"]),
              st.lists(_element(2), max_size=3).map("".join)),
    st.sampled_from(XML_NASTIES).map(str.encode),
)

punch = objects({"enrollid": st.integers(-1, 2**33), "time": st.sampled_from(["2026-06-12 09:00:00", "2026-6-1 9:0:0",
                                                                             "2026-02-30 25:00:00", ""]),
                 "mode": st.integers(), "inout": st.integers(), "event": st.integers(), "temp": st.floats(),
                 "verifymode": st.integers(), "image": st.text(max_size=10)})
terminal_docs = serialised(st.one_of(
    objects({"cmd": st.sampled_from(["reg", "sendlog", "checklive", " REG ", "getuserlist"]),
             "sn": ids, "cpusn": ids, "devinfo": objects({"modelname": st.text(max_size=10),
                                                          "usersize": st.integers()}),
             "count": st.integers(), "logindex": st.integers(), "record": st.lists(punch, max_size=4),
             "time": st.text(max_size=20)}),
    objects({"ret": st.sampled_from(["getuserlist", "getnewlog", "getuserinfo", "reboot", "x"]),
             "result": st.booleans(), "count": st.integers(), "from": st.integers(), "to": st.integers(),
             "record": st.lists(punch, max_size=3), "enrollid": st.integers(), "backupnum": st.integers()}),
))

rxpk = objects({"tmst": st.integers(-1, 2**33), "freq": st.floats(), "chan": st.integers(), "rfch": st.integers(),
                "stat": st.sampled_from([1, -1, 0, 2]), "modu": st.sampled_from(["LORA", "FSK", "x"]),
                "datr": st.sampled_from(["SF7BW125", "SF12BW500", "SF99BW1", 50000, "x"]),
                "codr": st.sampled_from(["4/5", "x"]), "rssi": st.integers(), "lsnr": st.floats(),
                "size": st.integers(), "data": st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode())
                | st.text(max_size=10),
                "rsig": st.lists(objects({"lsnr": st.floats(), "rssic": st.integers()}), max_size=2)})
gwmp_datagrams = st.builds(
    lambda version, token, ident, eui, body: bytes([version, token >> 8, token & 255, ident]) + eui + body,
    st.sampled_from([1, 2, 0, 3]), st.integers(0, 65535), st.integers(0, 6), st.binary(min_size=0, max_size=8),
    serialised(objects({"rxpk": st.lists(rxpk, max_size=3), "stat": objects({"time": st.text(max_size=25),
                                                                              "rxnb": st.integers()}),
                        "txpk": objects({"imme": st.booleans(), "freq": st.floats(), "powe": st.integers(),
                                         "datr": st.text(max_size=10), "size": st.integers(),
                                         "data": st.text(max_size=10)}),
                        "txpk_ack": objects({"error": st.text(max_size=16)})})) | st.binary(max_size=40))

phy_payloads = st.builds(
    lambda mhdr, addr, fctrl, fcnt, fopts, port, payload, mic: bytes([mhdr]) + addr + bytes([fctrl]) +
    fcnt.to_bytes(2, "little") + fopts + port + payload + mic,
    st.sampled_from([0x00, 0x20, 0x40, 0x60, 0x80, 0xA0, 0xC0, 0xE0, 0x41, 0xFF]), st.binary(min_size=4, max_size=4),
    st.integers(0, 255), st.integers(0, 65535), st.binary(max_size=15), st.binary(max_size=1), st.binary(max_size=240),
    st.binary(min_size=0, max_size=4))

tx_docs = serialised(objects({
    "function": st.sampled_from(["TX", "tx", "RX", ""]), "Payload": st.text(max_size=40) | st.binary(
        max_size=40).map(bytes.hex), "AppEui": st.text(max_size=20), "DevEui": st.text(max_size=20) | ids,
    "DevEUI": ids, "Connector": st.sampled_from(["", "ws", "lorawan", "6c6f726177616e", "X!"]),
    "Port": st.integers(-5, 300) | st.text(max_size=4), "Reference": st.text(max_size=140),
    "Raw": st.booleans(), "Confirm": st.booleans(), "WSCommand": st.text(max_size=70)}))

monitor_queries = st.lists(st.tuples(st.sampled_from(["types", "dev", "connector", "since", "x"]),
                                     st.text(max_size=40)), max_size=4).map(
    lambda pairs: "&".join(f"{k}={v}" for k, v in pairs).encode("utf-8", "surrogatepass"))

STRUCTURED = {
    "device_json": device_json_docs, "device_xml": device_xml_docs, "dialect": device_json_docs | terminal_docs,
    "terminal": terminal_docs, "gwmp": gwmp_datagrams, "lorawan_phy": phy_payloads, "tx_command": tx_docs,
    "monitor_query": monitor_queries,
}
