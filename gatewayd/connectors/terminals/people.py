"""Who an enrolment id is: person names from the users a terminal reported (a cmd/ret terminal's
user list from `senduser` and `getuserlist`, a PUSH terminal's user uploads)."""

from __future__ import annotations

from typing import Any, Callable, Iterable


def _users_of(core: Any, sn: str) -> Iterable[dict[str, Any]]:
    parts = core.state.parts
    listed = parts.get("terminal_users")
    if listed is not None:
        yield from listed.get(sn)["users"].values()
    push = parts.get("push")
    if push is not None:
        yield from push.get(sn)["users"].values()


def person_names(core: Any) -> Callable[[str], dict[str, str]]:
    """A lookup sn -> {enrollid as text: name} (names that are not empty only), cached for the
    lookup's life: one page or one batch of rows."""
    cache: dict[str, dict[str, str]] = {}

    def names(sn: str) -> dict[str, str]:
        found = cache.get(sn)
        if found is None:
            found = cache[sn] = {str(u.get("enrollid")): str(u["name"]) for u in _users_of(core, sn)
                                 if isinstance(u, dict) and u.get("name")}
        return found

    return names
