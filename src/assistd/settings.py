"""The one settings object. Built once by the CLI (or a test) and passed in explicitly."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("assistd", appauthor=False))


class Settings(BaseSettings):
    """Every field is documented in docs/configuration.md (a test checks that)."""

    model_config = SettingsConfigDict(env_prefix="ASSISTD_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    log_level: str = "info"
    log_requests: bool = True
    key_cache_seconds: float = Field(default=5.0, ge=0)
    file_sweep_interval_seconds: float = Field(default=60.0, gt=0)
    db_pool_size: int = Field(default=8, ge=1)
    console_enabled: bool = True  # the web console at / (docs/console.md)
    # How long an idle HTTP connection stays open: longer than clients' and proxies' own idle timeouts,
    # so they close first and never send on a connection the server is closing (docs/configuration.md).
    keep_alive_seconds: int = Field(default=75, ge=1)
    # GET /metrics for Prometheus (docs/deployment.md#metrics): on by default, without an API key; with
    # a token, only scrapes that send it as `Authorization: Bearer <token>` are answered.
    metrics: bool = True
    metrics_token: SecretStr | None = None

    # Where file bytes live (docs/deployment.md, "Object storage"): the data directory, or an
    # S3-compatible bucket (the `s3` extra) that every replica shares.
    blob_store: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_session_token: SecretStr | None = None
    s3_path_style: bool | None = None  # unset: path-style with an endpoint URL, virtual-hosted on AWS
    s3_part_size_mb: int = Field(default=8, ge=5, le=5120)
    s3_upload_concurrency: int = Field(default=4, ge=1, le=64)

    # Model backends (docs/runs.md)
    config: Path | None = None
    upstream_base_url: str | None = None
    upstream_api_key: SecretStr | None = None
    upstream_context_window: int = Field(default=8192, ge=256)
    upstream_timeout_seconds: float = Field(default=600.0, gt=0)
    upstream_max_attempts: int = Field(default=4, ge=1)
    upstream_retry_base_seconds: float = Field(default=0.5, ge=0)
    upstream_token_counter: Literal["tiktoken", "tokenize"] = "tiktoken"
    upstream_token_margin: float = Field(default=0.2, ge=0, le=4)
    upstream_tokenize_url: str | None = None
    # Model calls in a row whose tool calls are refused (unknown tool, unusable arguments) and sent back
    # to the model to correct, before the run fails (docs/run-engine.md, "Imperfect tool calls").
    tool_call_retries: int = Field(default=2, ge=0)

    # The bundled local model (docs/local-model.md)
    local_model_path: Path | None = None
    local_context_window: int = Field(default=8192, ge=256)
    local_threads: int | None = Field(default=None, ge=1)
    local_chat_template: str | None = None
    local_enabled: bool = True
    local_repeat_limit: int = Field(default=2, ge=0)

    # Retrieval (docs/file-search.md)
    embeddings_base_url: str | None = None
    embeddings_api_key: SecretStr | None = None
    embeddings_model: str = "text-embedding-3-small"
    embeddings_dimensions: int = Field(default=384, ge=8)
    embeddings_max_windows: int | None = Field(default=1, ge=1)
    # Citations (docs/file-search.md, "Citations on any model"): `model` keeps only the markers the model
    # writes, `auto` also cites answer sentences the search results support, `off` emits no file_citation.
    citations: Literal["model", "auto", "off"] = "auto"
    citations_threshold: float = Field(default=0.6, ge=0, le=1)
    ingestion_concurrency: int = Field(default=2, ge=1)
    # What parsing one file may use (docs/file-search.md): decompression bombs end `invalid_file`.
    ingestion_max_unpacked_mb: int = Field(default=256, ge=1)
    ingestion_max_compression_ratio: float = Field(default=200.0, ge=1)
    ingestion_max_zip_entries: int = Field(default=50_000, ge=1)
    ingestion_max_xml_elements: int = Field(default=10_000_000, ge=1)
    ingestion_max_text_chars: int = Field(default=20_000_000, ge=1)
    ingestion_max_pdf_pages: int = Field(default=10_000, ge=1)
    ingestion_max_pdf_stream_mb: int = Field(default=8, ge=1)

    # code_interpreter (docs/code-interpreter.md)
    sandbox: Literal["bwrap", "unsafe-local"] = "bwrap"
    sandbox_python: Path | None = None
    sandbox_bwrap: str = "bwrap"
    sandbox_memory_mb: int = Field(default=1024, ge=64)
    sandbox_max_processes: int = Field(default=256, ge=8)
    sandbox_cpus: float = Field(default=1.0, gt=0)
    sandbox_max_file_mb: int = Field(default=100, ge=1)
    sandbox_tmp_mb: int = Field(default=256, ge=1)
    sandbox_cell_timeout_seconds: float = Field(default=60.0, gt=0)
    sandbox_idle_seconds: float = Field(default=1800.0, gt=0)
    sandbox_max_lifetime_seconds: float = Field(default=3600.0, gt=0)
    sandbox_max_sessions: int = Field(default=32, ge=1)
    container_max_minutes: int = Field(default=1440, ge=1)
    container_sweep_seconds: float = Field(default=30.0, gt=0)
    sandbox_pool_size: int = Field(default=1, ge=0)
    sandbox_max_running: int = Field(default=2, ge=1)
    sandbox_uid_base: int = Field(default=200_000, ge=1000)
    # Where kernels run: this host (bubblewrap) or a Jupyter Kernel/Enterprise Gateway (docs/code-interpreter.md)
    sandbox_backend: Literal["local", "gateway"] = "local"
    sandbox_gateway_url: str | None = None
    sandbox_gateway_token: SecretStr | None = None
    sandbox_gateway_kernel_name: str = ""
    sandbox_gateway_data_path: str = "/mnt/data"
    sandbox_gateway_connect_timeout_seconds: float = Field(default=10.0, gt=0)
    sandbox_gateway_start_timeout_seconds: float = Field(default=60.0, gt=0)

    # Runs
    run_expires_seconds: int = Field(default=600, ge=1)
    poll_after_ms: int = Field(default=100, ge=1)
    # Runs executing at once in this process. A run mostly waits on its model and holds a database
    # connection only inside its short transactions (those are bounded by db_pool_size), so the cap is
    # about memory and model calls in flight, not the database (docs/configuration.md).
    worker_concurrency: int = Field(default=256, ge=1)
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    lease_seconds: float = Field(default=30.0, gt=0)
    listen_notify: bool = True
    run_resume_limit: int = Field(default=2, ge=0)
    drain_seconds: float = Field(default=10.0, ge=0)
    stream_keepalive_seconds: float = Field(default=15.0, gt=0)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'assistd.db'}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def sandbox_dir(self) -> Path:
        return self.data_dir / "sandbox"

    @property
    def sandbox_python_dir(self) -> Path:
        return self.sandbox_python or self.data_dir / "sandbox-python"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")
