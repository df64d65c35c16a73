"""A simulated ZKTeco PUSH terminal for tests, written from the protocol notes (PROTOCOLS.md 9).

Like real firmware it starts every exchange: a handshake that reads the options (stamps, time
zone) and sets its clock from the reply's Date header, uploads of the attendance log rows newer
than its ATTLOG stamp in batches, polls for commands, runs them and posts their results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import httpx


def attlog_row(pin: int | str, when: datetime, status: int = 0, verify: int = 1, workcode: int = 0) -> str:
    return f"{pin}\t{when:%Y-%m-%d %H:%M:%S}\t{status}\t{verify}\t{workcode}\t0\t0\t0\t0\t0"


@dataclass
class LogRow:
    stamp: int
    text: str


@dataclass
class PushTerminal:
    sn: str
    client: httpx.AsyncClient
    batch_size: int = 100
    pushver: str = "2.4.1"
    encoding: str = "utf-8"                                  # how it writes user names
    log: list[LogRow] = field(default_factory=list)          # its attendance log, oldest first
    users: dict[int, dict] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)    # the last handshake's reply
    stamps: dict[str, int] = field(default_factory=dict)     # what it believes the server has
    clock_offset: timedelta | None = None                    # its local clock minus UTC, after a handshake
    clock_utc_at_sync: datetime | None = None
    uploads: list[tuple[int, str]] = field(default_factory=list)   # (rows sent, reply) per ATTLOG upload
    results: list[str] = field(default_factory=list)         # devicecmd lines posted
    executed: list[str] = field(default_factory=list)        # command lines run
    device_info: dict[str, str] = field(default_factory=lambda: {
        "DeviceName": "SpeedFace-V5L", "FWVersion": "ZAM180-NF-Ver1.0.4", "MAC": "00:17:61:12:34:56",
        "UserCount": "3", "FPCount": "0", "TransactionCount": "0", "IPAddress": "192.168.1.201"})

    def url(self, path: str, **params) -> tuple[str, dict]:
        return path, {"SN": self.sn, **params}
    # -- handshake ------------------------------------------------------------------------------------
    async def handshake(self) -> httpx.Response:
        path, params = self.url("/iclock/cdata", options="all", pushver=self.pushver, language="69")
        response = await self.client.get(path, params=params)
        if response.status_code != 200:
            return response
        lines = response.text.splitlines()
        assert lines[0] == f"GET OPTION FROM: {self.sn}", lines[0]
        self.options = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
        self.stamps = {"ATTLOG": int(self.options.get("ATTLOGStamp", self.options.get("Stamp", "0")) or 0),
                       "OPERLOG": int(self.options.get("OPERLOGStamp", self.options.get("OpStamp", "0")) or 0)}
        utc = parsedate_to_datetime(response.headers["Date"])
        zone = int(self.options["TimeZone"])
        self.clock_offset = timedelta(minutes=zone) if abs(zone) > 14 else timedelta(hours=zone)
        self.clock_utc_at_sync = utc
        return response

    def local_clock(self) -> datetime:
        """What its display shows right after the handshake (naive local time)."""
        return (self.clock_utc_at_sync + self.clock_offset).replace(tzinfo=None)

    # -- attendance log ---------------------------------------------------------------------------------
    def punch(self, pin: int | str, when: datetime, status: int = 0, verify: int = 1) -> None:
        stamp = (self.log[-1].stamp if self.log else 1000) + 1
        self.log.append(LogRow(stamp, attlog_row(pin, when, status, verify)))

    def unsent(self) -> list[LogRow]:
        return [row for row in self.log if row.stamp > self.stamps.get("ATTLOG", 0)]

    async def post_rows(self, rows: list[LogRow], table: str = "ATTLOG") -> httpx.Response:
        body = "".join(row.text + "\n" for row in rows)
        path, params = self.url("/iclock/cdata", table=table, Stamp=str(rows[-1].stamp))
        return await self.client.post(path, params=params, content=body.encode())

    async def upload_all(self) -> int:
        """Send the unsent rows batch by batch; stop at the first refusal. Returns rows acknowledged."""
        acked = 0
        while rows := self.unsent()[: self.batch_size]:
            response = await self.post_rows(rows)
            self.uploads.append((len(rows), response.text))
            if response.status_code != 200 or not response.text.startswith("OK"):
                break
            self.stamps["ATTLOG"] = rows[-1].stamp
            acked += len(rows)
        return acked

    # -- users and device info ------------------------------------------------------------------------
    def user_line(self, user: dict) -> str:
        return (f"USER PIN={user['pin']}\tName={user['name']}\tPri={user.get('pri', 0)}\tPasswd={user.get('passwd', '')}"
                f"\tCard={user.get('card', '')}\tGrp=1\tTZ=0000000000000000")

    async def upload_users(self, pins: list[int] | None = None, table: str = "OPERLOG") -> httpx.Response:
        users = [self.users[p] for p in (pins or sorted(self.users))]
        body = "".join(self.user_line(u) + "\n" for u in users).encode(self.encoding)
        stamp = self.stamps.get("OPERLOG", 0) + 1
        path, params = self.url("/iclock/cdata", table=table, OpStamp=str(stamp))
        response = await self.client.post(path, params=params, content=body)
        if response.text.startswith("OK"):
            self.stamps["OPERLOG"] = stamp
        return response

    async def upload_options(self) -> httpx.Response:
        body = ",".join(f"~{k}={v}" if k == "DeviceName" else f"{k}={v}" for k, v in self.device_info.items())
        path, params = self.url("/iclock/cdata", table="options")
        return await self.client.post(path, params=params, content=body.encode())

    # -- commands -------------------------------------------------------------------------------------
    async def poll(self) -> list[tuple[str, str]]:
        """getrequest; runs what came and posts the results. Returns (id, line) of the commands."""
        path, params = self.url("/iclock/getrequest")
        response = await self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        if response.text.strip() == "OK":
            return []
        commands = []
        for line in response.text.splitlines():
            assert line.startswith("C:"), line
            _, command_id, command = line.split(":", 2)
            commands.append((command_id, command))
        results = [await self.run(command_id, command) for command_id, command in commands]
        path, params = self.url("/iclock/devicecmd")
        reply = await self.client.post(path, params=params, content="\n".join(results).encode())
        assert reply.status_code == 200 and reply.text == "OK", reply.text
        self.results.extend(results)
        return commands

    async def run(self, command_id: str, line: str) -> str:
        self.executed.append(line)
        words = line.split(" ", 3)
        if line.startswith("DATA UPDATE USERINFO "):
            fields = dict(f.split("=", 1) for f in words[3].split("\t"))
            pin = int(fields["PIN"])
            self.users[pin] = {"pin": pin, "name": fields.get("Name", ""), "pri": int(fields.get("Pri", 0)),
                               "passwd": fields.get("Passwd", ""), "card": fields.get("Card", "")}
            return f"ID={command_id}&Return=0&CMD=DATA"
        if line.startswith("DATA DELETE USERINFO "):
            pin = int(words[3].split("=", 1)[1])
            found = self.users.pop(pin, None)
            return f"ID={command_id}&Return={0 if found else -1}&CMD=DATA"
        if line.startswith("DATA QUERY USERINFO "):
            pin = int(words[3].split("=", 1)[1])
            if pin not in self.users:
                return f"ID={command_id}&Return=-1&CMD=DATA"
            await self.upload_users([pin], table="USERINFO")
            return f"ID={command_id}&Return=0&CMD=DATA"
        if line.startswith("DATA QUERY ATTLOG "):
            fields = dict(f.split("=", 1) for f in line[len("DATA QUERY ATTLOG "):].split("\t"))
            rows = [row for row in self.log if fields["StartTime"] <= row.text.split("\t")[1] <= fields["EndTime"]]
            if rows:
                await self.post_rows(rows)
            return f"ID={command_id}&Return={0 if rows else -1}&CMD=DATA"
        if line == "INFO":
            info = "\n".join(f"~{k}={v}" if k == "DeviceName" else f"{k}={v}" for k, v in self.device_info.items())
            return f"ID={command_id}&Return=0&CMD=INFO\n{info}"
        if line in ("REBOOT", "CHECK", "CLEAR LOG"):
            return f"ID={command_id}&Return=0&CMD={line.split()[0]}"
        return f"ID={command_id}&Return=-1002&CMD={words[0]}"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
