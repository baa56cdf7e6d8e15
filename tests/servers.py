"""Real PostgreSQL and Redis servers for the production-profile tests and benchmark.

Started from Debian's installed binaries (`postgresql`, `redis-server`) on loopback with
throwaway data folders, and stopped and removed afterwards. PostgreSQL refuses to run as root,
so under root its commands run as the `postgres` system user the Debian package creates.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


class ServerUnavailable(RuntimeError):
    """The server binaries are not installed here."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bindir() -> Path:
    """Debian's versioned PostgreSQL binaries, newest version first."""
    candidates = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    if candidates:
        return Path(max(candidates, key=lambda p: float(Path(p).parts[-3]))).parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise ServerUnavailable("PostgreSQL is not installed (apt-get install postgresql)")


@dataclass
class PostgresServer:
    """One throwaway PostgreSQL cluster listening on 127.0.0.1."""

    port: int = field(default_factory=free_port)
    user: str = "mlops"
    password: str = field(default_factory=lambda: "pw-" + secrets.token_hex(8))
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mlops-pg-")))

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def start(self) -> PostgresServer:
        """Create the cluster (first time only) and start it."""
        bindir = postgres_bindir()
        if not self.data.exists():
            self._hand_over(self.folder)
            (self.folder / "pwfile").write_text(self.password + "\n")
            self._hand_over(self.folder / "pwfile")
            self._run(
                bindir / "initdb",
                "-D", self.data, "-U", self.user, "--pwfile", self.folder / "pwfile",
                "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C",
            )  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=300"
        )
        self._run(
            bindir / "pg_ctl", "-D", self.data, "-o", options,
            "-l", self.folder / "server.log", "-w", "-t", "60", "start",
        )  # fmt: skip
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; `immediate` is a crash without a clean shutdown."""
        self._run(postgres_bindir() / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def create_databases(self, *names: str) -> None:
        """Create empty databases (dropping any of the same name)."""
        import psycopg2

        connection = psycopg2.connect(**self.connect_args("postgres"))
        connection.autocommit = True
        with connection.cursor() as cursor:
            for name in names:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                cursor.execute(f'CREATE DATABASE "{name}"')
        connection.close()

    def connect_args(self, database: str) -> dict[str, object]:
        """Keyword arguments for `psycopg2.connect` to one database."""
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": database,
        }

    def remove(self) -> None:
        """Stop if running and delete the data folder."""
        with contextlib.suppress(subprocess.CalledProcessError, ServerUnavailable):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def _hand_over(self, path: Path) -> None:
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(path, account.pw_uid, account.pw_gid)

    def _run(self, *command: object) -> None:
        argv = [str(part) for part in command]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, text=True, cwd="/")


@dataclass
class RedisServer:
    """One throwaway Redis server on 127.0.0.1 with a password and no persistence."""

    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: "rd-" + secrets.token_hex(8))
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mlops-redis-")))
    process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        """Start the server and wait until it answers."""
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise ServerUnavailable("Redis is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [
                binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--requirepass", self.password, "--save", "", "--appendonly", "no",
                "--dir", str(self.folder), "--logfile", str(self.folder / "server.log"),
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not self._answers():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop the server (its data is gone: no persistence)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None

    def client(self):
        """A redis-py client on this server."""
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password)

    def remove(self) -> None:
        """Stop and delete the folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except Exception:
            return False


def production_environment(pg: PostgresServer, redis: RedisServer, tag: str) -> dict[str, str]:
    """The environment of the production profile on these servers, with per-`tag` databases."""
    return {
        "MLOPS_PROFILE": "production",
        "MLOPS_POSTGRES_HOST": "127.0.0.1",
        "MLOPS_POSTGRES_PORT": str(pg.port),
        "MLOPS_POSTGRES_USER": pg.user,
        "MLOPS_POSTGRES_PASSWORD": pg.password,
        "MLOPS_POSTGRES_DAGSTER_DB": f"dagster_{tag}",
        "MLOPS_POSTGRES_MLFLOW_DB": f"mlflow_{tag}",
        "MLOPS_POSTGRES_FEAST_DB": f"feast_{tag}",
        "MLOPS_REDIS_HOST": "127.0.0.1",
        "MLOPS_REDIS_PORT": str(redis.port),
        "MLOPS_REDIS_PASSWORD": redis.password,
    }


@contextlib.contextmanager
def bento_service(env: dict[str, str], cwd: Path, attempts: int = 2) -> Iterator[str]:
    """`bentoml serve` of the platform's service on a free loopback port; yields its URL.

    A server that exits while starting (a port taken between choosing and binding it) is
    started again on another port; its error output is kept for the failure message.
    """
    errors = []
    for _ in range(attempts):
        server, url = _start_bento(env, cwd)
        try:
            if wait_ready(server, url):
                yield url
                return
            errors.append(server.stderr.read()[-3000:] if server.stderr else "")
        finally:
            if server.poll() is None:
                server.terminate()
                server.wait(timeout=30)
    raise RuntimeError("bentoml serve exited while starting:\n" + "\n---\n".join(errors))


def _start_bento(env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable, "-m", "bentoml", "serve", "bentos.service:PredictionService",
            "--host", "127.0.0.1", "--port", str(port),
        ],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return server, f"http://127.0.0.1:{port}"


def wait_ready(server: subprocess.Popen, url: str, timeout_s: float = 120) -> bool:
    """True once `/readyz` answers 200; False if the server exits first."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while server.poll() is None:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return True
        if time.monotonic() > deadline:
            raise RuntimeError(f"the service was not ready within {timeout_s:.0f} s")
        time.sleep(0.5)
    return False


@dataclass
class PromServer:
    """Prometheus or its Pushgateway from Debian's packages, on a free loopback port."""

    binary: str
    arguments: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mlops-prom-")))
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PromServer:
        """Start and wait until `/-/ready` answers 200."""
        import httpx

        found = shutil.which(self.binary) or f"/usr/bin/{self.binary}"
        if not Path(found).exists():
            raise ServerUnavailable(
                f"{self.binary} is not installed (apt-get install {self.binary})"
            )
        log = (self.folder / "server.log").open("w")
        self.process = subprocess.Popen(
            [found, f"--web.listen-address=127.0.0.1:{self.port}", *self.arguments],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.folder,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return self
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"{self.binary} did not start:\n{self.log()[-3000:]}")
            time.sleep(0.2)

    def log(self) -> str:
        """What the server printed so far."""
        path = self.folder / "server.log"
        return path.read_text() if path.exists() else ""

    def remove(self) -> None:
        """Stop the server and delete its folder."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)
