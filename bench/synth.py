"""Write large, VALID synthetic checkpoint archives for benchmarks.

Real CRIU framing (our generated protos and ``write_image``), a realistic layout (the member
order Go's tar writer uses: pagemaps and mm before pages, pstree after), and a realistic pagemap:
several processes, each with file-backed code, a heap, anonymous regions and a stack, split into
PE_PRESENT|PE_LAZY runs with holes, as CRIU writes them. Page contents are deterministic for a
seed: zero pages, random pages and text pages (env-like strings), with optional planted strings.
Pages are generated while the tar is written, so memory stays small at any size.

    python bench/synth.py OUT.tar --size 1G [--compress zstd|gzip|none] [--seed N]
        [--processes 4] [--plant STRING ...] [--mutate 0.01] [--criu 4.1|4.2]

``--mutate F`` changes a fraction F of the pages (chosen by the seed), for diff benchmarks: two
archives with the same seed and different --mutate differ only in those pages.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

from kcheckpoint._proto.criu import (
    core_pb2,
    files_pb2,
    inventory_pb2,
    mm_pb2,
    pagemap_pb2,
    pstree_pb2,
    stats_pb2,
)
from kcheckpoint.inspect.criu.images import IMG_SERVICE_MAGIC, write_image
from kcheckpoint.inspect.reader.source import ChunkReader

PAGE = 4096
PE_LAZY = 2
PE_PRESENT = 4
MTIME = 1_764_092_815  # 2025-11-25T17:46:55Z

# VMA status bits (criu/include/image.h) and mmap flags
VMA_REGULAR, VMA_STACK, VMA_HEAP = 1, 1 << 1, 1 << 5
VMA_FILE_PRIVATE, VMA_ANON_PRIVATE = 1 << 6, 1 << 9
MAP_PRIVATE, MAP_ANONYMOUS, MAP_GROWSDOWN = 0x2, 0x20, 0x100

TEXT_WORDS = (
    b"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin HOME=/root LANG=C.UTF-8 "
    b"GET /api/v1/orders?limit=50 HTTP/1.1\r\nHost: shop.svc.cluster.local\r\n"
    b'{"id": 1234, "status": "paid", "items": [{"sku": "A-17", "qty": 2}]} '
    b"SELECT id, total FROM orders WHERE customer_id = $1 ORDER BY created_at DESC "
)


def parse_size(text: str) -> int:
    """'10M', '1G', '2GiB', '512k' or a plain number of bytes."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


@dataclass
class Run:
    """A pagemap entry: ``pages`` pages at ``vaddr``, all present."""

    vaddr: int
    pages: int
    flags: int


@dataclass
class Process:
    pid: int
    ppid: int
    comm: str
    pages_id: int
    vmas: list[Any] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    arg: tuple[int, int] = (0, 0)
    env: tuple[int, int] = (0, 0)

    @property
    def present_pages(self) -> int:
        return sum(r.pages for r in self.runs)


