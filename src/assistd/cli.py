"""`assistd serve` and the admin commands."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from assistd import __version__, logs
from assistd.errors import APIError
from assistd.extras import missing, missing_message
from assistd.settings import Settings
from assistd.storage.factory import s3_problem

if TYPE_CHECKING:
    from starlette.applications import Starlette

SETTINGS_DOCS = "docs/configuration.md"


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
        except OSError:
            return False


async def _keys_configured(settings: Settings) -> bool:
    from assistd.app import open_services

    services = await open_services(settings)
    try:
        return await services.keys.ever_created()
    finally:
        await services.db.dispose()


def serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from assistd.app import create_app

    if args.model:
        from assistd.providers.hub import HubError, resolve_model

        try:
            model = resolve_model(args.model, settings.data_dir)
        except HubError as exc:
            print(f"assistd: --model: {exc}", file=sys.stderr)
            return 2
        settings = settings.model_copy(update={"local_model_path": model, "local_enabled": True})

    exposed = not _is_loopback(args.host) and not args.allow_insecure
    if exposed and not settings.api_keys and not asyncio.run(_keys_configured(settings)):
        print(
            f"assistd: refusing to listen on {args.host} with no API keys: anyone who can reach it could "
            "use it. Set ASSISTD_API_KEYS or run `assistd keys create --project NAME`, or pass "
            "--allow-insecure if this network is trusted.",
            file=sys.stderr,
        )
        return 2
    logs.configure(settings.log_level)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=args.graceful_timeout,
        # uvicorn's default (5 s) closes idle connections just as clients reuse them (docs/configuration.md).
        timeout_keep_alive=settings.keep_alive_seconds,
        lifespan="on",
    )

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                bound = [sock.getsockname() for server in self.servers for sock in server.sockets]
                port = int(bound[0][1]) if bound else args.port
                print(banner(app, settings, args.host, port), flush=True)

    Server(config).run()
    return 0


def _url(host: str, port: int) -> str:
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"  # listening on every interface; this one is always there
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def banner(app: Starlette, settings: Settings, host: str, port: int) -> str:
    """What `assistd serve` prints once it listens: where, the console, how clients authenticate."""
    url = _url(host, port)
    where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    everywhere = " (all interfaces)" if host in ("0.0.0.0", "::", "") else ""
    keyring = getattr(app.state, "keyring", None)
    if keyring is not None and keyring.open:
        auth = "open: no API keys configured, any key (or none) is accepted (docs/auth.md)"
    elif settings.api_keys:
        auth = f"API keys required ({len(settings.api_keys)} in ASSISTD_API_KEYS, and any stored keys)"
    else:
        auth = "API keys required (stored keys: `assistd keys list`)"
    console = f"{url}/" if settings.console_enabled else "off (ASSISTD_CONSOLE_ENABLED=false)"
    return "\n".join(
        [
            f"assistd {__version__} listening on {where}{everywhere}",
            f"  API:     {url}/v1",
            f"  console: {console}",
            f"  auth:    {auth}",
        ]
    )


def keys(args: argparse.Namespace, settings: Settings) -> int:
    from assistd.app import open_services

    async def run() -> int:
        services = await open_services(settings)
        try:
            if args.keys_command == "create":
                info, secret = await services.keys.create_key(args.project)
                print(secret)
                print(f"created {info.id} for project '{info.project}' (shown once; stored hashed)", file=sys.stderr)
            elif args.keys_command == "list":
                for k in await services.keys.list_keys():
                    state = "revoked" if k.revoked_at else "active"
                    print(f"{k.id}\t{k.project}\t{k.hint}\t{state}")
            else:
                await services.keys.revoke_key(args.key_id)
                print(f"revoked {args.key_id}", file=sys.stderr)
            return 0
        except APIError as exc:
            print(f"assistd: {exc.message}", file=sys.stderr)
            return 1
        finally:
            await services.db.dispose()

    return asyncio.run(run())


def sandbox(args: argparse.Namespace, settings: Settings) -> int:
    """`assistd sandbox build`: the code_interpreter's own Python environment (needs the package index once)."""
    from assistd.sandbox import environment

    target = Path(args.path) if args.path else settings.sandbox_python_dir
    built = environment.build(target, quiet=args.quiet)
    print(f"sandbox Python ready at {built.venv} (from {built.base_prefix})")
    return 0


