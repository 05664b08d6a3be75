"""The app's settings plus a bench-only URLconf: the bare baseline view never ships."""

import os

from shopapp.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

# bench/tracking.py measures the tracking page rendered every time, too.
if os.environ.get("BENCH_PAGE_CACHE") == "off":
    TRACKING_PAGE_CACHE_SECONDS = 0
