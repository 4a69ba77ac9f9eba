"""What app.py wires for the routes: every service, the workers and the settings of one server.

The routes reach it as `request.app.state.services` (api/deps.py); app.py builds it at startup.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistd.db.database import Database
from assistd.engine.queue import QueueWorker
from assistd.engine.worker import Worker
from assistd.providers.routing import ModelRouter
from assistd.retrieval.embedding import Embedder
from assistd.sandbox.base import Sandbox
from assistd.services.admin import AdminService
from assistd.services.assistants import AssistantService
from assistd.services.containers import ContainerService
from assistd.services.conversations import ConversationService
from assistd.services.files import FileService
from assistd.services.keys import KeyService
from assistd.services.metrics import Metrics
from assistd.services.responses import ResponseService
from assistd.services.runs import RunService
from assistd.services.threads import ThreadService
from assistd.services.vector_stores import VectorStoreService
from assistd.settings import Settings
from assistd.storage.blobs import BlobStore


@dataclass
class Services:
    settings: Settings
    db: Database
    blobs: BlobStore
    keys: KeyService
    files: FileService
    assistants: AssistantService
    threads: ThreadService
    conversations: ConversationService  # the same threads, seen as conversations
    responses: ResponseService  # runs made through the Responses API
    models: ModelRouter
    worker: Worker
    runs: RunService
    vector_stores: VectorStoreService
    ingestion: QueueWorker
    embedder: Embedder | None
    sandbox: Sandbox
    admin: AdminService
    containers: ContainerService  # code_interpreter containers (docs/containers.md)
    metrics: Metrics | None = None  # None with ASSISTD_METRICS=false; also the observer the engine reports to
