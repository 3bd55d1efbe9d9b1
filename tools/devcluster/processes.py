"""Start detached background processes and stop them again, reliably.

Components run in their own session (``start_new_session=True``), so they
survive the ``up`` that started them and each is the leader of its own
process group: ``down`` signals the whole group, which also catches any
children. Pids are recorded together with their kernel start time, so a
recycled pid is never mistaken for (or killed as) one of ours.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
# Popen objects of components started by this process. Holding them keeps
# Popen.__del__ from warning "subprocess is still running" for detached children.
_DETACHED: list[subprocess.Popen[bytes]] = []


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/<pid>/stat that devcluster needs."""

    pid: int
    state: str
    pgrp: int
    start_ticks: int
    cpu_ticks: int  # user + system time, in clock ticks


def proc_stat(pid: int) -> ProcStat | None:
    """/proc/<pid>/stat, or None when the process does not exist."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces.
    fields = raw[raw.rindex(")") + 2 :].split()
    return ProcStat(
        pid=pid,
        state=fields[0],
        pgrp=int(fields[2]),
        start_ticks=int(fields[19]),
        cpu_ticks=int(fields[11]) + int(fields[12]),
    )


def is_alive(pid: int, start_ticks: int | None = None) -> bool:
    """True when ``pid`` runs (not a zombie) and, if given, started at ``start_ticks``."""
    stat = proc_stat(pid)
    if stat is None or stat.state in ("Z", "X"):
        return False
    return start_ticks is None or stat.start_ticks == start_ticks


def vm_kib(pid: int, key: str = "VmHWM") -> int | None:
    """A memory figure of ``pid`` from /proc/<pid>/status in KiB (default VmHWM, the peak
    resident set size; VmRSS is the current one), or None."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def free_port(taken: set[int] | None = None) -> int:
    """A TCP port on 127.0.0.1 that is free right now (and not in ``taken``)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if taken is None or port not in taken:
            if taken is not None:
                taken.add(port)
            return port
    raise RuntimeError("could not find a free port")


def spawn(
    argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` detached in a new session, stdout+stderr to ``log_path`` (truncated)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        log.write(f"# devcluster: {' '.join(argv)}\n".encode())
        log.flush()
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
            start_new_session=True,
            close_fds=True,
        )
    _DETACHED.append(popen)
    return popen


def group_members(pgids: Iterable[int]) -> list[int]:
    """Live (non-zombie) pids whose process group is one of ``pgids``."""
    wanted = set(pgids)
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        stat = proc_stat(int(entry.name))
        if stat is not None and stat.pgrp in wanted and stat.state not in ("Z", "X"):
            members.append(stat.pid)
    return members


def _signal_groups(pgids: Iterable[int], sig: signal.Signals) -> None:
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def _reap(pids: Iterable[int]) -> None:
    """Collect exit statuses of our own children so they do not linger as zombies."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def stop_groups(
    pgids: Sequence[int], term_timeout: float = 15.0, kill_timeout: float = 5.0
) -> list[int]:
    """SIGTERM each process group, SIGKILL what is left after ``term_timeout``.

    Returns the pids still alive after ``kill_timeout`` more seconds (normally none).
    """
    if not pgids:
        return []
    _signal_groups(pgids, signal.SIGTERM)
    for sig, timeout in ((None, term_timeout), (signal.SIGKILL, kill_timeout)):
        if sig is not None:
            _signal_groups(pgids, sig)
        deadline = time.monotonic() + timeout
        while True:
            _reap(pgids)
            left = group_members(pgids)
            if not left:
                return []
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
    return group_members(pgids)


def _ancestors() -> set[int]:
    pids = set()
    pid = os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            ppid_line = next(
                line
                for line in (PROC / str(pid) / "status").read_text().splitlines()
                if line.startswith("PPid:")
            )
        except (FileNotFoundError, StopIteration):
            break
        pid = int(ppid_line.split()[1])
    return pids


def orphaned_components(marker: str, executables: Iterable[str]) -> list[int]:
    """Process-group leaders running one of ``executables`` with ``marker`` in their arguments.

    Every component's command line names a file under the state directory and
    runs as its own group leader, so this finds components that a crashed
    ``up`` started but never recorded, without touching unrelated processes.
    """
    mine = _ancestors()
    names = set(executables)
    needle = marker.encode()
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        pid = int(entry.name)
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if not argv or os.path.basename(argv[0].decode(errors="replace")) not in names:
            continue
        stat = proc_stat(pid)
        if stat is None or stat.pgrp != pid or stat.state in ("Z", "X"):
            continue
        if any(needle in arg for arg in argv[1:]):
            found.append(pid)
    return found
