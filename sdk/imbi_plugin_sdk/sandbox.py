"""What a runner applies to itself before importing plugin code (Linux, x86_64).

``apply(policy)`` runs, in order: resource limits (``setrlimit``), ``PR_SET_NO_NEW_PRIVS``,
Landlock (file system: read/execute beneath ``policy.read_paths``, read files and list
directories (no execute) beneath ``policy.data_paths`` (operator-granted directories),
everything beneath the private temp folder, nothing else; network: TCP connect only to
``policy.tcp_ports``, no TCP bind; signals and abstract Unix sockets scoped to the
sandbox), dropping every capability, and a seccomp filter that denies what a plugin never
needs (including ``MSG_FASTOPEN``, an implicit connect Landlock does not see). Each step either
succeeds or raises ``SandboxError``; a runner that cannot sandbox itself never imports the
plugin (the host reports the reason). ``status()`` reports what is active, for the
handshake and the tests.

The PID namespace, the pids cgroup and the allowlisted environment are arranged before
this, by the host and ``child`` (the warden). Only the standard library is imported.

This module is the one implementation, shared: the platform's runners apply it
(``plugins_core.isolation.sandbox`` re-exports it) and ``imbi-plugin check --isolated``
confines a plugin's calls with it, so an author's check applies exactly the platform's
policy. Standard library only; the SDK imports nothing of the platform.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import struct
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Policy", "SandboxError", "apply", "landlock_abi"]

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# x86_64 syscall numbers
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
SYS_CAPSET = 126
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_SET_SECCOMP, PR_SET_DUMPABLE = 38, 24, 22, 4
PR_CAPBSET_READ = 23
SECCOMP_MODE_FILTER = 2


class SandboxError(Exception):
    """A confinement step failed; the runner must not go on to import plugin code."""


@dataclass(frozen=True)
class Policy:
    """What one runner may do. Built by the host from the plugin's manifest."""

    read_paths: tuple[str, ...] = ()
    list_paths: tuple[str, ...] = ()  # directory listing only (import roots), no file reads
    data_paths: tuple[str, ...] = ()  # read files and list only: operator-granted directories
    tmp_dir: str = ""
    tcp_ports: tuple[int, ...] = ()
    network: bool = False  # may create AF_INET/AF_INET6 sockets at all
    cpu_seconds: int = 60
    address_space: int = 2 * 1024**3
    open_files: int = 256
    file_size: int = 64 * 1024**2
    processes: int = 32
    # may start processes (the manifest's ``permissions.subprocesses``): otherwise seccomp
    # refuses fork, vfork and clone without CLONE_THREAD, and signals to any other process
    subprocesses: bool = False
    # lives in an empty network namespace: otherwise only TCP stream sockets (inert without a
    # Landlock port rule) may be created, never datagram ones (UDP would reach the host's
    # network directly)
    netns: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "read_paths": list(self.read_paths),
            "list_paths": list(self.list_paths),
            "data_paths": list(self.data_paths),
            "tmp_dir": self.tmp_dir,
            "tcp_ports": list(self.tcp_ports),
            "network": self.network,
            "cpu_seconds": self.cpu_seconds,
            "address_space": self.address_space,
            "open_files": self.open_files,
            "file_size": self.file_size,
            "processes": self.processes,
            "subprocesses": self.subprocesses,
            "netns": self.netns,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        return cls(
            read_paths=tuple(data.get("read_paths", ())),
            list_paths=tuple(data.get("list_paths", ())),
            data_paths=tuple(data.get("data_paths", ())),
            tmp_dir=str(data.get("tmp_dir", "")),
            tcp_ports=tuple(int(p) for p in data.get("tcp_ports", ())),
            network=bool(data.get("network", False)),
            cpu_seconds=int(data.get("cpu_seconds", 60)),
            address_space=int(data.get("address_space", 2 * 1024**3)),
            open_files=int(data.get("open_files", 256)),
            file_size=int(data.get("file_size", 64 * 1024**2)),
            processes=int(data.get("processes", 32)),
            subprocesses=bool(data.get("subprocesses", False)),
            netns=bool(data.get("netns", True)),
        )


def _syscall(number: int, *args: Any) -> int:
    result = _libc.syscall(number, *args)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(result)


