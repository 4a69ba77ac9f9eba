"""The code_interpreter tool as the model sees it, and its results as run steps and prompt text.

The model gets a function `code_interpreter({"code": str})`. Clients see a typed
`code_interpreter` tool call whose `input` streams as the code is generated (decoded from the
JSON arguments as they arrive) and whose `outputs` are logs and images. Files the code writes
become `assistants_output` Files; the answer links them as `sandbox:/mnt/data/<name>`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from assistd.runs.store import calls_of
from assistd.sandbox.base import MOUNT_POINT

NAME = "code_interpreter"
LINK_PREFIX = f"sandbox:{MOUNT_POINT}/"
MODEL_LOGS_CHARS = 8_000


def function(data_path: str, file_names: Sequence[str]) -> dict[str, Any]:
    """The function offered to the model; it names the files the code can read."""
    files = ", ".join(f"{data_path}/{n}" if data_path.startswith("/") else n for n in file_names)
    description = (
        "Run Python 3 code in a stateful sandbox (like a Jupyter notebook: variables persist between "
        "calls; numpy, pandas and matplotlib are installed; no internet). The last expression's value "
        "and anything printed is returned; plots shown with matplotlib are displayed to the user. "
        f"Files are in {data_path}. To give the user a file, save it there and link it in your answer "
        f"as {LINK_PREFIX}<name>."
    )
    if files:
        description += f" Files available: {files}."
    return {
        "type": "function",
        "function": {
            "name": NAME,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {"code": {"type": "string", "minLength": 1, "description": "The Python code to run."}},
                "required": ["code"],
            },
        },
    }


def code_of(arguments: str) -> str:
    """The code from the model's arguments; a model that sent bare code instead of JSON is understood."""
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(parsed, dict) and isinstance(parsed.get("code"), str):
        return str(parsed["code"])
    return arguments if not isinstance(parsed, dict) else ""


_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def partial_code(arguments: str) -> str:
    """The part of `"code"`'s string value decodable so far from incomplete JSON arguments."""
    key = arguments.find('"code"')
    if key < 0:
        return ""
    i = key + len('"code"')
    n = len(arguments)
    while i < n and arguments[i] in " \t\r\n:":
        i += 1
    if i >= n or arguments[i] != '"':
        return ""
    i += 1
    out: list[str] = []
    while i < n:
        ch = arguments[i]
        if ch == '"':
            break
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= n:
            break
        esc = arguments[i + 1]
        if esc == "u":
            if i + 6 > n:
                break
            try:
                code = int(arguments[i + 2 : i + 6], 16)
            except ValueError:
                break
            if 0xD800 <= code < 0xDC00:  # a surrogate pair: wait for the low half
                if i + 12 > n:
                    break
                low = int(arguments[i + 8 : i + 12], 16) if arguments[i + 6 : i + 8] == "\\u" else 0
                out.append(chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)) if low else "\ufffd")
                i += 12 if low else 6
                continue
            out.append(chr(code))
            i += 6
            continue
        out.append(_ESCAPES.get(esc, esc))
        i += 2
    return "".join(out)


def model_output(call: dict[str, Any]) -> str:
    """What the model reads as the tool's result."""
    details = call[NAME]
    parts: list[str] = []
    logs = "".join(o["logs"] for o in details.get("outputs") or [] if o["type"] == "logs")
    if len(logs) > MODEL_LOGS_CHARS:
        logs = logs[: MODEL_LOGS_CHARS // 2] + "\n[… output cut …]\n" + logs[-MODEL_LOGS_CHARS // 2 :]
    if logs:
        parts.append(logs.rstrip("\n"))
    images = sum(1 for o in details.get("outputs") or [] if o["type"] == "image")
    if images:
        parts.append(f"[{images} image(s) displayed to the user]")
    written = call.get("_files") or {}
    if written:
        parts.append("Files written: " + ", ".join(f"{LINK_PREFIX}{name}" for name in written))
    return "\n".join(parts) or "(no output)"


def written_files(steps: Sequence[Any]) -> dict[str, str]:
    """Every file the run's code wrote, by path under the data directory → File id (newest wins)."""
    found: dict[str, str] = {}
    for call in calls_of(steps, NAME):
        found.update(call.get("_files") or {})
    return found


def pending_images(steps: Sequence[Any]) -> list[str]:
    """Images made since the run's last message: the next message shows them (as OpenAI's did)."""
    images: list[str] = []
    for step in steps:
        if step.type == "message_creation":
            images = []
            continue
        for call in step.step_details["tool_calls"]:
            if call["type"] == NAME:
                images += [o["image"]["file_id"] for o in call[NAME].get("outputs") or [] if o["type"] == "image"]
    return images
