"""Tool definitions and tool resources, shared by assistants, threads and runs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Tag, WithJsonSchema, model_serializer
from pydantic_core import PydanticCustomError

from assistd.protocol.common import Metadata, RequestModel, type_tag, union_tag

# Built-in tools are offered to models as functions with these names (DESIGN.md "Providers").
RESERVED_FUNCTION_NAMES = frozenset({"file_search", "code_interpreter"})


class CompactModel(BaseModel):
    """Optional sub-objects that OpenAI omits when unset."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_serializer(mode="wrap")
    def _drop_none(self, handler: Any) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}


class RankingOptions(CompactModel):
    ranker: Literal["auto", "default_2024_08_21"] = "default_2024_08_21"
    score_threshold: float = Field(ge=0, le=1)


class FileSearchSettings(CompactModel):
    max_num_results: int | None = Field(default=None, ge=1, le=50)
    ranking_options: RankingOptions | None = None


class CodeInterpreterTool(CompactModel):
    type: Literal["code_interpreter"]


class FileSearchTool(CompactModel):
    type: Literal["file_search"]
    file_search: FileSearchSettings | None = None


def _not_reserved(name: str) -> str:
    if name in RESERVED_FUNCTION_NAMES:
        raise PydanticCustomError(
            "assistd_invalid_value",
            f"Invalid '{{param}}': '{name}' is reserved for the built-in tool of that name; "
            "use the tool type instead of a function.",
        )
    return name


class FunctionDefinition(CompactModel):
    name: Annotated[
        str,
        Field(
            pattern=r"^[a-zA-Z0-9_-]{1,64}$",
            json_schema_extra={"not": {"enum": sorted(RESERVED_FUNCTION_NAMES)}},
        ),
        AfterValidator(_not_reserved),
    ]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionTool(CompactModel):
    type: Literal["function"]
    function: FunctionDefinition


Tool = Annotated[
    Annotated[CodeInterpreterTool, Tag("~code_interpreter")]
    | Annotated[FileSearchTool, Tag("~file_search")]
    | Annotated[FunctionTool, Tag("~function")],
    union_tag(
        type_tag,
        "Invalid '{param}': expected a tool of type 'code_interpreter', 'file_search' or 'function'.",
    ),
]


def normalize_tool(tool: CodeInterpreterTool | FileSearchTool | FunctionTool) -> dict[str, Any]:
    """The stored and echoed form: OpenAI fills in file_search ranking and function `strict`."""
    if isinstance(tool, FileSearchTool):
        settings = tool.file_search or FileSearchSettings()
        ranking = settings.ranking_options or RankingOptions(score_threshold=0.0)
        body: dict[str, Any] = {"ranking_options": ranking.model_dump()}
        if settings.max_num_results is not None:
            body["max_num_results"] = settings.max_num_results
        return {"type": "file_search", "file_search": body}
    if isinstance(tool, FunctionTool):
        fn = tool.function.model_dump()
        fn["strict"] = bool(tool.function.strict)
        return {"type": "function", "function": fn}
    return {"type": "code_interpreter"}


# --- tool resources -----------------------------------------------------------------------------


class StaticChunking(RequestModel):
    max_chunk_size_tokens: int = Field(ge=100, le=4096)
    chunk_overlap_tokens: int = Field(ge=0)


class ChunkingAuto(RequestModel):
    type: Literal["auto"]


class ChunkingStatic(RequestModel):
    type: Literal["static"]
    static: StaticChunking


ChunkingStrategy = Annotated[
    Annotated[ChunkingAuto, Tag("~auto")] | Annotated[ChunkingStatic, Tag("~static")],
    union_tag(type_tag, "Invalid '{param}': expected a chunking strategy of type 'auto' or 'static'."),
]


class VectorStoreHelper(RequestModel):
    file_ids: list[str] = Field(default_factory=list, max_length=10_000)
    chunking_strategy: ChunkingStrategy | None = None
    metadata: Metadata | None = None


