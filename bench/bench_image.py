"""Benchmark `kcheckpoint image` and reading an image from a registry.

1. `kcheckpoint image ARCHIVE --oci-archive OUT` (gzip and zstd layers) on a synthetic archive
   (default 1 GiB of memory pages, bench/synth.py), against `tar -c` of the same members piped
   into `gzip -6` or `zstd -3`, runs interleaved. Prints wall time, the ratio (ours / baseline,
   target <= 1.3) and our peak RSS (target <= 150 MiB).
2. `kcheckpoint summary docker://127.0.0.1:PORT/bench/ckpt:TAG` (gzip and zstd layers) against
   `skopeo copy` of the same image to a local directory, from Debian's docker-registry started
   here on loopback (target: ours / skopeo <= 1.0). skopeo only copies the compressed layer;
   summary also decompresses all of it, which for gzip is most of its time.

    python bench/bench_image.py [--size 1G] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import arguments, interleaved, workdir
from synth import parse_size, write_archive

from tests._registry import registry

KCHECKPOINT = [sys.executable, "-m", "kcheckpoint", "-q"]


def measure(workdir: Path, size: str, repeat: int) -> None:
    archive = workdir / f"synth-{size}.tar"
    if not archive.exists():
        write_archive(archive, parse_size(size), compress="none", seed=1)
    members = workdir / "members"
    if not members.exists():
        with tarfile.open(archive) as tar:
            tar.extractall(members, filter="tar")
    out = workdir / "out"
    try:
        print(f"archive {archive.stat().st_size / 2**20:.0f} MiB, {repeat} runs each\n")
        print(f"{'case':<34} {'ours s':>7} {'base s':>7} {'ours/base':>9} {'RSS MiB':>8}")
        for compression, tool in (("gzip", "gzip -6"), ("zstd", "zstd -3 -q")):
            ours, base, rss = interleaved(
                [
                    *KCHECKPOINT,
                    "image",
                    str(archive),
                    "ckpt:1",
                    "--oci-archive",
                    str(out),
                    "--compression",
                    compression,
                ],
                f"tar -cf - -C '{members}' . | {tool} > '{out}'",
                repeat,
                [out],
            )
            print(
                f"{'image, ' + compression + ' layer':<34} {ours:>7.2f} {base:>7.2f} "
                f"{ours / base:>9.2f} {rss / 2**20:>8.1f}"
            )
        print("  baseline: tar -c of the same members | gzip -6 or zstd -3 (target <= 1.3)\n")
        if shutil.which("docker-registry") and shutil.which("skopeo"):
            with registry(workdir / "registry") as running:
                for compression in ("gzip", "zstd"):
                    ref = f"{running.host}/bench/ckpt:{compression}"
                    subprocess.run(
                        [
                            *KCHECKPOINT,
                            "image",
                            str(archive),
                            ref,
                            "--push",
                            "--insecure",
                            "--compression",
                            compression,
                        ],
                        check=True,
                        stdout=subprocess.DEVNULL,
                    )
                    copy = workdir / "skopeo-dir"
                    ours, base, rss = interleaved(
                        [*KCHECKPOINT, "summary", f"docker://{ref}"],
                        [
                            "skopeo",
                            "copy",
                            "-q",
                            "--src-tls-verify=false",
                            f"docker://{ref}",
                            f"dir:{copy}",
                        ],
                        repeat,
                        [copy],
                    )
                    label = f"summary docker:// ({compression} layer)"
                    print(
                        f"{label:<34} {ours:>7.2f} {base:>7.2f} {ours / base:>9.2f} "
                        f"{rss / 2**20:>8.1f}"
                    )
                print("  baseline: skopeo copy of the same image to a local dir (target <= 1.0)")
        else:
            print("docker-registry or skopeo missing: registry case skipped")
    finally:
        out.unlink(missing_ok=True)


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--size", default="1G", help="memory pages in the synthetic archive")
    args = parser.parse_args()
    with workdir(args.keep, "kcheckpoint-bench-image-") as work:
        measure(work, args.size, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
