"""Peak memory of the processes a benchmark starts, read from Linux's /proc.

    peak_rss_mb(pid)         the process's high-water resident set (VmHWM), MB; 0 once gone
    process_children(pid)    its direct children (gunicorn's workers, an RQ worker's horse)

Issue 12's targets: a web worker ≤ 120 MB, an RQ worker ≤ 150 MB. VmHWM is the peak the kernel
kept for the process's whole life, so one read before it stops is its peak.
"""

from __future__ import annotations

from pathlib import Path


def peak_rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def process_children(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return children
