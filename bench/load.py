"""A big merchant's flood: 50,000 signed webhooks as fast as wrk sends them, then the drain.

    bench ─ CREATE DATABASE <db>_bench_load ─ migrate ─ one active shop
          ─ generate: per order, orders/create, orders/paid, orders/updated, fulfillments/create,
            fulfillment_events/create (the shared fixtures, ids made unique, serialised and signed
            as the devshop does); some orders/updated sent before their orders/create, some
            deliveries sent twice (Shopify retrying: same webhook id, same body)
          ─ the Procfile's `web` (gunicorn, WEB_CONCURRENCY=2) and 2 × its `worker` (rqworker)
          ─ wrk: each thread reads its share of the pre-signed requests from a file, sends
            each once and stops when all are answered
          ─ wait until every delivery is handled and every queue is empty
          ─> intake rate, p50/p99, time to drain, events lost, processed twice, peak RSS
          ─ DROP DATABASE

Lost: a delivery answered 200 (every unique webhook id sent, when wrk saw no failure) with no
stored row, or a row that never reached "processed". Processed twice: the workers log
``webhooks.process.processed event=<id>`` once per committed handler run; an event id logged
twice is a delivery handled twice. The log count must equal the processed rows, or the count
is not trusted (the run fails). Order mirror checks: every order, shipment and tracking event
exists once, and no order kept a stale version (an orders/create arriving after its
orders/updated must change nothing).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wtd REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python bench/load.py [--count 50000] [--json out.json]

Redis: REDIS_URL when set (the run's jobs are removed afterwards), else the embedded one in a
temporary directory. Peak RSS is each process's high-water mark (VmHWM) read from /proc; an
RQ worker's includes the work horses it forked (sampled every 0.2 s).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.dataset import recreate_database, scratch_urls  # noqa: E402
from bench.report import figure, figures_row, figures_write  # noqa: E402
from bench.rss import peak_rss_mb, process_children  # noqa: E402
from bench.webhooks import free_port, stop_server  # noqa: E402
from bench.wrk import wrk_available  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO.parent / "shared" / "fixtures" / "shopify" / "webhooks"
FALLBACK_FIXTURES = REPO / "tests" / "fixtures" / "shopify" / "webhooks"
SHOP_DOMAIN = "bench-load.myshopify.com"
# Each order's deliveries, in the order Shopify sends them.
STORY = (
    "orders/create",
    "orders/paid",
    "orders/updated",
    "fulfillments/create",
    "fulfillment_events/create",
)
# Orders per block: a block's fulfillments go out with the next block's orders, its tracking
# events with the one after, as a store's day goes (orders first, parcels later), so that a
# fulfillment rarely reaches a worker before its order (that is RQ retrying, not a flood).
BLOCK = 200
OUT_OF_ORDER_SHARE = 0.05
DUPLICATE_SHARE = 0.02
# A duplicate goes out this many requests after its original (Shopify retrying).
DUPLICATE_LAG = 500
# Targets (issue 12): peak RSS per web worker and per RQ worker, MB.
WEB_RSS_TARGET_MB = 120
RQ_RSS_TARGET_MB = 150

# wrk's Lua: thread i reads requests-i (raw HTTP requests, back to back) by the sizes in
# index-i, sends each once, and stops once all are answered. A connection that asks for more
# after the thread's share is gone gets GET /webhooks/ (a 405, counted apart) until then.
_LUA = r"""
local dir = os.getenv("LOAD_DIR")
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

local file, sizes, sent = nil, {}, 0
ok, rejected, fillers = 0, 0, 0
local filler
-- wrk calls the first thread's request() once before sending anything, to check what it
-- returns (script_verify_request): that call must not use up a delivery.
local checking
function init(args)
  checking = tid == 1
  for line in io.lines(dir .. "/index-" .. tid) do table.insert(sizes, tonumber(line)) end
  file = assert(io.open(dir .. "/requests-" .. tid, "rb"))
  filler = wrk.format("GET", "/webhooks/")
  if #sizes == 0 then
    io.write("LOAD_THREAD_DONE " .. tid .. "\n")
    io.stdout:flush()
  end
