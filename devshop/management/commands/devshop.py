"""``python manage.py devshop [--port 8001]``: run the development store as its own server.

It migrates the store's own database (never the app's) and then replaces this process with
gunicorn serving ``devshop.wsgi`` under ``devshop.settings``.
"""

import os
import subprocess
import sys

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the Shopify-compatible development store on its own port."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--threads", type=int, default=16)

    def handle(self, *args, host: str, port: int, threads: int, **options):
        env = dict(os.environ)
        env["DJANGO_SETTINGS_MODULE"] = "devshop.settings"
        env.setdefault("DEVSHOP_URL", f"http://{host}:{port}")
        # The app the store talks to is this project's app, with this project's credentials.
        env.setdefault("SHOPIFY_API_KEY", settings.SHOPIFY_API_KEY)
        env.setdefault("SHOPIFY_API_SECRET", settings.SHOPIFY_API_SECRET)
        env.setdefault("APP_URL", settings.APP_URL)
        env.setdefault("SHOPIFY_SCOPES", settings.SHOPIFY_SCOPES)
        env.setdefault("SHOPIFY_API_VERSION", settings.SHOPIFY_API_VERSION)
        env.setdefault("SHOPIFY_APP_PROXY_PREFIX", settings.SHOPIFY_APP_PROXY_PREFIX)
        env.setdefault("SHOPIFY_APP_PROXY_SUBPATH", settings.SHOPIFY_APP_PROXY_SUBPATH)
        manage = os.path.join(settings.BASE_DIR, "manage.py")
        subprocess.run(
            [sys.executable, manage, "migrate", "--noinput", "-v", "0"], env=env, check=True
        )
        gunicorn = [
            sys.executable,
            "-m",
            "gunicorn",
            "devshop.wsgi:application",
            "--bind",
            f"{host}:{port}",
            "--workers",
            "1",
            "--threads",
            str(threads),
            "--timeout",
            "60",
            "--access-logfile",
            "-" if env.get("DEVSHOP_ACCESS_LOG") == "1" else "/dev/null",
        ]
        self.stdout.write(f"devshop listening on http://{host}:{port}")
        self.stdout.flush()
        # The server (not the migrate step above) runs the webhook delivery loop.
        env["DEVSHOP_DELIVERY"] = "1"
        os.execve(sys.executable, gunicorn, env)  # noqa: S606 - our own argv, no shell
