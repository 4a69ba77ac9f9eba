"""A cell's output as the host keeps it, from Jupyter messages whichever way the kernel is reached
(ZeroMQ for the local backend, a gateway's websocket for the remote one).

Everything the kernel sends is untrusted: text is capped, images are kept only after a
magic-number check (never decoded here), and their number and size are bounded.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from assistd.sandbox.base import Execution, OutputFile
from assistd.sandbox.files import is_image

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MAX_IMAGES = 10
MAX_IMAGE_BYTES = 8 * 1024 * 1024


@dataclass
class CellOutput:
    logs: list[str] = field(default_factory=list)
    images: list[bytes] = field(default_factory=list)
    logs_size: int = 0
    truncated: bool = False
    error: bool = False

    def add_text(self, text: str, cap: int) -> None:
        if self.logs_size >= cap:
            self.truncated = True
            return
        room = cap - self.logs_size
        if len(text) > room:
            text, self.truncated = text[:room], True
        self.logs.append(text)
        self.logs_size += len(text)

    def add_image(self, encoded: Any) -> None:
        if not isinstance(encoded, str) or len(self.images) >= MAX_IMAGES:
            return
        if len(encoded) > MAX_IMAGE_BYTES * 4 // 3 + 4:
            return
        try:
            data = base64.b64decode(encoded, validate=False)
        except (binascii.Error, ValueError):
            return
        if is_image(data):
            self.images.append(data)

    def add_message(self, kind: str, content: Mapping[str, Any], cap: int) -> None:
        """Keep what one IOPub message of the cell shows: printed text, a value, an image, a traceback."""
        if kind == "stream":
            self.add_text(str(content.get("text", "")), cap)
        elif kind in ("execute_result", "display_data"):
            data = content.get("data") or {}
            if not isinstance(data, Mapping):
                return
            if "image/png" in data or "image/jpeg" in data:
                self.add_image(data.get("image/png") or data.get("image/jpeg"))
            elif "text/plain" in data:
                text = str(data["text/plain"])
                self.add_text(text if text.endswith("\n") else text + "\n", cap)
        elif kind == "error":
            self.error = True
            traceback = "\n".join(str(line) for line in content.get("traceback") or [])
            self.add_text(ANSI.sub("", traceback) + "\n", cap)


def kept_status(how: str, limit: str, notices: list[str]) -> Literal["ok", "error", "timeout", "stopped"]:
    """How a cell that left its session alive ended, as a status; interruptions add their notice."""
    if how == "timeout":
        notices.append(f"The cell ran longer than {limit} and was interrupted; variables and files were kept.")
        return "timeout"
    if how == "stopped":
        notices.append("The cell was interrupted because its run was cancelled; variables and files were kept.")
        return "stopped"
    return "error" if how == "error" else "ok"


def execution(
    status: Literal["ok", "error", "timeout", "stopped", "reset"],
    output: CellOutput,
    written: list[OutputFile],
    skipped: list[str],
    notices: list[str],
) -> Execution:
    """What one cell produced, with the notices about cut output and files too large to return."""
    if output.truncated:
        notices.append("The output was too long and was cut.")
    if skipped:
        notices.append("Files too large to return: " + ", ".join(skipped) + ".")
    return Execution(
        status=status,
        logs="".join(output.logs),
        images=output.images,
        files=written,
        notice=" ".join(notices) or None,
    )
