"""Webhooks added at runtime (`gatewayd webhook add`, /api/webhooks, the dashboard).

Record types applied here: webhook.added | webhook.removed. A webhook's secret and headers are in
the records sealed with the state directory's key (gatewayd/secretbox.py), never in clear.
`start_after` is the seq of the webhook.added record: the webhook sends what comes after it.
"""

from __future__ import annotations

from typing import Any

from ...journal.record import Record


class WebhooksState:
    name = "webhooks"

    def __init__(self) -> None:
        self.hooks: dict[str, dict[str, Any]] = {}

    def appliers(self):
        return {"webhook.added": self._added, "webhook.removed": self._removed}

    def _added(self, record: Record) -> None:
        data = record.data
        self.hooks[data["name"]] = {**{k: v for k, v in data.items() if k != "actor"},
                                    "added": record.ts, "added_by": data.get("actor"), "start_after": record.seq}

    def _removed(self, record: Record) -> None:
        self.hooks.pop(record.data["name"], None)

    def snapshot(self) -> dict[str, Any]:
        return {"hooks": self.hooks}

    def restore(self, data: dict[str, Any]) -> None:
        self.hooks = data.get("hooks", {})
