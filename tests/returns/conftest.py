"""Fixtures shared by the returns tests that talk to the devshop."""

import pytest

from tests.devshop.capture_server import CaptureServer


@pytest.fixture(scope="module")
def capture():
    """Where the devshop's webhooks land (flow_support.deliver posts them to the app): one
    server per test module."""
    server = CaptureServer().start()
    yield server
    server.stop()
