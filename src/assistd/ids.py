"""Object ids: OpenAI's prefixes, then 24 base62 characters that sort by creation time.

The first 8 characters encode the creation time in milliseconds and the rest is random, made
monotonic within a process. Lists therefore page by id alone (`WHERE id > :after`), which keeps
working when the cursor object has been deleted in between pages.
"""

from __future__ import annotations

import secrets
import threading
import time

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # ASCII order
_TIME_CHARS = 8
_RAND_CHARS = 16
_RAND_SPACE = 62**_RAND_CHARS

ASSISTANT = "asst_"
THREAD = "thread_"
CONVERSATION = "conv_"  # a thread created through the Conversations API (docs/conversations.md)
MESSAGE = "msg_"
RUN = "run_"
RESPONSE = "resp_"  # a run made by the Responses API (docs/responses.md): same table, its own id
STEP = "step_"
CALL = "call_"
VECTOR_STORE = "vs_"
FILE_BATCH = "vsfb_"
FILE = "file-"
PROJECT = "proj_"
KEY = "key_"
CONTAINER = "cntr_"  # a code_interpreter container (docs/containers.md)
CONTAINER_FILE = "cfile_"


def _b62(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, rem = divmod(value, 62)
        chars.append(ALPHABET[rem])
    return "".join(reversed(chars))


class _Monotonic:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._last_rand = 0

    def next(self) -> str:
        with self._lock:
            ms = int(time.time() * 1000)
            if ms <= self._last_ms:
                ms = self._last_ms
                rand = self._last_rand + 1 + secrets.randbelow(1 << 20)
                if rand >= _RAND_SPACE:  # practically never: move into the next millisecond
                    ms += 1
                    rand = secrets.randbelow(_RAND_SPACE // 2)
            else:
                rand = secrets.randbelow(_RAND_SPACE // 2)
            self._last_ms, self._last_rand = ms, rand
            return _b62(ms, _TIME_CHARS) + _b62(rand, _RAND_CHARS)


_generator = _Monotonic()


def new_id(prefix: str) -> str:
    return prefix + _generator.next()


def new_secret_key() -> str:
    return "sk-assistd-" + secrets.token_urlsafe(32)
