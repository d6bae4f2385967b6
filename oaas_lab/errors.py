"""The error tree of oaas-lab.

Every error a user can cause carries what went wrong, where, and how to fix it, so the CLI can
print it on one line and exit with code 2 (``UserError``) without a traceback.

    OaasLabError
    +-- UserError            bad input: configuration, arguments, replica counts (exit 2)
    |   +-- ConfigError      a lab file or environment value is invalid
    |   +-- QuorumError      a quorum component was asked for an even or too small count
    |   +-- MissingToolError a program oaas-lab needs is not installed on this host
    +-- LabError             the lab itself failed (exit 1)
        +-- NotReadyError    a component did not become ready within its timeout
        +-- CommandError     a command run for the lab failed
"""

from __future__ import annotations


class OaasLabError(Exception):
    """Base class of every error raised on purpose by oaas-lab."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.one_line()

    def one_line(self) -> str:
        """The message and the fix, on one line, as the CLI prints it."""
        text = " ".join(self.message.split())
        if self.hint:
            text = f"{text} -- {' '.join(self.hint.split())}"
        return text


class UserError(OaasLabError):
    """Bad input from the user; nothing was changed."""

    exit_code = 2


class ConfigError(UserError):
    """An invalid lab file or environment setting.

    ``source`` names the file (or ``OAAS_LAB_*`` variable), ``field`` the dotted path.
    """

    def __init__(self, source: str, field: str, problem: str, fix: str) -> None:
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {problem}", hint=fix)
        self.source = source
        self.field = field


class QuorumError(UserError):
    """A quorum component may only run an odd number of members (at least 1)."""


class MissingToolError(UserError):
    """A program oaas-lab needs is not installed; names it, its Debian package and the fix."""

    def __init__(self, tool: str, package: str, purpose: str) -> None:
        super().__init__(
            f"{tool} is not installed (Debian package {package}); it {purpose}",
            hint="run scripts/install-deps (as root)",
        )
        self.tool = tool
        self.package = package


class LabError(OaasLabError):
    """The lab failed to do what it was asked."""


class NotReadyError(LabError):
    """A component did not become ready in time; says which, why, and which log to read."""

    def __init__(self, component: str, reason: str, log: str = "") -> None:
        hint = f"read {log}" if log else ""
        super().__init__(f"{component} not ready: {reason}", hint=hint)
        self.component = component
        self.reason = reason
        self.log = log


class CommandError(LabError):
    """A command run on behalf of the lab exited non-zero."""

    def __init__(self, argv: list[str], returncode: int, stderr: str) -> None:
        tail = stderr.strip().splitlines()[-1:] or [""]
        super().__init__(f"command {argv[0]!r} exited {returncode}: {tail[0]}")
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