def _prctl(option: int, arg2: int = 0) -> None:
    if _libc.prctl(option, ctypes.c_ulong(arg2), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


# --------------------------------------------------------------------------- rlimits


def _rlimits(policy: Policy) -> None:
    limits = {
        resource.RLIMIT_CPU: policy.cpu_seconds,
        resource.RLIMIT_AS: policy.address_space,
        resource.RLIMIT_NOFILE: policy.open_files,
        resource.RLIMIT_FSIZE: policy.file_size,
        resource.RLIMIT_CORE: 0,
    }
    if os.geteuid() == 0:
        # ignored for root (the pids cgroup holds); under another uid it counts every task of
        # that uid, the web process's threads included, so it is left alone there (a runner
        # without permissions.subprocesses is one process; RLIMIT_AS bounds its threads)
        limits[resource.RLIMIT_NPROC] = policy.processes
    for kind, value in limits.items():
        resource.setrlimit(kind, (value, value))


# --------------------------------------------------------------------------- Landlock

FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_TRUNCATE, FS_IOCTL_DEV = 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
RULE_PATH_BENEATH, RULE_NET_PORT = 1, 2
O_PATH = 0o10000000


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0 when Landlock is unavailable)."""
    try:
        return _syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except OSError:
        return 0


def _fs_all(abi: int) -> int:
    rights = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
    if abi >= 2:
        rights |= 1 << 13  # REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def _file_only(rights: int) -> int:
    return rights & (FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV)


def _add_path(ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a path that does not exist needs no rule
    try:
        if not os.path.isdir(path):
            rights = _file_only(rights)
        attr = struct.pack("=Qi", rights, fd)
        _syscall(SYS_LANDLOCK_ADD_RULE, ruleset, RULE_PATH_BENEATH, attr, 0)
    finally:
        os.close(fd)


def _landlock(policy: Policy) -> int:
    abi = landlock_abi()
    if abi < 1:
        raise SandboxError("Landlock is not available in this kernel")
    fs_all = _fs_all(abi)
    net_all = (NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0
    scoped = (SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0
    attr = struct.pack("=QQQ", fs_all, net_all, scoped)
    ruleset = _syscall(SYS_LANDLOCK_CREATE_RULESET, attr, ctypes.c_size_t(len(attr)), 0)
    try:
        read = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
        for path in policy.read_paths:
            _add_path(ruleset, path, read)
        for path in policy.list_paths:
            _add_path(ruleset, path, FS_READ_DIR)
        for path in policy.data_paths:
            _add_path(ruleset, path, FS_READ_FILE | FS_READ_DIR)
        _add_path(
            ruleset, "/dev/null", FS_READ_FILE | FS_WRITE_FILE | (FS_TRUNCATE if abi >= 3 else 0)
        )
        if policy.tmp_dir:
            _add_path(ruleset, policy.tmp_dir, fs_all)
        if net_all:
            for port in policy.tcp_ports:
                _syscall(
                    SYS_LANDLOCK_ADD_RULE,
                    ruleset,
                    RULE_NET_PORT,
                    struct.pack("=QQ", NET_CONNECT_TCP, port),
                    0,
                )
        elif policy.tcp_ports or policy.network:
            # a broker's socket lives in the host's namespace: without Landlock's TCP connect
            # right, connect(AF_UNSPEC) and a second connect() would reach any host address
            raise SandboxError(f"Landlock ABI {abi} cannot restrict TCP connect (needs 4)")
        _syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0)
    finally:
        os.close(ruleset)
    return abi


# --------------------------------------------------------------------------- capabilities


def _drop_capabilities() -> bool:
    """Clear the effective, permitted and inheritable sets, and the bounding set where this
    process may (``CAP_SETPCAP``). Returns whether the bounding set is clear. A process
    without ``CAP_SETPCAP`` (any non-root uid) cannot clear it, and needs not: with
    ``no_new_privs`` set (before this) no ``execve`` can gain a capability."""
    bounded = True
    for cap in range(64):
        present = _libc.prctl(PR_CAPBSET_READ, ctypes.c_ulong(cap), 0, 0, 0)
        if present < 0:  # past the last capability this kernel knows
            break
        if not present:
            continue
        try:
            _prctl(PR_CAPBSET_DROP, cap)
        except OSError as exc:
            if exc.errno != errno.EPERM:
                raise
            bounded = False
    header = struct.pack("=Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = bytes(24)  # effective, permitted, inheritable = 0 (two 32-bit words each)
    _syscall(SYS_CAPSET, header, data)
    return bounded


# --------------------------------------------------------------------------- seccomp

AUDIT_ARCH_X86_64 = 0xC000003E
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
BPF_LD_W_ABS, BPF_JEQ_K, BPF_JGE_K, BPF_JSET_K, BPF_RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
BPF_ALU_AND_K = 0x54

DENIED_SYSCALLS = {
    "ptrace": 101,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "mount": 165,
    "umount2": 166,
    "pivot_root": 155,
    "chroot": 161,
    "unshare": 272,
    "setns": 308,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "bpf": 321,
    "perf_event_open": 298,
    "kexec_load": 246,
    "kexec_file_load": 320,
    "init_module": 175,
    "finit_module": 313,
    "delete_module": 176,
    "reboot": 169,
    "swapon": 167,
    "swapoff": 168,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "userfaultfd": 323,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "mount_setattr": 442,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "settimeofday": 164,
    "clock_settime": 227,
    "adjtimex": 159,
    "iopl": 172,
    "ioperm": 173,
    "acct": 163,
    "quotactl": 179,
    "syslog": 103,
    "vhangup": 153,
    # a runner never listens; a broker socket (the host's namespace), disconnected, would
    # otherwise auto-bind and listen on the host's every address (Landlock hooks bind only)
    "listen": 50,
}
SYS_SOCKET, SYS_SOCKETPAIR, SYS_CLONE, SYS_CLONE3 = 41, 53, 56, 435
CLONE_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000
CLONE_NAMESPACES |= 0x40000000 | 0x00000080  # NEWNET, NEWTIME
SYS_SENDTO, SYS_SENDMSG, SYS_SENDMMSG = 44, 46, 307
MSG_FASTOPEN = 0x20000000
AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10
SOCK_STREAM, SOCK_DGRAM = 1, 2
IPPROTO_TCP = 6
CLONE_THREAD = 0x00010000
SYS_KILL, SYS_TGKILL, SYS_RT_SIGQUEUEINFO, SYS_RT_TGSIGQUEUEINFO = 62, 234, 129, 297
# refused to a runner whose plugin does not declare permissions.subprocesses
SINGLE_PROCESS_DENIED = {"fork": 57, "vfork": 58, "tkill": 200, "pidfd_send_signal": 424}


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def seccomp_program(
    network: bool, *, subprocesses: bool = True, netns: bool = True, own_pid: int = 0
) -> list[bytes]:
    """The BPF program: deny with EPERM; clone3 answers ENOSYS (glibc falls back to clone).

    Without ``subprocesses``: ``fork``/``vfork`` and ``clone`` without ``CLONE_THREAD`` are
    refused (a runner is one process whose threads die with it), and so is every signal to
    a process other than ``own_pid`` (``kill``, ``tgkill``, ``rt_[tg]sigqueueinfo`` aimed
    elsewhere, ``tkill``, ``pidfd_send_signal``), whatever Landlock's ABI. Without ``netns``
    (no empty network namespace around the runner) no datagram socket may be created."""
    eperm = SECCOMP_RET_ERRNO | errno.EPERM
    prog = [
        _insn(BPF_LD_W_ABS, 4),  # arch
        _insn(BPF_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        _insn(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),
        _insn(BPF_LD_W_ABS, 0),  # syscall number
        _insn(BPF_JGE_K, 0x40000000, 0, 1),  # the x32 ABI
        _insn(BPF_RET_K, eperm),
    ]
    denied = set(DENIED_SYSCALLS.values())
    if not subprocesses:
        denied |= set(SINGLE_PROCESS_DENIED.values())
    for number in sorted(denied):
        prog += [_insn(BPF_JEQ_K, number, 0, 1), _insn(BPF_RET_K, eperm)]
    prog += [_insn(BPF_JEQ_K, SYS_CLONE3, 0, 1), _insn(BPF_RET_K, SECCOMP_RET_ERRNO | errno.ENOSYS)]
    # clone: no namespace flags; without subprocesses, threads only
    if subprocesses:
        prog += [
            _insn(BPF_JEQ_K, SYS_CLONE, 0, 4),
            _insn(BPF_LD_W_ABS, 16),  # args[0] (flags), low word
            _insn(BPF_JSET_K, CLONE_NAMESPACES, 0, 1),
            _insn(BPF_RET_K, eperm),
            _insn(BPF_RET_K, SECCOMP_RET_ALLOW),
        ]
    else:
        prog += [
            _insn(BPF_JEQ_K, SYS_CLONE, 0, 6),
            _insn(BPF_LD_W_ABS, 16),  # args[0] (flags), low word
            _insn(BPF_JSET_K, CLONE_NAMESPACES, 0, 1),
            _insn(BPF_RET_K, eperm),
            _insn(BPF_JSET_K, CLONE_THREAD, 0, 1),
            _insn(BPF_RET_K, SECCOMP_RET_ALLOW),
            _insn(BPF_RET_K, eperm),
        ]
        # signals only to itself (its own threads)
        for number in (SYS_KILL, SYS_TGKILL, SYS_RT_SIGQUEUEINFO, SYS_RT_TGSIGQUEUEINFO):
            prog += [
                _insn(BPF_JEQ_K, number, 0, 4),
                _insn(BPF_LD_W_ABS, 16),  # args[0] (pid or tgid), low word
                _insn(BPF_JEQ_K, own_pid & 0xFFFFFFFF, 0, 1),
                _insn(BPF_RET_K, SECCOMP_RET_ALLOW),
                _insn(BPF_RET_K, eperm),
            ]
    # socket(domain, type, protocol): AF_INET/6 when networked, nothing else: TCP streams
    # (protocol 0 or TCP: Landlock's port rules cover TCP only, not SCTP or MPTCP), and
    # datagrams only inside an empty network namespace. No new AF_UNIX socket: the network
    # namespace does not cover pathname sockets (a database's or a container runtime's socket
    # on the host's file system), and Landlock (ABI 7 here) cannot refuse connecting to them.
    # A stream socketpair (asyncio's self-pipe) stays allowed: its sockets reach only each
    # other; a datagram pair could still sendto() a pathname socket.
    allowed_domains = [AF_INET, AF_INET6] if network else []
    tail = [
        _insn(BPF_LD_W_ABS, 24),  # args[1] (type), low word
        _insn(BPF_ALU_AND_K, 0xF),
    ]
    if netns:
        tail += [_insn(BPF_JEQ_K, SOCK_DGRAM, 0, 1), _insn(BPF_RET_K, SECCOMP_RET_ALLOW)]
    tail += [
        _insn(BPF_JEQ_K, SOCK_STREAM, 0, 4),
        _insn(BPF_LD_W_ABS, 32),  # args[2] (protocol), low word
        _insn(BPF_JEQ_K, 0, 1, 0),
        _insn(BPF_JEQ_K, IPPROTO_TCP, 0, 1),
        _insn(BPF_RET_K, SECCOMP_RET_ALLOW),
        _insn(BPF_RET_K, eperm),
    ]
    prog += [
        _insn(BPF_JEQ_K, SYS_SOCKETPAIR, 0, 5),
        _insn(BPF_LD_W_ABS, 24),  # args[1] (type), low word
        _insn(BPF_ALU_AND_K, 0xF),
        _insn(BPF_JEQ_K, SOCK_STREAM, 0, 1),
        _insn(BPF_RET_K, SECCOMP_RET_ALLOW),
        _insn(BPF_RET_K, eperm),
    ]
    # No implicit connect: sendto/sendmsg/sendmmsg with MSG_FASTOPEN connect an unconnected
    # TCP socket without the connect() Landlock hooks. A fresh socket has no route out of the
    # namespace, but a socket from the egress broker lives in the host's namespace: after a
    # connect(AF_UNSPEC) (allowed: it only disconnects) it could reach any host address.
    for number, flags_arg in ((SYS_SENDTO, 3), (SYS_SENDMSG, 2), (SYS_SENDMMSG, 3)):
        prog += [
            _insn(BPF_JEQ_K, number, 0, 4),
            _insn(BPF_LD_W_ABS, 16 + 8 * flags_arg),  # the flags, low word
            _insn(BPF_JSET_K, MSG_FASTOPEN, 0, 1),
            _insn(BPF_RET_K, eperm),
            _insn(BPF_RET_K, SECCOMP_RET_ALLOW),
        ]
    prog.append(_insn(BPF_LD_W_ABS, 0))  # the syscall number again
    checks = [_insn(BPF_LD_W_ABS, 16)]
    if allowed_domains:
        checks += [
            _insn(BPF_JEQ_K, AF_INET, 1, 0),
            _insn(BPF_JEQ_K, AF_INET6, 0, len(tail)),
            *tail,
        ]
    checks.append(_insn(BPF_RET_K, eperm))
    prog += [_insn(BPF_JEQ_K, SYS_SOCKET, 0, len(checks)), *checks]
    prog.append(_insn(BPF_RET_K, SECCOMP_RET_ALLOW))
    return prog


def _seccomp(policy: Policy) -> None:
    prog = b"".join(
        seccomp_program(
            policy.network,
            subprocesses=policy.subprocesses,
            netns=policy.netns,
            own_pid=os.getpid(),
        )
    )
    buffer = ctypes.create_string_buffer(prog)
    fprog = struct.pack("=HxxxxxxQ", len(prog) // 8, ctypes.addressof(buffer))
    fprog_buffer = ctypes.create_string_buffer(fprog)
    if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, fprog_buffer, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


# --------------------------------------------------------------------------- all together


def apply(policy: Policy) -> dict[str, Any]:
    """Confine the calling process (and everything it starts) to ``policy``."""
    try:
        _rlimits(policy)
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        _prctl(PR_SET_DUMPABLE, 0)
        abi = _landlock(policy)
        bounded = _drop_capabilities()
        _seccomp(policy)
    except OSError as exc:
        raise SandboxError(f"sandbox set-up failed: {exc}") from None
    return {
        "landlock_abi": abi,
        "seccomp": True,
        "capabilities": "none",
        "bounding_set": "cleared" if bounded else "kept (no_new_privs)",
        "subprocesses": policy.subprocesses,
        "network_namespace": policy.netns,
    }
