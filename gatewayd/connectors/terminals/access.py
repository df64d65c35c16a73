"""Door decisions for `sendlog` replies: a terminal in server mode opens its door when the reply says
`"access":1`, and shows `message`. Each terminal may have a rule (default none: the reply carries
neither field):

    {"mode": "open" | "deny" | "listed" | "enrollids",
     "enrollids": [12, "100-199"],          # mode enrollids: these people
     "message": "Welcome {name}",           # shown when the door opens ({name}, {enrollid})
     "denied_message": "Not allowed",       # shown when it does not
     "max_age": 120}                        # seconds; an older punch never opens (0: no limit)

`listed`: people on the terminal's user list (users_state.py) who are not disabled. The decision
is taken on the batch's last record; a batch of door events only (enrollid 0) gets no decision.
A `sendqrcode` reply follows the same rule, reading the code as an enrollid for `listed` and
`enrollids` (no `max_age`: the code is read now).
`check_rule` and `decide` are pure; `decide_for_batch` applies a terminal's rule to a batch the
service stored and records the decision (`terminal.access`, shown as the action `terminal_access`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ...ops import OpError
from .attendance import zone
from .punches import MAX_ENROLLID, Punch

MODES = ("open", "deny", "listed", "enrollids")
MAX_MESSAGE_CHARS = 64
MAX_ENROLLID_ENTRIES = 1000
DEFAULT_MAX_AGE = 120
_RANGE = re.compile(r"\s*(\d{1,10})\s*-\s*(\d{1,10})\s*", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _refuse(message: str) -> OpError:
    return OpError("invalid", f"access: {message}", 422)


def check_rule(value: Any) -> dict[str, Any] | None:
    """A rule as an operator gave it -> the rule to keep; None (also for "" and "none") = no rule."""
    if value is None or value in ("", "none"):
        return None
    if not isinstance(value, dict):
        raise _refuse('must be an object such as {"mode": "listed"}, or "none"')
    unknown = sorted(set(value) - {"mode", "enrollids", "message", "denied_message", "max_age"})
    if unknown:
        raise _refuse(f"unknown field {unknown[0]!r}")
    mode = value.get("mode")
    if mode not in MODES:
        raise _refuse(f"mode must be one of {', '.join(MODES)}")
    rule: dict[str, Any] = {"mode": mode}
    if mode == "enrollids":
        rule["enrollids"] = _check_enrollids(value.get("enrollids"))
    elif "enrollids" in value:
        raise _refuse("enrollids only goes with mode enrollids")
    for key in ("message", "denied_message"):
        text = value.get(key)
        if text is None:
            continue
        if not isinstance(text, str) or len(text) > MAX_MESSAGE_CHARS or _CONTROL.search(text):
            raise _refuse(f"{key} must be text of at most {MAX_MESSAGE_CHARS} printable characters")
        rule[key] = text
    max_age = value.get("max_age", DEFAULT_MAX_AGE)
    if not isinstance(max_age, int) or isinstance(max_age, bool) or not 0 <= max_age <= 86400:
        raise _refuse("max_age must be a number of seconds from 0 (no limit) to 86400")
    rule["max_age"] = max_age
    return rule


def _check_enrollids(value: Any) -> list[int | str]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_ENROLLID_ENTRIES:
        raise _refuse(f"enrollids must be a list of 1 to {MAX_ENROLLID_ENTRIES} ids or 'from-to' ranges")
    out: list[int | str] = []
    for entry in value:
        if isinstance(entry, int) and not isinstance(entry, bool) and 1 <= entry <= MAX_ENROLLID:
            out.append(entry)
            continue
        match = _RANGE.fullmatch(entry) if isinstance(entry, str) else None
        if match is None or not 1 <= int(match.group(1)) <= int(match.group(2)) <= MAX_ENROLLID:
            raise _refuse(f"enrollids: {entry!r} is neither an id nor a range 'from-to' of ids")
        out.append(f"{int(match.group(1))}-{int(match.group(2))}")
    return out


def _listed_in(enrollid: int, entries: list[int | str]) -> bool:
    for entry in entries:
        if isinstance(entry, int):
            if entry == enrollid:
                return True
        else:
            low, high = entry.split("-")
            if int(low) <= enrollid <= int(high):
                return True
    return False


@dataclass(frozen=True, slots=True)
class Decision:
    access: int                 # 1 open, 0 do not
    message: str | None
    enrollid: int
    reason: str                 # why, for the record: mode, "listed", "not listed", "too old"...


def decide(rule: dict[str, Any], punches: list[Punch], user: dict[str, Any] | None,
           age_seconds: float | None) -> Decision | None:
    """The door decision for a batch (None: no rule, or no person in it). `user` is the last
    person's entry on the user list (or None); `age_seconds` how old their punch is (None: unknown)."""
    person = next((p for p in reversed(punches) if p.enrollid != 0), None)
    if rule is None or person is None:
        return None
    if rule.get("max_age") and age_seconds is not None and age_seconds > rule["max_age"]:
        return _decision(rule, False, "too old", person.enrollid, user)
    return _by_mode(rule, person.enrollid, user)


