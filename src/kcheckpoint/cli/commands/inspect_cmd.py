"""kcheckpoint inspect: the process tree, command lines, env, files, sockets, mounts and stats."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from kcheckpoint.inspect.criu.checkpoint import inspect_path
from kcheckpoint.render.inspect_tree import Selection, json_data, limit_to, tree_text
from kcheckpoint.render.jsonout import dumps_lines

from ..common import ArchiveArgument, HashOption, StrictOption, enforce_strict, report, stdin_for
from ..exit_codes import ExitCode
from ..output import Progress, error, out, out_each, warn
from ..report import json_report_pieces


class InspectFormat(StrEnum):
    """--format values of inspect: a tree (also called text), or JSON data."""

    tree = "tree"
    text = "text"
    json = "json"
    jsonl = "jsonl"


InspectFormatOption = Annotated[
    InspectFormat,
    typer.Option(
        "--format",
        "-o",
        case_sensitive=False,
        help="tree (default; 'text' is the same), json (one document, sorted keys) or jsonl.",
    ),
]


def inspect(
    path: ArchiveArgument,
    fmt: InspectFormatOption = InspectFormat.tree,
    ps_tree: Annotated[
        bool, typer.Option("--ps-tree", help="The process tree (the default section).")
    ] = False,
    files: Annotated[
        bool, typer.Option("--files", help="Open files, cwd and root per process.")
    ] = False,
    sockets: Annotated[bool, typer.Option("--sockets", help="Unix, inet and packet sockets.")] = (
        False
    ),
    mounts: Annotated[
        bool, typer.Option("--mounts", help="Mounts from the CRIU images and the OCI spec.")
    ] = False,
    stats: Annotated[bool, typer.Option("--stats", help="CRIU dump statistics.")] = False,
    metadata: Annotated[
        bool, typer.Option("--metadata", help="Pod, namespace and spec annotations.")
    ] = False,
    env: Annotated[
        bool,
        typer.Option("--env", help="Environment variables read from memory (values redacted)."),
    ] = False,
    namespaces: Annotated[bool, typer.Option("--namespaces", help="Namespaces.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Every section.")] = False,
    pid: Annotated[
        int | None, typer.Option("--pid", "-p", help="Limit the output to this process's subtree.")
    ] = None,
    show_secrets: Annotated[
        bool,
        typer.Option("--show-secrets", help="Show environment values (they may hold secrets)."),
    ] = False,
    hash_input: HashOption = None,
    strict: StrictOption = False,
) -> int:
    """Show what a checkpoint holds, decoded from its CRIU images.

    By default a tree with the container and its process tree (command lines read from memory).
    Environment values are redacted unless --show-secrets is given.
    """
    sel = Selection.of(
        all_=all_,
        ps_tree=ps_tree or pid is not None,
        files=files,
        sockets=sockets,
        mounts=mounts,
        stats=stats,
        metadata=metadata,
        env=env,
        namespaces=namespaces,
    )
    with Progress(path) as progress:
        result = inspect_path(
            path,
            stdin=stdin_for(path),
            show_secrets=show_secrets,
            # a JSON report carries the input's SHA-256 in its provenance
            hash_input=True if hash_input is None and fmt is InspectFormat.json else hash_input,
            progress=progress,
        )
    report(result.input, result.problems, result.warnings)
    if show_secrets and sel.env:
        warn(f"{result.input.path}: showing environment values, which may hold secrets")
    enforce_strict(strict, result.input.path, result.problems)
    if pid is not None:
        result = limit_to(result, pid)
        if not result.processes:
            error(f"no process with PID {pid} (use 'kcheckpoint inspect --ps-tree' to list them)")
            return int(ExitCode.NEGATIVE)
    if fmt is InspectFormat.json:
        out_each(json_report_pieces(json_data(result, sel), [result.input]))
    elif fmt is InspectFormat.jsonl:
        out(dumps_lines([json_data(result, sel)]))
    else:
        out(tree_text(result, sel))
    return int(ExitCode.OK)
