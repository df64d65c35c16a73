"""What a connector that delivers downlinks provides to the monitoring stream's TX requests.

Mappers and TX handlers are declared as data (`gatewayd.comm_tables.Comms` in a connector's
declaration) and merged into `core.comms` when the core opens; this module only says what a TX
handler is (ResIOT section 4.1).
"""

from __future__ import annotations

from typing import Protocol

from .tx_request import TxRequest


class TxHandler(Protocol):
    """A connector that can deliver downlinks (`connector` is its plain name: "ws", "lorawan" ...)."""

    connector: str

    def owns(self, core, dev_key: str) -> bool:
        """True when `dev_key` (a device id, serial number or lower-case DevEUI) is one of ours."""

    async def submit(self, core, dev_key: str, tx: TxRequest) -> None:
        """Validate against the device and queue durably; raise OpError(details) to refuse."""
