"""The sandbox when the `sandbox` extra is not installed: every call says so (the server itself runs on).

`app.make_sandbox` picks it when `manager` (jupyter_client, pyzmq) cannot be imported; a run whose
model calls code_interpreter then fails with this message as its `last_error`.
"""

from __future__ import annotations

from assistd.sandbox.base import MOUNT_POINT, Execution, InputFile, SandboxUnavailable


class MissingSandbox:
    def __init__(self, reason: str) -> None:
        self.reason = reason

    @property
    def data_path(self) -> str:
        return MOUNT_POINT

    def unavailable(self) -> str | None:
        return self.reason

    async def start(self) -> None:
        return None

    async def execute(self, session: str, code: str, inputs: list[InputFile]) -> Execution:
        raise SandboxUnavailable(self.reason)

    async def interrupt(self, session: str) -> None:
        return None

    async def close(self, session: str, *, remove_files: bool) -> None:
        return None

    async def aclose(self) -> None:
        return None
