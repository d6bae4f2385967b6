"""Lab secrets: generated once with a CSPRNG, stored 0600, reused, never shown.

The store is one YAML file in the lab's state directory. A secret is created the first time
it is asked for and read back on every later run, so a lab keeps its passwords across
``up``/``down``. Values are wrapped in ``Secret`` whose ``str``/``repr`` is masked, so a secret
that reaches a log line or a report by mistake shows as ``******``. Code that must hand the
value to a daemon calls ``reveal()`` explicitly.
"""

from __future__ import annotations

import base64
import fcntl
import os
import secrets as _random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from oaas_lab.errors import ConfigError

MASK = "******"
FILE_NAME = "secrets.yaml"


class Secret:
    """A secret value that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The clear value, for the one place that must hand it to a daemon."""
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and _random.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


def _password() -> str:
    # URL-safe characters only: these values end up in my.cnf, SQL, AMQP URLs and INI files.
    return _random.token_urlsafe(24)


def _erlang_cookie() -> str:
    # Erlang cookies must be plain upper-case letters to be accepted by every RabbitMQ tool.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "".join(_random.choice(alphabet) for _ in range(32))


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def _token() -> str:
    return _random.token_hex(32)


GENERATORS = {
    "password": _password,
    "erlang_cookie": _erlang_cookie,
    "fernet_key": _fernet_key,
    "token": _token,
}


_THREAD_LOCK = threading.Lock()


class SecretStore:
    """The secrets of one lab, kept in ``<lab_dir>/secrets.yaml`` with mode 0600.

    Safe to use from several threads and processes at once: a secret is created under a lock
    (a thread lock plus ``flock`` on a lock file) after re-reading the file, so two components
    starting in parallel can never generate two different values for one name.
    """

    def __init__(self, lab_dir: Path) -> None:
        self.path = lab_dir / FILE_NAME
        self._cache: dict[str, str] | None = None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_suffix(".lock")
        with _THREAD_LOCK:
            fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def _load(self) -> dict[str, str]:
        if self._cache is None:
            if self.path.exists():
                mode = self.path.stat().st_mode & 0o777
                if mode & 0o077:
                    raise ConfigError(
                        str(self.path), "", f"mode {mode:o} lets others read the lab secrets",
                        f"run: chmod 600 {self.path}",
                    )
                data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
                if not isinstance(data, dict):
                    raise ConfigError(
                        str(self.path), "", "is not a mapping", "restore it or remove the lab"
                    )
                self._cache = {str(k): str(v) for k, v in data.items()}
            else:
                self._cache = {}
        return self._cache

    def get(self, name: str, kind: str = "password") -> Secret:
        """The secret called ``name``, generated (and saved) on first use."""
        data = self._load()
        if name not in data:
            with self._locked():
                self._cache = None  # another thread or process may have written meanwhile
                data = self._load()
                if name not in data:
                    data[name] = GENERATORS[kind]()
                    self._save(data)
        return Secret(data[name])

    def names(self) -> list[str]:
        """The names of the stored secrets (never their values)."""
        return list(self._load())

    def values(self) -> list[str]:
        """Every stored clear value; used by tests and by the log scrubber only."""
        return list(self._load().values())

    def _save(self, data: dict[str, str]) -> None:
        tmp = self.path.with_suffix(f".tmp.{os.getpid()}.{threading.get_ident()}")
        # Create with 0600 from the start: a chmod after writing would leave a window.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yaml.safe_dump(data, handle, default_flow_style=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
