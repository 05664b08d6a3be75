"""wrk, the compiled HTTP load generator, driven from the benchmarks.

A Python client on two cores measures itself: it saw a bare Django view at ~355 requests/s
where wrk sees ~7,000. So every HTTP benchmark loads the server with wrk and reads its figures
back from a Lua ``done()`` hook that prints them as one JSON line.

    request = WrkRequest("POST", "/webhooks/", headers={...}, body=b"...",
                         unique_headers=("X-Shopify-Webhook-Id",))
    result = wrk_run("http://127.0.0.1:8000", request, seconds=10, connections=16)
    result.rps, result.p50_ms, result.p99_ms, result.ok, result.failed

``unique_headers`` get a value of their own on every request (run, thread and request number),
so that deliveries are not duplicates of each other, nor shoppers one client; ``paths`` (and
``bodies``, in step) cycle through several requests: one signed URL per looked-up order, say.

wrk counts only statuses of 400 and up as errors, and a page can be a 200 that says "order not
found". ``expect`` checks every answer in wrk's Lua ``response()`` hook: a 200 holding each of
its strings, or it counts in ``result.unexpected`` (and ``result.failed``). Left None, no hook
runs: wrk then reads no response into Lua, as the webhook intake's floor wants.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

# wrk's Lua: the request spec is read from files the benchmark writes (Lua has no JSON), the
# figures go back as one line of JSON on stdout.
_SCRIPT = r"""
local spec_dir = os.getenv("WRK_SPEC_DIR")
local function read(name)
  local f = assert(io.open(spec_dir .. "/" .. name, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

wrk.method = read("method")
wrk.body = read("body")
if wrk.body == "" then wrk.body = nil end
for line in read("headers"):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+): (.*)$")
  wrk.headers[name] = value
end
local unique = {}
for name in read("unique"):gmatch("[^\n]+") do table.insert(unique, name) end
local paths = {}
for path in read("paths"):gmatch("[^\n]+") do table.insert(paths, path) end
local bodies = {}
for body in read("bodies"):gmatch("[^\n]+") do table.insert(bodies, body) end
local run = read("run")
local thread_count = tonumber(read("threads"))
local checked = read("checked") == "1"
local expect = {}
for text in read("expect"):gmatch("[^\n]+") do table.insert(expect, text) end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

-- Defined only when asked for: wrk copies each response into Lua when the hook exists.
unexpected = 0
if checked then
  function response(status, headers, body)
    -- 400 and up are wrk's own status errors: counted there, not twice.
    if status >= 400 then return end
    local ok = status == 200
    for _, text in ipairs(expect) do
      ok = ok and body ~= nil and string.find(body, text, 1, true) ~= nil
    end
    if not ok then unexpected = unexpected + 1 end
  end
end

local n = 0
function request()
  n = n + 1
  for _, name in ipairs(unique) do
    wrk.headers[name] = run .. "-" .. tid .. "-" .. n
  end
  -- The threads interleave (thread 1 takes the 1st, 3rd, ... of two): each path comes once
  -- per cycle, not once per thread, so no two threads ask for the same order at once.
  local i = ((n - 1) * thread_count + tid - 1)
  if #bodies > 0 then
    return wrk.format(nil, paths[(i % #paths) + 1], nil, bodies[(i % #bodies) + 1])
  end
  return wrk.format(nil, paths[(i % #paths) + 1])
end

function done(summary, latency, requests)
  local e = summary.errors
  local wrong = 0
  for _, thread in ipairs(threads) do wrong = wrong + thread:get("unexpected") end
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d,' ..
    ' "unexpected": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    wrong, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class WrkRequest:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    unique_headers: tuple[str, ...] = ()
    # When set, requests cycle through these instead of ``path``.
    paths: tuple[str, ...] = ()
    # When set, requests cycle through these bodies (one line each: form-encoded) in step with
    # ``paths`` (the n-th request takes the n-th of each).
    bodies: tuple[str, ...] = ()
    # When set, every answer must be a 200 whose body holds each of these (none: any 200).
    expect: tuple[str, ...] | None = None


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    status_errors: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    # Answers under 400 that were not the 200 ``expect`` asked for (0 when nothing was checked).
    unexpected: int = 0

    @property
    def ok(self) -> int:
        """Requests answered 2xx or 3xx (and, when checked, the expected 200)."""
        return self.requests - self.status_errors - self.unexpected

    @property
    def failed(self) -> int:
        return self.status_errors + self.socket_errors + self.unexpected

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk_run(
    base_url: str,
    request: WrkRequest,
    *,
    seconds: float = 10,
    connections: int = 16,
    threads: int = 2,
    timeout_s: int = 10,
) -> WrkResult:
    """Load ``base_url`` with ``request`` for ``seconds``; wrk's own figures."""
    if not wrk_available():
        raise SystemExit("wrk is not installed: run `make setup` (it installs Debian's wrk)")
    with tempfile.TemporaryDirectory(prefix="wrk-") as tmp:
        spec = Path(tmp)
        (spec / "method").write_text(request.method)
        (spec / "body").write_bytes(request.body)
        (spec / "headers").write_text("".join(f"{k}: {v}\n" for k, v in request.headers.items()))
        (spec / "unique").write_text("".join(f"{name}\n" for name in request.unique_headers))
        (spec / "paths").write_text("".join(f"{p}\n" for p in (request.paths or (request.path,))))
        (spec / "bodies").write_text("".join(f"{b}\n" for b in request.bodies))
        (spec / "run").write_text(uuid.uuid4().hex[:12])
        (spec / "threads").write_text(str(threads))
        (spec / "checked").write_text("0" if request.expect is None else "1")
        (spec / "expect").write_text("".join(f"{text}\n" for text in request.expect or ()))
        script = spec / "bench.lua"
        script.write_text(_SCRIPT)
        completed = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                f"--timeout={timeout_s}s",
                "-s",
                str(script),
                base_url.rstrip("/") + request.path,
            ],
            env={**os.environ, "WRK_SPEC_DIR": str(spec)},
            capture_output=True,
            text=True,
            timeout=seconds + timeout_s + 30,
        )
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if completed.returncode != 0 or line is None:
        raise SystemExit(
            f"wrk failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}"
        )
    figures = json.loads(line.removeprefix("WRK_JSON "))
    return WrkResult(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        status_errors=figures["status_errors"],
        socket_errors=figures["socket_errors"],
        unexpected=figures["unexpected"],
        p50_ms=figures["p50_us"] / 1000,
        p90_ms=figures["p90_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        max_ms=figures["max_us"] / 1000,
    )


def process_cpu_seconds(pids: dict[str, int], *, database: str = "") -> dict[str, float]:
    """User + system CPU seconds so far of each server, read from Linux's /proc: what a
    target cost each of them, whatever else the machine was running: each process of
    ``pids`` ({name: pid}) with its descendants (gunicorn's workers), and "PostgreSQL", the
    backends serving ``database`` (their command line names it; none when empty)."""
    stats: dict[int, tuple[int, int]] = {}
    backends: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        # After "(comm) ": state, ppid, … utime and stime are fields 1, 11 and 12.
        fields = raw[raw.rindex(")") + 2 :].split()
        stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
        if database and command.startswith(b"postgres: ") and f" {database} ".encode() in command:
            backends.append(int(entry.name))
    children: dict[int, list[int]] = {}
    for child, (parent, _ticks) in stats.items():
        children.setdefault(parent, []).append(child)

    def tree(pid: int) -> int:
        total, todo = 0, [pid]
        while todo:
            current = todo.pop()
            total += stats.get(current, (0, 0))[1]
            todo.extend(children.get(current, []))
        return total

    tick = os.sysconf("SC_CLK_TCK")
    used = {name: tree(pid) / tick for name, pid in pids.items()}
    used["PostgreSQL"] = sum(stats[pid][1] for pid in backends) / tick
    return used