end

function request()
  if checking then
    checking = false
    return filler
  end
  if sent < #sizes then
    sent = sent + 1
    return file:read(sizes[sent])
  end
  return filler
end

function response(status, headers, body)
  if status == 405 then
    fillers = fillers + 1
    return
  end
  if status == 200 then ok = ok + 1 else rejected = rejected + 1 end
  if ok + rejected == #sizes then
    io.write("LOAD_THREAD_DONE " .. tid .. "\n")
    io.stdout:flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local total_ok, total_rejected, total_fillers = 0, 0, 0
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_rejected = total_rejected + thread:get("rejected")
    total_fillers = total_fillers + thread:get("fillers")
  end
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "ok": %d, "rejected": %d, "fillers": %d,' ..
    ' "socket_errors": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, total_ok, total_rejected, total_fillers,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass
class Plan:
    """What was sent, to check what was stored against."""

    requests: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    webhook_ids: set[str] = field(default_factory=set)
    topics: Counter = field(default_factory=Counter)
    # order id -> the newest updated_at sent for it (what the mirror must end up with).
    order_updated_at: dict[int, datetime] = field(default_factory=dict)
    fulfillments: int = 0
    tracking_events: int = 0
    bytes: int = 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50_000, help="webhooks sent (50000)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument(
        "--drain-timeout", type=float, default=3600, help="seconds to wait for the drain (3600)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here (bench.report)")
    parser.add_argument("--seed", type=int, default=12)
    return parser.parse_args()


def fixture(name: str) -> dict:
    path = FIXTURES / f"{name}.json"
    if not path.exists():
        path = FALLBACK_FIXTURES / f"{name}.json"
    return json.loads(path.read_text())


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Generator:
    """The payloads of one order's story, from the fixtures with this order's ids."""

    def __init__(self) -> None:
        self.order = fixture("orders__create")
        self.fulfillment = fixture("fulfillments__create")
        self.event = fixture("fulfillment_events__create")
        self.start = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)

    def order_payload(self, n: int, topic: str) -> tuple[int, dict, datetime]:
        order_id = 7_000_000_000_000 + n
        created = self.start + timedelta(seconds=7 * n)
        updated = created + timedelta(minutes=STORY.index(topic))
        payload = copy.deepcopy(self.order)
        payload.update(
            id=order_id,
            admin_graphql_api_id=f"gid://shopify/Order/{order_id}",
            name=f"#L{n + 1001}",
            order_number=n + 1001,
            number=n + 1,
            created_at=_stamp(created),
            updated_at=_stamp(updated),
            processed_at=_stamp(created),
            email=f"shopper{n}@example.com",
            financial_status="pending" if topic == "orders/create" else "paid",
        )
        return order_id, payload, updated

    def fulfillment_payload(self, n: int) -> dict:
        order_id = 7_000_000_000_000 + n
        shipped = self.start + timedelta(seconds=7 * n, hours=20)
        payload = copy.deepcopy(self.fulfillment)
        fulfillment_id = 8_000_000_000_000 + n
        payload.update(
            id=fulfillment_id,
            order_id=order_id,
            admin_graphql_api_id=f"gid://shopify/Fulfillment/{fulfillment_id}",
            name=f"#L{n + 1001}.1",
            created_at=_stamp(shipped),
            updated_at=_stamp(shipped),
            tracking_number=f"1Z{n:016d}",
            tracking_numbers=[f"1Z{n:016d}"],
        )
        return payload

    def event_payload(self, n: int) -> dict:
        happened = self.start + timedelta(seconds=7 * n, hours=30)
        payload = copy.deepcopy(self.event)
        event_id = 9_000_000_000_000 + n
        payload.update(
            id=event_id,
            fulfillment_id=8_000_000_000_000 + n,
            order_id=7_000_000_000_000 + n,
            admin_graphql_api_id=f"gid://shopify/FulfillmentEvent/{event_id}",
            happened_at=_stamp(happened),
            created_at=_stamp(happened),
            updated_at=_stamp(happened),
        )
        return payload


