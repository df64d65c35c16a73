"""Every dashboard form handler answers with a redirect (POST-redirect-GET), even when it refuses:
Back and reload never offer to send a form again. Routes are read from the live app, so a new form
handler is checked as soon as it exists. The login form is the documented exception (a refused
login answers 401/429 itself; its page replaces the history entry)."""

from __future__ import annotations

import re

from gatewayd.gateway import create_app

from .helpers import logged_in

EXCEPTIONS = {"/login"}


async def test_every_dashboard_form_redirects_even_when_refused(daemon):
    app = create_app(daemon.core)
    rules = sorted({rule.rule for rule in app.url_map.iter_rules()
                    if "POST" in (rule.methods or ()) and rule.endpoint.split(".")[0].startswith("dashboard")
                    and rule.rule not in EXCEPTIONS})
    assert "/devices/new" in rules and "/settings/webhooks" in rules and "/devices/import" in rules
    answers = {}
    async with logged_in(daemon) as (http, csrf):
        for rule in rules:
            if rule == "/logout":
                continue
            path = re.sub(r"<(?:any\(([^,)]+)[^)]*\):[^>]+|[^>]+)>", lambda m: m.group(1) or "nothing-here", rule)
            response = await http.post(path, data={"csrf_token": csrf})
            answers[path] = (response.status_code, response.headers.get("location", ""))
    refused = {path: answer for path, answer in answers.items() if answer[0] != 303 or not answer[1].startswith("/")}
    assert not refused, refused
