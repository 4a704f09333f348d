"""The per-archive work of summary, secrets, search and manifest, as plain functions of plain
data: what a Dask worker runs, and what a local run calls in turn.

A task never raises for a bad archive: it returns an :class:`Outcome` whose ``failure`` says
what went wrong, so that one failed input is one error row and the rest of the run goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kcheckpoint import errors


@dataclass(frozen=True, slots=True)
class Failure:
    """Why one archive gave no result: the error's class name in ``kcheckpoint.errors`` (or
    the name of an unexpected exception, with ``internal`` set), its message and hint."""

    type: str
    message: str
    hint: str | None = None
    internal: bool = False

    @classmethod
    def of(cls, exc: BaseException) -> Failure:
        if isinstance(exc, errors.KCheckpointError):
            return cls(type(exc).__name__, exc.message, exc.hint)
        return cls(type(exc).__name__, f"{type(exc).__name__}: {exc}", internal=True)

    def error(self) -> errors.KCheckpointError | None:
        """The kcheckpoint error again (for its exit code), or None for an internal one."""
        cls = getattr(errors, self.type, None)
        if self.internal or not (
            isinstance(cls, type) and issubclass(cls, errors.KCheckpointError)
        ):
            return None
        return cls(self.message, hint=self.hint)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One archive's result (a model object) or failure, and its place in the input order."""

    index: int
    name: str
    result: Any = None
    failure: Failure | None = None


class Token:
    """A bearer token that never shows in a repr, a log line or a task's description."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "Token(***)"


@dataclass(frozen=True, slots=True)
class Job:
    """What to do with each archive: the command and its options (plain, picklable values)."""

    command: str  # summary | secrets | search | manifest
    options: dict[str, Any] = field(default_factory=dict)
    token: Token | None = None


def run_one(job: Job, index: int, name: str) -> Outcome:
    """Read one archive where it lives and run the job's command on it."""
    from .inputs import register, set_token

    register()
    if job.token is not None:
        set_token(job.token.value)  # else the worker's own $KCHECKPOINT_TOKEN, if any
    try:
        result = _COMMANDS[job.command](name, job.options)
    except Exception as exc:
        return Outcome(index, name, failure=Failure.of(exc))
    return Outcome(index, name, result=result)


def _summary(name: str, options: dict[str, Any]) -> Any:
    from kcheckpoint.inspect import summarize_path

    return summarize_path(name, hash_input=options.get("hash_input"))


def _secrets(name: str, options: dict[str, Any]) -> Any:
    from kcheckpoint.inspect.memory.secrets import scan_archive_secrets

    return scan_archive_secrets(
        name,
        engine=options.get("engine", "auto"),
        fingerprint_key=options.get("fingerprint_key"),
        show_secrets=bool(options.get("show_secrets")),
        memory_only=bool(options.get("memory_only")),
        pids=options.get("pids"),
        hash_input=options.get("hash_input"),
        entropy=bool(options.get("entropy")),
    )


def _search(name: str, options: dict[str, Any]) -> Any:
    from kcheckpoint.inspect.memory.search import compile_needle, search_archive

    needle = compile_needle(
        options["pattern"],
        regex=bool(options.get("regex")),
        utf16=bool(options.get("utf16")),
        ignore_case=bool(options.get("ignore_case")),
        max_match=options.get("max_match", 4096),
    )
    return search_archive(
        name,
        needle,
        pids=options.get("pids"),
        everywhere=bool(options.get("everywhere")),
        context=options.get("context", 0),
        hash_input=options.get("hash_input"),
        max_hits=options.get("max_hits"),
    )


def _manifest(name: str, options: dict[str, Any]) -> Any:
    from kcheckpoint.inspect.evidence.manifest import build_manifest

    return build_manifest(name)


_COMMANDS = {
    "summary": _summary,
    "secrets": _secrets,
    "search": _search,
    "manifest": _manifest,
}
COMMANDS = frozenset(_COMMANDS)
