"""Dashboard settings: API keys (a new key is shown once) and the admin password."""

from __future__ import annotations

from quart import g, request

from .. import ops
from .auth import client_address
from .dashboard import (action, actor, back_to, core, form_value, go, hand_over, notice, page, pages, render, secure,
                        sessions, take_shown_once)

blueprint = pages("dashboard_settings", __name__)


@blueprint.get("/settings")
@page
async def settings():
    keys = await ops.call(core(), "apikey.list", {})
    keys.sort(key=lambda k: (k["revoked"] is not None, k["created"]))
    mqtt = core().services.get("mqtt")
    return await render("settings.html", active="settings", keys=keys,
                        password_changed=core().state.access.admin_changed,
                        mqtt=mqtt.status() if mqtt is not None else {"enabled": False},
                        webhooks=await ops.call(core(), "webhook.list", {}))


@blueprint.post("/settings/apikeys")
@action
async def create_key():
    back_to("/settings#apikeys")
    created = await ops.call(core(), "apikey.create", {"name": await form_value("name")})
    hand_over(f"apikey:{created['key_id']}", created)
    return go(f"/settings/apikeys/{created['key_id']}/created")


@blueprint.get("/settings/apikeys/<key_id>/created")
@page
async def created_key(key_id: str):
    """The new key handed over by the form, once: a reload shows it no more."""
    key = take_shown_once(f"apikey:{key_id}", "An API key", "Create a new key if it was lost (and revoke the old one).")
    scheme = "wss" if request.scheme == "https" else "ws"
    return await render("apikey_created.html", active="settings", key=key,
                        monitor_url=f"{scheme}://{request.host}/monitor/communications")


@blueprint.get("/settings/apikeys/<key_id>/revoke")
@page
async def confirm_revoke(key_id: str):
    key = next((k for k in await ops.call(core(), "apikey.list", {}) if k["key_id"] == key_id), None)
    if key is None:
        raise ops.not_found("API key", key_id)
    return await render("confirm.html", active="settings", question=f"Revoke the API key {key['name']}?",
                        detail="Scripts and monitors using this key are refused from now on.",
                        button="Revoke key", target=f"/settings/apikeys/{key_id}/revoke",
                        cancel="/settings#apikeys", danger=True)


@blueprint.post("/settings/apikeys/<key_id>/revoke")
@action
async def revoke_key(key_id: str):
    back_to("/settings#apikeys")
    key = await ops.call(core(), "apikey.revoke", {"key_id": key_id})
    notice("ok", f"API key {key['name']} revoked.")
    return go("/settings#apikeys")


@blueprint.post("/settings/password")
@action
async def change_password():
    back_to("/settings#password")
    current = await form_value("current")
    new = await form_value("new")
    if new != await form_value("confirm"):
        raise ops.OpError("invalid", "the new password and its confirmation differ", 422)
    access = core().access
    source = client_address()
    if access.blocked("login", source):
        raise ops.OpError("rate_limited", "too many wrong passwords from this address; wait a minute", 429)
    access.count_attempt("login", source)  # before the hash, like a login
    ok = bool(current) and len(current) <= 1024 and await access.check_password_limited(current)
    if ok is None:
        raise ops.OpError("busy", "the server is busy checking other passwords; try again in a few seconds", 503)
    if not ok:
        await access.record_failure("login", source, user_hash=access.subject_hash("user", g.session.user),
                                    counted=True)
        raise ops.OpError("invalid", "the current password is wrong", 422)
    access.limiter.succeeded(f"login:{source}")
    if len(new) > 1024:
        raise ops.OpError("invalid", "the new password is longer than 1024 characters", 422)
    await ops.call(core(), "admin.set_password", {"password": new, "actor": actor()})
    # The change ended every session, this one too: give this browser a fresh one.
    store = sessions()
    notice("ok", "Password changed. Other sessions have been logged out.")
    response = go("/settings")
    store.set_cookie(response, store.new_session(g.session.user), secure=secure())
    return response
