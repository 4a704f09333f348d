"""What each member of a checkpoint archive is: its category, and whether it may hold secrets.

References:
    reference/checkpointctl.md §7 (member names), reference/criu-images.md §1.2 and §6 (CRIU file
    names), reference/kubelet-cri.md §3 (CRI-O and containerd layouts).
"""

from __future__ import annotations

import re

METADATA = "metadata"
PROCESS = "process"
MEMORY = "memory"
FILESYSTEM = "filesystem"
NETWORK = "network"
LOG = "log"

CATEGORIES = (METADATA, PROCESS, MEMORY, FILESYSTEM, NETWORK, LOG)

PAGES_RE = re.compile(r"^(?:checkpoint|pre-checkpoint)/pages-(\d+)\.img$")
CORE_RE = re.compile(r"^checkpoint/core-(\d+)\.img$")
TMPFS_RE = re.compile(r"^checkpoint/tmpfs-(?:dev-)?(\d+)\.tar\.gz\.img$")

_LOGS = {"dump.log", "restore.log", "ctr.log", "container.log", "io.kubernetes.cri-o.LogPath"}
_TOP_FILESYSTEM = {"rootfs-diff.tar", "deleted.files", "devshm-checkpoint.tar", "volumes"}
_NETWORK_PREFIXES = (
    "netdev-",
    "netns-",
    "ifaddr-",
    "route-",
    "route6-",
    "rule-",
    "iptables-",
    "ip6tables-",
    "nftables-",
    "inetsk",
    "unixsk",
    "packetsk",
    "netlinksk",
    "sk-queues",
    "tcp-stream-",
)
_MEMORY_PREFIXES = ("pages-", "pagemap-", "mm-", "amdgpu-pages-")
_FILESYSTEM_PREFIXES = (
    "mountpoints-",
    "tmpfs-",
    "ghost-file-",
    "remap-fpath",
    "filelocks",
    "memfd",
    "autofs-",
)
_METADATA_IMAGES = {"inventory.img", "descriptors.json", "stats-dump", "irmap-cache"}

# Members that may hold secrets, with the reason shown to the user.
_SECRET_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(?:pre-)?checkpoint/(?:amdgpu-)?pages-.*\.img$"), "memory pages"),
    (re.compile(r"^checkpoint/tmpfs-.*\.tar\.gz\.img$"), "tmpfs contents"),
    (re.compile(r"^devshm-checkpoint\.tar$"), "/dev/shm contents"),
    (re.compile(r"^spec\.dump$"), "environment variables"),
    (re.compile(r"^config\.dump$"), "container config (may embed the environment)"),
    (re.compile(r"^rootfs-diff\.tar$"), "files written by the container"),
    (re.compile(r"^volumes/"), "volume contents"),
    (re.compile(r"^(?:dump\.log|ctr\.log|container\.log|io\.kubernetes\.cri-o\.LogPath)$"), "log"),
    (re.compile(r"^checkpoint/(?:pipes-data|fifo-data|sk-queues|tty-data)\.img$"), "queued data"),
    (re.compile(r"^checkpoint/(?:tcp-stream|ghost-file)-.*\.img$"), "queued data or deleted files"),
)


def category(name: str) -> str:
    """The category of a normalised member name."""
    if name in _LOGS:
        return LOG
    top, _, rest = name.partition("/")
    if not rest:
        return FILESYSTEM if name in _TOP_FILESYSTEM else METADATA
    if top == "volumes":
        return FILESYSTEM
    if top in ("checkpoint", "pre-checkpoint"):
        base = rest.rsplit("/", 1)[-1]
        if base in _METADATA_IMAGES:
            return METADATA
        if base.startswith(_MEMORY_PREFIXES):
            return MEMORY
        if base.startswith(_NETWORK_PREFIXES):
            return NETWORK
        if base.startswith(_FILESYSTEM_PREFIXES):
            return FILESYSTEM
        return PROCESS
    return METADATA


def secret_reason(name: str) -> str | None:
    """Why a member may hold secrets, or None."""
    for pattern, reason in _SECRET_REASONS:
        if pattern.match(name):
            return reason
    return None
