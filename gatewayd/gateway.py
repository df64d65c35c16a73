"""The gateway assembled: the ground floor with every connector of `gatewayd.connectors`.

The ground floor takes the connectors as an argument; these are its entry points with the list
filled in, for the command line, tests and benchmarks.
"""

from __future__ import annotations

from functools import partial

from . import backup, daemon, replay, runtime, state
from .comm_tables import CommTables
from .connectors import CONNECTORS
from .web import app

serve = partial(daemon.serve, connectors=CONNECTORS)
open_core = partial(runtime.open_core, connectors=CONNECTORS)
load_state = partial(replay.load_state, connectors=CONNECTORS)
restore_backup = partial(backup.restore_backup, connectors=CONNECTORS)
create_app = app.create_app


def comm_tables() -> CommTables:
    """Every connector's monitoring mappers and TX handlers (what a core has as core.comms)."""
    return CommTables.of(CONNECTORS)


def build_state(settings=None) -> state.State:
    return state.build_state(settings, replay.part_classes(CONNECTORS))
