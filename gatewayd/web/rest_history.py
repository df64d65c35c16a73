"""REST API for the history store's communications (operators only):

    GET /api/communications   ?from&to (ISO 8601)&device&type&limit (1-10000, 100)&after (a next_after)
"""

from __future__ import annotations

from quart import Blueprint, request

from ..journal.writer import JournalUnavailable
from ..ops import OpError
from .auth import operator_required
from .rest import call, journal_unavailable

blueprint = Blueprint("rest_history", __name__, url_prefix="/api")
blueprint.register_error_handler(JournalUnavailable, journal_unavailable)


@blueprint.get("/communications")
@operator_required
async def communications():
    args = request.args
    try:
        limit = int(args.get("limit") or 100)
    except ValueError:
        raise OpError("invalid", "query parameter limit must be an integer", 422) from None
    return await call("communications.list", start=args.get("from") or None, end=args.get("to") or None,
                      device=args.get("device") or None, type=args.get("type") or None, limit=limit,
                      after=args.get("after") or None)