def models(args: argparse.Namespace, settings: Settings) -> int:
    """`assistd models pull|list`: GGUF files for the local model, in <data dir>/models."""
    from assistd.providers import hub

    if args.models_command == "list":
        found = hub.installed(settings.data_dir)
        if not found:
            print(f"no models in {hub.models_dir(settings.data_dir)} (pull one: assistd models pull OWNER/REPO)")
        for path, size in found:
            print(f"{size / 1e6:10.1f} MB  {path}")
        return 0
    try:
        ref = hub.parse_ref(args.ref)
        print(
            f"pulling {ref.repo}{':' + ref.filename if ref.filename else ''} into {hub.models_dir(settings.data_dir)}"
        )
        path = hub.pull(ref, settings.data_dir)
    except hub.HubError as exc:
        print(f"assistd: {exc}", file=sys.stderr)
        return 1
    print(f"pulled {path} ({path.stat().st_size / 1e6:.1f} MB)")
    print(f"run it: assistd serve --model {path}")
    return 0


class _ProgressBar:
    """A one-line bar on stderr when it is a terminal; otherwise a line every tenth of the way."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.tty = sys.stderr.isatty()
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if self.tty:
            filled = done * 30 // max(total, 1)
            end = "\n" if done == total else ""
            print(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}", end=end, file=sys.stderr)
        elif tenth != self.shown or done == total:
            self.shown = tenth
            print(f"{self.label}: {done}/{total} threads", file=sys.stderr)


def _metadata_filters(pairs: Sequence[str]) -> dict[str, str] | None:
    found = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--metadata takes KEY=VALUE, got {pair!r}")
        found[key] = value
    return found or None


def import_(args: argparse.Namespace, settings: Settings) -> int:
    """`assistd import PATH`: an export folder or loose API objects, into a project, ids kept."""
    from assistd.app import open_services
    from assistd.migrate import bundle
    from assistd.migrate.importer import Importer

    async def run() -> int:
        services = await open_services(settings)
        try:
            try:
                project_id = await services.keys.project_id(args.project, create=not args.dry_run)
            except APIError:  # a dry run into a project still to be made: nothing of it exists yet
                project_id = f"proj_new_{args.project}"
            found = bundle.read(Path(args.path))
            importer = Importer(services.db, services.blobs, project_id, args.project)
            files_dir = Path(args.files) if args.files else None
            report = await importer.run(
                found,
                dry_run=args.dry_run,
                files_dir=files_dir,
                reindex=args.reindex,
                progress=_ProgressBar("importing"),
            )
            print("\n".join(report.lines()))
            return 0 if report.ok else 1
        finally:
            await services.db.dispose()

    return asyncio.run(run())


def export(args: argparse.Namespace, settings: Settings) -> int:
    """`assistd export PATH`: the project's assistants and threads in the same layout, file bytes included."""
    from assistd.app import open_services
    from assistd.migrate.exporter import Exporter

    try:
        metadata = _metadata_filters(args.metadata or [])
    except ValueError as exc:
        print(f"assistd: {exc}", file=sys.stderr)
        return 2

    async def run() -> int:
        services = await open_services(settings)
        try:
            try:
                project_id = await services.keys.project_id(args.project, create=False)
            except APIError as exc:
                print(f"assistd: {exc.message}", file=sys.stderr)
                return 1
            exporter = Exporter(services.db, services.blobs, project_id)
            summary = await exporter.run(
                Path(args.path), thread_ids=args.thread or None, metadata=metadata, progress=_ProgressBar("exporting")
            )
            print(
                f"exported {summary.assistants} assistants, {summary.threads} threads ({summary.messages} messages, "
                f"{summary.runs} runs), {summary.files} files to {args.path}"
            )
            return 0
        finally:
            await services.db.dispose()

    return asyncio.run(run())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assistd", description="A server for the OpenAI Assistants API (v2).")
    parser.add_argument("--version", action="version", version=f"assistd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p_serve = sub.add_parser(
        "serve",
        help="start the HTTP server (the API is under /v1)",
        description="Start the HTTP server: the Assistants API under /v1, the web console at /.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog=(
            "Everything else is set with ASSISTD_* environment variables: the database "
            "(ASSISTD_DATABASE_URL, default SQLite in ASSISTD_DATA_DIR), the model backend "
            "(ASSISTD_UPSTREAM_BASE_URL, default the bundled local model), API keys (ASSISTD_API_KEYS), "
            "the HTTP keep-alive (ASSISTD_KEEP_ALIVE_SECONDS), logging (ASSISTD_LOG_LEVEL). "
            f"Every setting and its default: {SETTINGS_DOCS} in the source tree."
        ),
    )
    p_serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p_serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    p_serve.add_argument(
        "--allow-insecure",
        action="store_true",
        help="listen on a non-loopback address even with no API keys configured",
    )
    p_serve.add_argument(
        "--graceful-timeout", type=float, default=30.0, help="seconds to let in-flight requests finish on shutdown"
    )
    p_serve.add_argument(
        "--model",
        help="a GGUF file for the local model (a path, or the name of a file from `assistd models pull`); "
        "same as ASSISTD_LOCAL_MODEL_PATH",
    )
    p_serve.set_defaults(func=serve)

    p_models = sub.add_parser("models", help="GGUF models for the local model (docs/local-model.md)")
    models_sub = p_models.add_subparsers(dest="models_command", required=True)
    p_pull = models_sub.add_parser(
        "pull",
        help="download a GGUF from the Hugging Face hub into <data dir>/models",
        description="Download a GGUF file from the Hugging Face hub (HF_ENDPOINT and HF_TOKEN apply). "
        "With only the repo named, a Q4_K_M file is chosen when there is one.",
    )
    p_pull.add_argument("ref", metavar="OWNER/REPO[:FILE]")
    models_sub.add_parser("list", help="the GGUF files in <data dir>/models")
    p_models.set_defaults(func=models)

    p_keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = p_keys.add_subparsers(dest="keys_command", required=True)
    p_create = keys_sub.add_parser("create", help="create a key for a project (printed once)")
    p_create.add_argument("--project", required=True)
    keys_sub.add_parser("list", help="list keys (never the secrets)")
    p_revoke = keys_sub.add_parser("revoke", help="revoke a key by id")
    p_revoke.add_argument("key_id")
    p_keys.set_defaults(func=keys)

    p_import = sub.add_parser(
        "import",
        help="import assistants, threads, messages and runs with their original ids (docs/import-export.md)",
        description="Import an assistants-thread-export/v1 folder (from the assistants-api-export tool or "
        "`assistd export`) or files of raw API objects (an assistant, a thread, a list page of messages or "
        "runs). Ids and timestamps are kept; importing twice changes nothing; each thread is written whole "
        "or not at all.",
    )
    p_import.add_argument("path", metavar="PATH", help="an export folder, or a JSON file or folder of API objects")
    p_import.add_argument("--project", default="default", help="the project to import into (created if new)")
    p_import.add_argument(
        "--dry-run", action="store_true", help="check and report what would be written; write nothing"
    )
    p_import.add_argument(
        "--files", metavar="DIR", help="where the files' bytes are (named by file id or original filename)"
    )
    p_import.add_argument(
        "--reindex",
        action="store_true",
        help="recreate the vector stores the assistants and threads name, with their ids, and ingest their files",
    )
    p_import.set_defaults(func=import_)

    p_export = sub.add_parser(
        "export",
        help="export a project's assistants and threads, file bytes included (docs/import-export.md)",
        description="Write the project's assistants and threads (all, by id, or by metadata) in the "
        "assistants-thread-export/v1 layout, with the bytes of the files they reference.",
    )
    p_export.add_argument("path", metavar="PATH", help="the folder to write (created if missing)")
    p_export.add_argument("--project", default="default", help="the project to export")
    p_export.add_argument("--thread", action="append", metavar="ID", help="a thread to export (repeatable)")
    p_export.add_argument(
        "--metadata", action="append", metavar="KEY=VALUE", help="only threads whose metadata has this value"
    )
    p_export.set_defaults(func=export)

    p_sandbox = sub.add_parser("sandbox", help="manage code_interpreter's sandbox")
    sandbox_sub = p_sandbox.add_subparsers(dest="sandbox_command", required=True)
    p_build = sandbox_sub.add_parser("build", help="build the sandbox's Python (numpy, pandas, matplotlib, ipykernel)")
    p_build.add_argument("--path", help="where (default: ASSISTD_SANDBOX_PYTHON, else <data dir>/sandbox-python)")
    p_build.add_argument("--quiet", action="store_true")
    p_sandbox.set_defaults(func=sandbox)
    return parser


def _missing_database_driver(settings: Settings) -> str | None:
    """A PostgreSQL URL without the `postgres` extra: say so instead of failing at start with an ImportError."""
    if settings.is_sqlite or not missing("postgres"):
        return None
    return f"assistd: ASSISTD_DATABASE_URL is a PostgreSQL URL. {missing_message('postgres', 'asyncpg')}"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    if args.command in ("serve", "keys", "import", "export") and (problem := _missing_database_driver(settings)):
        print(problem, file=sys.stderr)
        return 2
    if args.command == "serve" and (problem := s3_problem(settings)):
        print(f"assistd: {problem}", file=sys.stderr)
        return 2
    return int(args.func(args, settings))
