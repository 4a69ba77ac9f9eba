"""Model routing (assistd.providers.routing): config loading, router building, name resolution.

Order: an exact `match` beats every glob; globs are tried in file order; then the default.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistd.providers.counting import DEFAULT_MARGIN, Tiktoken, TokenizeEndpoint
from assistd.providers.openai_compat import OpenAICompatProvider, RetryPolicy
from assistd.providers.routing import (
    ENV_BACKEND,
    ConfigError,
    ModelRouter,
    RoutingConfig,
    build_router,
    load_config,
)

BACKENDS = """
[backends.local]
base_url = "http://127.0.0.1:1/v1"
context_window = 32768

[backends.remote]
base_url = "http://127.0.0.1:2/v1"
api_key = "sk-remote"
timeout_seconds = 30
[backends.remote.quirks]
parallel_tool_calls = false
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text)
    return path


def router_for(config: RoutingConfig | None, *, base_url: str | None = None) -> ModelRouter:
    return build_router(
        config,
        upstream_base_url=base_url,
        upstream_api_key="sk-env",
        upstream_context_window=4096,
        upstream_timeout=60.0,
        retry=RetryPolicy(attempts=2),
    )


@pytest.fixture()
def routers() -> Iterator[list[ModelRouter]]:
    """Routers built in a test; their HTTP clients are closed afterwards."""
    built: list[ModelRouter] = []
    yield built

    async def close() -> None:
        for router in built:
            await router.close()

    asyncio.run(close())


def route(routers: list[ModelRouter], tmp_path: Path, text: str, **kw: str | None) -> ModelRouter:
    router = router_for(load_config(write(tmp_path, text)), **kw)
    routers.append(router)
    return router


def target(router: ModelRouter, model: str) -> tuple[str, str] | None:
    resolved = router.resolve(model)
    return None if resolved is None else (resolved.provider.name, resolved.model)


def test_exact_match_beats_an_earlier_glob(tmp_path: Path, routers: list[ModelRouter]) -> None:
    router = route(
        routers,
        tmp_path,
        BACKENDS
        + """
[[routes]]
match = "gpt-4*"
backend = "local"
model = "llama-3"

[[routes]]
match = "gpt-4o"
backend = "remote"
""",
    )
    assert target(router, "gpt-4o") == ("remote", "gpt-4o")
    assert target(router, "gpt-4o-mini") == ("local", "llama-3")
    assert target(router, "gpt-4") == ("local", "llama-3")
    assert target(router, "gpt-3.5-turbo") is None, "no route and no default: nobody serves it"


def test_globs_are_tried_in_file_order(tmp_path: Path, routers: list[ModelRouter]) -> None:
    router = route(
        routers,
        tmp_path,
        BACKENDS
        + """
[[routes]]
match = "gpt-3.5-turbo-0125"
backend = "remote"
model = "exact"

[[routes]]
match = "gpt-3.5-turbo*"
backend = "local"
model = "first-glob"

[[routes]]
match = "gpt-*"
backend = "remote"
model = "second-glob"

[[routes]]
match = "claude-?"
backend = "remote"

[[routes]]
match = "mistral-[sm]*"
backend = "local"
""",
    )
    assert target(router, "gpt-3.5-turbo-0125") == ("remote", "exact")
    assert target(router, "gpt-3.5-turbo-1106") == ("local", "first-glob")
    assert target(router, "gpt-3.5-turbo") == ("local", "first-glob")
    assert target(router, "gpt-4o") == ("remote", "second-glob")
    assert target(router, "claude-3") == ("remote", "claude-3"), "no `model`: the name is passed on unchanged"
    assert target(router, "claude-35") is None, "? is exactly one character"
    assert target(router, "mistral-small") == ("local", "mistral-small")
    assert target(router, "mistral-large") is None
    assert target(router, "GPT-4o") is None, "matching is case-sensitive"


def test_a_match_without_wildcards_is_only_exact(tmp_path: Path, routers: list[ModelRouter]) -> None:
    router = route(routers, tmp_path, BACKENDS + '[[routes]]\nmatch = "gpt-4"\nbackend = "local"\n')
    assert target(router, "gpt-4") == ("local", "gpt-4")
    assert target(router, "gpt-4o") is None


def test_default_route_catches_the_rest(tmp_path: Path, routers: list[ModelRouter]) -> None:
    router = route(
        routers,
        tmp_path,
        BACKENDS
        + """
[[routes]]
match = "gpt-4*"
backend = "remote"

[default]
backend = "local"
model = "llama-3"
""",
    )
    assert target(router, "gpt-4o") == ("remote", "gpt-4o")
    assert target(router, "anything-else") == ("local", "llama-3")


def test_default_without_model_keeps_the_name(tmp_path: Path, routers: list[ModelRouter]) -> None:
    router = route(routers, tmp_path, BACKENDS + '[default]\nbackend = "remote"\n')
    assert target(router, "whatever") == ("remote", "whatever")


