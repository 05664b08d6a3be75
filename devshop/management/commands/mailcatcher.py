"""``python manage.py mailcatcher [--port 1025]``: a local SMTP sink for the demo.

Every message the app sends is accepted, saved as ``.run/mail/<n>.eml`` and summarised on the
console (sender, recipients, subject), so the demo's notifications can be read without a real
mail server. Never used in production.
"""

import email
import email.policy
import logging
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from django.conf import settings
from django.core.management.base import BaseCommand


class _SaveToFolder:
    def __init__(self, folder: Path, out) -> None:
        self.folder = folder
        self.out = out
        self.count = len(list(folder.glob("*.eml")))

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.count += 1
        path = self.folder / f"{self.count:05d}.eml"
        path.write_bytes(envelope.content)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.out.write(
            f"mail #{self.count}: {message['Subject']!s} → {', '.join(envelope.rcpt_tos)} ({path})"
        )
        self.out.flush()
        return "250 Message accepted for delivery"


class Command(BaseCommand):
    help = "Run a local SMTP sink that saves every message under .run/mail/."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=1025)

    def handle(self, *args, host: str, port: int, **options):
        # aiosmtpd logs every connection at INFO; the one-line summary per message is enough.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        folder = Path(settings.RUN_DIR) / "mail"
        folder.mkdir(parents=True, exist_ok=True)
        controller = Controller(_SaveToFolder(folder, self.stdout), hostname=host, port=port)
        controller.start()
        self.stdout.write(f"mailcatcher listening on smtp://{host}:{port}, saving to {folder}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            controller.stop()
