"""Loaded by Python at start-up when this folder is on PYTHONPATH (crash tests only).

With GATEWAYD_TEST_CRASH_AFTER_INGEST=N, the daemon SIGKILLs itself right after the Nth attendance
batch is durable and before the terminal gets its reply: the worst moment for a punch.
"""

import os

if os.environ.get("GATEWAYD_TEST_CRASH_AFTER_INGEST"):
    import signal

    from gatewayd.connectors.terminals import attendance

    _crash_at = int(os.environ["GATEWAYD_TEST_CRASH_AFTER_INGEST"])
    _original = attendance.AttendanceService.ingest
    _calls = 0

    async def _ingest_then_die(self, *args, **kwargs):
        global _calls
        stored = await _original(self, *args, **kwargs)
        _calls += 1
        if _calls == _crash_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return stored

    attendance.AttendanceService.ingest = _ingest_then_die
