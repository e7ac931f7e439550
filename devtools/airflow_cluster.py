"""A distributed Airflow on one machine: the components of a real deployment as
background processes on loopback, for the Celery demo and its tests.

The scheduler, the DAG processor, the API server (which serves the execution API the
workers report to) and Celery workers with distinct names, all sharing one PostgreSQL
metadata database and one Redis broker, each in its own process group so that stopping
the cluster stops everything a component started. Every component gets the same
settings (``Cluster.env``); what a deployment would keep in ``airflow.cfg`` is passed as
``AIRFLOW__*`` variables so a throwaway ``AIRFLOW_HOME`` holds only logs.

Scheduled runs are off (``[scheduler] use_job_schedule``): only the runs asked for
(backfills, triggered runs) execute, never "the latest interval" of a DAG unpaused
weeks after its data.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
WORKER_NAME_VARIABLE = "PIPELINE_CELERY_WORKER"


class ClusterError(RuntimeError):
    """A component did not start, or a run did not finish in time: the message says which."""


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the demo's workers: ``w1@host``, ``w2@host``.

    Airflow records the host that ran each task (``task_instance.hostname``); two workers
    on one machine share a host name, so each is told its Celery name instead."""
    return os.environ.get(WORKER_NAME_VARIABLE) or socket.getfqdn()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Settings:
    """Where the cluster lives: its Airflow home, metadata database, broker and queue."""

    home: Path
    metadata_url: str  # postgresql+psycopg2://user@host:port/db
    broker_url: str = "redis://127.0.0.1:6379/0"
    queue: str = "pipeline"
    workers: tuple[str, ...] = ("w1", "w2")
    concurrency: int = 2
    api_port: int = field(default_factory=free_port)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"


def airflow_variables(settings: Settings) -> dict[str, str]:
    """The settings every component shares (what ``airflow.cfg`` holds in a deployment)."""
    result_backend = "db+" + settings.metadata_url.replace("+psycopg2", "")
    return {
        "AIRFLOW_HOME": str(settings.home),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": settings.metadata_url,
        "AIRFLOW__CELERY__BROKER_URL": settings.broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": settings.queue,
        # The workers' task runners report to the execution API of the API server.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{settings.api_url}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(settings.api_port),
        "AIRFLOW__API__BASE_URL": f"{settings.api_url}/",
        # The scheduler signs each task's token, the API server checks it: one secret.
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


@dataclass
class Component:
    name: str
    process: subprocess.Popen
    log: Path


class Cluster:
    """The running components; ``stop`` ends every process group it started."""

    def __init__(self, settings: Settings, env: dict[str, str]) -> None:
        self.settings = settings
        self.env = {**env, **airflow_variables(settings)}
        self.components: list[Component] = []
        self.log_dir = settings.home / "components"
        self.pid_file = settings.home / "components.pids"

    def airflow(self, *args: str, timeout: float = 600) -> str:
        """Run an ``airflow`` command with the cluster's settings; its output, or a clear error."""
        done = subprocess.run(
            [str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise ClusterError(f"airflow {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
        return done.stdout

    def start(self, name: str, *args: str, **extra_env: str) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [str(BIN / "airflow"), *args], env={**self.env, **extra_env}, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self.components.append(Component(name, process, log))
        with self.pid_file.open("a") as pids:
            pids.write(f"{process.pid}\n")

    def start_all(self) -> None:
        """The API server first (the workers report to it), then the rest."""
        self.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(self.settings.api_port),
                   "--workers", "1")  # fmt: skip
        self.wait_for_api()
        self.start("dag-processor", "dag-processor")
        self.start("scheduler", "scheduler", "--skip-serve-logs")
        for worker in self.settings.workers:
            self.start(
                f"worker-{worker}", "celery", "worker", "--celery-hostname", f"{worker}@%h",
                "--queues", self.settings.queue, "--concurrency", str(self.settings.concurrency),
                "--skip-serve-logs", "--pid", str(self.settings.home / f"worker-{worker}.pid"),
                **{WORKER_NAME_VARIABLE: f"{worker}@{socket.gethostname()}",
                   "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname"},
            )  # fmt: skip

    def check_alive(self) -> None:
        for component in self.components:
            if component.process.poll() is not None:
                raise ClusterError(
                    f"{component.name} exited with status {component.process.returncode}; "
                    f"last lines of {component.log}:\n{tail(component.log)}"
                )

    def wait_for_api(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        url = f"{self.settings.api_url}/execution/health"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(1)
        raise ClusterError(f"the API server did not answer {url} within {timeout:.0f} s")

    def stop(self) -> None:
        """SIGTERM to every process group, SIGKILL to what is left after 20 s."""
        for component in self.components:
            signal_group(component.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for component in self.components:
            try:
                component.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for component in self.components:
            signal_group(component.process.pid, signal.SIGKILL)
            component.process.wait()
        self.components.clear()
        self.pid_file.unlink(missing_ok=True)


def signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def stop_leftovers(home: Path) -> None:
    """Process groups a killed earlier run of this cluster left behind (its pid file)."""
    pid_file = home / "components.pids"
    if not pid_file.exists():
        return
    for line in pid_file.read_text().split():
        signal_group(int(line), signal.SIGKILL)
    pid_file.unlink()


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def running_cluster(settings: Settings, env: dict[str, str]) -> Iterator[Cluster]:
    """Migrate the metadata database, start every component; stop them all on the way out,
    also on an exception, Ctrl-C (SIGINT) or SIGTERM."""
    stop_leftovers(settings.home)
    cluster = Cluster(settings, env)
    previous = {signum: signal.signal(signum, raise_exit) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        cluster.airflow("db", "migrate")
        cluster.start_all()
        yield cluster
    finally:
        # A second Ctrl-C or SIGTERM while stopping must not leave components running.
        for signum in previous:
            signal.signal(signum, signal.SIG_IGN)
        cluster.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
