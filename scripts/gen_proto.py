"""Regenerate src/kcheckpoint/_proto from proto/ (run: python scripts/gen_proto.py).

Every ``proto/<pkg>/*.proto`` becomes ``src/kcheckpoint/_proto/<pkg>/*_pb2.py`` (+ ``.pyi``), and a
file that declares a service also gets ``*_pb2_grpc.py``. protoc writes cross-file imports as
``from <pkg> import x_pb2``; they are rewritten to ``from kcheckpoint._proto.<pkg> import x_pb2`` so
the generated code needs nothing on sys.path. ``--check`` regenerates into a temporary directory
and exits 1 when the committed code differs (tests/test_proto_drift.py runs it).
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"
OUT = ROOT / "src" / "kcheckpoint" / "_proto"
HEADER = '"""Generated protobuf code; do not edit. Regenerate with scripts/gen_proto.py."""\n'


def generate(out: Path) -> None:
    from grpc_tools import protoc  # dev dependency, pinned in pyproject.toml

    include = Path(protoc.__file__).parent / "_proto"
    out.mkdir(parents=True, exist_ok=True)
    (out / "__init__.py").write_text(HEADER)
    packages = sorted(p for p in PROTO.iterdir() if p.is_dir()) if PROTO.exists() else []
    for pkg in packages:
        files = sorted(pkg.glob("*.proto"))
        if not files:
            continue
        (out / pkg.name).mkdir(exist_ok=True)
        (out / pkg.name / "__init__.py").write_text(HEADER)
        rel = [str(f.relative_to(PROTO)) for f in files]
        args = ["protoc", f"-I{PROTO}", f"-I{include}", f"--python_out={out}", f"--pyi_out={out}"]
        if any("service " in f.read_text() for f in files):
            args.append(f"--grpc_python_out={out}")
        if protoc.main([*args, *rel]) != 0:
            raise SystemExit(f"protoc failed for {pkg.name}")
        for gen in (out / pkg.name).iterdir():
            if gen.suffix in (".py", ".pyi") and gen.name != "__init__.py":
                text = gen.read_text()
                text = re.sub(
                    r"^from (\w+) import (\w+_pb2)",
                    r"from kcheckpoint._proto.\1 import \2",
                    text,
                    flags=re.M,
                )
                gen.write_text(text)
        grpc_files = [g for g in (out / pkg.name).glob("*_pb2_grpc.py")]
        for g in grpc_files:
            if "class " not in g.read_text():
                g.unlink()


def same_tree(a: Path, b: Path) -> list[str]:
    """Paths that differ between two generated trees (caches ignored)."""

    def files(root: Path) -> set[str]:
        return {
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }

    fa, fb = files(a), files(b)
    diff = sorted(fa ^ fb)
    diff += sorted(f for f in fa & fb if not filecmp.cmp(a / f, b / f, shallow=False))
    return diff


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed code drifts")
    args = parser.parse_args()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / "_proto"
            generate(fresh)
            diff = same_tree(fresh, OUT)
        if diff:
            print("generated code differs from proto/: " + ", ".join(diff), file=sys.stderr)
            print("run: python scripts/gen_proto.py", file=sys.stderr)
            return 1
        return 0
    if OUT.exists():
        shutil.rmtree(OUT)
    generate(OUT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
