"""Benchmark `kcheckpoint secrets` against gitleaks on the real fixtures, side by side.

For each fixture archive:
- gitleaks: `kcheckpoint extract` writes the members (rootfs-diff files included) and each
  process's memory (`--memory PID`) to a temporary tree, and `gitleaks detect --no-git` scans it;
  timed alone and with the extraction;
- ours: `kcheckpoint secrets ARCHIVE --format json`, end to end (interpreter start-up included);
- per planted secret (FIXTURES.md and workload/app.py, beside the fixtures): the occurrences
  the archive holds (a plain byte count over the pages files, spec.dump, config.dump and the
  other files, an oracle independent of both tools) and how many each tool reports; the
  findings of each that match no planted secret; wall time and peak RSS of each.

Targets (printed as PASS/FAIL): 100 % of planted occurrences; every planted secret gitleaks
finds, we find; our non-planted findings <= gitleaks's; time <= 0.2x gitleaks (detect alone);
peak RSS <= 100 MiB.

    python bench/bench_secrets_gitleaks.py [--fixture PATH ...] [--repeat 3]

gitleaks is not a dependency (Debian package `gitleaks`, in Debian 13 "trixie" and later, not
in bookworm): without it the script says so and exits 0; CI does not run it. No secret value
is printed: values are matched inside the script only.
Note: gitleaks' default allow-list skips files named *.bin, so it does not read the
`--memory` dumps; it reads the same bytes in checkpoint/pages-*.img.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "fixtures"
KC = [sys.executable, "-m", "kcheckpoint", "-q"]
MIB = 1 << 20
PRIVATE_KEY_HEAD = "-----BEGIN PRIVATE KEY-----"


@dataclass
class Planted:
    """A fixture secret: a label to print, and its value (never printed)."""

    label: str
    value: str
    expected: int = 0
    ours: int = 0
    theirs: int = 0


@dataclass
class Measure:
    seconds: float
    rss: int
    out: bytes = b""


@dataclass
class Row:
    fixture: str
    planted: list[Planted]
    ours: Measure
    gitleaks: Measure
    extract_seconds: float
    ours_other: int = 0
    theirs_other: int = 0
    notes: list[str] = field(default_factory=list)


def run(cmd: list[str], ok: tuple[int, ...] = (0, 1)) -> Measure:
    """Wall seconds, peak RSS (bytes) and stdout of one command."""
    with tempfile.TemporaryFile() as sink:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in ok:
            raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}")
        sink.seek(0)
        return Measure(seconds, usage.ru_maxrss * 1024, sink.read())


def planted_secrets(workload: Path, spec_env: dict[str, str]) -> list[Planted]:
    """The fixture secrets, from FIXTURES.md's table, spec.dump's env and workload/app.py."""
    app = workload.read_text()
    table = (SHARED / "FIXTURES.md").read_text()
    named = set(re.findall(r"^\s*\| `([^`]+)` \|", table, re.MULTILINE))
    out = [
        Planted("API_TOKEN (spec.dump env)", spec_env["API_TOKEN"]),
        Planted("DB_PASSWORD (spec.dump env)", spec_env["DB_PASSWORD"]),
    ]
    akia = next(n for n in named if n.startswith("AKIA"))
    out.append(Planted("AWS access key id", akia))
    secret = re.search(r'"aws_secret_access_key": "([^"]+)"', app)
    ghp = re.search(r'"github_token": "(ghp_)" \+ "([^"]+)"', app)
    if secret:
        out.append(Planted("AWS secret access key", secret.group(1)))
    if ghp:
        out.append(Planted("GitHub token", ghp.group(1) + ghp.group(2)))
    parts = ({"alg": "HS256", "typ": "JWT"}, {"sub": "fixture-user", "iat": 1700000000})
    jwt = ".".join(
        base64.urlsafe_b64encode(json.dumps(p).encode()).decode().rstrip("=") for p in parts
    )
    if "c2lnbmF0dXJlLWZpeHR1cmU" in app:
        out.append(Planted("JWT", jwt + ".c2lnbmF0dXJlLWZpeHR1cmU"))
    if PRIVATE_KEY_HEAD in named:
        out.append(Planted("private key (PEM)", PRIVATE_KEY_HEAD))
    return out


def _truth_files(tree: Path) -> list[Path]:
    """The extracted files whose bytes are the archive's, each once: not the --memory dumps
    (the same bytes as pages-*.img) and not the nested tars (extracted as rootfs-diff/...)."""
    skip = {"rootfs-diff.tar"}
    return [
        p
        for p in tree.rglob("*")
        if p.is_file() and not p.relative_to(tree).parts[0].startswith("memory-")
        if p.name not in skip
    ]


def count_expected(tree: Path, planted: list[Planted]) -> None:
    blobs = [p.read_bytes() for p in _truth_files(tree)]
    for item in planted:
        needle = item.value.encode()
        item.expected = sum(b.count(needle) for b in blobs)


def _match(planted: list[Planted], value: str | None, rule: str) -> Planted | None:
    for item in planted:
        if item.value == PRIVATE_KEY_HEAD:
            if rule == "private-key" or (value or "").startswith("-----BEGIN"):
                return item
            continue
        if value and len(value) >= 8 and (value in item.value or item.value in value):
            return item
    return None


def score_ours(doc: dict, planted: list[Planted]) -> int:  # type: ignore[type-arg]
    other = 0
    for f in doc["findings"]:
        item = _match(planted, f["secret"], f["rule"])
        if item is None:
            other += 1
        else:
            item.ours += 1
        if f.get("key_id") is not None:  # a pair also reports its key id's occurrence
            akia = next(p for p in planted if p.value.startswith("AKIA"))
            akia.ours += 1
    return other


def score_gitleaks(report: list[dict], planted: list[Planted]) -> int:  # type: ignore[type-arg]
    other = 0
    for f in report:
        item = _match(planted, f.get("Secret"), f.get("RuleID", ""))
        if item is None:
            other += 1
        else:
            item.theirs += 1
    return other


def bench_fixture(archive: Path, gitleaks: str, repeat: int, key: str) -> Row:
    with tempfile.TemporaryDirectory(prefix="kc-gitleaks-") as tmp:
        tree = Path(tmp) / "tree"
        started = time.perf_counter()
        run([*KC, "extract", str(archive), "-d", str(tree)], ok=(0, 4))
        mem = json.loads(run([*KC, "memory", str(archive), "--format", "json"]).out)
        for proc in mem["processes"]:
            run([*KC, "extract", str(archive), "--memory", str(proc["pid"]), "-d", str(tree)])
        extract_seconds = time.perf_counter() - started
        spec = json.loads((tree / "spec.dump").read_text())
        env = dict(e.split("=", 1) for e in spec["process"]["env"] if "=" in e)
        if "DB_PASSWORD" in env:
            planted = planted_secrets(SHARED / "workload" / "app.py", env)
        else:  # the idle fixture: one token
            planted = [Planted("API_TOKEN (spec.dump env)", env["API_TOKEN"])]
        count_expected(tree, planted)
        report = Path(tmp) / "gitleaks.json"
        theirs = run(
            [
                gitleaks,
                "detect",
                "--no-git",
                "--no-banner",
                "-l",
                "error",
                "--exit-code",
                "0",
                "-s",
                str(tree),
                "-r",
                str(report),
            ]
        )
        their_findings = json.loads(report.read_text() or "[]")
    ours_cmd = [*KC, "secrets", str(archive), "--format", "json", "--show-secrets"]
    ours_cmd += ["--fingerprint-key", key]
    runs = [run(ours_cmd) for _ in range(repeat)]
    best = min(runs, key=lambda m: m.seconds)
    best.rss = max(m.rss for m in runs)
    row = Row(f"{archive.parent.name}/{archive.name[:40]}", planted, best, theirs, extract_seconds)
    row.ours_other = score_ours(json.loads(best.out), planted)
    row.theirs_other = score_gitleaks(their_findings, planted)
    return row


def print_row(row: Row) -> list[str]:
    """Print one fixture's table; return the targets it misses."""
    print(f"\n== {row.fixture}")
    print(f"{'planted secret':30} {'in archive':>10} {'ours':>6} {'gitleaks':>9}")
    misses = []
    for p in row.planted:
        print(f"{p.label:30} {p.expected:>10} {p.ours:>6} {p.theirs:>9}")
        if p.ours < p.expected:
            misses.append(f"{p.label}: {p.ours} of {p.expected} occurrences")
        if p.theirs and not p.ours:
            misses.append(f"{p.label}: gitleaks finds it, we do not")
    print(f"{'not planted':30} {'':>10} {row.ours_other:>6} {row.theirs_other:>9}")
    if row.ours_other > row.theirs_other:
        misses.append(f"{row.ours_other} non-planted findings > gitleaks's {row.theirs_other}")
    ratio = row.ours.seconds / row.gitleaks.seconds
    whole = row.ours.seconds / (row.gitleaks.seconds + row.extract_seconds)
    print(
        f"time: ours {row.ours.seconds:.2f} s, gitleaks {row.gitleaks.seconds:.2f} s "
        f"(+{row.extract_seconds:.2f} s extraction): ratio {ratio:.3f} to gitleaks alone "
        f"(target <= 0.2), {whole:.3f} to extraction + gitleaks"
    )
    print(
        f"peak RSS: ours {row.ours.rss / MIB:.0f} MiB (target <= 100), "
        f"gitleaks {row.gitleaks.rss / MIB:.0f} MiB"
    )
    if ratio > 0.2:
        misses.append(f"time ratio {ratio:.3f} > 0.2")
    if row.ours.rss > 100 * MIB:
        misses.append(f"peak RSS {row.ours.rss / MIB:.0f} MiB > 100")
    return misses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixture", action="append", type=Path, help="default: every fixture")
    parser.add_argument("--repeat", type=int, default=3, help="runs of ours (best time kept)")
    args = parser.parse_args(argv)
    gitleaks = shutil.which("gitleaks")
    if gitleaks is None:
        print("gitleaks is not installed (Debian package gitleaks): nothing to compare; skipped")
        return 0
    fixtures = args.fixture or sorted(
        p for p in SHARED.glob("*/*") if p.is_file() and ".tar" in p.name
    )
    if not fixtures:
        print(f"no fixtures under {SHARED}: skipped")
        return 0
    key = os.urandom(16).hex()
    misses: list[str] = []
    for archive in fixtures:
        row = bench_fixture(archive, gitleaks, args.repeat, key)
        misses += [f"{row.fixture}: {m}" for m in print_row(row)]
    print("\ntargets:", "PASS" if not misses else "FAIL")
    for m in misses:
        print("  " + m)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
