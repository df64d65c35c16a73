"""What every REST blueprint shares: calling operations, reading JSON bodies, the 503 for a
journal that cannot write."""

from __future__ import annotations

import json
from typing import Any

from quart import current_app, request

from .. import ops
from ..journal.writer import JournalUnavailable
from ..ops import OpError
from .auth import json_error


async def journal_unavailable(exc: JournalUnavailable):
    from ..history.service import HistoryUnavailable

    if isinstance(exc, HistoryUnavailable):
        response = json_error("history_unavailable", str(exc), 503)
    else:
        response = json_error("journal_unavailable", "the journal cannot store changes right now; retry later", 503)
    response.headers["Retry-After"] = "5"
    return response


async def call(op: str, **args: Any) -> Any:
    return await ops.call(current_app.config["CORE"], op, args)


async def read_json_object(allowed: set[str], required: set[str] = frozenset(),
                           max_bytes: int | None = None) -> dict[str, Any]:
    """The request's JSON object, with only `allowed` keys and every `required` one (else OpError)."""
    raw = await request.get_data()
    if max_bytes is not None and len(raw) > max_bytes:
        raise OpError("too_large", f"the request body is {len(raw)} bytes; at most {max_bytes}", 413)
    try:
        body: Any = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise OpError("bad_json", f"the request body is not valid JSON: {exc}", 400) from None
    if not isinstance(body, dict):
        raise OpError("invalid", "the request body must be a JSON object", 422)
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise OpError("invalid", f"unknown field(s): {', '.join(unknown)[:200]}; allowed: {', '.join(sorted(allowed))}",
                      422)
    missing = sorted(k for k in required if body.get(k) is None)
    if missing:
        raise OpError("invalid", f"missing field(s): {', '.join(missing)}", 422)
    return body