def decide_code(rule: dict[str, Any], code: str, user: dict[str, Any] | None) -> Decision | None:
    """The door decision for a QR code read now (None without a rule). Modes `listed` and
    `enrollids` read the code as an enrollid: a code that is not one opens nothing."""
    if rule is None:
        return None
    enrollid = int(code) if code.isascii() and code.isdigit() and len(code) <= 10 else 0
    if rule["mode"] in ("listed", "enrollids") and not 1 <= enrollid <= MAX_ENROLLID:
        return _decision(rule, False, "not an enrollid", 0, None)
    return _by_mode(rule, enrollid, user)


def _by_mode(rule: dict[str, Any], enrollid: int, user: dict[str, Any] | None) -> Decision:
    mode = rule["mode"]
    if mode == "open":
        return _decision(rule, True, "open", enrollid, user)
    if mode == "deny":
        return _decision(rule, False, "deny", enrollid, user)
    if mode == "listed":
        allowed = user is not None and user.get("enabled") is not False
        return _decision(rule, allowed, "listed" if allowed else ("disabled" if user is not None else "not listed"),
                         enrollid, user)
    allowed = _listed_in(enrollid, rule["enrollids"])
    return _decision(rule, allowed, "in enrollids" if allowed else "not in enrollids", enrollid, user)


def _decision(rule: dict[str, Any], allowed: bool, reason: str, enrollid: int, user: dict[str, Any] | None) -> Decision:
    template = rule.get("message" if allowed else "denied_message")
    message = None
    if template is not None:
        name = (user or {}).get("name") or ""
        message = template.replace("{name}", name).replace("{enrollid}", str(enrollid))
    return Decision(1 if allowed else 0, message, enrollid, reason)


async def decide_for_batch(core, terminal: dict[str, Any], punches: list[Punch], connector: str) -> Decision | None:
    """The terminal's door rule applied to a stored batch (None without a rule or without a person).
    The decision is recorded without waiting for it to be durable: the punches already are."""
    rule = terminal.get("access")
    person = next((p for p in reversed(punches) if p.enrollid != 0), None)
    if rule is None or person is None:
        return None
    sn = terminal["sn"]
    user = core.state.terminal_users.get(sn)["users"].get(str(person.enrollid))
    try:
        taken = person.local_time.replace(tzinfo=zone(core.service("attendance").zone_name_for(sn)))
        age = (datetime.now(timezone.utc) - taken).total_seconds()
    except (OpError, OverflowError, ValueError):
        age = None
    decision = decide(rule, punches, user, age)
    await core.hub.publish("terminal.access", {
        "sn": sn, "enrollid": decision.enrollid, "time": person.time, "access": decision.access,
        "reason": decision.reason, "connector": connector}, durable=False)
    return decision


async def decide_for_code(core, terminal: dict[str, Any], code: str, connector: str) -> Decision | None:
    """The terminal's door rule applied to a QR code (sendqrcode), recorded like a punch's."""
    rule = terminal.get("access")
    if rule is None:
        return None
    key = str(int(code)) if code.isascii() and code.isdigit() and len(code) <= 10 else None
    user = core.state.terminal_users.get(terminal["sn"])["users"].get(key) if key else None
    decision = decide_code(rule, code, user)
    await core.hub.publish("terminal.access", {
        "sn": terminal["sn"], "enrollid": decision.enrollid, "qrcode": code, "access": decision.access,
        "reason": decision.reason, "connector": connector}, durable=False)
    return decision
