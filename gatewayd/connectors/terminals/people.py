"""Who an enrolment id is: person names from the users a terminal reported."""

from __future__ import annotations

from typing import Any, Callable


def person_names(core: Any) -> Callable[[str], dict[str, str]]:
    """A lookup sn -> {enrollid as text: name} (names that are not empty only), cached per call of
    this function: for one page or one batch of rows."""
    cache: dict[str, dict[str, str]] = {}
    push = core.state.parts.get("push")

    def names(sn: str) -> dict[str, str]:
        found = cache.get(sn)
        if found is None:
            users = push.get(sn)["users"].values() if push is not None else ()
            found = cache[sn] = {str(u.get("enrollid")): str(u["name"]) for u in users
                                 if isinstance(u, dict) and u.get("name")}
        return found

    return names
