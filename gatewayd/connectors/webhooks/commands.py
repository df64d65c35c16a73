"""`gatewayd webhook add|list|remove|test`."""

from __future__ import annotations

from typing import Any

from ...opcommands import Arg, OpCommand, pairs as _pairs, table as _table


def _words(text: str) -> list[str]:
    return [w.strip() for w in text.split(",") if w.strip()]


def _header(text: str) -> dict[str, str]:
    name, sep, value = text.partition(":")
    if not sep:
        raise ValueError("a header is NAME:VALUE")
    return {name.strip(): value.strip()}


def _prepare_add(args: dict[str, Any]) -> dict[str, Any]:
    args = dict(args, actor="cli")
    if "events" in args:
        args["events"] = _words(args["events"])
    if args.pop("no_secret", False):
        args["secret"] = ""
    if "header" in args:
        args["headers"] = _header(args.pop("header"))
    if not args.get("batch"):
        args.pop("batch", None)
    return args


def _added(hook: dict[str, Any]) -> str:
    text = f"webhook {hook['name']} added ({hook['url']})"
    if hook.get("secret"):
        text += f"\nIts signing secret is shown only now:\n{hook['secret']}"
    return text


COMMANDS = [
    OpCommand(("webhook", "add"), "webhook.add", "add a webhook (a signing secret is generated unless given)",
              [Arg("url", "where events are POSTed"), Arg("name", "a short name", flag=True),
               Arg("events", "comma-separated events (default: all)", flag=True),
               Arg("secret", "the signing secret (default: a random one, printed once)", flag=True),
               Arg("no_secret", "send unsigned requests", switch=True),
               Arg("header", "an extra header NAME:VALUE", flag=True),
               Arg("timeout", "seconds per request", flag=True, type=float),
               Arg("max_age", "seconds an event is retried before it is dropped", flag=True, type=float),
               Arg("batch", "send JSON arrays of events", switch=True),
               Arg("batch_max", "most events per batch", flag=True, type=int)],
              _added, prepare=_prepare_add),
    OpCommand(("webhook", "list"), "webhook.list", "list webhooks and how their deliveries go",
              human=lambda rows: _table(rows, ["name", "url", "source", "events", "backlog", "last_success",
                                               "failing_since", "last_error"])),
    OpCommand(("webhook", "remove"), "webhook.remove", "remove a webhook added at runtime", [Arg("name")],
              lambda hook: f"webhook {hook['name']} removed", prepare=lambda args: {**args, "actor": "cli"}),
    OpCommand(("webhook", "test"), "webhook.test", "send a test event to a webhook now", [Arg("name")], _pairs),
]
