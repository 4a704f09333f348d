"""kcheckpoint memory: per-process memory, one process's mappings, a hexdump of a range."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import IO, Annotated, Any

import typer

from kcheckpoint.errors import InputError, MemberNotFound, UnsafeOutput
from kcheckpoint.inspect.criu.memory import mapping_rows, process_row
from kcheckpoint.inspect.criu.sinks import RangeCapture
from kcheckpoint.inspect.criu.walk import memory_model, walk_memory
from kcheckpoint.render.memory import hexdump_lines, mappings_text, processes_text

from ..common import (
    ArchiveArgument,
    FormatOption,
    HashOption,
    StrictOption,
    enforce_strict,
    reading,
    report,
)
from ..exit_codes import ExitCode
from ..output import OutputFormat, warn
from ..report import Report, emit

#: The largest range printed as a hexdump; larger ranges need --output.
MAX_DUMP = 64 << 20


def _address(value: str | None, option: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value, 0) if not value.lower().startswith("0x") else int(value, 16)
    except ValueError:
        try:
            return int(value, 16)
        except ValueError as exc:
            raise typer.BadParameter(f"not an address: {value!r}", param_hint=option) from exc


def _open_output(path: str) -> IO[bytes]:
    """A new file, mode 0600; never overwrite."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise UnsafeOutput(f"{path}: already exists; not overwriting it") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot create ({exc.strerror})") from exc
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "wb")


def memory(
    archive: ArchiveArgument,
    pid: Annotated[
        int | None, typer.Option("--pid", "-p", help="List this process's mappings.")
    ] = None,
    address: Annotated[
        str | None,
        typer.Option("--address", "-a", help="Hexdump from this virtual address (with --pid)."),
    ] = None,
    length: Annotated[
        int, typer.Option("--length", "-l", min=1, help="Bytes to dump from --address.")
    ] = 256,
    mapping: Annotated[
        str | None,
        typer.Option("--mapping", "-m", help="Hexdump the whole mapping that holds ADDRESS."),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("--output", help="Write the raw bytes of the range to a new file (0600)."),
    ] = None,
    fmt: FormatOption = OutputFormat.text,
    hash_input: HashOption = None,
    strict: StrictOption = False,
) -> int:
    """Show the memory each process holds in the archive, split by heap, stack, anonymous,
    file-backed and shared; with --pid, its mappings; with --address or --mapping, a hexdump.

    The hexdump shows every row (no lossy collapsing). Pages the archive does not hold (never
    touched, in a parent image, or lazy) are listed and read as zeros.
    """
    if (address is not None or mapping is not None or output is not None) and pid is None:
        raise typer.BadParameter("--address, --mapping and --output need --pid", param_hint="--pid")
    if address is not None and mapping is not None:
        raise typer.BadParameter("give --address or --mapping, not both", param_hint="--mapping")
    if output is not None and address is None and mapping is None:
        raise typer.BadParameter("--output needs --address or --mapping", param_hint="--output")
    with reading(archive, hash_input, fmt) as how:
        scan, model = memory_model(archive, **how)
    live = [p for p in sorted(model.processes.values(), key=lambda p: p.pid) if p.live]
    warnings = model.warnings()
    problems = [*scan.problems, *model.problems]
    report(scan.input, problems, warnings)
    enforce_strict(strict, scan.input.path, problems)

    def table(fields: dict[str, Any], text: Callable[[], str], records: list[Any]) -> int:
        """A table of the archive's memory; its JSON document also has the input, the problems
        and the warnings."""
        doc = {"input": scan.input, **fields, "problems": problems, "warnings": warnings}
        emit(Report(document=doc, inputs=[scan.input], text=text, records=records), fmt)
        return int(ExitCode.OK)

    if pid is None:
        rows = [process_row(p) for p in live]
        return table(
            {"processes": rows, "stale_pages": model.stale_pages},
            lambda: processes_text(rows, model.stale_pages),
            rows,
        )
    pmem = model.processes.get(pid)
    if pmem is None or not pmem.live:
        raise MemberNotFound(
            f"{scan.input.path}: no live process {pid} with memory in this archive",
            hint="run 'kcheckpoint memory ARCHIVE' to list the processes",
        )
    if address is None and mapping is None:
        maps = mapping_rows(pmem)
        return table(
            {"pid": pid, "comm": pmem.comm, "mappings": maps}, lambda: mappings_text(maps), maps
        )
    if mapping is not None:
        at = _address(mapping, "--mapping")
        assert at is not None
        vma = pmem.vma_at(at)
        if vma is None:
            raise typer.BadParameter(
                f"pid {pid} has no mapping at 0x{at:x}", param_hint="--mapping"
            )
        start, end = vma.start, vma.end
    else:
        start = _address(address, "--address") or 0
        end = start + length
    if output is None and end - start > MAX_DUMP:
        raise typer.BadParameter(
            f"{end - start} bytes is too much to print; write them with --output FILE",
            param_hint="--length",
        )
    return _dump(archive, pid, start, end, output, fmt, scan.input, hash_input)


def _dump(
    archive: str,
    pid: int,
    start: int,
    end: int,
    output: str | None,
    fmt: OutputFormat,
    source: Any,
    hash_input: bool | None,
) -> int:
    if archive == "-":
        raise typer.BadParameter("a hexdump reads the archive twice; give a file, not '-'")
    fh = _open_output(output) if output is not None else None
    capture = RangeCapture(pid, start, end, fh)
    try:
        walk_memory(archive, capture, pids={pid}, hash_input=False)
        if fh is not None:
            fh.truncate(end - start)
    finally:
        if fh is not None:
            fh.close()
    holes = [{"start": f"0x{lo:x}", "end": f"0x{hi:x}"} for lo, hi in capture.holes()]
    if output is not None:
        warn(
            f"wrote {end - start} bytes of pid {pid}'s memory to {output} (mode 0600); "
            "it may hold secrets"
        )
        for h in holes:
            warn(f"{h['start']}-{h['end']} is not in the archive; written as zeros")
        return int(ExitCode.OK)
    data = bytes(capture.buffer)
    doc = {
        "pid": pid,
        "start": f"0x{start:x}",
        "end": f"0x{end:x}",
        "data": data.hex(),
        "holes": holes,
    }

    def text() -> str:
        head = "".join(f"# {h['start']}-{h['end']}: not in the archive (zeros)\n" for h in holes)
        return head + "".join(hexdump_lines(data, start))

    emit(Report(document=doc, inputs=[source], text=text, records=[doc]), fmt)
    return int(ExitCode.OK)
