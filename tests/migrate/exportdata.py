"""Export folders built from the official API object shapes (shared/spec/openai-openapi.yaml: AssistantObject,
ThreadObject, MessageObject with every content part and annotation, RunObject, RunStepObject with the
three tools' calls), with ids like OpenAI's (random, so they do not sort by time), laid out as the
`assistants-api-export` tool writes them: manifest.json, assistants.json, threads/<id>.json.
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path
from typing import Any

Json = dict[str, Any]
_ALPHABET = string.ascii_letters + string.digits
T0 = 1_730_000_000  # 2024-10-27: objects were made on OpenAI long before the import


class Ids:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def __call__(self, prefix: str) -> str:
        return prefix + "".join(self.rng.choice(_ALPHABET) for _ in range(24))


def usage(prompt: int, completion: int, cached: int = 0) -> Json:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def assistant(new: Ids, at: int, **over: Any) -> Json:
    obj: Json = {
        "id": new("asst_"),
        "object": "assistant",
        "created_at": at,
        "name": "Støttebot 🤖",
        "description": "Answers questions about the handbook",
        "model": "gpt-4o",
        "instructions": "Be brief. Réponds en français si on te parle français.",
        "tools": [
            {"type": "code_interpreter"},
            {"type": "file_search", "file_search": {"max_num_results": 20}},
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather in a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                    "strict": False,
                },
            },
        ],
        "tool_resources": {
            "code_interpreter": {"file_ids": []},
            "file_search": {"vector_store_ids": []},
        },
        "metadata": {"team": "support", "ünïcode": "✓"},
        "temperature": 0.7,
        "top_p": 1.0,
        "response_format": "auto",
    }
    obj.update(over)
    return obj


def message(new: Ids, thread_id: str, at: int, role: str, content: list[Json], **over: Any) -> Json:
    obj: Json = {
        "id": new("msg_"),
        "object": "thread.message",
        "created_at": at,
        "assistant_id": None,
        "thread_id": thread_id,
        "run_id": None,
        "role": role,
        "content": content,
        "attachments": [],
        "metadata": {},
        "status": "completed",
        "incomplete_details": None,
        "completed_at": None,
        "incomplete_at": None,
    }
    obj.update(over)
    return obj


def text(value: str, annotations: list[Json] | None = None) -> Json:
    return {"type": "text", "text": {"value": value, "annotations": annotations or []}}


def run(new: Ids, thread_id: str, assistant_id: str, at: int, status: str, **over: Any) -> Json:
    obj: Json = {
        "id": new("run_"),
        "object": "thread.run",
        "created_at": at,
        "assistant_id": assistant_id,
        "thread_id": thread_id,
        "status": status,
        "started_at": at + 1,
        "expires_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": at + 5 if status == "completed" else None,
        "required_action": None,
        "last_error": None,
        "model": "gpt-4o",
        "instructions": "Be brief.",
        "tools": [{"type": "code_interpreter"}],
        "metadata": {},
        "incomplete_details": None,
        "usage": usage(120, 30, 64),
        "temperature": 1.0,
        "top_p": 1.0,
        "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "response_format": "auto",
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "steps": [],
    }
    obj.update(over)
    return obj


def step(new: Ids, r: Json, at: int, details: Json, **over: Any) -> Json:
    obj: Json = {
        "id": new("step_"),
        "object": "thread.run.step",
        "created_at": at,
        "run_id": r["id"],
        "assistant_id": r["assistant_id"],
        "thread_id": r["thread_id"],
        "type": details["type"],
        "status": "completed",
        "cancelled_at": None,
        "completed_at": at + 1,
        "expired_at": None,
        "failed_at": None,
        "last_error": None,
        "step_details": details,
        "usage": usage(50, 10),
        "metadata": {},
    }
    obj.update(over)
    return obj


def file_object(file_id: str, filename: str, size: int, at: int) -> Json:
    return {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": at,
        "expires_at": None,
        "filename": filename,
        "purpose": "assistants",
        "status": "processed",
        "status_details": None,
    }


def rich_thread(new: Ids, asst: Json, at: int) -> Json:
    """One thread with every message content type and annotation, and runs whose steps use all three tools."""
    thread_id = new("thread_")
    thread = {
        "id": thread_id,
        "object": "thread",
        "created_at": at,
        "tool_resources": {"code_interpreter": {"file_ids": []}},
        "metadata": {"customer": "c-42", "名前": "テスト"},
    }
    doc, chart, photo = new("file-"), new("file-"), new("file-")
    messages: list[Json] = []
    runs: list[Json] = []
    # Thread creation with two messages: the same second, and the order must hold.
    messages.append(
        message(
            new,
            thread_id,
            at,
            "user",
            [text("Bonjour ! Quelle est la politique de congés ? 🌴")],
            attachments=[{"file_id": doc, "tools": [{"type": "file_search"}]}],
            metadata={"source": "web"},
        )
    )
    messages.append(
        message(
            new,
            thread_id,
            at,
            "user",
            [
                {"type": "image_file", "image_file": {"file_id": photo, "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "auto"}},
                text("Et voici deux images."),
            ],
        )
    )
    r1 = run(new, thread_id, asst["id"], at + 10, "completed", tools=asst["tools"])
    answer = message(
        new,
        thread_id,
        at + 14,
        "assistant",
        [
            text(
                "Vous avez 25 jours【4:0†handbook.pdf】. Le graphique : sandbox:/mnt/data/chart.png",
                [
                    {
                        "type": "file_citation",
                        "text": "【4:0†handbook.pdf】",
                        "file_citation": {"file_id": doc},
                        "start_index": 17,
                        "end_index": 35,
                    },
                    {
                        "type": "file_path",
                        "text": "sandbox:/mnt/data/chart.png",
                        "file_path": {"file_id": chart},
                        "start_index": 52,
                        "end_index": 79,
                    },
                ],
            ),
            {"type": "image_file", "image_file": {"file_id": chart}},
        ],
        assistant_id=asst["id"],
        run_id=r1["id"],
    )
    messages.append(answer)
    r1["steps"] = [
        step(
            new,
            r1,
            at + 11,
            {
                "type": "tool_calls",
                "tool_calls": [
                    {
                        "id": new("call_"),
                        "type": "file_search",
                        "file_search": {
                            "ranking_options": {"ranker": "default_2024_08_21", "score_threshold": 0.0},
                            "results": [
                                {
                                    "file_id": doc,
                                    "file_name": "handbook.pdf",
                                    "score": 0.87,
                                    "content": [{"type": "text", "text": "Employees get 25 days."}],
                                }
                            ],
                        },
                    }
                ],
            },
        ),
        step(
            new,
            r1,
            at + 12,
            {
                "type": "tool_calls",
                "tool_calls": [
                    {
                        "id": new("call_"),
                        "type": "code_interpreter",
                        "code_interpreter": {
                            "input": "import matplotlib.pyplot as plt\nplt.bar(['a'], [25]); plt.savefig('chart.png')",
                            "outputs": [
                                {"type": "logs", "logs": "saved chart.png ✓\n"},
                                {"type": "image", "image": {"file_id": chart}},
                            ],
                        },
                    },
                    {
                        "id": new("call_"),
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Tromsø"}', "output": "-3 °C"},
                    },
                ],
            },
        ),
        step(
            new,
            r1,
            at + 13,
            {"type": "message_creation", "message_creation": {"message_id": answer["id"]}},
        ),
    ]
    runs.append(r1)
    # A run that failed, one cut short, one cancelled: history keeps each as it ended.
    runs.append(
        run(
            new,
            thread_id,
            asst["id"],
            at + 20,
            "failed",
            failed_at=at + 21,
            last_error={"code": "server_error", "message": "Sorry, something went wrong."},
            usage=usage(10, 0),
        )
    )
    runs.append(
        run(
            new,
            thread_id,
            asst["id"],
            at + 30,
            "incomplete",
            incomplete_details={"reason": "max_completion_tokens"},
            max_completion_tokens=16,
            truncation_strategy={"type": "last_messages", "last_messages": 4},
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            response_format={"type": "json_object"},
            metadata={"attempt": "2"},
        )
    )
    messages.append(
        message(
            new,
            thread_id,
            at + 31,
            "assistant",
            [text("Je ne peux pas")],
            assistant_id=asst["id"],
            run_id=runs[-1]["id"],
            status="incomplete",
            incomplete_details={"reason": "max_tokens"},
            incomplete_at=at + 32,
        )
    )
    messages.append(
        message(
            new,
            thread_id,
            at + 40,
            "assistant",
            [{"type": "refusal", "refusal": "I can't help with that."}],
            assistant_id=asst["id"],
        )
    )
    runs.append(run(new, thread_id, asst["id"], at + 50, "cancelled", cancelled_at=at + 51, usage=usage(0, 0)))
    files = {
        doc: file_object(doc, "handbook.pdf", 1234, at - 100),
        chart: file_object(chart, "chart.png", 2345, at + 12),
        photo: file_object(photo, "photo.jpg", 3456, at - 50),
    }
    return {
        "export_schema": "assistants-thread-export/v1",
        "thread_id": thread_id,
        "exported_at": "2026-08-20T10:00:00+00:00",
        "thread": thread,
        "messages": messages,
        "runs": runs,
        "files": files,
        "errors": [],
    }


def plain_thread(new: Ids, asst: Json, at: int, n_messages: int, *, with_run: bool = True) -> Json:
    """A thread of `n_messages` alternating user and assistant messages, several per second."""
    thread_id = new("thread_")
    thread = {
        "id": thread_id,
        "object": "thread",
        "created_at": at,
        "tool_resources": {},
        "metadata": {"n": str(n_messages)},
    }
    messages = []
    runs = []
    for i in range(n_messages):
        role = "user" if i % 2 == 0 else "assistant"
        messages.append(
            message(
                new,
                thread_id,
                at + i // 3,
                role,
                [text(f"message {i} — ünïcødé ✓")],
                assistant_id=asst["id"] if role == "assistant" else None,
            )
        )
    if with_run and n_messages:
        r = run(new, thread_id, asst["id"], at + n_messages, "completed")
        r["steps"] = [
            step(
                new,
                r,
                at + n_messages,
                {"type": "message_creation", "message_creation": {"message_id": messages[-1]["id"]}},
            )
        ]
        runs.append(r)
    return {
        "export_schema": "assistants-thread-export/v1",
        "thread_id": thread_id,
        "exported_at": "2026-08-20T10:00:00+00:00",
        "thread": thread,
        "messages": messages,
        "runs": runs,
        "files": {},
        "errors": [],
    }


def write_export(out: Path, assistants: list[Json], threads: list[Json], failed: list[Json] | None = None) -> Path:
    (out / "threads").mkdir(parents=True, exist_ok=True)
    (out / "assistants.json").write_text(json.dumps(assistants, ensure_ascii=False, indent=2))
    for record in threads:
        (out / "threads" / f"{record['thread_id']}.json").write_text(json.dumps(record, ensure_ascii=False, indent=2))
    manifest = {
        "export_schema": "assistants-export-manifest/v1",
        "script_version": "1.0.0",
        "exported_at": "2026-08-20T10:00:00+00:00",
        "endpoint": "openai",
        "base_url": "https://api.openai.com/v1",
        "assistants_count": len(assistants),
        "threads_requested": len(threads) + len(failed or []),
        "threads_exported": len(threads),
        "threads_failed": failed or [],
        "notes": [],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out
