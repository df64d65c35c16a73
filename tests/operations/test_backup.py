"""Backup while running (consistency under concurrent writes) and verified restore."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from pathlib import Path

import httpx
import pytest
import trio
from hypothesis import given, settings as hsettings, strategies as st

from gatewayd import ops
from gatewayd.journal.files import list_segments
from gatewayd.journal.lock import JournalLock
from gatewayd.journal.reader import JournalReader
from gatewayd.journal.record import Record, encode_line
from gatewayd.gateway import load_state
from gatewayd import backup
from gatewayd.backup import BackupError
from gatewayd.gateway import restore_backup
from tests.conftest import Daemon, DaemonProcess, run_cli, wait_for


@pytest.fixture
def daemon_sections():
    # Small segments: a backup then spans several, and its seq falls inside the last one.
    return {"journal": {"segment_bytes": 4096}}


def _normalised(state) -> dict:
    return json.loads(json.dumps(state.snapshot(), sort_keys=True, default=str))


def _members(archive: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(archive, "r:*") as tar:
        return {m.name: m for m in tar.getmembers()}


async def test_backup_while_writing_is_the_state_at_its_seq(daemon, tmp_path):
    core = daemon.core
    stop = trio.Event()
    created = []

    async def writer(prefix: str):
        i = 0
        while not stop.is_set():
            key = await ops.call(core, "apikey.create", {"name": f"{prefix}{i}"})
            created.append(key["key_id"])
            await core.hub.publish("test.tick", {"i": i, "pad": "x" * 200})
            i += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer, "a")
        nursery.start_soon(writer, "b")
        await wait_for(lambda: len(list_segments(core.journal_dir)) >= 3, timeout=10)
        result = await ops.call(core, "state.backup", {})
        await wait_for(lambda: core.state.seq > result["seq"] + 20, timeout=10)
        stop.set()

    archive = Path(result["path"])
    assert archive.parent == daemon.state_dir / "backups"
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    names = _members(archive)
    assert f"journal/snapshot-{result['seq']:016d}.json" in names
    assert sum(n.startswith("journal/segment-") for n in names) >= 3
    assert all(stat.S_IMODE(m.mode) == 0o600 for m in names.values())

    restored = tmp_path / "restored"
    summary = restore_backup(archive, restored)
    assert summary["seq"] == result["seq"] == summary["replayed_seq"]
    # The restored state is exactly the live journal's state at that seq, no record more or less.
    expected, _ = load_state(core.journal_dir, until_seq=result["seq"], cut_tail=False)
    got, _ = load_state(restored / "journal", cut_tail=False)
    assert _normalised(got) == _normalised(expected)
    # History came along, cut right after the seq: replaying the segments alone gives the same.
    records = list(JournalReader(restored / "journal").records())
    assert records[-1].seq == result["seq"]
    assert len(core.state.access.api_keys) > len(got.access.api_keys)

    # A daemon started on the restored directory serves that state and carries on after it.
    again = await Daemon(daemon.nursery, restored, {}).start()
    try:
        assert again.core.state.access.api_keys.keys() >= got.access.api_keys.keys()
        async with httpx.AsyncClient(base_url=again.base_url) as client:
            health = (await client.get("/healthz")).json()
        assert health["status"] == "ok" and health["journal_seq"] > result["seq"]
    finally:
        await again.stop()


async def test_backup_carries_the_keys_as_secrets(daemon, tmp_path):
    secret = os.urandom(32)
    for name in backup.KEY_FILES:
        path = daemon.state_dir / name
        path.unlink(missing_ok=True)
        path.write_bytes(secret)
        path.chmod(0o600)
    result = await ops.call(daemon.core, "state.backup", {})
    names = _members(Path(result["path"]))
    assert {"secret.key", "session.key"} <= set(names)
    restored = tmp_path / "restored"
    restore_backup(Path(result["path"]), restored)
    for name in backup.KEY_FILES:
        assert (restored / name).read_bytes() == secret
        assert stat.S_IMODE((restored / name).stat().st_mode) == 0o600


def test_a_segment_deleted_by_compaction_mid_backup_is_left_out(tmp_path, monkeypatch):
    journal = tmp_path / "journal"
    journal.mkdir()
    seq = 0
    for first in (1, 4, 7):
        lines = []
        for s in range(first, first + 3):
            lines.append(encode_line(Record(s, "t", "test.tick", {})))
            seq = s
        (journal / f"segment-{first:016d}.jsonl").write_bytes(b"".join(lines))
    listed = backup.list_segments(journal)
    (journal / "segment-0000000000000001.jsonl").unlink()  # pruned between listing and opening
    monkeypatch.setattr(backup, "list_segments", lambda directory: listed)
    members, opened = backup._collect(journal, tmp_path, seq, b"snapshot")
    try:
        segments = [m.name for m in members if "segment-" in m.name]
        assert segments == ["journal/segment-0000000000000004.jsonl", "journal/segment-0000000000000007.jsonl"]
    finally:
        for handle in opened:
            handle.close()


# -- restore refusals -------------------------------------------------------------------------------
async def _a_backup(daemon) -> Path:
    await ops.call(daemon.core, "apikey.create", {"name": "x"})
    return Path((await ops.call(daemon.core, "state.backup", {}))["path"])


def _rewrite(archive: Path, out: Path, change) -> None:
    """Copy an archive member by member, letting `change(name, data)` alter, drop (None) or add."""
    with tarfile.open(archive, "r:*") as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            for name, new in change(member.name, data):
                info = tarfile.TarInfo(name)
                info.size = len(new)
                dst.addfile(info, io.BytesIO(new))


def _flip_a_byte(name, data):
    if name.startswith("journal/segment-"):
        data = data[:10] + bytes([data[10] ^ 1]) + data[11:]
    yield name, data


async def test_restore_refuses_damage_and_leaves_the_directory_empty(daemon, tmp_path):
    archive = await _a_backup(daemon)
    cases = {
        "checksum": _flip_a_byte,
        "missing": lambda name, data: [] if name.startswith("journal/snapshot-") else [(name, data)],
        "unlisted": lambda name, data: [(name, data), ("journal/REPAIRS", b"")] if name == "secret.key"
        or name.startswith("journal/segment-") else [(name, data)],
        "traversal": lambda name, data: [("../escaped", data)] if name == "manifest.json" else [(name, data)],
        "no manifest": lambda name, data: [] if name == "manifest.json" else [(name, data)],
    }
    for label, change in cases.items():
        bad = tmp_path / f"{label}.tar.gz"
        _rewrite(archive, bad, change)
        target = tmp_path / f"state-{label.replace(' ', '-')}"
        with pytest.raises(BackupError) as info:
            restore_backup(bad, target)
        assert info.value.args[0], label
        assert sorted(p.name for p in target.iterdir()) == ["journal"], label
        assert [p.name for p in (target / "journal").iterdir()] == ["LOCK"], label
    assert not (tmp_path / "escaped").exists()

    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(BackupError, match="not a readable backup"):
        restore_backup(garbage, tmp_path / "g")
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(BackupError):
        restore_backup(truncated, tmp_path / "t")


async def test_restore_refuses_symlinks_and_a_newer_format(daemon, tmp_path):
    archive = await _a_backup(daemon)
    linked = tmp_path / "link.tar.gz"
    with tarfile.open(archive, "r:*") as src, tarfile.open(linked, "w:gz") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member))
        link = tarfile.TarInfo("secret.key")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/shadow"
        dst.addfile(link)
    with pytest.raises(BackupError, match="only regular files"):
        restore_backup(linked, tmp_path / "s")

    def newer(name, data):
        if name == "manifest.json":
            manifest = json.loads(data)
            manifest["format"] = 99
            data = json.dumps(manifest).encode()
        yield name, data

    future = tmp_path / "future.tar.gz"
    _rewrite(archive, future, newer)
    with pytest.raises(BackupError, match="format 99 is not supported"):
        restore_backup(future, tmp_path / "f")


async def test_restore_refuses_a_non_empty_or_locked_directory(daemon, tmp_path):
    archive = await _a_backup(daemon)
    with pytest.raises(BackupError, match="stop gatewayd"):
        restore_backup(archive, daemon.state_dir)
    busy = tmp_path / "busy"
    (busy / "journal").mkdir(parents=True)
    with JournalLock(busy / "journal"):
        with pytest.raises(BackupError, match="in use by another process"):
            restore_backup(archive, busy)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "run.json").write_text("{}")
    with pytest.raises(BackupError, match="not empty"):
        restore_backup(archive, occupied)


@hsettings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.sampled_from(["kind", "format", "seq", "files", "name", "bytes",
                                                       "sha256", "x"]), children, max_size=6),
                    max_leaves=20))
def test_any_manifest_is_accepted_or_refused_precisely(value):
    try:
        manifest = backup._parse_manifest(json.dumps(value).encode())
    except BackupError:
        return
    assert manifest["kind"] == backup.KIND and isinstance(manifest["files"], list)


# -- the command line, with a real daemon process ----------------------------------------------------
def test_cli_backup_through_the_running_daemon_and_restore(tmp_path):
    state = tmp_path / "state"
    daemon = DaemonProcess(state).start()
    try:
        created = run_cli("device", "add", "door", "--state-dir", str(state), "--json")
        assert created.returncode == 0, created.stderr
        device_id = json.loads(created.stdout)["id"]
        target = tmp_path / "out" / "gw.tar.gz"
        target.parent.mkdir()
        made = run_cli("backup", str(target), "--state-dir", str(state), "--json")
        assert made.returncode == 0, made.stderr
        result = json.loads(made.stdout)
        assert result["path"] == str(target) and stat.S_IMODE(target.stat().st_mode) == 0o600
        assert not list((state / "backups").iterdir()), "the daemon's copy is moved out, not left behind"
        again = run_cli("backup", str(target), "--state-dir", str(state))
        assert again.returncode == 2 and "exists" in again.stderr
        # The daemon holds the lock: restoring over it is refused with what to do.
        refused = run_cli("restore", str(target), "--state-dir", str(state))
        assert refused.returncode == 1 and "stop gatewayd" in refused.stderr
    finally:
        daemon.stop()
    fresh = tmp_path / "fresh"
    restored = run_cli("restore", str(target), "--state-dir", str(fresh))
    assert restored.returncode == 0, restored.stderr
    assert f"restored seq {result['seq']}" in restored.stdout
    listed = run_cli("device", "list", "--state-dir", str(fresh), "--json")
    assert device_id in [d["id"] for d in json.loads(listed.stdout)]
    verify = run_cli("journal", "verify", "--state-dir", str(fresh))
    assert verify.returncode == 0, verify.stdout


async def test_one_backup_at_a_time_and_leftovers_are_cleared(daemon):
    stale = daemon.state_dir / "backups" / f"gatewayd-backup-0000000000000001-x{backup.SUFFIX}.part"
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"cut short by a stop")
    outcomes = []

    async def one():
        try:
            outcomes.append(await ops.call(daemon.core, "state.backup", {}))
        except ops.OpError as exc:
            outcomes.append(exc.code)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one)
        nursery.start_soon(one)
    assert sorted(o if isinstance(o, str) else "ok" for o in outcomes) == ["busy", "ok"]
    assert not stale.exists()


async def test_the_daemon_compresses_closed_segments_and_backs_them_up(daemon, tmp_path):
    core = daemon.core
    for i in range(120):
        await core.hub.publish("test.tick", {"i": i, "pad": "x" * 200})
    # The maintenance task compresses every closed segment within about a second.
    await wait_for(lambda: all(p.name.endswith(".zst") for _, p in list_segments(core.journal_dir)[:-1])
                   and len(list_segments(core.journal_dir)) >= 3, timeout=15)
    assert not list_segments(core.journal_dir)[-1][1].name.endswith(".zst")
    assert JournalReader(core.journal_dir).verify().ok
    result = await ops.call(core, "state.backup", {})
    names = _members(Path(result["path"]))
    assert any(n.endswith(".jsonl.zst") for n in names)
    restored = tmp_path / "restored"
    restore_backup(Path(result["path"]), restored)
    got, _ = load_state(restored / "journal", cut_tail=False)
    expected, _ = load_state(core.journal_dir, until_seq=result["seq"], cut_tail=False)
    assert _normalised(got) == _normalised(expected)
    assert [r.seq for r in JournalReader(restored / "journal").records()][-1] == result["seq"]
