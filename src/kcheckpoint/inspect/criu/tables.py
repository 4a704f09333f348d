"""Names for the numbers CRIU images store (enums are read as integers, see proto/criu/README).

References:
    reference/criu-images.md §2 (fd_types, task states, fstype, sk states); linux
    include/uapi/linux/capability.h (capability bits), include/uapi/linux/mount.h (MS_* flags).
"""

from __future__ import annotations

#: compel task states (CRIU dumps a zombie as DEAD).
#: CRIU's TASK_DEAD (2) is a task that exited and was not reaped: what ps calls a zombie.
TASK_STATES = {1: "alive", 2: "zombie", 3: "stopped", 6: "zombie"}

FD_TYPES = {
    0: "UND",
    1: "REG",
    2: "PIPE",
    3: "FIFO",
    4: "INETSK",
    5: "UNIXSK",
    6: "EVENTFD",
    7: "EVENTPOLL",
    8: "INOTIFY",
    9: "SIGNALFD",
    10: "PACKETSK",
    11: "TTY",
    12: "FANOTIFY",
    13: "NETLINKSK",
    14: "NS",
    15: "TUNF",
    16: "EXT",
    17: "TIMERFD",
    18: "MEMFD",
    19: "BPFMAP",
    20: "PIDFD",
    65534: "CTL_TTY",
    65535: "AUTOFS_PIPE",
}

#: file_entry field that holds the details of each fd type.
FILE_FIELDS = {
    1: "reg",
    2: "pipe",
    3: "fifo",
    4: "isk",
    5: "usk",
    6: "efd",
    7: "epfd",
    9: "sgfd",
    10: "psk",
    11: "tty",
    13: "nlsk",
    14: "nsf",
    15: "tunf",
    16: "ext",
    17: "tfd",
    18: "memfd",
    20: "pidfd",
}

MACHINES = {
    0: "unknown",
    1: "x86_64",
    2: "arm",
    3: "aarch64",
    4: "ppc64",
    5: "s390",
    6: "mips",
    7: "loongarch64",
    8: "riscv64",
}

SECCOMP_MODES = {0: "disabled", 1: "strict", 2: "filter"}
LSM_TYPES = {0: "none", 1: "selinux", 2: "apparmor"}

CAPABILITIES = (
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
)

SOCK_TYPES = {1: "STREAM", 2: "DGRAM", 3: "RAW", 4: "RDM", 5: "SEQPACKET", 10: "PACKET"}
SK_STATES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
}
IP_PROTOCOLS = {0: "ip", 1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 136: "udplite", 255: "raw"}
FAMILIES = {1: "unix", 2: "inet", 10: "inet6", 16: "netlink", 17: "packet"}

FSTYPES = {
    0: "unsupported",
    1: "proc",
    2: "sysfs",
    3: "devtmpfs",
    4: "binfmt_misc",
    5: "tmpfs",
    6: "devpts",
    7: "simfs",
    8: "pstore",
    9: "securityfs",
    10: "fusectl",
    11: "debugfs",
    12: "cgroup",
    13: "aufs",
    14: "mqueue",
    15: "fuse",
    16: "auto",
    17: "overlay",
    18: "autofs",
    19: "tracefs",
    23: "cgroup2",
}

#: Per-mount MS_* flags, in the order mount(8) prints them.
MOUNT_FLAGS = (
    (0x1, "ro"),
    (0x2, "nosuid"),
    (0x4, "nodev"),
    (0x8, "noexec"),
    (0x10, "sync"),
    (0x20, "remount"),
    (0x40, "mand"),
    (0x80, "dirsync"),
    (0x100, "nosymfollow"),
    (0x400, "noatime"),
    (0x800, "nodiratime"),
    (0x1000, "bind"),
    (0x4000, "rec"),
    (0x8000, "silent"),
    (0x40000, "unbindable"),
    (0x80000, "private"),
    (0x100000, "slave"),
    (0x200000, "relatime"),
    (0x1000000, "strictatime"),
    (0x2000000, "lazytime"),
)

PE_PARENT = 1 << 0
PE_LAZY = 1 << 1
PE_PRESENT = 1 << 2

#: auxv type of the page size.
AT_PAGESZ = 6


def caps(words: list[int] | tuple[int, ...]) -> list[str]:
    """Capability names of a CRIU capability set (u32 words, low word first)."""
    value = 0
    for i, word in enumerate(words):
        value |= (word & 0xFFFFFFFF) << (32 * i)
    names = []
    bit = 0
    while value >> bit:
        if value >> bit & 1:
            names.append(CAPABILITIES[bit] if bit < len(CAPABILITIES) else f"cap_{bit}")
        bit += 1
    return names


def mount_flags(value: int) -> str:
    """MS_* flags as mount(8) names, comma-separated; unknown bits in hex."""
    names = [name for bit, name in MOUNT_FLAGS if value & bit]
    rest = value & ~sum(bit for bit, _ in MOUNT_FLAGS)
    if rest:
        names.append(f"0x{rest:x}")
    return ",".join(names)


def name(table: dict[int, str], value: int) -> str:
    """``table[value]``, or the number when it is not known."""
    return table.get(value, str(value))
