"""LoRaWAN device provisioning and keys: validate what an operator gives, seal the keys, and open
them again (cached) when frames need them. No message here ever contains a key."""

from __future__ import annotations

from typing import Any

from ...ops import OpError
from . import frames as lorawan
from ...errors import ProtocolError
from ...secretbox import SecretBox, SecretBoxError

KEY_FIELDS = ("app_key", "nwk_s_key", "app_s_key")
LORAWAN_ARGS = {"dev_eui", "app_eui", "app_key", "dev_addr", "nwk_s_key", "app_s_key", "relax_fcnt", "class"}
DEVICE_CLASSES = ("A", "C")
_KEY_NAMES = {"app_key": "AppKey", "nwk_s_key": "NwkSKey", "app_s_key": "AppSKey"}


def key_context(dev_eui: str, field: str) -> str:
    return f"lorawan/{dev_eui}/{field}"


def _invalid(message: str, field: str | None = None) -> OpError:
    return OpError("invalid", message, 422, field=field)


def _eui(value: Any, name: str, field: str | None = None) -> str:
    try:
        return lorawan.eui_to_hex(lorawan.hex_to_eui(value))
    except ProtocolError:
        raise _invalid(f"{name} must be 16 hexadecimal digits (8 bytes), got {str(value)[:40]!r}", field) from None


def _key(value: Any, name: str, field: str | None = None) -> bytes:
    # The value is a secret: even a malformed one is never echoed back.
    try:
        return lorawan.parse_key(value)
    except ProtocolError:
        length = len(value) if isinstance(value, str) else 0
        raise _invalid(f"{name} must be 32 hexadecimal digits (16 bytes); the value given has "
                       f"{length} characters", field) from None


def _given(args: dict[str, Any], name: str) -> bool:
    return args.get(name) not in (None, "")


def device_class(value: Any) -> str:
    text = value.strip().upper() if isinstance(value, str) else ""
    if text not in DEVICE_CLASSES:
        raise _invalid(f"class must be A or C, got {str(value)[:20]!r}", "class")
    return text


class Keys:
    """Sealing for new devices and sessions, and a cache of opened keys keyed by their tokens."""

    def __init__(self, box: SecretBox):
        self.box = box
        self._open: dict[str, bytes] = {}

    def seal(self, dev_eui: str, field: str, key: bytes) -> str:
        token = self.box.seal(key, key_context(dev_eui, field))
        self._open[token] = key
        return token

    def open(self, dev_eui: str, field: str, token: str) -> bytes:
        key = self._open.get(token)
        if key is None:
            key = self.box.open(token, key_context(dev_eui, field))
            if len(self._open) > 100_000:
                self._open.clear()
            self._open[token] = key
        return key

    def session_keys(self, session: dict[str, Any]) -> tuple[bytes, bytes]:
        """(NwkSKey, AppSKey) of a session. Raises SecretBoxError if they cannot be opened."""
        dev_eui = session["dev_eui"]
        return (self.open(dev_eui, "nwk_s_key", session["nwk_s_key"]),
                self.open(dev_eui, "app_s_key", session["app_s_key"]))

    def prepare_device(self, args: dict[str, Any], existing: dict[str, dict]) -> dict[str, Any]:
        """Validate `device add --lorawan` arguments; the result (keys sealed) goes into the
        device.created record under "lorawan"."""
        if not isinstance(args, dict):
            raise _invalid("lorawan must be an object")
        unknown = sorted(set(args) - LORAWAN_ARGS)
        if unknown:
            raise _invalid(f"lorawan: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(LORAWAN_ARGS))}")
        if not _given(args, "dev_eui"):
            raise _invalid("a LoRaWAN device needs --dev-eui", "dev_eui")
        dev_eui = _eui(args["dev_eui"], "DevEUI", "dev_eui")
        if dev_eui in existing:
            raise OpError("conflict", f"a LoRaWAN device with DevEUI {dev_eui} already exists", 409, field="dev_eui")
        relax = args.get("relax_fcnt", False)
        if not isinstance(relax, bool):
            raise _invalid("relax_fcnt must be true or false")
        otaa = _given(args, "app_key")
        abp = [name for name in ("dev_addr", "nwk_s_key", "app_s_key") if _given(args, name)]
        if otaa and abp:
            raise _invalid("give either --app-key (OTAA) or --dev-addr, --nwk-s-key and --app-s-key (ABP), not both")
        prepared: dict[str, Any] = {"dev_eui": dev_eui, "relax_fcnt": relax}
        if _given(args, "class"):
            prepared["class"] = device_class(args["class"])
        if otaa:
            app_key = _key(args["app_key"], "AppKey", "app_key")
            app_eui = _eui(args["app_eui"], "AppEUI", "app_eui") if _given(args, "app_eui") else "0000000000000000"
            prepared.update(activation="otaa", app_eui=app_eui, app_key=self.seal(dev_eui, "app_key", app_key),
                            dev_addr=None, nwk_s_key=None, app_s_key=None)
            return prepared
        missing = [f"--{n.replace('_', '-')}" for n in ("dev_addr", "nwk_s_key", "app_s_key") if n not in abp]
        if missing:
            raise _invalid("an OTAA device needs --app-key; an ABP device needs --dev-addr, --nwk-s-key and "
                           f"--app-s-key (missing: {', '.join(missing)})",
                           next(n for n in ("dev_addr", "nwk_s_key", "app_s_key") if n not in abp))
        try:
            dev_addr = lorawan.dev_addr_hex(lorawan.parse_dev_addr(args["dev_addr"]))
        except ProtocolError:
            raise _invalid(f"DevAddr must be 8 hexadecimal digits (4 bytes), got {str(args['dev_addr'])[:40]!r}",
                           "dev_addr") from None
        nwk = _key(args["nwk_s_key"], "NwkSKey", "nwk_s_key")
        app = _key(args["app_s_key"], "AppSKey", "app_s_key")
        app_eui = _eui(args["app_eui"], "AppEUI", "app_eui") if _given(args, "app_eui") else ""
        prepared.update(activation="abp", app_eui=app_eui, app_key=None, dev_addr=dev_addr,
                        nwk_s_key=self.seal(dev_eui, "nwk_s_key", nwk),
                        app_s_key=self.seal(dev_eui, "app_s_key", app))
        return prepared

    def reveal(self, session: dict[str, Any]) -> dict[str, str | None]:
        """The device's keys in clear, for an operator who asked explicitly."""
        out: dict[str, str | None] = {}
        for field in KEY_FIELDS:
            token = session.get(field)
            try:
                out[_KEY_NAMES[field]] = self.open(session["dev_eui"], field, token).hex() if token else None
            except SecretBoxError as exc:
                raise OpError("unreadable", f"{_KEY_NAMES[field]} of {session['dev_eui']}: {exc}", 500) from None
        return out
