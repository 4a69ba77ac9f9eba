"""Model names → backends: exact names, then globs in file order, then the default.

Old code names OpenAI models (`gpt-3.5-turbo-0125`); the routing table sends them wherever the
operator chose, optionally renaming the model for the upstream.
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistd.observe import NO_OBSERVER, Observer
from assistd.providers.base import Provider, TokenCounter
from assistd.providers.counting import DEFAULT_MARGIN, CounterKind, Counting
from assistd.providers.observed import ObservedProvider
from assistd.providers.openai_compat import OpenAICompatProvider, Quirks, RetryPolicy

ENV_BACKEND = "upstream"
LOCAL_BACKEND = "local"


class ConfigError(Exception):
    """The routing configuration is invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QuirksConfig(_Strict):
    stream_usage: bool = True
    tool_choice_object: bool = True
    parallel_tool_calls: bool = True
    response_format_json_schema: bool = True


class BackendConfig(_Strict):
    type: str = "openai"
    base_url: str
    api_key: str | None = None
    api_key_env: str | None = None
    context_window: int = Field(default=8192, ge=256)
    timeout_seconds: float = Field(default=600.0, gt=0)
    quirks: QuirksConfig = Field(default_factory=QuirksConfig)
    token_counter: CounterKind = "tiktoken"  # how prompts are counted to fit context_window (providers/counting.py)
    token_margin: float = Field(default=DEFAULT_MARGIN, ge=0, le=4)
    tokenize_url: str | None = None


class RouteConfig(_Strict):
    match: str
    backend: str
    model: str | None = None


class DefaultRoute(_Strict):
    backend: str
    model: str | None = None


class RoutingConfig(_Strict):
    backends: dict[str, BackendConfig] = Field(default_factory=dict)
    routes: list[RouteConfig] = Field(default_factory=list)
    default: DefaultRoute | None = None


@dataclass(frozen=True)
class Resolved:
    provider: Provider
    model: str  # the name sent to the backend

    @property
    def counter(self) -> TokenCounter:
        """What the route's prompts are counted with: the backend's tokens where it can tell."""
        return self.provider.counter(self.model)


@dataclass
class ModelRouter:
    providers: dict[str, Provider]
    routes: list[RouteConfig] = field(default_factory=list)
    default: DefaultRoute | None = None
    observer: Observer = NO_OBSERVER  # told every model call's timing (providers/observed.py)

    def resolve(self, model: str) -> Resolved | None:
        for route in self.routes:
            if route.match == model:
                return self._resolved(route.backend, route.model or model)
        for route in self.routes:
            if any(c in route.match for c in "*?[") and fnmatch.fnmatchcase(model, route.match):
                return self._resolved(route.backend, route.model or model)
        if self.default is not None:
            return self._resolved(self.default.backend, self.default.model or model)
        return None

    def _resolved(self, backend: str, model: str) -> Resolved:
        provider = self.providers[backend]
        if self.observer is not NO_OBSERVER:
            provider = ObservedProvider(provider, backend, self.observer)
        return Resolved(provider, model)

    async def close(self) -> None:
        for provider in self.providers.values():
            await provider.close()


def load_config(path: Path) -> RoutingConfig:
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read routing config {path}: {exc}") from None
    try:
        config = RoutingConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid routing config {path}:\n{exc}") from None
    names = set(config.backends)
    for target in [*(r.backend for r in config.routes), *([config.default.backend] if config.default else [])]:
        if target not in names and target not in (ENV_BACKEND, LOCAL_BACKEND):
            raise ConfigError(f"routing config {path}: route to unknown backend '{target}'")
    return config


def build_router(
    config: RoutingConfig | None,
    *,
    upstream_base_url: str | None,
    upstream_api_key: str | None,
    upstream_context_window: int,
    upstream_timeout: float,
    retry: RetryPolicy,
    local: Provider | None = None,
    observer: Observer = NO_OBSERVER,
    upstream_counting: Counting | None = None,
) -> ModelRouter:
    """Backends from the file, then the env upstream, then the local model: the first that exists is the default."""
    config = config or RoutingConfig()
    providers: dict[str, Provider] = {}
    for name, backend in config.backends.items():
        if backend.type != "openai":
            raise ConfigError(f"backend '{name}': unknown type '{backend.type}' (supported: openai)")
        key = backend.api_key
        if backend.api_key_env:
            key = os.environ.get(backend.api_key_env)
            if key is None:
                raise ConfigError(f"backend '{name}': environment variable {backend.api_key_env} is not set")
        providers[name] = OpenAICompatProvider(
            name,
            base_url=backend.base_url,
            api_key=key,
            context_window=backend.context_window,
            timeout=backend.timeout_seconds,
            quirks=Quirks(**backend.quirks.model_dump()),
            retry=retry,
            counting=Counting(backend.token_counter, backend.token_margin, backend.tokenize_url),
        )
    default = config.default
    if upstream_base_url:
        providers[ENV_BACKEND] = OpenAICompatProvider(
            ENV_BACKEND,
            base_url=upstream_base_url,
            api_key=upstream_api_key,
            context_window=upstream_context_window,
            timeout=upstream_timeout,
            retry=retry,
            counting=upstream_counting,
        )
        default = default or DefaultRoute(backend=ENV_BACKEND)
    if local is not None:
        providers[LOCAL_BACKEND] = local
        default = default or DefaultRoute(backend=LOCAL_BACKEND)
    referenced = {r.backend for r in config.routes} | ({default.backend} if default else set())
    missing = referenced - set(providers)
    if missing:
        raise ConfigError(f"routes name backends that are not configured: {', '.join(sorted(missing))}")
    return ModelRouter(providers, list(config.routes), default, observer)
