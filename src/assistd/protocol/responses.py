"""Responses (OpenAI's Responses API): the request clients send, the response object, and the stream
events (docs/responses.md). Input items are the Conversations API's (protocol/conversations.py); the
output items are the conversation items a response's run gave (adapters/responses.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Tag

from assistd.protocol.common import Metadata, RequestModel, WireModel, type_tag, union_tag
from assistd.protocol.conversations import ConversationItem, ItemIn
from assistd.protocol.messages import MAX_TEXT
from assistd.protocol.vector_stores import ComparisonFilter, CompoundFilter

FUNCTION_NAME = r"^[a-zA-Z0-9_-]{1,64}$"
MAX_INPUT_ITEMS = 2048

# --- requests -------------------------------------------------------------------------------------


class FunctionToolIn(RequestModel):
    type: Literal["function"]
    name: str = Field(pattern=FUNCTION_NAME)
    description: str | None = Field(default=None, max_length=8192)
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


def _filter_tag(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if not isinstance(kind, str):
        return None
    return "~compound" if kind in ("and", "or") else "~comparison"


FileFilter = Annotated[
    Annotated[ComparisonFilter, Tag("~comparison")] | Annotated[CompoundFilter, Tag("~compound")],
    union_tag(_filter_tag, "Invalid '{param}': expected a comparison filter or a compound filter (and, or)."),
]


class FileSearchToolIn(RequestModel):
    type: Literal["file_search"]
    vector_store_ids: list[str] = Field(min_length=1, max_length=2)
    max_num_results: int | None = Field(default=None, ge=1, le=50)
    filters: FileFilter | None = None  # on the files' attributes, as the vector store search endpoint
    ranking_options: dict[str, Any] | None = None


class AutoContainer(RequestModel):
    type: Literal["auto"]
    file_ids: list[str] = Field(default_factory=list, max_length=50)
    memory_limit: str | None = None  # accepted; the sandbox's own memory limit applies (docs/containers.md)
    network_policy: dict[str, Any] | None = None


class CodeInterpreterToolIn(RequestModel):
    """code_interpreter in a container: "auto" (a new one, or the chain's running one) or a container id."""

    type: Literal["code_interpreter"]
    container: str | AutoContainer


ToolIn = Annotated[
    Annotated[FunctionToolIn, Tag("~function")]
    | Annotated[FileSearchToolIn, Tag("~file_search")]
    | Annotated[CodeInterpreterToolIn, Tag("~code_interpreter")],
    union_tag(
        type_tag,
        "Invalid '{param}': expected a tool of type 'function', 'file_search' or 'code_interpreter' "
        "(assistd serves no other hosted tools, docs/responses.md).",
    ),
]


class FunctionChoice(RequestModel):
    type: Literal["function"]
    name: str = Field(pattern=FUNCTION_NAME)


class HostedChoice(RequestModel):
    type: Literal["file_search", "code_interpreter"]


ToolChoiceIn = (
    Literal["none", "auto", "required"] | Annotated[FunctionChoice | HostedChoice, Field(discriminator="type")]
)


class FormatText(RequestModel):
    type: Literal["text"]


class FormatJsonObject(RequestModel):
    type: Literal["json_object"]


class FormatJsonSchema(RequestModel):
    type: Literal["json_schema"]
    name: str = Field(pattern=FUNCTION_NAME)
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(RequestModel):
    format: Annotated[FormatText | FormatJsonObject | FormatJsonSchema, Field(discriminator="type")] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ConversationRef(RequestModel):
    id: str = Field(min_length=1, max_length=64)


class PromptRef(RequestModel):
    """`prompt`: on assistd, an assistant (`asst_…`) whose settings the response takes (docs/responses.md)."""

    id: str = Field(min_length=1, max_length=64)
    version: str | None = Field(default=None, max_length=64)
    variables: dict[str, str] | None = None


class ResponseCreate(RequestModel):
    model: str | None = Field(default=None, min_length=1, max_length=256)
    input: str | list[ItemIn] | None = Field(default=None)
    instructions: str | None = Field(default=None, max_length=256_000)
    tools: list[ToolIn] | None = Field(default=None, max_length=128)
    tool_choice: ToolChoiceIn | None = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_output_tokens: int | None = Field(default=None, ge=16)
    metadata: Metadata | None = None
    store: bool | None = None
    previous_response_id: str | None = Field(default=None, min_length=1, max_length=64)
    conversation: str | ConversationRef | None = None
    text: TextConfig | None = None
    truncation: Literal["auto", "disabled"] | None = None
    background: bool | None = None
    stream: bool | None = None
    include: list[str] | None = None
    prompt: PromptRef | None = None
    # Accepted and without effect here (docs/responses.md).
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    service_tier: str | None = None
    reasoning: dict[str, Any] | None = None
    stream_options: dict[str, Any] | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    max_tool_calls: int | None = Field(default=None, ge=1)


class InputItemListParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    limit: int = Field(default=20, ge=1, le=100)
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None


# --- objects --------------------------------------------------------------------------------------

ResponseStatus = Literal["completed", "failed", "in_progress", "cancelled", "queued", "incomplete"]


class ResponseError(WireModel):
    code: str
    message: str


class IncompleteDetails(WireModel):
    reason: Literal["max_output_tokens", "content_filter"]


class ConversationId(WireModel):
    id: str


class InputTokensDetails(WireModel):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(WireModel):
    reasoning_tokens: int = 0


class ResponseUsage(WireModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class Response(WireModel):
    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: ResponseStatus
    background: bool
    completed_at: int | None
    conversation: ConversationId | None
    error: ResponseError | None
    incomplete_details: IncompleteDetails | None
    instructions: str | None
    max_output_tokens: int | None
    max_tool_calls: int | None
    metadata: dict[str, str]
    model: str
    output: list[ConversationItem]
    parallel_tool_calls: bool
    previous_response_id: str | None
    reasoning: dict[str, Any]
    service_tier: str
    store: bool
    temperature: float
    text: dict[str, Any]
    tool_choice: str | dict[str, Any]
    tools: list[dict[str, Any]]
    top_logprobs: int
    top_p: float
    truncation: Literal["auto", "disabled"]
    usage: ResponseUsage


class ResponseDeleted(WireModel):
    id: str
    object: Literal["response.deleted"] = "response.deleted"
    deleted: bool = True


class InputItemList(WireModel):
    object: Literal["list"] = "list"
    data: list[ConversationItem]
    first_id: str | None
    last_id: str | None
    has_more: bool


# --- stream events (each with its sequence_number) ----------------------------------------------


class ResponseEvent(WireModel):
    type: Literal[
        "response.created",
        "response.queued",
        "response.in_progress",
        "response.completed",
        "response.failed",
        "response.incomplete",
    ]
    response: Response
    sequence_number: int


class OutputItemEvent(WireModel):
    type: Literal["response.output_item.added", "response.output_item.done"]
    output_index: int
    item: ConversationItem
    sequence_number: int


class ContentPartEvent(WireModel):
    type: Literal["response.content_part.added", "response.content_part.done"]
    item_id: str
    output_index: int
    content_index: int
    part: dict[str, Any]
    sequence_number: int


class TextDeltaEvent(WireModel):
    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[dict[str, Any]] = Field(default_factory=list)
    sequence_number: int


class TextDoneEvent(WireModel):
    type: Literal["response.output_text.done"] = "response.output_text.done"
    item_id: str
    output_index: int
    content_index: int
    text: str = Field(max_length=MAX_TEXT * 10)
    logprobs: list[dict[str, Any]] = Field(default_factory=list)
    sequence_number: int


class AnnotationAddedEvent(WireModel):
    type: Literal["response.output_text.annotation.added"] = "response.output_text.annotation.added"
    item_id: str
    output_index: int
    content_index: int
    annotation_index: int
    annotation: dict[str, Any]
    sequence_number: int


class ArgumentsDeltaEvent(WireModel):
    type: Literal["response.function_call_arguments.delta"] = "response.function_call_arguments.delta"
    item_id: str
    output_index: int
    delta: str
    sequence_number: int


class ArgumentsDoneEvent(WireModel):
    type: Literal["response.function_call_arguments.done"] = "response.function_call_arguments.done"
    item_id: str
    output_index: int
    name: str
    arguments: str
    sequence_number: int


class FileSearchCallEvent(WireModel):
    type: Literal[
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
    ]
    item_id: str
    output_index: int
    sequence_number: int


class CodeInterpreterCallEvent(WireModel):
    type: Literal[
        "response.code_interpreter_call.in_progress",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed",
    ]
    item_id: str
    output_index: int
    sequence_number: int


class CodeDeltaEvent(WireModel):
    type: Literal["response.code_interpreter_call_code.delta"] = "response.code_interpreter_call_code.delta"
    item_id: str
    output_index: int
    delta: str
    sequence_number: int


class CodeDoneEvent(WireModel):
    type: Literal["response.code_interpreter_call_code.done"] = "response.code_interpreter_call_code.done"
    item_id: str
    output_index: int
    code: str
    sequence_number: int


class ErrorEvent(WireModel):
    type: Literal["error"] = "error"
    code: str | None
    message: str
    param: str | None
    sequence_number: int


StreamEvent = (
    ResponseEvent
    | OutputItemEvent
    | ContentPartEvent
    | TextDeltaEvent
    | TextDoneEvent
    | AnnotationAddedEvent
    | ArgumentsDeltaEvent
    | ArgumentsDoneEvent
    | FileSearchCallEvent
    | CodeInterpreterCallEvent
    | CodeDeltaEvent
    | CodeDoneEvent
    | ErrorEvent
)
END_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete", "error"})
