"""CPU per request of the storefront tracking page, in-process: load-independent figures.

    bench/tracking_cpu.py ─ a small scale dataset (bench/scale.py --orders 20000, reused)
        ─ WSGIHandler, called in this process with signed app-proxy environs (no socket, no
          gunicorn): /bench/bare, /proxy/track/<token> cached, and rendered (cache off)
        ─ CPU µs per request (time.process_time over N requests), SQL queries per request
        ─ with --profile: cProfile's top functions of each target (CPU time, cumulative and own)
        ─ with --callgrind (under valgrind --tool=callgrind --instr-atstart=no): instructions
          of the timed requests only, one dump per target (callgrind_annotate reads them)

wrk's requests/s (bench/tracking.py) swing with whatever else the machine runs; the CPU a
request costs this process swings less (a loaded machine still slows every instruction:
caches, shared cores), and callgrind's instruction counts not at all. The bare view runs the
same middleware stack as the page. Not counted: PostgreSQL's and Redis's own CPU.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wtd REDIS_URL=redis://127.0.0.1:6379/4 \\
        .venv/bin/python bench/tracking_cpu.py [--orders 20000] [--requests 2000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.dataset import configure_environment, signed_path  # noqa: E402
from bench.scale import ScaleParams, ensure_scale_db, scale_samples  # noqa: E402

# Distinct orders cycled through: every one rendered once before the cached pass.
SAMPLE_ORDERS = 200
# Requests before each timed pass (imports, template loading, connections).
WARMUP_REQUESTS = 50


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=20_000, help="scale dataset's orders")
    parser.add_argument("--sample", type=int, default=SAMPLE_ORDERS, help="orders cycled")
    parser.add_argument("--requests", type=int, default=2000, help="timed per target")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    parser.add_argument("--top", type=int, default=25, help="functions per profile")
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="run under valgrind --tool=callgrind --instr-atstart=no: count instructions of "
        "the timed requests only (callgrind_control), one dump per target",
    )
    parser.add_argument(
        "--only", choices=("bare", "rendered", "cached"), action="append", help="targets to run"
    )
    return parser.parse_args()


def environ_for(url: str) -> dict:
    """A WSGI environ for a GET of ``url`` as gunicorn makes it behind Shopify's proxy."""
    parts = urlsplit(url)
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": parts.path,
        "QUERY_STRING": parts.query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_X_FORWARDED_FOR": "203.0.113.9",
        "HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def serve(app, urls: list[str], count: int) -> float:
    """CPU seconds for ``count`` requests cycling through ``urls`` (each answer read whole)."""
    statuses: list[str] = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    environs = [environ_for(urls[i % len(urls)]) for i in range(count)]
    started = time.process_time()
    times = os.times()
    for environ in environs:
        result = app(environ, start_response)
        for _chunk in result:
            pass
        if hasattr(result, "close"):
            result.close()
    spent = time.process_time() - started
    after = os.times()
    # user and system seconds (os.times: 10 ms ticks, a rough split of ``spent``)
    serve.user_sys = (after.user - times.user, after.system - times.system)  # type: ignore[attr-defined]
    bad = [s for s in statuses if not s.startswith("200")]
    if bad:
        raise SystemExit(f"{len(bad)} answers were not 200: {bad[:3]}")
    return spent


def callgrind(option: str) -> None:
    """Tell the valgrind this process runs under to ``option`` (callgrind_control), and wait
    until it has: the request is taken when the process next runs guest code."""
    import subprocess

    subprocess.run(["callgrind_control", option, str(os.getpid())], check=True, timeout=600)


def queries_per_request(app, urls: list[str]) -> float:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        serve(app, urls, len(urls))
    return len(captured.captured_queries) / len(urls)


def profile(app, urls: list[str], count: int, top: int) -> str:
    # CPU time, not wall time: waits on PostgreSQL and Redis are not this process's work.
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    serve(app, urls, count)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main() -> int:
    args = parse_args()
    url = ensure_scale_db(ScaleParams(orders=args.orders))
    samples = scale_samples(url, args.sample)
    with tempfile.TemporaryDirectory(prefix="bench-tracking-cpu-") as tmp:
        configure_environment(Path(tmp), url)
        import django

        django.setup()
        from django.conf import settings
        from django.core.handlers.wsgi import WSGIHandler

        from shopapp.models import Order
        from shopapp.storefront.links import tracking_link_token

        app = WSGIHandler()
        if args.callgrind:
            # Under valgrind a pass takes minutes: Shopify's 90 s would expire the signed URLs
            # (the check costs the same whatever the tolerance).
            settings.SHOPIFY_APP_PROXY_TIMESTAMP_TOLERANCE_SECONDS = 3600
        secret = settings.SHOPIFY_API_SECRET
        pages = [
            (
                f"/proxy/track/{tracking_link_token(Order(pk=s.order_id, shop_id=s.shop_id))}",
                s.shop_domain,
            )
            for s in samples
        ]

        def signed(targets):
            # Signed now: Shopify's timestamps are good for 90 s, so each pass signs afresh.
            return [signed_path(path, domain, secret) for path, domain in targets]

        bare = [("/bench/bare", domain) for _, domain in pages]
        results: dict[str, tuple[float, float, float]] = {}
        profiles: dict[str, str] = {}
        seconds = settings.TRACKING_PAGE_CACHE_SECONDS
        for key, name, targets, cache_on in (
            ("bare", "bare view", bare, True),
            ("rendered", "tracking page (rendered)", pages, False),
            ("cached", "tracking page (cached)", pages, True),
        ):
            if args.only and key not in args.only:
                continue
            settings.TRACKING_PAGE_CACHE_SECONDS = seconds if cache_on else 0
            urls = signed(targets)
            # Warm: every sampled page rendered (and so cached) once.
            serve(app, urls, max(WARMUP_REQUESTS, len(urls)))
            urls = signed(targets)
            if args.callgrind:
                callgrind("--instr=on")
            spent = serve(app, urls, args.requests)
            if args.callgrind:
                callgrind(f"--dump={key}")
                callgrind("--instr=off")
            queries = queries_per_request(app, urls)
            user, system = serve.user_sys  # type: ignore[attr-defined]
            results[name] = (
                1e6 * spent / args.requests,
                1e6 * system / args.requests,
                queries,
            )
            if args.profile:
                profiles[name] = profile(app, signed(targets), args.requests, args.top)
        settings.TRACKING_PAGE_CACHE_SECONDS = seconds

    load = os.getloadavg()
    print(
        f"bench/tracking_cpu: {len(pages)} orders of {url.rsplit('/', 1)[1]}, "
        f"{args.requests} requests per target in-process (load average {load[0]:.2f})"
    )
    bare_us = results.get("bare view", (float("nan"), 0))[0]
    print(
        f"{'target':<28}{'CPU µs/req':>12}{'of which sys':>14}{'x bare CPU':>12}{'queries/req':>13}"
    )
    for name, (us, sys_us, queries) in results.items():
        print(f"{name:<28}{us:>12.0f}{sys_us:>14.0f}{us / bare_us:>12.2f}{queries:>13.1f}")
    for name, text in profiles.items():
        print(f"\n===== profile: {name} =====\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
