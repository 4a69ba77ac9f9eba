"""Projects and API keys.

Keys from ASSISTD_API_KEYS belong to the default project; `assistd keys create --project NAME`
stores further keys hashed (sha256: the keys are 256-bit random tokens, so a slow hash buys
nothing). With no key anywhere the server is open: any bearer token maps to the default project.
"""

from __future__ import annotations

import hashlib
import time

from assistd import ids
from assistd.db.database import Database
from assistd.errors import AuthenticationFailed, InvalidAPIKey, NotFound
from assistd.services.common import now
from assistd.stores import keys as store
from assistd.stores.keys import KeyInfo

DEFAULT_PROJECT_ID = "proj_default"
DEFAULT_PROJECT_NAME = "default"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_hint(key: str) -> str:
    return f"{key[:11]}...{key[-4:]}"


class KeyService:
    """Projects and stored keys: what `assistd keys` manages and what the key ring reads."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def ensure_default_project(self) -> None:
        async with self.db.write() as conn:
            if not await store.project_exists(conn, DEFAULT_PROJECT_ID):
                await store.insert_project(conn, DEFAULT_PROJECT_ID, DEFAULT_PROJECT_NAME, now())

    async def project_id(self, name: str, *, create: bool) -> str:
        async with self.db.write() as conn:
            found = await store.project_named(conn, name)
            if found is not None:
                return found
            if not create:
                raise NotFound(f"No project named '{name}'.")
            project_id = ids.new_id(ids.PROJECT)
            await store.insert_project(conn, project_id, name, now())
            return project_id

    async def create_key(self, project_name: str) -> tuple[KeyInfo, str]:
        project_id = await self.project_id(project_name, create=True)
        secret = ids.new_secret_key()
        info = KeyInfo(ids.new_id(ids.KEY), project_name, key_hint(secret), now(), None)
        async with self.db.write() as conn:
            await store.insert_key(conn, info, project_id, hash_key(secret))
        return info, secret

    async def list_keys(self) -> list[KeyInfo]:
        async with self.db.read() as conn:
            return await store.list_keys(conn)

    async def revoke_key(self, key_id: str) -> None:
        async with self.db.write() as conn:
            if not await store.revoke(conn, key_id, now()):
                raise NotFound(f"No active key with id '{key_id}'.")

    async def active_hashes(self) -> dict[str, str]:
        """key hash → project id, for every key not revoked."""
        async with self.db.read() as conn:
            return await store.active_hashes(conn)

    async def ever_created(self) -> bool:
        """Whether any key was ever stored, revoked or not: once keys exist the server never reopens."""
        async with self.db.read() as conn:
            return await store.any_key(conn)


class KeyRing:
    """The request side: maps a bearer token to a project, from a snapshot refreshed every few seconds
    (so `assistd keys create` / `revoke` in another process take effect without a restart)."""

    def __init__(self, store: KeyService, env_keys: list[str], refresh_seconds: float) -> None:
        self.store = store
        self.env_hashes = {hash_key(k): DEFAULT_PROJECT_ID for k in env_keys}
        self.refresh_seconds = refresh_seconds
        self._db_hashes: dict[str, str] = {}
        self._keys_exist = False
        self._loaded_at = float("-inf")

    async def refresh(self) -> None:
        self._db_hashes = await self.store.active_hashes()
        # Revoking the last key must lock the server, not open it to everyone.
        self._keys_exist = bool(self._db_hashes) or await self.store.ever_created()
        self._loaded_at = time.monotonic()

    @property
    def open(self) -> bool:
        return not self.env_hashes and not self._keys_exist

    async def authenticate(self, authorization: str | None) -> str:
        if time.monotonic() - self._loaded_at > self.refresh_seconds:
            await self.refresh()
        token = _bearer(authorization)
        if self.open:
            return DEFAULT_PROJECT_ID
        if token is None:
            raise AuthenticationFailed()
        # A dict lookup on the digest leaks nothing useful: callers cannot steer a sha256 prefix.
        digest = hash_key(token)
        project_id = self.env_hashes.get(digest) or self._db_hashes.get(digest)
        if project_id is not None:
            return project_id
        raise InvalidAPIKey(
            f"Incorrect API key provided: {key_hint(token) if len(token) > 16 else '****'}. "
            "Ask the operator of this assistd server for a key."
        )


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
