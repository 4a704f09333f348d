"""The process-level model decoded from CRIU images: plain dataclasses, no protobuf.

Field names are the JSON keys of ``kcheckpoint inspect --format json`` (README "inspect JSON").
Addresses are integers, times are microseconds or ISO 8601 UTC strings, ``None`` means the
archive does not say (the reason, when there is one, is in ``problems``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kcheckpoint.inspect.model import Container, InputInfo, Problem, SecretsWarning, Sizes


@dataclass(frozen=True, slots=True)
class Credentials:
    """A thread's user and group ids and capability sets (capability names, lower case)."""

    uid: int
    gid: int
    euid: int
    egid: int
    suid: int
    sgid: int
    fsuid: int
    fsgid: int
    groups: list[int]
    cap_effective: list[str]
    cap_permitted: list[str]
    cap_inheritable: list[str]
    cap_bounding: list[str]
    cap_ambient: list[str]
    no_new_privs: bool | None
    seccomp: str | None


@dataclass(frozen=True, slots=True)
class EnvVar:
    """One environment variable; ``value`` is None when redacted."""

    name: str
    value: str | None
    redacted: bool


@dataclass(frozen=True, slots=True)
class OpenFile:
    """One file descriptor (or cwd/root) of a process."""

    #: The descriptor number as a string, or "cwd" / "root".
    fd: str
    #: CRIU's file type: REG, PIPE, FIFO, INETSK, UNIXSK, PACKETSK, EVENTFD, TTY...
    type: str
    #: The file object's id in files.img (shared by every fd that opened the same object).
    file_id: int
    #: A one-line description, as ``crit x DIR fds`` prints it.
    description: str
    #: The path of a regular file, fifo or bound unix socket.
    path: str | None
    #: open(2) flags as an octal string, when the image records them.
    flags: str | None
    #: File position of a regular file.
    pos: int | None
    cloexec: bool


@dataclass(frozen=True, slots=True)
class Socket:
    """A socket that some process holds open."""

    file_id: int
    ino: int | None
    #: unix, inet, inet6, packet or netlink.
    family: str
    #: STREAM, DGRAM, SEQPACKET, RAW, PACKET.
    type: str
    #: tcp, udp, udplite, ip... for inet; the ethertype for packet; None for unix.
    protocol: str | None
    #: LISTEN, ESTABLISHED, CLOSE...; unix sockets use the same names.
    state: str | None
    #: Path (or "@name" for an abstract unix name), or "address:port".
    local: str | None
    peer: str | None
    #: The peer socket's inode (unix).
    peer_ino: int | None
    send_buf: int | None
    recv_buf: int | None
    #: "pid:fd" of every descriptor that refers to this socket.
    holders: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Mount:
    """One mount of the container's mount namespace (mountpoints-<id>.img)."""

    mnt_id: int
    parent_mnt_id: int
    mountpoint: str
    fstype: str
    source: str
    root: str
    options: str
    flags: str
    shared_id: int | None
    master_id: int | None
    #: The key of an external (bind) mount, such as a volume.
    ext_key: str | None
    #: The mount namespace image it came from.
    image: str


@dataclass(frozen=True, slots=True)
class SpecMount:
    """A mount from the OCI spec (spec.dump), as the runtime set it up."""

    destination: str
    type: str | None
    source: str | None
    options: list[str]


@dataclass(frozen=True, slots=True)
class DumpStats:
    """CRIU's dump statistics (stats-dump); times in microseconds."""

    freezing_time_us: int | None
    frozen_time_us: int | None
    memdump_time_us: int | None
    memwrite_time_us: int | None
    irmap_resolve_us: int | None
    pages_scanned: int | None
    pages_skipped_parent: int | None
    pages_written: int | None
    pages_lazy: int | None
    page_pipes: int | None
    page_pipe_bufs: int | None
    shpages_scanned: int | None
    shpages_skipped_parent: int | None
    shpages_written: int | None


@dataclass(frozen=True, slots=True)
class Namespace:
    """A namespace some process is in, by CRIU's id, with what its image says."""

    kind: str
    id: int
    #: Pids of the processes in it.
    pids: list[int]
    #: The image that holds it (e.g. utsns-12.img), or None when not dumped (external).
    image: str | None
    #: Kind-specific details: hostname/domainname (uts), clock offsets (time), maps (user).
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Memory:
    """Where a process's memory is in the archive."""

    pages_id: int | None
    #: Pages stored in pages-<pages_id>.img (PE_PRESENT).
    present_pages: int
    #: Pages that live in a parent (pre-dump) image, not in this archive.
    parent_pages: int
    #: Pages marked lazy and not present (to be served by a page server).
    lazy_pages: int
    page_size: int
    vmas: int


@dataclass(frozen=True, slots=True)
class ProcessRef:
    """Who a process is: what ``diff`` shows of a process on each side."""

    pid: int
    ppid: int
    comm: str | None
    #: argv read from the process's memory (mm_arg_start..mm_arg_end), or None.
    cmdline: list[str] | None
    #: alive, dead (CRIU dumps zombies as dead), stopped, zombie, or unknown(N).
    state: str


@dataclass(frozen=True, slots=True)
class Process(ProcessRef):
    """One task of the dumped process tree."""

    pgid: int
    sid: int
    exit_code: int | None
    threads: list[int]
    thread_names: dict[str, str]
    creds: Credentials | None
    #: The executable, from mm.exe_file_id.
    exe: str | None
    #: The environment read from memory (mm_env_start..mm_env_end), or None.
    env: list[EnvVar] | None
    files: list[OpenFile]
    #: Namespace ids by kind (mnt, net, pid, ipc, uts, user, cgroup, time).
    namespaces: dict[str, int]
    memory: Memory | None
    children: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Inventory:
    """inventory.img: how CRIU dumped."""

    img_version: int | None
    #: A lower bound on the CRIU version, from the fields the inventory has.
    criu_version_hint: str | None
    dump_criu_run_id: str | None
    lsm: str | None
    ns_per_id: bool | None
    dump_uptime_us: int | None
    network_lock_method: int | None
    plugins: list[str]


@dataclass(frozen=True, slots=True)
class NetworkInterface:
    """One interface of Podman's network.status: the network, its addresses and gateways."""

    network: str
    interface: str
    mac: str | None
    #: Addresses with their prefix length ("10.88.0.5/16").
    ips: list[str]
    gateways: list[str]


@dataclass(frozen=True, slots=True)
class Metadata:
    """Kubernetes metadata from the engine's annotations."""

    pod: str | None
    namespace: str | None
    annotations: dict[str, str]
    #: Names of the environment variables in spec.dump (values are never copied here).
    spec_env_names: list[str]
    #: Podman's network.status (empty for other engines, and without a network).
    network: list[NetworkInterface]


@dataclass(frozen=True, slots=True)
class Inspection:
    """Everything ``kcheckpoint inspect`` shows about one archive."""

    input: InputInfo
    container: Container
    sizes: Sizes
    metadata: Metadata
    inventory: Inventory | None
    processes: list[Process]
    sockets: list[Socket]
    mounts: list[Mount]
    spec_mounts: list[SpecMount]
    stats: DumpStats | None
    namespaces: list[Namespace]
    #: Image files of checkpoint/ that nothing references (stale or zombie leftovers).
    unreferenced_images: list[str]
    problems: list[Problem]
    warnings: list[SecretsWarning]
