"""Tools as plugins: one module per tool behind the protocol in tools/base.py."""

from __future__ import annotations

from collections.abc import Sequence

from assistd.tools.base import Tool
from assistd.tools.function import FunctionTool


class Toolbox:
    """The tools a run can use, by the name the model calls them with. Any other name is a function
    call: the client runs it (a call to a tool the run does not offer is refused, engine/loop.py)."""

    def __init__(self, builtin: Sequence[Tool]) -> None:
        self.function: Tool = FunctionTool()
        self.builtin = {tool.name: tool for tool in builtin}

    def all(self) -> list[Tool]:
        """In the order their functions are shown to the model: the run's functions first."""
        return [self.function, *self.builtin.values()]

    def by_type(self, kind: str) -> Tool:
        return self.builtin.get(kind, self.function)
