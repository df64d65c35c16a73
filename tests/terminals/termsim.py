"""A simulated attendance terminal (cmd/ret family) for tests, in HTTP and WebSocket mode.

It behaves like real firmware where that matters: it keeps punches until a `sendlog` is
acknowledged, answers `getnewlog` / `getuserlist` page by page, and writes the JSON quirks seen in
the field (trailing commas, padded keys and values, `cmd` where `ret` belongs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import trio
from trio_websocket import ConnectionClosed, open_websocket_url


def quirky(obj: dict, *, cmd_for_ret: bool = False) -> str:
    """JSON as sloppy firmware writes it: padded keys and values, trailing commas."""
    if cmd_for_ret and "ret" in obj:
        obj = {"cmd": obj["ret"], **{k: v for k, v in obj.items() if k != "ret"}}
    parts = []
    for key, value in obj.items():
        if isinstance(value, str):
            text = json.dumps(f" {value} ")
        elif isinstance(value, list):
            items = [json.dumps(v) for v in value]
            text = "[" + ", ".join(items) + (", ]" if items else "]")
        else:
            text = json.dumps(value)
        parts.append(f'"{key} " : {text}')
    return "{" + ", ".join(parts) + ",}"


def punches(n: int, *, start: datetime | None = None, enrollid: int = 1, step_minutes: int = 1) -> list[dict]:
    start = start or datetime(2026, 6, 12, 9, 0, 0)
    return [{"enrollid": enrollid + (i % 7), "time": (start + timedelta(minutes=i * step_minutes)).strftime(
        "%Y-%m-%d %H:%M:%S"), "mode": 1, "inout": i % 2, "event": 0} for i in range(n)]


@dataclass
class SimTerminal:
    sn: str
    modelname: str = "AiFace-Mars"
    backlog: list[dict] = field(default_factory=list)       # new logs not yet pulled by getnewlog
    users: dict[int, dict] = field(default_factory=dict)
    page_size: int = 3
    user_pages: str = "stn"                                 # getuserlist replies: "stn" (count = page) or "page"
    silent_for: set[str] = field(default_factory=set)       # commands it never answers
    cmd_for_ret: bool = True                                # answer with "cmd" instead of "ret"
    received: list[dict] = field(default_factory=list)      # commands from the server
    replies: list[dict] = field(default_factory=list)       # server replies to our requests
    logindex: int = 0
    _cursor: int = 0
    _user_cursor: int = 0
    ws: object = None                                       # the open WebSocket while run_ws runs

    # -- HTTP mode ----------------------------------------------------------------------------------
    def reg_body(self, *, flat: bool = False) -> dict:
        devinfo = {"modelname": self.modelname, "usersize": 3000, "fpsize": 3000, "firmware": "ai806 v2.1",
                   "mac": "00:11:22:33:44:55"}
        if flat:
            return {"cmd": "reg", "sn": self.sn, "cpusn": "CPU123", **devinfo}
        return {"cmd": "reg", "sn": self.sn, "cpusn": "CPU123", "devinfo": devinfo}

    def sendlog_body(self, records: list[dict]) -> dict:
        self.logindex += 1
        return {"cmd": "sendlog", "sn": self.sn, "count": len(records), "logindex": self.logindex,
                "record": records}

    async def post(self, client: httpx.AsyncClient, body: dict | str | bytes) -> httpx.Response:
        content = body if isinstance(body, (str, bytes)) else json.dumps(body)
        return await client.post("/api/device-http", content=content,
                                 headers={"Content-Type": "application/json"})

    # -- WebSocket mode -----------------------------------------------------------------------------
    async def run_ws(self, url: str, *, connected: trio.Event | None = None, closed: list | None = None) -> None:
        """Connect, register, answer commands until the server closes the socket."""
        async with open_websocket_url(url) as ws:
            self.ws = ws
            await ws.send_message(quirky(self.reg_body()))
            if connected is not None:
                connected.set()
            try:
                while True:
                    await self._on_frame(ws, json.loads(await ws.get_message()))
            except ConnectionClosed as exc:
                if closed is not None:
                    closed.append(exc.reason.code)

    async def _on_frame(self, ws, obj: dict) -> None:
        if "ret" in obj:
            self.replies.append(obj)
            return
        name = obj.get("cmd")
        self.received.append(obj)
        if name in self.silent_for or name == "reboot":
            return
        answer = getattr(self, f"_answer_{name}", None)
        reply = answer(obj) if answer else {"ret": name, "result": True}
        await ws.send_message(quirky(reply, cmd_for_ret=self.cmd_for_ret))

    def _answer_getnewlog(self, obj: dict) -> dict:
        if obj.get("stn"):
            self._cursor = 0
        page = self.backlog[self._cursor:self._cursor + self.page_size]
        reply = {"ret": "getnewlog", "result": True, "count": len(self.backlog), "from": self._cursor,
                 "to": self._cursor + len(page) - 1, "record": page}
        self._cursor += len(page)
        if self._cursor >= len(self.backlog):
            self.backlog = []  # the terminal marks delivered logs as read
            self._cursor = 0
        return reply

    def _answer_getuserlist(self, obj: dict) -> dict:
        if obj.get("stn"):
            self._user_cursor = 0
        everyone = [{"enrollid": k, "name": v["name"], "backupnum": v["backupnum"], "admin": v["admin"]}
                    for k, v in sorted(self.users.items())]
        page = everyone[self._user_cursor:self._user_cursor + self.page_size]
        self._user_cursor += len(page)
        if self.user_pages == "page":  # the dialect that numbers pages and reports the whole count
            return {"ret": "getuserlist", "result": True, "page": -(-self._user_cursor // self.page_size),
                    "pagesize": self.page_size, "count": len(everyone), "record": page}
        return {"ret": "getuserlist", "result": True, "count": len(page), "record": page}

    def _answer_setuserinfo(self, obj: dict) -> dict:
        self.users[int(obj["enrollid"])] = {"name": obj["name"], "backupnum": obj["backupnum"],
                                            "admin": obj["admin"], "record": obj["record"]}
        return {"ret": "setuserinfo", "result": True, "enrollid": obj["enrollid"]}

    def _answer_getusername(self, obj: dict) -> dict:
        user = self.users.get(int(obj["enrollid"]))
        if user is None:
            return {"ret": "getusername", "result": False, "reason": 1}
        return {"ret": "getusername", "result": True, "record": user["name"]}

    def _answer_setusername(self, obj: dict) -> dict:
        for row in obj["record"]:
            self.users.setdefault(int(row["enrollid"]), {"backupnum": 0, "admin": 0, "record": ""})["name"] = row["name"]
        return {"ret": "setusername", "result": True}

    def _answer_getuserlock(self, obj: dict) -> dict:
        return {"ret": "getuserlock", "result": True, "enrollid": obj["enrollid"], "weekzone": 1, "group": 1,
                "starttime": "2016-03-25 01:00:00", "endtime": "2099-03-25 23:59:00"}

    def _answer_getholiday(self, obj: dict) -> dict:
        return {"ret": "getholiday", "sn": self.sn, "result": True,
                "holidays": [{"name": "holiday1", "startday": "01-01", "endday": "01-01", "shift": 0, "dayzone": 0}]}

    def _answer_gettime(self, obj: dict) -> dict:
        return {"ret": "gettime", "result": True, "time": "2026-06-12 10:00:00"}

    def _answer_deleteuser(self, obj: dict) -> dict:
        if int(obj["enrollid"]) not in self.users:
            return {"ret": "deleteuser", "result": False, "reason": "no such user"}
        del self.users[int(obj["enrollid"])]
        return {"ret": "deleteuser", "result": True}
