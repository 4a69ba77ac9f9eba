"""The schema, as SQLAlchemy Core tables: one schema for SQLite and PostgreSQL.

Rows are not wire objects: services turn rows into protocol models. Ids sort by creation time
(see ids.py), so every list pages on `id` alone; on PostgreSQL the id columns use the "C"
collation so that the order is byte order, as on SQLite.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeEngine

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def id_type() -> TypeEngine[str]:
    return String(64).with_variant(String(64, collation="C"), "postgresql")


def json_type() -> TypeEngine[object]:
    return JSON()


def sort_key_type() -> TypeEngine[str]:
    return String(128).with_variant(String(128, collation="C"), "postgresql")


def sort_key() -> Column[str]:
    """Where an object sorts in its lists when its id does not say it: NULL for objects made here (their
    ids sort by creation time, ids.py), set for imported objects whose ids came from elsewhere. Lists
    order by `coalesce(sort_key, id)` (stores/common.py `order_key`), from an expression index per
    table that migration 0007 creates and this file does not model (db/migrate.py UNMODELLED_INDEXES)."""
    return Column("sort_key", sort_key_type(), nullable=True)


projects = Table(
    "projects",
    metadata,
    Column("id", id_type(), primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", id_type(), primary_key=True),
    Column("project_id", id_type(), ForeignKey("projects.id"), nullable=False),
    Column("key_hash", String(128), nullable=False, unique=True),
    Column("hint", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)

assistants = Table(
    "assistants",
    metadata,
    Column("id", id_type(), primary_key=True),
    Column("project_id", id_type(), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("name", Text, nullable=True),
    Column("description", Text, nullable=True),
    Column("model", Text, nullable=False),
    Column("instructions", Text, nullable=True),
    Column("tools", json_type(), nullable=False),
    Column("tool_resources", json_type(), nullable=False),
    Column("metadata", json_type(), nullable=False),
    Column("temperature", Float, nullable=True),
    Column("top_p", Float, nullable=True),
    Column("response_format", json_type(), nullable=True),
    Column("reasoning_effort", String(16), nullable=True),
    sort_key(),
    Index(None, "project_id", "id"),
)

threads = Table(
    "threads",
    metadata,
    Column("id", id_type(), primary_key=True),
    Column("project_id", id_type(), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("tool_resources", json_type(), nullable=False),
    Column("metadata", json_type(), nullable=False),
    sort_key(),
    Index(None, "project_id", "id"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", id_type(), primary_key=True),
    Column("thread_id", id_type(), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("role", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("content", json_type(), nullable=False),
    Column("attachments", json_type(), nullable=True),
    Column("metadata", json_type(), nullable=False),
    Column("incomplete_details", json_type(), nullable=True),
    Column("completed_at", BigInteger, nullable=True),
    Column("incomplete_at", BigInteger, nullable=True),
    Column("assistant_id", id_type(), nullable=True),
    Column("run_id", id_type(), nullable=True),
    sort_key(),
    # The message's tokens in a prompt, as the counter `token_counter` (providers/base.py `TokenCounter.key`)
    # counted them; NULL until counted, cleared when the content changes (stores/messages.py).
    Column("token_count", Integer, nullable=True),
    Column("token_counter", String(64), nullable=True),
    Index(None, "thread_id", "id"),
    Index(None, "thread_id", "run_id"),
)

# Conversation items with no Assistants equivalent (function calls and outputs given by a client, system
# and developer messages, ...): the rest of a conversation is its thread's messages and run steps.
# `sort_key` is the time-ordered part of the id (ids.py), shared with messages and steps for one order.
conversation_items = Table(
    "conversation_items",
    metadata,
    Column("id", id_type(), primary_key=True),
    Column("thread_id", id_type(), nullable=False),
    Column("sort_key", id_type(), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("type", String(32), nullable=False),
    Column("item", json_type(), nullable=False),
    Index(None, "thread_id", "sort_key"),
)

# A response (the Responses API, docs/responses.md) is a run (`runs.id` = `responses.id`, a `resp_` id) in
# the thread of its conversation, or in a thread of its own; this row keeps what a run has no column for.
responses = Table(
    "responses",
    metadata,
    Column("id", id_type(), primary_key=True),
    Column("project_id", id_type(), nullable=False),
    Column("thread_id", id_type(), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("previous_response_id", id_type(), nullable=True),
    Column(
        "conversation_id", id_type(), nullable=True
    ),  # given as `conversation`; else the thread is the response's own
    Column("store", Boolean, nullable=False),
    Column("background", Boolean, nullable=False),
    Column("input_ids", json_type(), nullable=False),  # the ids of the items its input added, in order
    Column("request", json_type(), nullable=False),  # echoed fields in the Responses shape: tools, text, ...
    Index(None, "thread_id", "id"),
)

# A background response's stream events, kept so `GET /v1/responses/{id}?stream=true&starting_after=N` can
# replay them on any replica (docs/responses.md "Resuming a background response's stream"); deleted with it.
response_events = Table(
    "response_events",
    metadata,
    Column("response_id", id_type(), primary_key=True),
    Column("sequence_number", BigInteger, primary_key=True),
    Column("type", String(64), nullable=False),
    Column("data", json_type(), nullable=False),  # the event as sent
)

files = Table(
    "files",
    metadata,
    Column("id", id_type(), primary_key=True),
    Column("project_id", id_type(), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("filename", Text, nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("blob_key", String(128), nullable=False),
    sort_key(),
    Index(None, "project_id", "id"),
    Index(None, "expires_at"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", id_type(), primary_key=True),
    Column("project_id", id_type(), nullable=False),
    Column("thread_id", id_type(), nullable=False),
    Column("assistant_id", id_type(), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("status", String(32), nullable=False),
    Column("model", Text, nullable=False),
    Column("instructions", Text, nullable=True),
    Column("tools", json_type(), nullable=False),
    Column("metadata", json_type(), nullable=False),
    Column("temperature", Float, nullable=True),
    Column("top_p", Float, nullable=True),
    Column("max_prompt_tokens", BigInteger, nullable=True),
    Column("max_completion_tokens", BigInteger, nullable=True),
    Column("truncation_strategy", json_type(), nullable=False),
    Column("tool_choice", json_type(), nullable=False),
    Column("parallel_tool_calls", Boolean, nullable=False),
    Column("response_format", json_type(), nullable=False),
    Column("reasoning_effort", String(16), nullable=True),
    Column("required_action", json_type(), nullable=True),
    Column("last_error", json_type(), nullable=True),
    Column("incomplete_details", json_type(), nullable=True),
    Column("usage", json_type(), nullable=True),
    Column("expires_at", BigInteger, nullable=True),
    Column("started_at", BigInteger, nullable=True),
    Column("cancelled_at", BigInteger, nullable=True),
    Column("failed_at", BigInteger, nullable=True),
    Column("completed_at", BigInteger, nullable=True),
    # Execution: which worker holds the run, until when (unix seconds).
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    # How many times the run was resumed after its executor died (engine/lifecycle.py `recover`).
    Column("resumes", Integer, nullable=False, server_default=text("0")),
    sort_key(),
    Index(None, "thread_id", "id"),
    Index(None, "status", "lease_expires_at"),
    Index(None, "status", "model"),  # /metrics: runs by status and model, from the index alone
)

run_steps = Table(
    "run_steps",
    metadata,
    Column("id", id_type(), primary_key=True),
    Column("run_id", id_type(), nullable=False),
    Column("thread_id", id_type(), nullable=False),
    Column("assistant_id", id_type(), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("type", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("step_details", json_type(), nullable=False),
    Column("last_error", json_type(), nullable=True),
    Column("expires_at", BigInteger, nullable=True),
    Column("expired_at", BigInteger, nullable=True),
    Column("cancelled_at", BigInteger, nullable=True),
    Column("failed_at", BigInteger, nullable=True),
    Column("completed_at", BigInteger, nullable=True),
    Column("metadata", json_type(), nullable=False),
    Column("usage", json_type(), nullable=True),
    sort_key(),
    Index(None, "run_id", "id"),
    Index(None, "thread_id"),
)

vector_stores = Table(
    "vector_stores",
    metadata,
    Column("id", id_type(), primary_key=True),
    Column("project_id", id_type(), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=True),
    Column("expires_after", json_type(), nullable=True),
    Column("last_active_at", BigInteger, nullable=False),
    Column("metadata", json_type(), nullable=False),
    # Bumped by triggers on `chunks` (migration 0004): search caches a store's vectors until it changes.
    Column("chunks_version", BigInteger, nullable=False, server_default=text("0")),
    # Bumped by triggers on `vector_store_files` (migration 0012): search caches the store's file map.
    Column("files_version", BigInteger, nullable=False, server_default=text("0")),
    Index(None, "project_id", "id"),
)

# A file in a store. `id` is the File id (the API's vector-store-file id); the key is (store, file).
vector_store_files = Table(
    "vector_store_files",
    metadata,
    Column("vector_store_id", id_type(), primary_key=True),
    Column("id", id_type(), primary_key=True),
    Column("project_id", id_type(), nullable=False),
    Column("batch_id", id_type(), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("last_error", json_type(), nullable=True),
    Column("chunking_strategy", json_type(), nullable=False),
    Column("attributes", json_type(), nullable=False),
    Column("usage_bytes", BigInteger, nullable=False),
    # Ingestion is claimed like a run: whoever holds the lease parses, chunks and embeds the file.
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Index(None, "status", "lease_expires_at"),
    Index(None, "batch_id"),
    Index(None, "id"),
)

file_batches = Table(
    "file_batches",
    metadata,
    Column("id", id_type(), primary_key=True),
    Column("vector_store_id", id_type(), nullable=False),
    Column("project_id", id_type(), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("cancelled", Boolean, nullable=False),
    Index(None, "vector_store_id"),
)

# The searchable pieces of a file in a store: text and its embedding (float32 bytes). The keyword
# index is outside the models (migration 0004, retrieval/search.py): an FTS5 table `chunks_fts` kept
# by triggers on SQLite; on PostgreSQL a stored `text_tsv` = to_tsvector('english', text) with a GIN
# index (migration 0016; before, an expression index). So is pgvector's
# copy of 384-dimension embeddings on PostgreSQL, `embedding_vec` with an HNSW index (migration 0005).
chunks = Table(
    "chunks",
    metadata,
    Column("vector_store_id", id_type(), primary_key=True),
    Column("file_id", id_type(), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("text", Text, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("embedding", LargeBinary, nullable=False),
)

# code_interpreter sessions on a kernel gateway (sandbox/gateway.py): which kernel holds a thread's
# Python session, so every replica reaches the same one. `placed` lists the input file ids already
# copied into that kernel's working directory. No foreign key: the key is the sandbox's session key
# (a thread id), and the row goes when the session is closed.
sandbox_sessions = Table(
    "sandbox_sessions",
    metadata,
    Column("session_key", id_type(), primary_key=True),
    Column("kernel_id", String(128), nullable=False),
    Column("placed", json_type(), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Containers (docs/containers.md): a sandbox session of its own (session key = the container id), with
# an idle lifetime; `status` is 'running' until the sweeper ends it ('expired').
containers = Table(
    "containers",
    metadata,
    Column("id", id_type(), primary_key=True),
    Column("project_id", id_type(), nullable=False),
    Column("name", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_active_at", BigInteger, nullable=False),
    Column("expires_minutes", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Index(None, "project_id", "id"),
    Index(None, "status", "last_active_at"),
)

# A container's files: a copy of each in the blob store (what the API lists and serves), placed into
# the session's data directory before code runs; `path` is relative to that directory.
container_files = Table(
    "container_files",
    metadata,
    Column("id", id_type(), primary_key=True),
    Column("container_id", id_type(), nullable=False),
    Column("path", Text, nullable=False),
    Column("source", String(16), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("blob_key", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "container_id", "id"),
    UniqueConstraint("container_id", "path"),
)

# Files an import referenced whose bytes were not supplied (assistd/migrate/importer.py): what the
# import report and the console's Import page show as missing, until an import brings the bytes.
import_missing_files = Table(
    "import_missing_files",
    metadata,
    Column("project_id", id_type(), primary_key=True),
    Column("id", id_type(), primary_key=True),
    Column("filename", Text, nullable=False),
    Column("bytes", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=True),
    Column("thread_id", id_type(), nullable=True),
    Column("recorded_at", BigInteger, nullable=False),
)
