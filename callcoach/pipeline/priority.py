"""The analysis process's claim on the CPU: whatever is left over after the web server.

On a server that both acknowledges the portal's events and transcribes calls, the transcription
must never make an acknowledgement wait. Linux has two tools for that, and they act at
different levels:

- ``SCHED_IDLE`` (a thread's policy): a waking normal thread preempts an idle-policy one at
  once. But the kernel compares the two only inside one scheduling group. Between groups (the
  server's session and PostgreSQL's, each its own autogroup or cgroup) it compares the groups,
  and the server's group, busy with the idle-policy analysis, counts as an ordinary group: a
  waking PostgreSQL backend then waits for the group's slice to end. Measured with
  ``bench/ack_latency.py`` (PostgreSQL, 1,000 events/s, a call transcribed meanwhile, two
  cores): p99 31 ms with ``SCHED_IDLE`` alone, 5 ms with no analysis running.
- ``cpu.idle`` (a cgroup's flag, Linux 5.15+): the whole group is idle-policy against every
  other group, so every waking thread on the machine preempts the analysis. Measured the same
  way: p99 5 ms with the call transcribed, as with no call at all.

So the analysis process joins an idle CPU group when it can, and takes ``SCHED_IDLE`` in any
case (and ``nice`` where there is no ``SCHED_IDLE``). The group is, by
``CALLCOACH_ANALYSIS_CGROUP``:

- ``auto``: a ``callcoach-analysis`` group inside the process's own CPU cgroup, so every limit
  set on the server (memory, pids, a CPU quota) still binds the analysis. Under cgroup v1 that
  is always allowed where the hierarchy is writable. Under cgroup v2 a group holding processes
  cannot give its children the cpu controller (the "no internal processes" rule), so this works
  only at a hierarchy's root; elsewhere the operator names a group.
- a path: a cgroup directory the operator prepared (a systemd unit with ``Delegate=yes``, say),
  which is made idle and joined.
- ``off``: no group; ``SCHED_IDLE`` only.

Nothing here is fatal: a read-only cgroup filesystem (the usual container) or another OS leaves
the weaker arrangement in place, and ``lowest_priority`` returns which one took effect
(``/healthz`` shows it).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

GROUP_NAME = "callcoach-analysis"
FALLBACK_NICE = 10  # where SCHED_IDLE is missing: below the server's loop, idle cycles still used


@dataclass(frozen=True)
class CpuCgroup:
    """Where this process sits in the CPU controller's hierarchy."""

    directory: Path  # the process's own cgroup, as mounted here
    unified: bool  # cgroup v2 (one hierarchy, controllers enabled per subtree) or v1


def own_cpu_cgroup(proc: Path = Path("/proc/self")) -> CpuCgroup | None:
    """This process's cgroup in the hierarchy that holds the cpu controller, or None.

    Read from ``/proc/self/cgroup`` (which group) and ``/proc/self/mountinfo`` (where that
    hierarchy is mounted, and which of its groups the mount shows as its root: inside a
    container the mount's root is usually the container's own group)."""
    try:
        memberships = (proc / "cgroup").read_text().splitlines()
        mounts = (proc / "mountinfo").read_text().splitlines()
    except OSError:
        return None
    v1_path = v2_path = None
    for line in memberships:
        hierarchy, controllers, path = ([*line.split(":", 2), "", ""])[:3]
        if hierarchy == "0" and controllers == "":
            v2_path = path
        elif "cpu" in controllers.split(","):
            v1_path = path
    for line in mounts:
        fields = line.split()
        if "-" not in fields:
            continue
        dash = fields.index("-")
        if len(fields) < dash + 4 or len(fields) < 5:
            continue
        root, mount_point = fields[3], fields[4]
        fstype, super_options = fields[dash + 1], fields[dash + 3].split(",")
        if v1_path is not None and fstype == "cgroup" and "cpu" in super_options:
            return CpuCgroup(_inside(Path(mount_point), root, v1_path), unified=False)
        if v1_path is None and v2_path is not None and fstype == "cgroup2":
            return CpuCgroup(_inside(Path(mount_point), root, v2_path), unified=True)
    return None


def _inside(mount_point: Path, mount_root: str, path: str) -> Path:
    below = path == mount_root or path.startswith(mount_root.rstrip("/") + "/")
    relative = os.path.relpath(path, mount_root) if below else path
    relative = "" if relative == "." else relative.lstrip("/")
    return mount_point / relative if relative else mount_point


def join_idle_group(group: Path, *, enable_cpu_in: Path | None = None) -> None:
    """Make ``group`` an idle CPU group and move this process (all its threads) into it.
    Raises OSError where the kernel or the filesystem does not allow it."""
    made = not group.exists()
    group.mkdir(exist_ok=True)
    try:
        idle = group / "cpu.idle"
        if not idle.exists() and enable_cpu_in is not None:  # v2: the parent hands down "cpu"
            (enable_cpu_in / "cgroup.subtree_control").write_text("+cpu")
        if not idle.exists():
            raise OSError(f"{group} has no cpu.idle (a kernel before 5.15, or no cpu controller)")
        idle.write_text("1")
        (group / "cgroup.procs").write_text(str(os.getpid()))
    except OSError:
        if made:  # leave no empty group behind
            try:
                group.rmdir()
            except OSError:
                pass
        raise


def lowest_priority(setting: str = "auto", proc: Path = Path("/proc/self")) -> str:
    """Give this process the machine's leftover CPU; returns what took effect, in words."""
    arrangement = []
    group = _idle_group(setting, proc)
    if group is not None:
        arrangement.append(f"idle cpu cgroup {group}")
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        arrangement.append("SCHED_IDLE")
    except (AttributeError, OSError):  # not Linux
        try:
            os.nice(FALLBACK_NICE)
            arrangement.append(f"nice {FALLBACK_NICE}")
        except (AttributeError, OSError):
            arrangement.append("normal priority")
    return " + ".join(arrangement)


def _idle_group(setting: str, proc: Path) -> Path | None:
    if setting == "off":
        return None
    if setting != "auto":
        target, parent = Path(setting), None
    else:
        own = own_cpu_cgroup(proc)
        if own is None:
            return None
        target = own.directory / GROUP_NAME
        parent = own.directory if own.unified else None
    try:
        join_idle_group(target, enable_cpu_in=parent)
    except OSError as exc:
        # A read-only cgroup filesystem is the common case in containers: not worth a warning
        # when chosen automatically, but an operator who named a group wants to know.
        (log.warning if setting != "auto" else log.info)(
            "the analysis keeps the server's CPU group (%s): %s", target, exc
        )
        return None
    return target
