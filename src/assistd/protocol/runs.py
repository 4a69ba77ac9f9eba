"""Run and run-step requests and objects (spec §3.4, §4.4, §4.5)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, Tag

from assistd.protocol.common import Metadata, RequestModel, WireModel, type_tag, union_tag
from assistd.protocol.messages import MessageCreate
from assistd.protocol.threads import ThreadCreate
from assistd.protocol.tools import CompactModel, ResponseFormat, Tool, ToolResources

RunStatus = Literal[
    "queued",
    "in_progress",
    "requires_action",
    "cancelling",
    "cancelled",
    "failed",
    "completed",
    "incomplete",
    "expired",
]
FILE_SEARCH_CONTENT_INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"


class TruncationStrategy(CompactModel):
    type: Literal["auto", "last_messages"]
    last_messages: int | None = Field(default=None, ge=1)


class FunctionName(CompactModel):
    name: str = Field(min_length=1, max_length=64)


class NamedFunctionChoice(CompactModel):
    type: Literal["function"]
    function: FunctionName


class FileSearchChoice(CompactModel):
    type: Literal["file_search"]


class CodeInterpreterChoice(CompactModel):
    type: Literal["code_interpreter"]


def _tool_choice_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "~mode"
    return type_tag(value)


ToolChoice = Annotated[
    Annotated[Literal["none", "auto", "required"], Tag("~mode")]
    | Annotated[NamedFunctionChoice, Tag("~function")]
    | Annotated[FileSearchChoice, Tag("~file_search")]
    | Annotated[CodeInterpreterChoice, Tag("~code_interpreter")],
    union_tag(
        _tool_choice_tag,
        "Invalid '{param}': expected 'none', 'auto', 'required' or an object naming a tool.",
    ),
]

# The columns are 64-bit: a larger budget is not a budget anyone can use up.
MAX_TOKENS_LIMIT = 2**63 - 1
MaxTokens = Annotated[int, Field(ge=256, le=MAX_TOKENS_LIMIT)]


class RunOptions(RequestModel):
    """Overrides shared by create-run and create-thread-and-run."""

    assistant_id: str = Field(min_length=1, max_length=64)
    model: str | None = Field(default=None, min_length=1, max_length=256)
    instructions: str | None = Field(default=None, max_length=256_000)
    tools: list[Tool] | None = Field(default=None, max_length=20)
    metadata: Metadata | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stream: bool | None = None
    max_prompt_tokens: MaxTokens | None = None
    max_completion_tokens: MaxTokens | None = None
    truncation_strategy: TruncationStrategy | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None


class RunCreate(RunOptions):
    additional_instructions: str | None = Field(default=None, max_length=256_000)
    additional_messages: list[MessageCreate] | None = Field(default=None, max_length=1000)
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None


class ThreadAndRunCreate(RunOptions):
    thread: ThreadCreate | None = None
    tool_resources: ToolResources | None = None


class RunUpdate(RequestModel):
    metadata: Metadata | None = None


class ToolOutput(RequestModel):
    tool_call_id: str | None = Field(default=None, max_length=64)
    output: str | None = Field(default=None, max_length=512 * 1024)


class SubmitToolOutputs(RequestModel):
    tool_outputs: list[ToolOutput] = Field(max_length=128)
    stream: bool | None = None


class PromptTokensDetails(WireModel):
    cached_tokens: int


class CompletionTokensDetails(WireModel):
    reasoning_tokens: int


class RunUsage(WireModel):
    """A run's or a step's token usage, with the breakdowns OpenAI's chat usage carries."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails
    completion_tokens_details: CompletionTokensDetails


class Run(WireModel):
    id: str
    object: Literal["thread.run"] = "thread.run"
    created_at: int
    thread_id: str
    assistant_id: str
    status: RunStatus
    required_action: dict[str, Any] | None
    last_error: dict[str, Any] | None
    expires_at: int | None
    started_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    incomplete_details: dict[str, Any] | None
    model: str
    instructions: str
    tools: list[dict[str, Any]]
    metadata: dict[str, str]
    usage: RunUsage | None
    temperature: float | None
    top_p: float | None
    max_prompt_tokens: int | None
    max_completion_tokens: int | None
    truncation_strategy: dict[str, Any]
    tool_choice: Any
    parallel_tool_calls: bool
    response_format: Any


class RunStep(WireModel):
    id: str
    object: Literal["thread.run.step"] = "thread.run.step"
    created_at: int
    assistant_id: str
    thread_id: str
    run_id: str
    type: Literal["message_creation", "tool_calls"]
    status: Literal["in_progress", "cancelled", "failed", "completed", "expired"]
    step_details: dict[str, Any]
    last_error: dict[str, Any] | None
    expires_at: int | None
    expired_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    metadata: dict[str, str]
    usage: RunUsage | None
