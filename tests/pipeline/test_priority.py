"""The analysis process's CPU priority (pipeline/priority.py): finding the process's own CPU
cgroup from /proc, making an idle group, and — on this machine's real kernel, in a child process
so the test runner keeps its own priority — what ``lowest_priority`` leaves in effect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from callcoach.pipeline.priority import GROUP_NAME, CpuCgroup, join_idle_group, own_cpu_cgroup

# /proc/self/mountinfo lines as the kernel writes them (Documentation/filesystems/proc.rst, 3.5)
V1_MOUNTS = """\
24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
33 24 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
36 33 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
37 33 0:32 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw,nosuid,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
38 33 0:33 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:16 - cgroup2 cgroup2 rw
"""
V1_CGROUP = """\
9:memory:/docker/abc
4:cpu,cpuacct:/docker/abc/web
0::/docker/abc
"""
V2_MOUNTS = """\
24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
"""


def _proc(tmp_path: Path, cgroup: str, mounts: str) -> Path:
    proc = tmp_path / "proc"
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text(cgroup)
    (proc / "mountinfo").write_text(mounts)
    return proc


def test_cgroup_v1_cpu_hierarchy_is_found_below_the_mounts_root(tmp_path: Path) -> None:
    # the container's mount shows /docker/abc as its root: the process's group is web/ inside it
    own = own_cpu_cgroup(_proc(tmp_path, V1_CGROUP, V1_MOUNTS))
    assert own == CpuCgroup(Path("/sys/fs/cgroup/cpu,cpuacct/web"), unified=False)


def test_cgroup_v2_is_used_when_no_v1_hierarchy_holds_the_cpu_controller(tmp_path: Path) -> None:
    service = own_cpu_cgroup(_proc(tmp_path / "a", "0::/system.slice/callcoach.service\n", V2_MOUNTS))
    assert service == CpuCgroup(Path("/sys/fs/cgroup/system.slice/callcoach.service"), unified=True)
    root = own_cpu_cgroup(_proc(tmp_path / "b", "0::/\n", V2_MOUNTS))  # a container's own namespace
    assert root == CpuCgroup(Path("/sys/fs/cgroup"), unified=True)


def test_no_cgroup_information_means_no_group(tmp_path: Path) -> None:
    assert own_cpu_cgroup(tmp_path / "missing") is None  # not Linux, or /proc not mounted
    assert own_cpu_cgroup(_proc(tmp_path, "0::/\n", "")) is None  # no cgroup filesystem mounted


def test_an_idle_group_is_made_and_joined(tmp_path: Path) -> None:
    group = tmp_path / GROUP_NAME
    group.mkdir()
    (group / "cpu.idle").write_text("0")  # as the kernel creates it in a new group
    (group / "cgroup.procs").write_text("")
    join_idle_group(group)
    assert (group / "cpu.idle").read_text() == "1"
    assert (group / "cgroup.procs").read_text() == str(os.getpid())


def test_without_cpu_idle_the_group_is_refused_and_nothing_is_left_behind(tmp_path: Path) -> None:
    group = tmp_path / GROUP_NAME  # a kernel before 5.15, or a parent that cannot hand down "cpu"
    with pytest.raises(OSError, match=r"no cpu\.idle"):
        join_idle_group(group)
    assert not group.exists()


CHILD = """
import json, os, sys
from callcoach.pipeline.priority import lowest_priority
said = lowest_priority(sys.argv[1])
cgroup = open("/proc/self/cgroup").read()
print(json.dumps({"said": said, "policy": os.sched_getscheduler(0), "cgroup": cgroup}))
"""


def _in_child(setting: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, setting], capture_output=True, text=True, check=True, timeout=60
    )
    return dict(json.loads(out.stdout))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SCHED_IDLE and cgroups are Linux's")
def test_on_this_kernel_the_analysis_gets_only_the_leftover_cpu() -> None:
    child = _in_child("auto")
    assert child["policy"] == os.SCHED_IDLE
    own = own_cpu_cgroup()
    writable = own is not None and os.access(own.directory, os.W_OK) and not own.unified
    if writable:  # cgroup v1 with a writable cpu hierarchy, as on the CI machines
        assert f"/{GROUP_NAME}" in str(child["cgroup"])
        assert str(child["said"]).startswith("idle cpu cgroup ")
    assert str(child["said"]).endswith("SCHED_IDLE")
    off = _in_child("off")
    assert off["said"] == "SCHED_IDLE" and f"/{GROUP_NAME}" not in str(off["cgroup"])
