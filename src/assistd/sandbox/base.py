"""The sandbox interface: what the run executor needs from whatever runs the model's Python.

The default implementation (`manager.SessionManager`) keeps one IPython kernel per thread inside
bubblewrap on this host. A remote sandbox service can implement the same protocol later; nothing
outside this package knows how code is run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

MOUNT_POINT = "/mnt/data"


class SandboxUnavailable(Exception):
    """Code cannot be run on this server; the message says why and what the operator can do."""


@dataclass(frozen=True)
class InputFile:
    """A file the code can read: placed in the session's data directory under `name`."""

    file_id: str
    name: str
    read: Callable[[], AsyncIterator[bytes]]


@dataclass(frozen=True)
class OutputFile:
    """A regular file the code wrote (or changed) under the data directory."""

    path: str  # relative to the data directory, '/'-separated
    data: bytes


@dataclass
class Execution:
    """What one cell produced. `status` is how the cell ended, `notice` what the model (and user)
    must know about the session: it was reset, the cell timed out, output was cut."""

    status: Literal["ok", "error", "timeout", "stopped", "reset"]
    logs: str = ""
    images: list[bytes] = field(default_factory=list)
    files: list[OutputFile] = field(default_factory=list)
    notice: str | None = None


class Sandbox(Protocol):
    @property
    def data_path(self) -> str:
        """Where the code finds its files (`/mnt/data` when isolated)."""
        ...

    def unavailable(self) -> str | None:
        """Why code cannot run here (None when it can)."""
        ...

    async def start(self) -> None: ...

    async def execute(self, session: str, code: str, inputs: list[InputFile]) -> Execution:
        """Run `code` in the session's stateful interpreter (started on first use)."""
        ...

    async def interrupt(self, session: str) -> None:
        """Interrupt the session's running cell, if any: `execute` then returns soon, status 'stopped'."""
        ...

    async def close(self, session: str, *, remove_files: bool) -> None:
        """End the session's interpreter; with `remove_files`, its data directory goes too."""
        ...

    async def aclose(self) -> None: ...
