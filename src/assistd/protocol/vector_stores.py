"""Vector stores, their files and file batches (spec §3.6, §4.6)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from assistd.protocol.common import Metadata, RequestModel, WireModel, string_map_schema
from assistd.protocol.tools import ChunkingAuto, ChunkingStatic, ChunkingStrategy

DEFAULT_CHUNK_TOKENS = 800
DEFAULT_OVERLAP_TOKENS = 400
ATTRIBUTES_MAX_KEYS = 16
ATTRIBUTES_KEY_MAX = 64
ATTRIBUTES_STRING_MAX = 512


class ExpiresAfter(RequestModel):
    anchor: Literal["last_active_at"]
    days: int = Field(ge=1, le=365)


def _check_attributes(value: dict[str, str | float | bool]) -> dict[str, str | float | bool]:
    if len(value) > ATTRIBUTES_MAX_KEYS:
        raise PydanticCustomError(
            "assistd_object_above_max_properties",
            f"Invalid '{{param}}': too many properties. Expected an object with at most {ATTRIBUTES_MAX_KEYS} "
            f"properties, but got an object with {len(value)} properties instead.",
        )
    for key, item in value.items():
        if len(key) > ATTRIBUTES_KEY_MAX or (isinstance(item, str) and len(item) > ATTRIBUTES_STRING_MAX):
            raise PydanticCustomError(
                "assistd_string_above_max_length",
                f"Invalid '{{param}}': keys are at most {ATTRIBUTES_KEY_MAX} characters and string values at most "
                f"{ATTRIBUTES_STRING_MAX}.",
            )
    return value


Attributes = Annotated[
    dict[str, str | float | bool],
    AfterValidator(_check_attributes),
    string_map_schema(
        ATTRIBUTES_MAX_KEYS,
        ATTRIBUTES_KEY_MAX,
        {"anyOf": [{"type": "string", "maxLength": ATTRIBUTES_STRING_MAX}, {"type": "number"}, {"type": "boolean"}]},
    ),
]


def static_chunking(strategy: ChunkingAuto | ChunkingStatic | None) -> dict[str, Any]:
    """The echoed (response) form: `auto` is static 800/400; overlap at most half the chunk."""
    if isinstance(strategy, ChunkingStatic):
        size, overlap = strategy.static.max_chunk_size_tokens, strategy.static.chunk_overlap_tokens
        if overlap > size // 2:
            raise PydanticCustomError(
                "assistd_invalid_value",
                "Invalid '{param}': chunk_overlap_tokens must not exceed half of max_chunk_size_tokens.",
            )
    else:
        size, overlap = DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP_TOKENS
    return {"type": "static", "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap}}


def _checked_chunking(value: ChunkingAuto | ChunkingStatic) -> ChunkingAuto | ChunkingStatic:
    static_chunking(value)
    return value


CheckedChunking = Annotated[ChunkingStrategy, AfterValidator(_checked_chunking)]


class VectorStoreCreate(RequestModel):
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    file_ids: list[str] | None = Field(default=None, max_length=500)
    expires_after: ExpiresAfter | None = None
    chunking_strategy: CheckedChunking | None = None
    metadata: Metadata | None = None


class VectorStoreUpdate(RequestModel):
    name: str | None = Field(default=None, max_length=256)
    expires_after: ExpiresAfter | None = None
    metadata: Metadata | None = None


class VectorStoreFileCreate(RequestModel):
    file_id: str = Field(min_length=1, max_length=64)
    chunking_strategy: CheckedChunking | None = None
    attributes: Attributes | None = None


class VectorStoreFileUpdate(RequestModel):
    attributes: Attributes | None


class FileBatchCreate(RequestModel):
    file_ids: list[str] | None = Field(default=None, min_length=1, max_length=2000)
    files: list[VectorStoreFileCreate] | None = Field(default=None, min_length=1, max_length=2000)
    chunking_strategy: CheckedChunking | None = None
    attributes: Attributes | None = None

    @model_validator(mode="after")
    def _one_of(self) -> FileBatchCreate:
        if (self.file_ids is None) == (self.files is None):
            raise PydanticCustomError(
                "assistd_invalid_value", "Invalid request: give exactly one of 'file_ids' and 'files'."
            )
        return self


class FileCounts(WireModel):
    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    total: int = 0


class VectorStore(WireModel):
    id: str
    object: Literal["vector_store"] = "vector_store"
    created_at: int
    name: str
    usage_bytes: int
    file_counts: FileCounts
    status: Literal["expired", "in_progress", "completed"]
    # The spec types expires_after as an object, not nullable: omitted when the store has none.
    expires_after: dict[str, Any] | None = Field(exclude_if=lambda value: value is None)
    expires_at: int | None
    last_active_at: int | None
    metadata: dict[str, str]


class VectorStoreFile(WireModel):
    id: str
    object: Literal["vector_store.file"] = "vector_store.file"
    usage_bytes: int
    created_at: int
    vector_store_id: str
    status: Literal["in_progress", "completed", "cancelled", "failed"]
    last_error: dict[str, str] | None
    chunking_strategy: dict[str, Any]
    attributes: dict[str, str | float | bool]


class FileBatch(WireModel):
    id: str
    object: Literal["vector_store.files_batch"] = "vector_store.files_batch"
    created_at: int
    vector_store_id: str
    status: Literal["in_progress", "completed", "cancelled", "failed"]
    file_counts: FileCounts


# --- search (POST /vector_stores/{id}/search) ----------------------------------------------------

FilterValue = str | float | bool


class ComparisonFilter(RequestModel):
    key: str = Field(min_length=1, max_length=64)
    type: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"]
    value: FilterValue | list[str | float]

    @model_validator(mode="after")
    def _value_fits_type(self) -> ComparisonFilter:
        if (self.type in ("in", "nin")) != isinstance(self.value, list):
            raise PydanticCustomError(
                "assistd_invalid_value",
                "Invalid '{param}': 'in' and 'nin' take a list of strings or numbers; other comparisons take "
                "a string, number or boolean.",
            )
        return self


class CompoundFilter(RequestModel):
    type: Literal["and", "or"]
    filters: list[ComparisonFilter | CompoundFilter] = Field(min_length=1)


class RankingOptions(RequestModel):
    ranker: Literal["none", "auto", "default-2024-11-15"] = "auto"
    score_threshold: float = Field(default=0.0, ge=0.0, le=1.0)


class VectorStoreSearch(RequestModel):
    query: str | list[str] = Field(min_length=1)
    max_num_results: int = Field(default=10, ge=1, le=50)
    rewrite_query: bool = False
    filters: ComparisonFilter | CompoundFilter | None = None
    ranking_options: RankingOptions | None = None

    @property
    def queries(self) -> list[str]:
        return [self.query] if isinstance(self.query, str) else list(self.query)


class SearchContent(WireModel):
    type: Literal["text"] = "text"
    text: str


class SearchResult(WireModel):
    file_id: str
    filename: str
    score: float
    attributes: dict[str, str | float | bool] | None
    content: list[SearchContent]


class SearchResultsPage(WireModel):
    object: Literal["vector_store.search_results.page"] = "vector_store.search_results.page"
    search_query: list[str]
    data: list[SearchResult]
    has_more: bool = False
    next_page: str | None = None


class FileContentPart(WireModel):
    type: Literal["text"] = "text"
    text: str


class FileContentPage(WireModel):
    object: Literal["vector_store.file_content.page"] = "vector_store.file_content.page"
    data: list[FileContentPart]
    has_more: bool = False
    next_page: str | None = None
