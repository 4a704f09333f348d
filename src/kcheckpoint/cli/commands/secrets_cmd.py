"""kcheckpoint secrets: a redacted secret scan of memory and files."""

from __future__ import annotations

import os
import secrets as secrets_module
from pathlib import Path
from typing import Annotated

import typer

from kcheckpoint.inspect.memory.secrets import SecretsResult, scan_archive_secrets
from kcheckpoint.inspect.rules.secrets import CANDIDATE_RULES, ENTROPY_RULE, RULES
from kcheckpoint.render.jsonout import to_data
from kcheckpoint.render.secrets import CSV_COLUMNS, csv_rows, secrets_text

from ..common import (
    FormatOption,
    HashOption,
    OptionalArchivesArgument,
    StrictOption,
    enforce_strict,
    reading,
    report,
    want_hash,
)
from ..exit_codes import ExitCode
from ..fleet import SchedulerOption, TokenFileOption, WorkersOption, stream_checked, wants_fleet
from ..output import OutputFormat, warn
from ..report import Report, emit


def _key(value: str | None) -> bytes | None:
    """The fingerprint key: the one given, else this user's own key (so reports repeat)."""
    if value is None:
        return user_key()
    try:
        return bytes.fromhex(value)
    except ValueError:
        return value.encode()


def user_key() -> bytes | None:
    """A random key kept in the user's config directory (0600), made on first use.

    Fingerprints under it are stable from run to run, so reports of the same input compare
    equal, yet they cannot be recomputed by anyone who holds only a report. None (a random key
    for this run) when the directory cannot be written.
    """
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    path = Path(config) / "kcheckpoint" / "fingerprint.key"
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = path.read_bytes()
            if len(key) >= 16:
                return key
            raise OSError(f"{path} is too short to be a key") from None
        with os.fdopen(fd, "wb") as fh:
            key = secrets_module.token_bytes(32)
            fh.write(key)
        return key
    except OSError as exc:
        warn(f"no fingerprint key file ({exc}); fingerprints are random for this run")
        return None


def secrets(
    archives: OptionalArchivesArgument = None,
    show_secrets: Annotated[
        bool,
        typer.Option("--show-secrets", help="Print the secrets in clear (with a warning)."),
    ] = False,
    fingerprint_key: Annotated[
        str | None,
        typer.Option(
            "--fingerprint-key",
            help="Key of the HMAC fingerprints (hex or text), to correlate findings across "
            "machines. Default: your own random key, kept in "
            "$XDG_CONFIG_HOME/kcheckpoint/fingerprint.key (0600).",
            envvar="KCHECKPOINT_FINGERPRINT_KEY",
        ),
    ] = None,
    memory_only: Annotated[
        bool, typer.Option("--memory-only", help="Scan memory pages only, not the files.")
    ] = False,
    pid: Annotated[
        list[int] | None, typer.Option("--pid", "-p", help="Scan only this process's memory.")
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="Keyword engine: auto (hyperscan when installed), hyperscan or python.",
        ),
    ] = "auto",
    entropy: Annotated[
        bool,
        typer.Option(
            "--entropy",
            help="Also report long high-entropy tokens assigned to key/secret/token names "
            "(20+ characters, 3.5+ bits per character), at low confidence.",
        ),
    ] = False,
    list_rules: Annotated[
        bool, typer.Option("--list-rules", help="List the rules and exit.")
    ] = False,
    fmt: FormatOption = OutputFormat.text,
    hash_input: HashOption = None,
    strict: StrictOption = False,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    token_file: TokenFileOption = None,
) -> int:
    """Scan memory pages, spec.dump env, rootfs-diff files, logs and tmpfs/shm tarballs for
    secrets.

    Every finding has a rule, a location (pid, comm, address, mapping; or member and path), a
    redacted preview (the rule's public prefix at most), the length and a keyed fingerprint
    that groups the same secret seen in many places. Nothing is sent over the network. Exit 1
    when anything is found, 0 when nothing is.
    """
    if list_rules:
        from kcheckpoint.render.text import table

        from ..output import out

        listed = [*RULES, *CANDIDATE_RULES, ENTROPY_RULE]
        out(
            table(
                ["rule", "confidence", "keywords", "description"],
                [
                    [r.id, r.confidence, " ".join(k.decode() for k in r.keywords), r.description]
                    for r in listed
                ],
            )
        )
        return int(ExitCode.OK)
    if not archives:
        raise typer.BadParameter("missing ARCHIVE", param_hint="ARCHIVE")
    if engine not in ("auto", "hyperscan", "python"):
        raise typer.BadParameter("choose auto, hyperscan or python", param_hint="--engine")
    if wants_fleet(archives, scheduler, workers, token_file, one_is_many=True):
        options: dict[str, object] = {
            "engine": engine,
            "fingerprint_key": _key(fingerprint_key),
            "show_secrets": show_secrets,
            "memory_only": memory_only,
            "pids": set(pid) if pid else None,
            "hash_input": want_hash(hash_input, fmt),
            "entropy": entropy,
        }
        # one row per archive, streamed; exit as a failure first, else 1 when anything is found
        failure, results = stream_checked(
            "secrets",
            archives,
            options,
            fmt,
            strict,
            scheduler,
            workers,
            warn_about=lambda r: _warn_shown(r, show_secrets),
            text_block=secrets_text,
            csv_columns=CSV_COLUMNS,
            csv_rows=csv_rows,
            extra_provenance=lambda rs: {"ruleset": to_data(rs[0].ruleset)} if rs else {},
        )
        if failure is not None:
            return int(failure)
        return int(ExitCode.NEGATIVE if any(r.findings for r in results) else ExitCode.OK)
    (archive,) = archives
    try:
        with reading(archive, hash_input, fmt) as how:
            result = scan_archive_secrets(
                archive,
                engine=engine,
                fingerprint_key=_key(fingerprint_key),
                show_secrets=show_secrets,
                memory_only=memory_only,
                pids=set(pid) if pid else None,
                entropy=entropy,
                **how,
            )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--engine") from exc
    report(result.input, result.problems, result.warnings)
    if not result.copies_searched:
        warn(f"{result.input.path}: stdin is read once: copies of flagged values not searched")
    _warn_shown(result, show_secrets)
    enforce_strict(strict, result.input.path, result.problems)
    emit(
        Report(
            document=result,
            inputs=[result.input],
            text=lambda: secrets_text(result),
            records=result.findings,
            csv_columns=CSV_COLUMNS,
            csv_rows=csv_rows(result),
            extra_provenance={"ruleset": to_data(result.ruleset)},
        ),
        fmt,
    )
    return int(ExitCode.NEGATIVE if result.findings else ExitCode.OK)


def _warn_shown(result: SecretsResult, show_secrets: bool) -> None:
    if show_secrets and result.findings:
        warn(f"{result.input.path}: --show-secrets: the output holds secrets in clear")