CODE_INTERPRETER_MAX_FILES = 20
MAX_VECTOR_STORES = 1


class CodeInterpreterResources(RequestModel):
    file_ids: list[str] = Field(default_factory=list, max_length=CODE_INTERPRETER_MAX_FILES)


class FileSearchResources(RequestModel):
    vector_store_ids: list[str] | None = Field(default=None, max_length=MAX_VECTOR_STORES)
    vector_stores: list[VectorStoreHelper] | None = Field(default=None, max_length=MAX_VECTOR_STORES)


class ToolResources(RequestModel):
    code_interpreter: CodeInterpreterResources | None = None
    file_search: FileSearchResources | None = None


class ToolResourcesUpdate(RequestModel):
    """On modify the `vector_stores` helper is not accepted."""

    code_interpreter: CodeInterpreterResources | None = None
    file_search: (
        Annotated[
            FileSearchResources,
            AfterValidator(lambda v: _no_helper(v)),
            # The served OpenAPI must not offer the helper that is refused here.
            WithJsonSchema(
                {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "vector_store_ids": {
                            "anyOf": [
                                {"type": "array", "items": {"type": "string"}, "maxItems": MAX_VECTOR_STORES},
                                {"type": "null"},
                            ]
                        }
                    },
                }
            ),
        ]
        | None
    ) = None


def _no_helper(value: FileSearchResources) -> FileSearchResources:
    if value.vector_stores is not None:
        raise PydanticCustomError(
            "assistd_unknown_parameter",
            "Unknown parameter: '{param}.vector_stores'. Vector stores can only be created inline on "
            "create; attach an existing store with 'vector_store_ids'.",
        )
    return value


def normalize_tool_resources(resources: ToolResources | ToolResourcesUpdate | None) -> dict[str, Any]:
    """Stored and echoed form of tool resources: only the tools that were given."""
    if resources is None:
        return {}
    out: dict[str, Any] = {}
    if resources.code_interpreter is not None:
        out["code_interpreter"] = {"file_ids": list(resources.code_interpreter.file_ids)}
    if resources.file_search is not None:
        out["file_search"] = {"vector_store_ids": list(resources.file_search.vector_store_ids or [])}
    return out


def with_empty_resources(tools: list[dict[str, Any]], resources: dict[str, Any]) -> dict[str, Any]:
    """An assistant's tool resources as OpenAI shows them: a code_interpreter or file_search tool without
    files or stores still has its entry, with an empty list."""
    out = resources
    for tool, key in (("code_interpreter", "file_ids"), ("file_search", "vector_store_ids")):
        if tool not in out and any(t.get("type") == tool for t in tools):
            out = {**out, tool: {key: []}}
    return out


# --- response formats ---------------------------------------------------------------------------


class JsonSchemaSpec(CompactModel):
    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True, serialize_by_alias=True)


class ResponseFormatText(CompactModel):
    type: Literal["text"]


class ResponseFormatJsonObject(CompactModel):
    type: Literal["json_object"]


class ResponseFormatJsonSchema(CompactModel):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


def _response_format_tag(value: Any) -> str | None:
    if value == "auto":
        return "~auto"
    return type_tag(value)


ResponseFormat = Annotated[
    Annotated[Literal["auto"], Tag("~auto")]
    | Annotated[ResponseFormatText, Tag("~text")]
    | Annotated[ResponseFormatJsonObject, Tag("~json_object")]
    | Annotated[ResponseFormatJsonSchema, Tag("~json_schema")],
    union_tag(
        _response_format_tag,
        "Invalid '{param}': expected 'auto' or an object of type 'text', 'json_object' or 'json_schema'.",
    ),
]


def normalize_response_format(value: Any) -> Any:
    if value is None or value == "auto":
        return "auto"
    return value.model_dump(by_alias=True)
