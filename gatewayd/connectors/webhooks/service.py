"""The webhooks of the daemon: those of the configuration file ([[webhooks]], reloadable) and those
added at runtime (journal records), one sender task each; and the operations that manage them.

A webhook's cursor is named `webhook.<name>`. Removing a webhook (from the file, or at runtime)
stops its sender and deletes its cursor, so it no longer holds back compaction; cursors of
webhooks that no longer exist are deleted at start.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import asdict
from typing import Any

import trio

from ... import __version__, secretbox
from ...config import ConfigError, WebhookSettings, _fill, check_webhook, webhook_name
from ...journal.record import utc_now_iso
from ...northbound.alerts import has_events, record_events
from ...northbound.events import StateDirectory
from ...northbound.shared import SharedEvents
from ...ops import OpError, not_found, operation
from . import delivery
from .delivery import Pending
from .pacing import Pacer
from .worker import WebhookSpec, WebhookStatus, WebhookWorker, post

log = logging.getLogger("gatewayd.webhooks")

CURSOR_PREFIX = "webhook."
RECONCILE_EVERY = 1.0  # seconds: how soon a removed cursor or a failed sender is looked at again
RESTART_AFTER_CRASH = 5.0
USER_AGENT = f"gatewayd/{__version__}"
ADD_KEYS = {"url", "name", "events", "secret", "headers", "timeout", "max_age", "batch", "batch_max"}


def _context(name: str, what: str) -> str:
    return f"webhook/{name}/{what}"


class WebhookService:
    def __init__(self, core):
        self.core = core
        self.status: dict[str, WebhookStatus] = {}
        self.retry_first = delivery.RETRY_FIRST  # seconds; tests make it short
        self._running: dict[str, tuple[WebhookSpec, trio.CancelScope]] = {}
        self._changed = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._rendered: SharedEvents | None = None
        core.metrics.gauge_family("gatewayd_webhook_backlog_records",
                                  "Journal records after a webhook's cursor (not yet handled).", self._backlogs)
        core.metrics.gauge_family("gatewayd_webhook_last_success_timestamp_seconds",
                                  "When a webhook's endpoint last took a request (0: never).",
                                  lambda: self._each(lambda s: s.last_success or 0))
        core.metrics.gauge_family("gatewayd_webhook_failing_since_timestamp_seconds",
                                  "Since when a webhook's requests fail (0: they do not).",
                                  lambda: self._each(lambda s: s.failing_since or 0))

    @property
    def box(self):
        return secretbox.for_state_dir(self.core.settings.state_path)

    # -- the set of senders --------------------------------------------------------------------------
    def specs(self) -> dict[str, WebhookSpec]:
        found = {}
        for hook in self.core.settings.webhooks:
            name = webhook_name(hook)
            found[name] = WebhookSpec(name, hook.url, frozenset(hook.events), hook.secret,
                                      tuple(sorted({"User-Agent": USER_AGENT, **hook.headers}.items())),
                                      hook.timeout, hook.max_age, hook.batch, hook.batch_max, "config")
        for name, hook in self.core.state.webhooks.hooks.items():
            if name in found:
                continue  # the configuration file wins (the API refuses such names)
            try:
                spec = self._runtime_spec(name, hook)
            except secretbox.SecretBoxError as exc:
                log.error("webhook %s cannot start: %s", name, exc)
                continue
            found[name] = spec
        return found

    def _runtime_spec(self, name: str, hook: dict[str, Any]) -> WebhookSpec:
        secret = self.box.open(hook["secret"], _context(name, "secret")).decode() if hook.get("secret") else ""
        headers = json.loads(self.box.open(hook["headers"], _context(name, "headers"))) if hook.get("headers") else {}
        return WebhookSpec(name, hook["url"], frozenset(hook["events"]), secret,
                           tuple(sorted({"User-Agent": USER_AGENT, **headers}.items())), hook["timeout"],
                           hook["max_age"], hook["batch"], hook["batch_max"], "runtime", hook["start_after"])

    @property
    def rendered(self) -> SharedEvents:
        """The events of the records, rendered once for all the senders."""
        if self._rendered is None:
            directory, zone, comms = StateDirectory(self.core.state), self.core.service("monitor").zone, self.core.comms
            self._rendered = SharedEvents(lambda record: record_events(record, directory, zone, comms=comms),
                                          lambda record_type: has_events(record_type, comms))
        return self._rendered

    def changed(self) -> None:
        self._changed.set()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._forget_stale_cursors(self.specs())
            self.reconcile()
            task_status.started()
            while True:
                with trio.move_on_after(RECONCILE_EVERY):
                    await self._changed.wait()
                self._changed = trio.Event()
                self.reconcile()

    def _forget_stale_cursors(self, specs: dict[str, WebhookSpec]) -> None:
        for cursor in self.core.cursors.all():
            if cursor.startswith(CURSOR_PREFIX) and cursor[len(CURSOR_PREFIX):] not in specs:
                self.core.cursors.remove(cursor)
                log.info("webhook %s no longer exists: its cursor is removed", cursor[len(CURSOR_PREFIX):])

    def reconcile(self) -> None:
        """Start, stop and restart senders so that one runs per webhook, with its current settings."""
        specs = self.specs()
        for name, (spec, scope) in list(self._running.items()):
            if specs.get(name) != spec:
                scope.cancel()
                del self._running[name]
        for name, spec in specs.items():
            if name not in self._running:
                scope = trio.CancelScope()
                self._running[name] = (spec, scope)
                self._nursery.start_soon(self._sender, spec, scope)

    async def _sender(self, spec: WebhookSpec, scope: trio.CancelScope) -> None:
        status = self.status.setdefault(spec.name, WebhookStatus())
        with scope:
            while True:
                try:
                    pacer = Pacer(self.core.loop_load.busy, lambda: self.core.hub.next_seq,
                                  senders=lambda: len(self._running))
                    await WebhookWorker(self.core, spec, status, pacer, self.rendered,
                                        retry_first=lambda: self.retry_first).run()
                except Exception:
                    log.exception("webhook %s: the sender failed; restarting it in %g s", spec.name,
                                  RESTART_AFTER_CRASH)
                    await trio.sleep(RESTART_AFTER_CRASH)
        if spec.name not in self.specs():  # removed, not just changed
            self.status.pop(spec.name, None)
            self.core.cursors.remove(spec.cursor)

    # -- what /metrics and the API show --------------------------------------------------------------
    def _each(self, read) -> list[tuple[dict[str, str], float]]:
        return [({"webhook": name}, float(read(status))) for name, status in sorted(self.status.items())]

    def _backlogs(self) -> list[tuple[dict[str, str], float]]:
        fanned = self.core.hub.fanned_seq
        return self._each(lambda s: max(0, fanned - s.position))

    def public(self, spec: WebhookSpec) -> dict[str, Any]:
        status = self.status.get(spec.name)
        fanned = self.core.hub.fanned_seq
        out = {"name": spec.name, "url": spec.url, "events": sorted(spec.events), "source": spec.source,
               "signed": bool(spec.secret), "headers": sorted(k for k, _ in spec.headers if k != "User-Agent"),
               "timeout": spec.timeout, "max_age": spec.max_age, "batch": spec.batch, "batch_max": spec.batch_max,
               "running": self.core.online and spec.name in self._running}
        if status is None:
            position = self.core.cursors.load(spec.cursor) if self.core.cursors.exists(spec.cursor) else None
            out.update(last_success=None, failing_since=None, last_error=None, delivered=0, dropped=0,
                       backlog=None if position is None else max(0, fanned - position))
        else:
            out.update(last_success=_iso(status.last_success), failing_since=_iso(status.failing_since),
                       last_error=status.last_error, delivered=status.delivered, dropped=status.dropped,
                       backlog=max(0, fanned - status.position))
        return out

    # -- operations ------------------------------------------------------------------------------------
    async def add(self, fields: dict[str, Any], actor: str) -> dict[str, Any]:
        unknown = sorted(set(fields) - ADD_KEYS)
        if unknown:
            raise OpError("invalid", f"unknown field(s): {', '.join(unknown)[:200]}", 422)
        if "url" not in fields:
            raise OpError("invalid", "missing field: url", 422)
        generated = fields.get("secret") is None
        fields = {k: v for k, v in fields.items() if v is not None}
        if generated:
            fields["secret"] = secrets.token_urlsafe(32)
        try:
            hook = _fill(WebhookSettings(), "webhook", fields, "request")
            check_webhook(hook, "webhook")
        except ConfigError as exc:
            raise OpError("invalid", str(exc).removeprefix("request: "), 422) from None
        name = webhook_name(hook)
        if name in self.specs() or name in self.core.state.webhooks.hooks:
            raise OpError("conflict", f"a webhook named {name!r} exists already", 409)
        data = {k: v for k, v in asdict(hook).items() if k not in ("secret", "headers", "name")}
        data.update(name=name, actor=actor,
                    secret=self.box.seal(hook.secret.encode(), _context(name, "secret")) if hook.secret else "",
                    headers=self.box.seal(json.dumps(hook.headers).encode(), _context(name, "headers"))
                    if hook.headers else "")
        await self.core.hub.publish("webhook.added", data)
        self.changed()
        shown = self.public(self.specs()[name])
        if generated:
            shown["secret"] = hook.secret  # shown this once
        return shown

    async def remove(self, name: str, actor: str) -> dict[str, Any]:
        specs = self.specs()
        spec = specs.get(name) if isinstance(name, str) else None
        if spec is None:
            raise not_found("webhook", str(name)[:60])
        if spec.source == "config":
            raise OpError("conflict", f"webhook {name!r} is defined in the configuration file; remove it there "
                                      "and reload", 409)
        shown = self.public(spec)
        await self.core.hub.publish("webhook.removed", {"name": name, "actor": actor})
        if name not in self._running:  # no sender (offline command line): forget the cursor here
            self.core.cursors.remove(spec.cursor)
        self.changed()
        return shown

    async def test(self, name: str) -> dict[str, Any]:
        """POST one `test` event (not journaled) and say how the endpoint answered."""
        spec = self.specs().get(name) if isinstance(name, str) else None
        if spec is None:
            raise not_found("webhook", str(name)[:60])
        now = utc_now_iso()
        body = {"seq": None, "event_id": f"test.{secrets.token_hex(4)}", "ts": now, "event": "test",
                "webhook": name, "comm": None}
        test_event = Pending(0, body["event_id"], "test", now, body)
        began = time.monotonic()
        import httpx  # imported on first use: a daemon without webhooks never loads it (resident memory)

        async with httpx.AsyncClient(headers=dict(spec.headers), timeout=spec.timeout, trust_env=False) as client:
            error = await post(client, spec, [test_event])
        return {"name": name, "ok": error is None, "error": error, "seconds": round(time.monotonic() - began, 3)}


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(moment % 1 * 1e6):06d}Z"


@operation("webhook.add")
async def webhook_add(core, url: str, name: str | None = None, events: list | None = None, secret: str | None = None,
                      headers: dict | None = None, timeout: float | None = None, max_age: float | None = None,
                      batch: bool | None = None, batch_max: int | None = None, actor: str = "operator") -> dict:
    fields = {"url": url, "name": name, "events": events, "secret": secret, "headers": headers, "timeout": timeout,
              "max_age": max_age, "batch": batch, "batch_max": batch_max}
    return await core.service("webhooks").add(fields, actor)


@operation("webhook.list")
async def webhook_list(core) -> list[dict]:
    service = core.service("webhooks")
    return [service.public(spec) for _, spec in sorted(service.specs().items())]


@operation("webhook.remove")
async def webhook_remove(core, name: str, actor: str = "operator") -> dict:
    return await core.service("webhooks").remove(name, actor)


@operation("webhook.test")
async def webhook_test(core, name: str) -> dict:
    return await core.service("webhooks").test(name)