class PageSource:
    """Deterministic page contents, generated on demand from a few templates."""

    def __init__(
        self,
        seed: int,
        plants: list[bytes],
        mutate: float,
        mutate_seed: int,
        random_only: bool = False,
    ) -> None:
        rnd = random.Random(seed)
        #: Every page random (incompressible), as in memory full of compressed or encrypted data.
        self._random_only = random_only
        # random pages come from one sequential stream: incompressible, like real heap data,
        # and identical for the same seed as long as pages are generated in order
        self._stream = random.Random(seed ^ 0x9E3779B9)
        self._text = [self._text_page(rnd) for _ in range(17)]
        self._zero = bytes(PAGE)
        self._seed = seed
        self._plants = plants
        self._mutate = mutate
        self._mutate_seed = mutate_seed

    @staticmethod
    def _text_page(rnd: random.Random) -> bytes:
        words = TEXT_WORDS.split(b" ")
        out = bytearray()
        while len(out) < PAGE:
            out += rnd.choice(words) + b"\x00"
        return bytes(out[:PAGE])

    def page(self, global_index: int, stack_extra: bytes = b"") -> bytes:
        h = (global_index * 2654435761 + self._seed) & 0xFFFFFFFF
        kind = 5 if self._random_only else h % 10
        if kind < 4:
            data = self._zero
        elif kind < 7:
            data = self._stream.randbytes(PAGE)
        else:
            data = self._text[h % len(self._text)]
        if self._plants and h % 997 == 0:
            plant = self._plants[(global_index // 997) % len(self._plants)]
            offset = 100 + h % 1000
            data = data[:offset] + plant + data[offset + len(plant) :]
        if (
            self._mutate
            and ((global_index * 40503 + self._mutate_seed) % 100_000) < self._mutate * 100_000
        ):
            data = bytes(b ^ 0x5A for b in data[:64]) + data[64:]
        if stack_extra:
            data = stack_extra + data[len(stack_extra) :]
        return data


def plan_processes(total_bytes: int, count: int, seed: int) -> list[Process]:
    """Processes whose present pages add up to ``total_bytes`` (rounded to pages)."""
    rnd = random.Random(seed)
    total_pages = max(count * 8, total_bytes // PAGE)
    weights = [rnd.uniform(0.5, 2.0) for _ in range(count)]
    shares = [int(total_pages * w / sum(weights)) for w in weights]
    shares[0] += total_pages - sum(shares)
    procs = []
    for i, share in enumerate(shares):
        pid = 1 if i == 0 else 10 + i
        p = Process(
            pid=pid,
            ppid=0 if i == 0 else 1,
            comm="python3" if i == 0 else f"worker-{i}",
            pages_id=i + 1,
        )
        _layout(p, share, rnd)
        procs.append(p)
    return procs


def _vma(start: int, end: int, prot: int, flags: int, status: int, shmid: int = 0) -> Any:
    return mm_pb2.vma_entry(
        start=start, end=end, pgoff=0, shmid=shmid, prot=prot, flags=flags, status=status, fd=-1
    )


def _layout(p: Process, pages: int, rnd: random.Random) -> None:
    """Code (file-private, a few dirty pages), heap, anonymous regions and a stack."""
    base = 0x5600_0000_0000 + p.pid * 0x10_0000_0000
    code_pages = 16
    p.vmas.append(
        _vma(base, base + code_pages * PAGE * 4, 5, MAP_PRIVATE, VMA_REGULAR | VMA_FILE_PRIVATE, 1)
    )
    p.runs.append(Run(base + PAGE, 2, PE_PRESENT))
    left = pages - 2 - 4  # 4 stack pages at the end
    heap = base + 0x100_0000
    heap_pages = left // 3
    anon_pages = left - heap_pages
    for start, count, status, flags in (
        (heap, heap_pages, VMA_REGULAR | VMA_HEAP | VMA_ANON_PRIVATE, MAP_PRIVATE | MAP_ANONYMOUS),
        (
            0x7F00_0000_0000 + p.pid * 0x1_0000_0000,
            anon_pages,
            VMA_REGULAR | VMA_ANON_PRIVATE,
            MAP_PRIVATE | MAP_ANONYMOUS,
        ),
    ):
        span = count + count // 8 + 1
        p.vmas.append(_vma(start, start + span * PAGE, 3, flags, status))
        addr, remaining = start, count
        while remaining > 0:
            n = min(remaining, rnd.randint(1, 512))
            p.runs.append(Run(addr, n, PE_PRESENT | PE_LAZY))
            addr += (n + (1 if rnd.random() < 0.1 else 0)) * PAGE
            remaining -= n
        assert addr <= start + span * PAGE
    stack_end = 0x7FFF_F000_0000 - p.pid * 0x100_0000
    p.vmas.append(
        _vma(
            stack_end - 32 * PAGE,
            stack_end,
            3,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN,
            VMA_REGULAR | VMA_STACK | VMA_ANON_PRIVATE,
        )
    )
    p.runs.append(Run(stack_end - 4 * PAGE, 4, PE_PRESENT))
    args_at = stack_end - 2 * PAGE
    argv = f"{p.comm}\x00/app/app.py\x00".encode()
    p.arg = (args_at, args_at + len(argv))
    env = b"PATH=/usr/bin\x00HOME=/root\x00SYNTH=1\x00"
    p.env = (p.arg[1], p.arg[1] + len(env))
    p.vmas.sort(key=lambda v: v.start)


def _stack_strings(p: Process) -> bytes:
    argv = f"{p.comm}\x00/app/app.py\x00".encode()
    return argv + b"PATH=/usr/bin\x00HOME=/root\x00SYNTH=1\x00"


def pages_reader(proc: Process, source: PageSource, first_index: int) -> ChunkReader:
    """The bytes of pages-<id>.img, generated as they are read (256 pages at a time)."""
    pages = _iter_pages(proc, source, first_index)
    return ChunkReader(iter(lambda: b"".join(islice(pages, 256)), b""))


def _iter_pages(proc: Process, source: PageSource, first: int) -> Iterator[bytes]:
    index = first
    args_page = proc.arg[0] & ~(PAGE - 1)
    for run in proc.runs:
        for i in range(run.pages):
            vaddr = run.vaddr + i * PAGE
            extra = b""
            if vaddr == args_page:
                extra = bytes(proc.arg[0] - args_page) + _stack_strings(proc)
            yield source.page(index, extra)
            index += 1


def _add(
    tf: tarfile.TarFile,
    name: str,
    data: bytes | None = None,
    *,
    size: int = 0,
    fileobj: BinaryIO | None = None,
    mode: int = 0o644,
) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = MTIME
    info.mode = mode
    if data is not None:
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    elif fileobj is not None:
        info.size = size
        tf.addfile(info, fileobj)
    else:
        info.type = tarfile.DIRTYPE
        tf.addfile(info)


def _images(procs: list[Process], criu: str) -> dict[str, bytes]:
    files = [
        files_pb2.file_entry(
            type=1,
            id=1,
            reg=files_pb2.reg_file_entry(id=1, flags=0, pos=0, name=b"/usr/bin/python3"),
        ),
        files_pb2.file_entry(
            type=1, id=2, reg=files_pb2.reg_file_entry(id=2, flags=0, pos=0, name=b"/dev/null")
        ),
        files_pb2.file_entry(
            type=1, id=3, reg=files_pb2.reg_file_entry(id=3, flags=0, pos=0, name=b"/app")
        ),
        files_pb2.file_entry(
            type=1, id=4, reg=files_pb2.reg_file_entry(id=4, flags=0, pos=0, name=b"/")
        ),
    ]
    images = {
        "inventory.img": write_image(
            "INVENTORY",
            [inventory_pb2.inventory_entry(img_version=2, fdinfo_per_id=True, ns_per_id=True)],
            head_magic=None,
        ),
        "files.img": write_image("FILES", files),
        "fdinfo-1.img": write_image(
            "FDINFO", [files_pb2.fdinfo_entry(id=2, flags=0, type=1, fd=0)]
        ),
        "pstree.img": write_image(
            "PSTREE",
            [
                pstree_pb2.pstree_entry(pid=p.pid, ppid=p.ppid, pgid=1, sid=1, threads=[p.pid])
                for p in procs
            ],
        ),
    }
    for p in procs:
        tc = core_pb2.task_core_entry(
            task_state=1, exit_code=0, personality=0, flags=0, blk_sigset=0, comm=p.comm.encode()
        )
        images[f"core-{p.pid}.img"] = write_image("CORE", [core_pb2.core_entry(mtype=1, tc=tc)])
        images[f"ids-{p.pid}.img"] = write_image(
            "IDS",
            [core_pb2.task_kobj_ids_entry(vm_id=p.pid, files_id=1, fs_id=p.pid, sighand_id=p.pid)],
        )
        images[f"fs-{p.pid}.img"] = write_image("FS", [files_pb2.fs_entry(cwd_id=3, root_id=4)])
        mm = mm_pb2.mm_entry(
            exe_file_id=1,
            vmas=p.vmas,
            mm_arg_start=p.arg[0],
            mm_arg_end=p.arg[1],
            mm_env_start=p.env[0],
            mm_env_end=p.env[1],
        )
        images[f"mm-{p.pid}.img"] = write_image("MM", [mm])
        head = pagemap_pb2.pagemap_head(pages_id=p.pages_id)
        entries = []
        for r in p.runs:
            if criu == "4.2":
                entries.append(
                    pagemap_pb2.pagemap_entry(
                        vaddr=r.vaddr, compat_nr_pages=0, nr_pages=r.pages, flags=r.flags
                    )
                )
            else:
                entries.append(
                    pagemap_pb2.pagemap_entry(vaddr=r.vaddr, compat_nr_pages=r.pages, flags=r.flags)
                )
        images[f"pagemap-{p.pid}.img"] = write_image("PAGEMAP", [head, *entries])
    return images


def write_archive(
    out: Path,
    size: int,
    *,
    compress: str = "none",
    seed: int = 1,
    processes: int = 4,
    plants: list[str] | None = None,
    mutate: float = 0.0,
    criu: str = "4.1",
    incompressible: bool = False,
) -> dict[str, Any]:
    """Write the archive; return what was written (for benchmarks to print).

    Pages are a mix of zero, random and text pages, or only random ones with ``incompressible``.
    """
    procs = plan_processes(size, processes, seed)
    source = PageSource(
        seed, [s.encode() for s in plants or []], mutate, seed + 7919, incompressible
    )
    images = _images(procs, criu)
    spec = {
        "ociVersion": "1.2.0",
        "process": {
            "args": ["python3", "/app/app.py"],
            "env": ["PATH=/usr/bin", "SYNTH=1"],
            "cwd": "/app",
        },
        "annotations": {"io.container.manager": "libpod"},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
    }
    config = {
        "id": f"{seed:064x}",
        "name": "synth",
        "rootfsImageName": "localhost/synth:1",
        "createdTime": "2026-11-25T17:46:41.127835902Z",
        "runtime": "crun",
    }
    stats = stats_pb2.stats_entry(
        dump=stats_pb2.dump_stats_entry(
            freezing_time=1000,
            frozen_time=200000,
            memdump_time=100000,
            memwrite_time=90000,
            pages_scanned=sum(p.present_pages for p in procs),
            pages_skipped_parent=0,
            pages_written=sum(p.present_pages for p in procs),
            pages_lazy=0,
        )
    )
    rootfs = io.BytesIO()
    with tarfile.open(fileobj=rootfs, mode="w", format=tarfile.GNU_FORMAT) as rf:
        _add(rf, "app/data/app.log", b"started\n" * 10)
        _add(rf, "app/data/new.txt", b"hello synth\n")

    compressor: Any
    raw = open(out, "wb")  # noqa: SIM115
    if compress == "zstd":
        import zstandard

        compressor = zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=False)
    elif compress == "gzip":
        import gzip

        compressor = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1)
    else:
        compressor = raw
    started = time.perf_counter()
    with compressor, tarfile.open(fileobj=compressor, mode="w|", format=tarfile.GNU_FORMAT) as tf:
        _add(tf, "config.dump", json.dumps(config, indent=2).encode(), mode=0o600)
        _add(tf, "spec.dump", json.dumps(spec, indent=2).encode(), mode=0o600)
        _add(tf, "network.status", b"null", mode=0o600)
        _add(tf, "stats-dump", write_image("STATS", [stats], head_magic=IMG_SERVICE_MAGIC))
        _add(tf, "checkpoint")
        before_pages = sorted(n for n in images if n < "pages-")
        after_pages = sorted(n for n in images if n >= "pages-")
        for name in before_pages:
            _add(tf, f"checkpoint/{name}", images[name])
        index = 0
        for p in sorted(procs, key=lambda q: q.pages_id):
            n = p.present_pages
            _add(
                tf,
                f"checkpoint/pages-{p.pages_id}.img",
                size=n * PAGE,
                fileobj=io.BufferedReader(pages_reader(p, source, index), 1 << 20),
            )  # type: ignore[arg-type]
            index += n
        for name in after_pages:
            _add(tf, f"checkpoint/{name}", images[name])
        _add(tf, "rootfs-diff.tar", rootfs.getvalue())
        _add(tf, "deleted.files", b'["/app/README"]', mode=0o600)
    if compressor is not raw:
        raw.close()
    return {
        "path": str(out),
        "bytes": out.stat().st_size,
        "memory_bytes": sum(p.present_pages for p in procs) * PAGE,
        "processes": len(procs),
        "seconds": time.perf_counter() - started,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", default="64M", help="memory pages to write, e.g. 10M, 1G")
    parser.add_argument("--compress", choices=["none", "zstd", "gzip"], default="none")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--plant", action="append", default=[], help="a string to plant in pages")
    parser.add_argument("--mutate", type=float, default=0.0, help="fraction of pages to change")
    parser.add_argument("--criu", choices=["4.1", "4.2"], default="4.1")
    args = parser.parse_args(argv)
    info = write_archive(
        args.out,
        parse_size(args.size),
        compress=args.compress,
        seed=args.seed,
        processes=args.processes,
        plants=args.plant,
        mutate=args.mutate,
        criu=args.criu,
    )
    print(json.dumps(info, sort_keys=True), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
