"""GGUF models from the Hugging Face hub into the data dir: `assistd models pull` and `assistd models list`.

Uses the hub's own client (`huggingface_hub`, in the `local` extra), so `HF_ENDPOINT` (a mirror),
`HF_TOKEN` (gated repos) and its progress bars work as they do everywhere else. A pulled file lands in
`<data dir>/models/<owner>/<repo>/<file>`; `assistd serve --model` takes that path, or just the file
name of anything under `<data dir>/models`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Preferred quantisations when only the repo is named: a good size/quality balance first.
PREFERRED_QUANTS = ("q4_k_m", "q4_k_s", "q4_0", "q5_k_m", "q4_1", "q8_0")
_SPLIT = re.compile(r"-\d{5}-of-\d{5}\.gguf$", re.IGNORECASE)


class HubError(Exception):
    """A pull that cannot be done, with a message for the terminal."""


@dataclass(frozen=True)
class ModelRef:
    repo: str
    filename: str | None = None
    revision: str = "main"


def parse_ref(text: str) -> ModelRef:
    """`owner/name`, `owner/name:file.gguf`, and either with `@revision` after the repo."""
    repo, _, filename = text.partition(":")
    repo, _, revision = repo.partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise HubError(f"not a hub repo: {text!r} (expected owner/name or owner/name:file.gguf)")
    return ModelRef(repo, filename or None, revision or "main")


def choose_file(files: list[str]) -> str:
    """The GGUF to pull when only the repo is named: a Q4_K_M file if there is one, else the best-ranked quant."""
    ggufs = sorted(f for f in files if f.lower().endswith(".gguf") and not _SPLIT.search(f))
    if not ggufs:
        split = [f for f in files if _SPLIT.search(f)]
        hint = (
            " (only split files, which models pull does not join: use a repo with single-file quants)" if split else ""
        )
        raise HubError(f"no .gguf file in this repo{hint}")
    for quant in PREFERRED_QUANTS:
        matches = [f for f in ggufs if quant in f.lower().replace("-", "_").replace(".", "_")]
        if matches:
            return matches[0]
    return ggufs[0]


def models_dir(data_dir: Path) -> Path:
    return data_dir / "models"


def pull(ref: ModelRef, data_dir: Path) -> Path:
    """Download the file (resuming a partial one; a file already complete is not fetched again)."""
    try:
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise HubError("models pull needs huggingface_hub: pip install 'assistd[local]'") from exc
    filename = ref.filename
    try:
        if filename is None:
            info = HfApi().model_info(ref.repo, revision=ref.revision)
            filename = choose_file([s.rfilename for s in info.siblings or []])
        target = models_dir(data_dir) / ref.repo
        path = hf_hub_download(ref.repo, filename, revision=ref.revision, local_dir=target, tqdm_class=_progress_bar())
    except RepositoryNotFoundError:
        raise HubError(f"no such repo on the hub (or it is private/gated; set HF_TOKEN): {ref.repo}") from None
    except EntryNotFoundError:
        raise HubError(f"no file {filename!r} in {ref.repo}") from None
    except HfHubHTTPError as exc:
        raise HubError(f"the hub answered: {exc}") from None
    except OSError as exc:
        raise HubError(f"download failed: {exc}") from None
    return Path(path)


def _progress_bar() -> Any:
    """A progress bar on stderr even when it is not a terminal (the hub client's own hides itself then)."""
    from tqdm import tqdm  # type: ignore[import-untyped]

    class Progress(tqdm):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = False
            kwargs.setdefault("mininterval", 0.5)
            super().__init__(*args, **kwargs)

    return Progress


def installed(data_dir: Path) -> list[tuple[Path, int]]:
    """Every .gguf under the models dir, with its size in bytes."""
    root = models_dir(data_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.rglob("*.gguf") if ".cache" not in p.relative_to(root).parts and p.is_file()]
    return [(p, p.stat().st_size) for p in sorted(found)]


def resolve_model(value: str, data_dir: Path) -> Path:
    """`serve --model`: a path to a file, or the name of a file pulled into the models dir."""
    path = Path(value).expanduser()
    if path.is_file():
        return path.resolve()
    matches = [
        p for p, _ in installed(data_dir) if p.name == value or str(p.relative_to(models_dir(data_dir))) == value
    ]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise HubError(f"{value!r} names several pulled files; pass the path: " + ", ".join(map(str, matches)))
    raise HubError(f"no such model file: {value} (nor under {models_dir(data_dir)}; see `assistd models list`)")
