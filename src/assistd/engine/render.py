"""Conversation items as the provider's request: OpenAI chat-completions messages (providers/base.py).

Consecutive tool calls are one assistant message with `tool_calls`; each output is a `tool` message.
"""

from __future__ import annotations

from collections.abc import Sequence

from assistd.engine.items import (
    AssistantText,
    Item,
    Json,
    NamedTool,
    TextPart,
    ToolCallItem,
    ToolChoice,
    ToolOutputItem,
    UserMessage,
)

ChatMessage = Json


def system_message(instructions: str) -> list[ChatMessage]:
    return [{"role": "system", "content": instructions}] if instructions else []


def _user_content(message: UserMessage) -> str | list[Json]:
    parts = message.parts
    if not message.with_images and all(isinstance(part, TextPart) for part in parts):
        return "\n".join(part.text for part in parts if isinstance(part, TextPart))
    shown: list[Json] = []
    for part in parts:
        if isinstance(part, TextPart):
            shown.append({"type": "text", "text": part.text})
        else:
            image: Json = {"url": part.url}
            if part.detail is not None:
                image["detail"] = part.detail
            shown.append({"type": "image_url", "image_url": image})
    return shown


def chat_messages(items: Sequence[Item]) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    for item in items:
        match item:
            case UserMessage():
                messages.append({"role": "user", "content": _user_content(item)})
            case AssistantText(text=text):
                messages.append({"role": "assistant", "content": text})
            case ToolCallItem(call_id=call_id, name=name, arguments=arguments):
                shown = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
                last = messages[-1] if messages else None
                if last is not None and last["role"] == "assistant" and last.get("tool_calls"):
                    last["tool_calls"].append(shown)
                else:
                    messages.append({"role": "assistant", "content": None, "tool_calls": [shown]})
            case ToolOutputItem(call_id=call_id, text=text):
                messages.append({"role": "tool", "tool_call_id": call_id, "content": text})
    return messages


def chat_tool_choice(choice: ToolChoice) -> str | Json | None:
    if isinstance(choice, NamedTool):
        return {"type": "function", "function": {"name": choice.name}}
    return choice
