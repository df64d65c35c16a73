"""TX downlink requests (monitoring section 4.1): validate, pick the connector, hand over.

The same function answers TX frames on /monitor/communications and POST /api/tx. Success means
the request was valid and durably queued by the connector; the outcome follows on the stream as
comm_tx / comm_txsendack / comm_txconfirm carrying the request's Reference.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import trio

from ...journal.writer import JournalUnavailable
from ...ops import OpError
from .tx_request import TxError, TxRequest, parse_tx
from . import comms

log = logging.getLogger("gatewayd.tx")

LORAWAN = "lorawan"
NO_LORAWAN = "LoRaWAN downlinks are not available in this gatewayd yet"


@dataclass(frozen=True)
class TxOutcome:
    ok: bool
    details: str
    reference: str
    status: int  # the HTTP status that fits (POST /api/tx)

    def reply(self) -> dict[str, str]:
        return {"Result": "Success" if self.ok else "Fail", "Details": self.details,
                "Reference": self.reference}


class TxRefused(Exception):
    def __init__(self, details: str, status: int = 400):
        super().__init__(details)
        self.details = details
        self.status = status


# State parts whose `get(key)` finds a device by the key a TX names, with the connector it was
# last heard on.
DEVICE_PARTS = ("devices", "terminals")


def _registered_device(core, dev_key: str) -> dict | None:
    for name in DEVICE_PARTS:
        getter = getattr(core.state.parts.get(name), "get", None)
        device = getter(dev_key) if getter is not None else None
        if isinstance(device, dict):
            return device
    return None


def _describe(tx: TxRequest) -> str:
    return f"DevEui {tx.dev_eui!r}"


def _unknown_device(core, tx: TxRequest) -> TxRefused:
    device = _registered_device(core, tx.dev_eui)
    handlers = {h.connector for h in core.comms.tx_handlers}
    lorawan_device = (device or {}).get("kind") == LORAWAN or (device is None and tx.dev_is_eui)
    if lorawan_device and LORAWAN not in handlers:
        return TxRefused(f"{_describe(tx)}: {NO_LORAWAN}", 501 if device else 404)
    if device is not None:
        return TxRefused(f"{_describe(tx)}: no connector can send downlinks to a "
                         f"{device.get('kind', 'device')!r} device", 409)
    return TxRefused(f"{_describe(tx)}: no such device", 404)


def choose_handler(core, tx: TxRequest) -> comms.TxHandler:
    """The connector for this request: the named one, else the one that owns the device."""
    handlers = core.comms.tx_handlers
    owners = [h for h in handlers if h.owns(core, tx.dev_eui)]
    if tx.connector:
        named = [h for h in handlers if h.connector == tx.connector]
        if not named:
            if tx.connector == LORAWAN:
                raise TxRefused(f"Connector 'lorawan': {NO_LORAWAN}", 501)
            known = ", ".join(sorted({h.connector for h in handlers})) or "none"
            raise TxRefused(f"Connector {tx.connector!r} cannot send downlinks (connectors that can: {known})")
        if named[0] in owners:
            return named[0]
        if owners:
            raise TxRefused(f"{_describe(tx)} is on connector {owners[0].connector!r}, "
                            f"not {tx.connector!r}", 409)
        raise _unknown_device(core, tx)
    if not owners:
        raise _unknown_device(core, tx)
    if len(owners) > 1:
        heard_on = (_registered_device(core, tx.dev_eui) or {}).get("connector")
        for handler in owners:
            if handler.connector == heard_on:
                return handler
    return owners[0]


def refuse_tx(frame: str | bytes, details: str, status: int = 429) -> TxOutcome:
    """A Fail for a request turned away before it is considered; keeps its Reference if it has one."""
    try:
        reference = parse_tx(frame).reference
    except TxError as exc:
        reference = exc.reference
    return TxOutcome(False, details, reference, status)


async def submit_tx(core, frame: str | bytes) -> TxOutcome:
    """Validate one TX request and queue it. Never raises for bad input: that is a Fail."""
    try:
        tx = parse_tx(frame)
    except TxError as exc:
        return TxOutcome(False, exc.details, exc.reference, 400)
    try:
        handler = choose_handler(core, tx)
        # submit's own waits are bounded by the journal's durable timeout; this is a backstop
        # against a connector that waits on something else.
        with trio.fail_after(core.settings.journal.durable_timeout + 5):
            await handler.submit(core, tx.dev_eui, tx)
    except TxRefused as exc:
        return TxOutcome(False, exc.details, tx.reference, exc.status)
    except TxError as exc:
        return TxOutcome(False, exc.details, tx.reference, 400)
    except OpError as exc:
        return TxOutcome(False, exc.message, tx.reference, exc.status)
    except JournalUnavailable:
        return TxOutcome(False, "the journal cannot record the downlink right now; retry later",
                         tx.reference, 503)
    except trio.TooSlowError:
        return TxOutcome(False, "the connector did not confirm in time; the downlink may or may "
                                "not be queued", tx.reference, 504)
    except Exception:
        log.exception("TX to %s failed", tx.dev_eui)
        return TxOutcome(False, "internal error; see the server log", tx.reference, 500)
    return TxOutcome(True, "", tx.reference, 200)
