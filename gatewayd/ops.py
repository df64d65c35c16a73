"""Operations: the state-changing (and reading) commands an operator can run.

One registry serves the local control socket (daemon running), the offline command line (daemon
stopped: the CLI takes the journal lock and runs the same function) and the REST API where it fits.
An operation is `async def fn(core, **args) -> JSON-able`, marked with `@operation("x.y")`; the ground
floor and each connector declare the modules that hold theirs, and `core.operations` is the table
built from those declarations.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Awaitable, Callable


class OpError(Exception):
    """A refusal with a stable code, a human message and the HTTP status that fits it."""

    def __init__(self, code: str, message: str, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.field = field  # the argument at fault, when one is (forms show the message next to it)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


def not_found(what: str, ident: str) -> OpError:
    return OpError("not_found", f"no {what} with id {ident!r}", 404)


@dataclass(frozen=True)
class OpSpec:
    name: str
    fn: Callable[..., Awaitable[Any]]
    needs_daemon: bool


def operation(name: str, *, needs_daemon: bool = False):
    def mark(fn):
        fn.op_spec = OpSpec(name, fn, needs_daemon)
        return fn
    return mark


def collect(*modules: ModuleType) -> tuple[OpSpec, ...]:
    """The operations marked with `@operation` in these modules."""
    return tuple(value.op_spec for module in modules for value in vars(module).values()
                 if isinstance(getattr(value, "op_spec", None), OpSpec)
                 and getattr(value, "__module__", None) == module.__name__)


def table(specs) -> dict[str, OpSpec]:
    operations: dict[str, OpSpec] = {}
    for spec in specs:
        if spec.name in operations:
            raise ValueError(f"operation {spec.name!r} is declared twice")
        operations[spec.name] = spec
    return operations


async def call(core, name: str, args: dict[str, Any]) -> Any:
    spec = core.operations.get(name)
    if spec is None:
        raise OpError("unknown_op", f"unknown operation {name!r}", 404)
    if spec.needs_daemon and not core.online:
        raise OpError("daemon_required", f"{name} needs a running gatewayd", 409)
    if not isinstance(args, dict):
        raise OpError("invalid", "arguments must be an object")
    try:
        inspect.signature(spec.fn).bind(core, **args)
    except TypeError as exc:
        raise OpError("invalid", f"{name}: {exc}") from None
    return await spec.fn(core, **args)
