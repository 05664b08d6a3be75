"""``python manage.py demo``: the whole app, locally, against the development store.

    embedded Redis ─┬─ web (gunicorn :8000) ── worker (RQ + scheduler) ── cron (rqcron)
                    ├─ devshop (:8001) ── installs the app through the real OAuth flow,
                    │                     seeds orders, keeps simulating, sends webhooks
                    └─ mailcatcher (SMTP :1025) ── every email the app sends, in .run/mail/

At start it prints the URLs to open and an order to try them with: its number and email, its
signed tracking link and the returns portal, made by the app itself (``manage.py
tracking_sample``: the devshop never imports the app). The store then moves at the demo's pace
(``devshop.simulation.DEMO_PACE``): parcels scan about once a minute, and a delay or a missed
delivery stays for ten minutes, so the app's Delays view has something to show.

Ctrl-C stops every process it started.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

import redis
import requests
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from devshop.client import DevshopClient

HTTP_TIMEOUT_SECONDS = 10
# The seed's webhooks reach the app's order mirror within seconds; a slow machine gets longer.
SAMPLE_WAIT_SECONDS = 90


class Command(BaseCommand):
    help = "Run the app, its worker and cron, and the devshop with a demo shop and sample data."

    def add_arguments(self, parser):
        parser.add_argument("--app-port", type=int, default=8000)
        parser.add_argument("--devshop-port", type=int, default=8001)
        parser.add_argument("--mail-port", type=int, default=1025)
        parser.add_argument("--shop", default="demo-shop.myshopify.com")
        parser.add_argument("--orders", type=int, default=36)
        parser.add_argument(
            "--no-wait", action="store_true", help="set everything up, print the URLs and stop"
        )

    def handle(self, *args, app_port, devshop_port, mail_port, shop, orders, no_wait, **options):
        app_url = f"http://127.0.0.1:{app_port}"
        devshop_url = f"http://127.0.0.1:{devshop_port}"
        env = dict(os.environ)
        env.update(
            {
                "LOCAL_DEV": "1",
                "APP_URL": app_url,
                "DEVSHOP_URL": devshop_url,
                "SHOPIFY_ADMIN_URL_TEMPLATE": f"{devshop_url}/store/{{shop}}",
                "SHOPIFY_EMBEDDED_APP_URL_TEMPLATE": f"{devshop_url}/store/{{shop}}/admin/apps/app",
                # Links in the demo's emails open the devshop's storefront.
                "SHOPIFY_STOREFRONT_URL_TEMPLATE": f"{devshop_url}/store/{{shop}}",
                "REDIS_URL": settings.REDIS_URL,
                "PYTHONUNBUFFERED": "1",
                # Notifications go to the demo's own SMTP sink (saved under .run/mail/).
                "EMAIL_URL": f"smtp://127.0.0.1:{mail_port}",
            }
        )
        if urlsplit(settings.APP_URL).port not in (None, app_port):
            self.stderr.write(f"note: APP_URL is overridden to {app_url} for the demo")

        embedded_redis = not os.environ.get("REDIS_URL")
        call_command("migrate", interactive=False, verbosity=0)
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        processes: list[subprocess.Popen] = []

        def start(name: str, argv: list[str]) -> None:
            self.stdout.write(f"starting {name}: {' '.join(argv[1:])}")
            processes.append(subprocess.Popen(argv, env=env, cwd=settings.BASE_DIR))

        def stop(*_args) -> None:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            for process in processes:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
            if embedded_redis:
                # The embedded Redis was started for this demo: stop it too (its append-only
                # file keeps the queue for the next run).
                with contextlib.suppress(redis.RedisError):
                    redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).shutdown()

        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            start("mailcatcher", [*manage, "mailcatcher", "--port", str(mail_port)])
            start("devshop", [*manage, "devshop", "--port", str(devshop_port)])
            start(
                "web",
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "shopapp.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{app_port}",
                    "--workers",
                    "2",
                    "--threads",
                    "4",
                    "--access-logfile",
                    "/dev/null",
                ],
            )
            # Two workers as the Procfile runs them (every queue, round robin, no fork per
            # job), as a small deployment would: the seed's burst of webhooks is drained in
            # parallel and due messages are taken between its jobs, not after it.
            queues = list(settings.RQ_WORKER_QUEUES)
            start("worker", [*manage, "rqworker", *queues, "--with-scheduler"])
            start("worker-2", [*manage, "rqworker", *queues])
            start("cron", [*manage, "rqcron", "shopapp.cron"])

            self._wait_for(f"{devshop_url}/_devshop/knobs", "devshop")
            self._wait_for(f"{app_url}/healthz", "app")

            devshop = DevshopClient(devshop_url)
            devshop.shop_create(shop, name="Demo Shop")
            # A storefront theme of its own: the app reads its colours at install, so the
            # tracking page, portal and emails look like this store before any branding is set.
            devshop.theme_publish(
                shop, "Sense", background="#FDFBF7", text="#242833", button="#B5432B"
            )
            self._install(app_url, shop)
            self._policy(manage, env, shop)
            self._seed(devshop, shop, orders)
            sample = self._sample(manage, env, shop)
            self._print_urls(app_url, devshop_url, shop, sample)
            if no_wait:
                return
            self.stdout.write("Running. Ctrl-C stops everything.")
            while all(p.poll() is None for p in processes):
                self._simulate_tick(devshop, shop)
                time.sleep(5)
            raise CommandError("a demo process exited; see its output above")
        except KeyboardInterrupt:
            self.stdout.write("\nstopping…")
        finally:
            stop()

    def _wait_for(self, url: str, name: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(url, timeout=2).status_code < 500:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise CommandError(f"{name} did not come up at {url}")

    def _install(self, app_url: str, shop: str) -> None:
        """Install through the real authorization code grant: app → store → app callback."""
        response = requests.get(
            f"{app_url}/auth/install", params={"shop": shop}, timeout=HTTP_TIMEOUT_SECONDS
        )
        if response.status_code >= 400:
            raise CommandError(f"install failed: HTTP {response.status_code} at {response.url}")
        self.stdout.write(f"installed the app on {shop} (OAuth code grant, expiring token)")

    def _seed(self, devshop: DevshopClient, shop: str, count: int) -> None:
        seed = getattr(devshop, "demo_seed", None)
        if seed is not None:
            seed(shop, orders=count)
        else:
            devshop.orders_create(shop, count=count)
        self.stdout.write(f"seeded {count} orders on {shop}")

    def _policy(self, manage: list[str], env: dict[str, str], shop: str) -> None:
        """The demo merchant offers exchanges for a different product (off by default): the
        app's own command, as the policy page would save it."""
        result = subprocess.run(
            [*manage, "return_policy_set", "--shop", shop, "--product-exchange", "on"],
            env=env,
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            self.stderr.write(f"return policy left as it was: {result.stderr.strip()}")
            return
        self.stdout.write(result.stdout.strip())

    def _sample(self, manage: list[str], env: dict[str, str], shop: str) -> dict[str, str] | None:
        """An order to try, with its links, from the app (its settings, its signing key)."""
        result = subprocess.run(
            [*manage, "tracking_sample", "--shop", shop, "--wait", str(SAMPLE_WAIT_SECONDS)],
            env=env,
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=SAMPLE_WAIT_SECONDS + 60,
            check=False,
        )
        if result.returncode != 0:
            self.stderr.write(f"no sample order to print: {result.stderr.strip()}")
            return None
        return json.loads(result.stdout.strip().splitlines()[-1])

    def _simulate_tick(self, devshop: DevshopClient, shop: str) -> None:
        tick = getattr(devshop, "simulate_tick", None)
        if tick is not None:
            try:
                tick(shop, pace="demo")
            except requests.RequestException as exc:
                self.stderr.write(f"simulation tick failed: {exc}")

    def _print_urls(
        self, app_url: str, devshop_url: str, shop: str, sample: dict[str, str] | None
    ) -> None:
        store = f"{devshop_url}/store/{shop}"
        subpath = settings.SHOPIFY_APP_PROXY_SUBPATH
        self.stdout.write(demo_banner(store, subpath, app_url, sample))


def demo_banner(store: str, subpath: str, app_url: str, sample: dict[str, str] | None) -> str:
    """What the demo prints once it is up: where to look, and an order to try."""
    lines = [
        "",
        "The demo is up:",
        f"  admin (app embedded in the store's admin)  {store}/admin/apps/app",
        f"  storefront tracking page                    {store}/apps/{subpath}/track",
        f"  storefront returns portal                   {store}/apps/{subpath}/returns",
        f"  app health                                  {app_url}/healthz",
        f"  emails sent to shoppers                     {settings.RUN_DIR}/mail/",
        "",
    ]
    if sample:
        lines += [
            "Try it as a shopper:",
            f"  order {sample['order']}, email {sample['email']}",
            f"  its tracking page (signed link, as in the emails)  {sample['tracking_url']}",
            f"  the returns portal (type the order and email)      {sample['portal_url']}",
            "",
        ]
    return "\n".join(lines)
