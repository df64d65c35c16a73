"""Session cookies and CSRF tokens (services/sessions.py), in process with a stand-in core."""

import os
import stat
from types import SimpleNamespace

from hypothesis import given, strategies as st

from gatewayd.web.sessions import KEY_BYTES, Sessions, load_or_create_key, same_origin


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


class Hub:
    """Applies the one record sessions publish (auth.logout) as the state part would."""

    def __init__(self, access):
        self.access = access

    async def publish(self, type_, data):
        assert type_ == "auth.logout" and set(data) == {"sid_hash", "exp", "user"}
        self.access.revoked_sessions[data["sid_hash"]] = data["exp"]


def make(tmp_path, admin_hash="scrypt$first"):
    settings = SimpleNamespace(state_path=tmp_path, security=SimpleNamespace(session_hours=1.0))
    access = SimpleNamespace(admin_hash=admin_hash, revoked_sessions={})
    core = SimpleNamespace(settings=settings, extras={}, state=SimpleNamespace(access=access), hub=Hub(access))
    clock = Clock()
    return Sessions(core, clock=clock), core, clock


def test_cookie_round_trip_and_registration(tmp_path):
    store, core, _ = make(tmp_path)
    assert core.extras["sessions"] is store
    session = store.new_session("admin")
    decoded = store.decode(store.encode(session))
    assert (decoded.sid, decoded.user) == (session.sid, "admin")


async def test_tampering_expiry_password_change_and_revocation(tmp_path):
    store, core, clock = make(tmp_path)
    session = store.new_session("admin")
    cookie = store.encode(session)
    payload, mac = cookie.split(".")
    other_payload = store.encode(store.new_session("root")).split(".")[0]
    assert store.decode(other_payload + "." + mac) is None
    assert store.decode(payload + "." + mac[::-1]) is None
    clock.now += 3599
    assert store.decode(cookie) is not None
    clock.now += 2
    assert store.decode(cookie) is None
    clock.now -= 1000
    core.state.access.admin_hash = "scrypt$second"
    assert store.decode(cookie) is None
    fresh = store.new_session("admin")
    assert store.decode(store.encode(fresh)) is not None
    await store.revoke(fresh)
    assert store.decode(store.encode(fresh)) is None
    assert fresh.sid not in str(core.state.access.revoked_sessions)  # only a hash of it is kept


def test_a_new_key_ends_every_session(tmp_path):
    store, core, _ = make(tmp_path)
    cookie = store.encode(store.new_session("admin"))
    (tmp_path / "session.key").unlink()
    again = Sessions(core)
    assert again.decode(cookie) is None


def test_csrf_tokens_belong_to_their_session(tmp_path):
    store, _, _ = make(tmp_path)
    one, two = store.new_session("admin"), store.new_session("admin")
    assert store.csrf_valid(one, store.csrf_token(one))
    assert not store.csrf_valid(one, store.csrf_token(two))
    assert not store.csrf_valid(None, store.csrf_token(one))
    assert not store.csrf_valid(one, None) and not store.csrf_valid(one, "")


def test_key_file_is_private_and_kept(tmp_path):
    path = tmp_path / "session.key"
    key = load_or_create_key(path)
    assert len(key) == KEY_BYTES and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_key(path) == key
    os.chmod(path, 0o644)
    assert load_or_create_key(path) == key and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    path.write_bytes(b"short")
    replaced = load_or_create_key(path)
    assert len(replaced) == KEY_BYTES and replaced != key


def test_sign_and_unsign(tmp_path):
    store, _, _ = make(tmp_path)
    value = store.sign('[["ok","Device x deleted."]]')
    assert store.unsign(value) == '[["ok","Device x deleted."]]'
    assert store.unsign(value[:-1] + ("A" if value[-1] != "A" else "B")) is None
    assert store.unsign("nonsense") is None and store.unsign(None) is None


@given(st.text(max_size=300))
def test_any_cookie_text_decodes_to_a_session_or_none(tmp_path_factory, text):
    store, _, _ = make(tmp_path_factory.mktemp("k"))
    assert store.decode(text) is None
    assert store.unsign(text) is None


def test_same_origin():
    def ctx(origin=None, host="gw.local:3000"):
        headers = {"Host": host}
        if origin is not None:
            headers["Origin"] = origin
        return SimpleNamespace(headers=headers)

    assert same_origin(ctx())
    assert same_origin(ctx("http://gw.local:3000"))
    assert same_origin(ctx("https://GW.local:3000"))
    assert not same_origin(ctx("http://evil.example"))
    assert not same_origin(ctx("null"))
    assert not same_origin(ctx("http://gw.local:3000", host=""))