def raw_request(host: str, topic: str, body: bytes, webhook_id: str, secret: str) -> bytes:
    from devshop.webhooks import webhook_hmac

    head = [
        "POST /webhooks/ HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        f"X-Shopify-Topic: {topic}",
        f"X-Shopify-Hmac-Sha256: {webhook_hmac(body, secret)}",
        f"X-Shopify-Shop-Domain: {SHOP_DOMAIN}",
        "X-Shopify-API-Version: 2026-04",
        f"X-Shopify-Webhook-Id: {webhook_id}",
        f"X-Shopify-Event-Id: {webhook_id}",
        "X-Shopify-Triggered-At: 2026-11-27T08:00:00.000000Z",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def generate(count: int, host: str, secret: str, spec_dir: Path, seed: int, threads: int) -> Plan:
    """Write ``count`` raw requests, split between wrk's threads in turn; return the plan."""
    from devshop.webhooks import webhook_body

    rng = random.Random(seed)
    generator = Generator()
    plan = Plan()
    duplicates = int(count * DUPLICATE_SHARE)
    wanted = count - duplicates
    # (topic, body, order id, the order's updated_at) in sending order, no repeats yet.
    originals: list[tuple[str, bytes, int | None, datetime | None]] = []
    blocks: list[list[int]] = []
    n = 0
    while len(originals) < wanted:
        blocks.append(list(range(n, n + BLOCK)))
        n += BLOCK
        for order in blocks[-1]:
            story = ["orders/create", "orders/paid", "orders/updated"]
            if rng.random() < OUT_OF_ORDER_SHARE:
                # The newest version first: the orders/create after it must change nothing.
                story = ["orders/updated", "orders/create", "orders/paid"]
            for topic in story:
                order_id, payload, updated = generator.order_payload(order, topic)
                originals.append((topic, webhook_body(payload), order_id, updated))
        if len(blocks) >= 2:
            originals.extend(
                ("fulfillments/create", webhook_body(generator.fulfillment_payload(o)), None, None)
                for o in blocks[-2]
            )
        if len(blocks) >= 3:
            originals.extend(
                ("fulfillment_events/create", webhook_body(generator.event_payload(o)), None, None)
                for o in blocks[-3]
            )
    originals = originals[:wanted]
    # What the mirror must end up with, from what is actually sent: each order's newest
    # updated_at, and an out-of-order pair wherever orders/updated goes before orders/create.
    first_topic: dict[int, str] = {}
    for topic, _body, order_id, updated in originals:
        if order_id is None or updated is None:
            plan.fulfillments += topic == "fulfillments/create"
            plan.tracking_events += topic == "fulfillment_events/create"
            continue
        first_topic.setdefault(order_id, topic)
        newest = plan.order_updated_at.get(order_id, updated)
        plan.order_updated_at[order_id] = max(newest, updated)
    plan.out_of_order = sum(1 for topic in first_topic.values() if topic == "orders/updated")

    # Some deliveries again, DUPLICATE_LAG requests later: Shopify retrying (same id, body).
    again: dict[int, list[int]] = {}
    for index in rng.sample(range(len(originals)), duplicates):
        again.setdefault(min(len(originals) - 1, index + DUPLICATE_LAG), []).append(index)
    sequence: list[int] = []
    for position in range(len(originals)):
        sequence.append(position)
        sequence.extend(sorted(again.get(position, ())))
    plan.duplicates = duplicates

    files = [open(spec_dir / f"requests-{t + 1}", "wb") for t in range(threads)]  # noqa: SIM115
    sizes: list[list[int]] = [[] for _ in range(threads)]
    try:
        for i, index in enumerate(sequence):
            topic, body = originals[index][:2]
            webhook_id = f"load-{index:06d}"
            raw = raw_request(host, topic, body, webhook_id, secret)
            files[i % threads].write(raw)
            sizes[i % threads].append(len(raw))
            plan.requests += 1
            plan.bytes += len(body)
            if webhook_id not in plan.webhook_ids:
                plan.webhook_ids.add(webhook_id)
                plan.topics[topic] += 1
    finally:
        for handle in files:
            handle.close()
    for t in range(threads):
        (spec_dir / f"index-{t + 1}").write_text("".join(f"{s}\n" for s in sizes[t]))
    return plan


def procfile_command(name: str) -> str:
    for line in (REPO / "Procfile").read_text().splitlines():
        key, _, command = line.partition(":")
        if key.strip() == name:
            return command.strip()
    raise SystemExit(f"Procfile has no {name!r} process")


def start_process(name: str, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """One Procfile process, run as a Procfile runner would: by the shell, from the repo."""
    log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(
        ["bash", "-c", "exec " + procfile_command(name)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_healthy(port: int, process: subprocess.Popen, log_path: Path) -> None:
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer /healthz:\n{log_path.read_text()[-3000:]}")


class RssSampler(threading.Thread):
    """Peak RSS of each gunicorn worker and each RQ worker (with its work horses)."""

    def __init__(self, web_pid: int, rq_pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.web_pid = web_pid
        self.rq_pids = rq_pids
        self.web: dict[int, float] = {}
        self.rq: dict[int, float] = dict.fromkeys(rq_pids, 0.0)
        self.stopping = threading.Event()

    def sample(self) -> None:
        for pid in process_children(self.web_pid):
            self.web[pid] = max(self.web.get(pid, 0.0), peak_rss_mb(pid))
        for pid in self.rq_pids:
            horses = process_children(pid)
            self.rq[pid] = max(self.rq[pid], peak_rss_mb(pid), *map(peak_rss_mb, horses))

    def run(self) -> None:
        while not self.stopping.wait(0.2):
            self.sample()

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        self.sample()


def run_wrk(base: str, spec_dir: Path, connections: int, threads: int, timeout_s: float) -> dict:
    script = spec_dir / "load.lua"
    script.write_text(_LUA)
    process = subprocess.Popen(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{int(timeout_s)}s",
            "--timeout=10s",
            "-s",
            str(script),
            base + "/webhooks/",
        ],
        env={**os.environ, "LOAD_DIR": str(spec_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    finished: set[str] = set()
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("LOAD_THREAD_DONE "):
            finished.add(line.split()[1])
            if len(finished) == threads:
                # wrk's main thread sleeps out -d: every request is answered, wake it.
                process.send_signal(signal.SIGINT)
    process.wait()
    found = next((ln for ln in lines if ln.startswith("WRK_JSON ")), None)
    if found is None:
        raise SystemExit(f"wrk failed ({process.returncode}):\n{''.join(lines)}")
    figures = json.loads(found.removeprefix("WRK_JSON "))
    figures["all_answered"] = len(finished) == threads
    return figures


def queues_idle() -> tuple[bool, dict[str, int], int]:
    """Whether no work is queued, running or due on any queue the app has.

    Work deferred to a later time (a shipment's next read in hours, RQ's ScheduledJobRegistry
    with a future score) is not work left from the flood: it is counted apart, as the third
    value, and printed, so a drain ends when everything due now is done.
    """
    from django.conf import settings
    from rq.registry import ScheduledJobRegistry, StartedJobRegistry

    from shopapp.background.queue import queue_get

    counts = {}
    later = 0
    now = time.time()
    for name in settings.RQ_QUEUES:
        queue = queue_get(name)
        scheduled = ScheduledJobRegistry(queue=queue)
        due = queue.connection.zcount(scheduled.key, "-inf", now)
        later += queue.connection.zcount(scheduled.key, f"({now}", "+inf")
        counts[name] = queue.count + StartedJobRegistry(queue=queue).count + due
    return not any(counts.values()), counts, later


def wait_drained(timeout_s: float) -> tuple[float | None, float | None, int]:
    """Seconds until no delivery waits, and until every queue is idle too (None: timed out),
    and how many jobs were left scheduled for later."""
    from shopapp.models import WebhookEvent

    started = time.perf_counter()
    handled_at = None
    later = 0
    waiting = (WebhookEvent.Status.PENDING, WebhookEvent.Status.PROCESSING)
    while time.perf_counter() - started < timeout_s:
        if handled_at is None and not WebhookEvent.objects.filter(status__in=waiting).exists():
            handled_at = time.perf_counter() - started
        if handled_at is not None:
            idle, _counts, later = queues_idle()
            if idle:
                return handled_at, time.perf_counter() - started, later
        time.sleep(0.5)
    return handled_at, None, later


def processed_in_logs(log_paths: list[Path]) -> Counter:
    pattern = re.compile(r"webhooks\.process\.processed event=(\d+)")
    seen: Counter = Counter()
    for path in log_paths:
        for match in pattern.finditer(path.read_text(errors="replace")):
            seen[int(match.group(1))] += 1
    return seen


def check_mirror(plan: Plan) -> dict[str, int]:
    """Orders, shipments and tracking events as the deliveries describe them."""
    from shopapp.models import Order
    from tracking.models import Shipment, TrackingEvent

    orders = dict(
        Order.objects.filter(shop__myshopify_domain=SHOP_DOMAIN).values_list(
            "shopify_id", "shopify_updated_at"
        )
    )
    missing_orders = len(set(plan.order_updated_at) - set(orders))
    stale = sum(
        1
        for order_id, newest in plan.order_updated_at.items()
        if order_id in orders and orders[order_id] != newest
    )
    shipments = Shipment.objects.filter(shop__myshopify_domain=SHOP_DOMAIN).count()
    events = TrackingEvent.objects.filter(shipment__shop__myshopify_domain=SHOP_DOMAIN).count()
    return {
        "orders missing": missing_orders,
        "orders left stale": stale,
        "shipments missing": max(0, plan.fulfillments - shipments),
        "shipments extra": max(0, shipments - plan.fulfillments),
        "tracking events missing": max(0, plan.tracking_events - events),
        "tracking events extra": max(0, events - plan.tracking_events),
    }


def cleanup_redis(redis_url: str, embedded: bool, since: datetime) -> None:
    """Our embedded Redis: stop it. A shared one: remove only the jobs this run made."""
    import redis
    from django.conf import settings
    from rq.exceptions import InvalidJobOperation, NoSuchJobError
    from rq.job import Job
    from rq.registry import (
        FailedJobRegistry,
        FinishedJobRegistry,
        ScheduledJobRegistry,
        StartedJobRegistry,
    )

    from shopapp.background.queue import queue_get
    from shopapp.webhooks.services import PUMP_FLAG

    connection = redis.Redis.from_url(redis_url)
    if embedded:
        with contextlib.suppress(redis.RedisError):
            connection.shutdown(nosave=True)
        return
    connection.delete(PUMP_FLAG)
    for name in settings.RQ_QUEUES:
        queue = queue_get(name)
        ids = set(queue.get_job_ids())
        for registry in (FinishedJobRegistry, FailedJobRegistry, ScheduledJobRegistry):
            ids.update(registry(queue=queue).get_job_ids())
        ids.update(StartedJobRegistry(queue=queue).get_job_ids())
        for job in Job.fetch_many(list(ids), connection=queue.connection):
            if job is not None and job.created_at and job.created_at >= since:
                # A job whose hash expired between the listing and the delete (a finished
                # job's result TTL) is gone already.
                with contextlib.suppress(InvalidJobOperation, NoSuchJobError):
                    job.delete()


def main() -> int:
    args = parse_args()
    if not wrk_available():
        raise SystemExit("wrk is not installed: run `make setup` (it installs Debian's wrk)")
    admin_url, db_name, scratch_url = scratch_urls("bench_load", script="bench/load.py")
    threads = 2
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        run_dir = Path(tmp)
        os.environ.update(
            LOCAL_DEV="1",
            DJANGO_SETTINGS_MODULE="shopapp.settings",
            RUN_DIR=str(run_dir),
            DATABASE_URL=scratch_url,
            LOG_LEVEL=os.environ.get("LOG_LEVEL", "INFO"),
        )
        embedded_redis = not os.environ.get("REDIS_URL")
        recreate_database(admin_url, db_name)
        try:
            return run(args, run_dir, embedded_redis, threads)
        finally:
            from django.db import connections

            connections.close_all()
            recreate_database(admin_url, db_name, drop_only=True)


def run(args: argparse.Namespace, run_dir: Path, embedded_redis: bool, threads: int) -> int:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    from django.conf import settings
    from django.utils import timezone

    from shopapp.models import Shop, WebhookEvent

    Shop.objects.create(
        myshopify_domain=SHOP_DOMAIN, name="Load shop", is_active=True, installed_at=timezone.now()
    )
    if embedded_redis:
        os.environ["REDIS_URL"] = settings.REDIS_URL
    since = timezone.now()

    port = free_port()
    spec_dir = run_dir / "requests"
    spec_dir.mkdir()
    began = time.perf_counter()
    plan = generate(
        args.count, f"127.0.0.1:{port}", settings.SHOPIFY_API_SECRET, spec_dir, args.seed, threads
    )
    generated_s = time.perf_counter() - began
    print(
        f"bench/load: {plan.requests} requests ({plan.bytes / 1e6:.0f} MB of bodies, "
        f"{len(plan.webhook_ids)} unique webhook ids, {plan.duplicates} sent twice, "
        f"{plan.out_of_order} orders/updated before their orders/create) generated in "
        f"{generated_s:.0f} s; topics: {dict(plan.topics)}",
        flush=True,
    )

    env = {
        **os.environ,
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
        # The workers' "processed" lines are the double-processing count.
        "LOG_LEVEL": "INFO",
    }
    web_log = run_dir / "web.log"
    worker_logs = [run_dir / f"worker-{i}.log" for i in (1, 2)]
    web = start_process("web", env, web_log)
    workers: list[subprocess.Popen] = []
    try:
        wait_healthy(port, web, web_log)
        workers = [start_process("worker", env, path) for path in worker_logs]
        sampler = RssSampler(web.pid, [w.pid for w in workers])
        sampler.start()
        timeout_s = max(120.0, args.count / 20)
        sending_started = time.perf_counter()
        figures = run_wrk(
            f"http://127.0.0.1:{port}", spec_dir, args.connections, threads, timeout_s
        )
        sent_s = time.perf_counter() - sending_started
        print(f"bench/load: wrk done in {sent_s:.1f} s; waiting for the drain", flush=True)
        handled_s, drained_s, later = wait_drained(args.drain_timeout)
        sampler.stop()
    finally:
        for process in [web, *workers]:
            stop_server(process)
        try:
            cleanup_redis(settings.REDIS_URL, embedded_redis, since)
        except Exception as exc:  # noqa: BLE001 - leftover jobs must not cost the run its figures
            # A shared Redis keeps this run's leftover jobs; the figures below still hold.
            print(f"bench/load: Redis cleanup failed ({exc}); figures follow", flush=True)
        for path in [web_log, *worker_logs]:
            if path.exists():
                # The app's lines stay in the run's temporary directory; keep the tail of any
                # traceback in view.
                text = path.read_text(errors="replace")
                if "Traceback" in text:
                    print(f"--- {path.name} (last traceback) ---")
                    print(text[text.rindex("Traceback") :][:3000])

    statuses = Counter(WebhookEvent.objects.values_list("status", flat=True))
    stored_ids = set(WebhookEvent.objects.values_list("webhook_id", flat=True))
    processed_rows = statuses.get(WebhookEvent.Status.PROCESSED, 0)
    logged = processed_in_logs(worker_logs)
    twice = sum(1 for times in logged.values() if times > 1)
    answered_all = figures["all_answered"] and figures["rejected"] == 0
    accepted = plan.webhook_ids if answered_all else set()
    not_stored = len(accepted - stored_ids)
    lost = not_stored + sum(
        statuses.get(s, 0) for s in (WebhookEvent.Status.PENDING, WebhookEvent.Status.PROCESSING)
    )
    mirror = check_mirror(plan)
    duration_s = figures["duration_us"] / 1e6
    rate = figures["ok"] / duration_s if duration_s else 0.0
    web_rss = sorted(sampler.web.values(), reverse=True)[:2]
    rq_rss = [sampler.rq[w.pid] for w in workers]
    counts_trusted = sum(logged.values()) == processed_rows

    print(
        f"wrk -t{threads} -c{args.connections} against gunicorn (Procfile web, 2 workers) and "
        "2 rqworkers (Procfile worker), PostgreSQL"
    )
    print(
        f"intake: {figures['ok']} answered 200, {figures['rejected']} refused, "
        f"{figures['socket_errors']} socket errors in {duration_s:.1f} s = {rate:.1f} req/s; "
        f"p50 {figures['p50_us'] / 1000:.2f} ms, p99 {figures['p99_us'] / 1000:.2f} ms"
    )
    if handled_s is None:
        print(f"drain: NOT DONE after {args.drain_timeout:.0f} s")
    else:
        print(
            f"drain after the last request: deliveries handled in {handled_s:.1f} s, every "
            f"queue idle in {drained_s if drained_s is not None else float('nan'):.1f} s "
            f"({later} jobs left scheduled for later, e.g. shipments' next reads: not counted)"
        )
    print(f"stored: {len(stored_ids)} of {len(plan.webhook_ids)} unique ids; statuses {statuses}")
    print(
        f"events lost: {lost}; processed twice: {twice} "
        f"(processed log lines {sum(logged.values())}, processed rows {processed_rows})"
    )
    print(f"mirror: {mirror}")
    print(
        "peak RSS MB: gunicorn workers "
        + ", ".join(f"{v:.0f}" for v in web_rss)
        + f" (target ≤ {WEB_RSS_TARGET_MB}); RQ workers "
        + ", ".join(f"{v:.0f}" for v in rq_rss)
        + f" (target ≤ {RQ_RSS_TARGET_MB})"
    )
    failed_rows = statuses.get(WebhookEvent.Status.FAILED, 0) + statuses.get(
        WebhookEvent.Status.IGNORED, 0
    )
    ok = (
        answered_all
        and figures["socket_errors"] == 0
        and drained_s is not None
        and lost == 0
        and twice == 0
        and counts_trusted
        and failed_rows == 0
        and not any(mirror.values())
    )
    drain_total = sent_s + drained_s if drained_s is not None else None
    figures_write(
        args.json,
        bench="load",
        unit="req/s",
        setup=(
            f"PostgreSQL; {plan.requests} signed webhooks ({len(plan.webhook_ids)} unique, "
            f"{plan.duplicates} repeats, {plan.out_of_order} out-of-order pairs), 5 topics; "
            f"wrk -t{threads} -c{args.connections}; Procfile web (gunicorn 2 workers) + 2 "
            "Procfile workers"
        ),
        rows=[
            figures_row(
                "webhook flood (intake)",
                rate=rate,
                p50_ms=figures["p50_us"] / 1000,
                p99_ms=figures["p99_us"] / 1000,
                failed=figures["rejected"] + figures["socket_errors"],
            ),
            figures_row(
                "webhook flood (deliveries handled per s, first request to drained)",
                rate=len(plan.webhook_ids) / drain_total if drain_total else 0.0,
                p50_ms=None,
                p99_ms=None,
                failed=lost + failed_rows,
            ),
        ],
        figures=[
            figure("time to drain after the last request", drained_s, "s"),
            figure("events lost", lost, "", goal="= 0", met=lost == 0),
            figure("events processed twice", twice, "", goal="= 0", met=twice == 0),
            *(
                figure(
                    f"peak RSS, gunicorn worker {i + 1}",
                    mb,
                    "MB",
                    goal=f"≤ {WEB_RSS_TARGET_MB}",
                    met=mb <= WEB_RSS_TARGET_MB,
                )
                for i, mb in enumerate(web_rss)
            ),
            *(
                figure(
                    f"peak RSS, RQ worker {i + 1}",
                    mb,
                    "MB",
                    goal=f"≤ {RQ_RSS_TARGET_MB}",
                    met=mb <= RQ_RSS_TARGET_MB,
                )
                for i, mb in enumerate(rq_rss)
            ),
        ],
        ok=ok,
        notes=[
            f"statuses {dict(statuses)}; mirror {mirror}",
            f"processed log lines {sum(logged.values())} = processed rows {processed_rows}: "
            f"{counts_trusted}",
        ],
    )
    if not ok:
        print("FAIL: see above (lost, twice, refused, failed rows, mirror, or drain timeout)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
