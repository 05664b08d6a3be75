"""The app's settings plus a bench-only URLconf: the bare baseline view never ships."""

from shopapp.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