def test_environment_upstream_is_the_default_unless_configured(tmp_path: Path, routers: list[ModelRouter]) -> None:
    env_only = router_for(None, base_url="http://127.0.0.1:3/v1")
    routers.append(env_only)
    assert target(env_only, "gpt-4o") == (ENV_BACKEND, "gpt-4o")
    assert env_only.providers[ENV_BACKEND].context_window == 4096

    with_default = route(
        routers, tmp_path, BACKENDS + '[default]\nbackend = "local"\n', base_url="http://127.0.0.1:3/v1"
    )
    assert target(with_default, "gpt-4o") == ("local", "gpt-4o"), "the file's default wins over the environment's"

    with_routes = route(
        routers,
        tmp_path,
        BACKENDS + '[[routes]]\nmatch = "gpt-4*"\nbackend = "local"\n',
        base_url="http://127.0.0.1:3/v1",
    )
    assert target(with_routes, "gpt-4o") == ("local", "gpt-4o")
    assert target(with_routes, "other") == (ENV_BACKEND, "other")

    routed_to_env = route(
        routers,
        tmp_path,
        '[[routes]]\nmatch = "x-*"\nbackend = "upstream"\nmodel = "renamed"\n',
        base_url="http://127.0.0.1:3/v1",
    )
    assert target(routed_to_env, "x-1") == (ENV_BACKEND, "renamed")


def test_no_config_and_no_upstream_serves_nothing(routers: list[ModelRouter]) -> None:
    router = router_for(None)
    routers.append(router)
    assert router.providers == {}
    assert router.resolve("gpt-4o") is None


def test_backend_settings_are_applied(tmp_path: Path, routers: list[ModelRouter]) -> None:
    router = route(routers, tmp_path, BACKENDS)
    local, remote = router.providers["local"], router.providers["remote"]
    assert isinstance(local, OpenAICompatProvider) and isinstance(remote, OpenAICompatProvider)
    assert local.context_window == 32768 and remote.context_window == 8192
    assert remote.quirks.parallel_tool_calls is False and local.quirks.parallel_tool_calls is True
    assert remote.retry.attempts == 2


def test_api_key_from_environment(tmp_path: Path, routers: list[ModelRouter], monkeypatch: pytest.MonkeyPatch) -> None:
    text = '[backends.b]\nbase_url = "http://127.0.0.1:1/v1"\napi_key_env = "ASSISTD_TEST_ROUTING_KEY"\n'
    config = load_config(write(tmp_path, text))
    monkeypatch.delenv("ASSISTD_TEST_ROUTING_KEY", raising=False)
    with pytest.raises(ConfigError, match="ASSISTD_TEST_ROUTING_KEY"):
        router_for(config)
    monkeypatch.setenv("ASSISTD_TEST_ROUTING_KEY", "sk-from-env")
    routers.append(router_for(config))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BACKENDS + '[[routes]]\nmatch = "gpt-*"\nbackend = "missing"\n', "unknown backend 'missing'"),
        (BACKENDS + '[default]\nbackend = "nowhere"\n', "unknown backend 'nowhere'"),
        (BACKENDS + '[[routes]]\nmatch = "gpt-*"\nbackend = "local"\ntypo = 1\n', "invalid routing config"),
        ('[backends.b]\nbase_url = "http://x"\ncontext_window = 10\n', "invalid routing config"),
        ("[backends.b]\n", "invalid routing config"),
        ("[[routes]\nmatch = ", "cannot read routing config"),
    ],
    ids=["route-backend", "default-backend", "unknown-key", "tiny-window", "no-base-url", "bad-toml"],
)
def test_invalid_configs_are_rejected(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read routing config"):
        load_config(tmp_path / "absent.toml")


def test_build_rejects_unknown_backend_type_and_unserved_env_backend(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[backends.b]\ntype = "anthropic"\nbase_url = "http://x"\n'))
    with pytest.raises(ConfigError, match="unknown type 'anthropic'"):
        router_for(config)
    # Routing to the environment's backend without ASSISTD_UPSTREAM_BASE_URL set.
    config = load_config(write(tmp_path, '[[routes]]\nmatch = "*"\nbackend = "upstream"\n'))
    with pytest.raises(ConfigError, match="upstream"):
        router_for(config)


def test_each_backend_counts_its_prompts_as_configured(tmp_path: Path, routers: list[ModelRouter]) -> None:
    text = """
[backends.vllm]
base_url = "http://127.0.0.1:3/v1"
token_counter = "tokenize"

[backends.other]
base_url = "http://127.0.0.1:4/v1"
token_margin = 0.5

[[routes]]
match = "gpt-4*"
backend = "vllm"
model = "Qwen/Qwen2.5-7B-Instruct"

[default]
backend = "other"
"""
    router = router_for(load_config(write(tmp_path, text)), base_url="http://127.0.0.1:5/v1")
    routers.append(router)
    routed = router.resolve("gpt-4o")
    assert routed is not None and isinstance(routed.counter, TokenizeEndpoint)
    assert (routed.counter.url, routed.counter.model) == ("http://127.0.0.1:3/tokenize", "Qwen/Qwen2.5-7B-Instruct")
    other = router.resolve("gpt-3.5-turbo")
    assert other is not None and isinstance(other.counter, Tiktoken) and other.counter.margin == 0.5
    # The environment upstream: tiktoken with the default margin unless told otherwise.
    upstream = router.providers[ENV_BACKEND].counter("m")
    assert isinstance(upstream, Tiktoken) and upstream.margin == DEFAULT_MARGIN
