"""The services environment's S3 API: a moto server on loopback, started by the project.

* ``running_s3_server(port)`` (context manager) yields the endpoint URL; it starts a
  server for the duration of the block when nothing answers on the port yet, and leaves
  an already running one alone.
* ``python -m devtools.s3_server start|stop|status [--port N]`` runs one that outlives
  the calling process (``make demo ENV=services``): detached, with a pid file and a log
  under ``.data/s3_server/``. ``start`` returns once the server answers.
* ``ensure_bucket(endpoint_url, bucket)`` creates the stage bucket if it is missing.

moto keeps everything in memory: stopping the server drops every bucket. Only
127.0.0.1 is ever bound; the credentials are moto's dummy ``testing`` pair.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from ingestion.environments import REPO_ROOT, SERVICES_S3_PORT

HOST = "127.0.0.1"
DEFAULT_STATE_DIR = REPO_ROOT / ".data" / "s3_server"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
ALREADY_THERE = ("BucketAlreadyOwnedByYou", "BucketAlreadyExists")


def endpoint_url(port: int = SERVICES_S3_PORT, host: str = HOST) -> str:
    return f"http://{host}:{port}"


def answers(url: str, timeout: float = 0.5) -> bool:
    """Whether an HTTP server answers at ``url`` (any status code counts)."""
    try:
        with urllib.request.urlopen(url + "/", timeout=timeout):  # noqa: S310 (loopback http)
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def _command(port: int) -> list[str]:
    return [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]


def _wait_until_answers(url: str, process: subprocess.Popen | None, timeout: float, log: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers(url):
            return
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.1)
    detail = f"; see {log}" if log else ""
    if process is not None and process.poll() is not None:
        raise RuntimeError(f"the S3 server on {url} exited with code {process.returncode}{detail}")
    raise RuntimeError(f"the S3 server on {url} did not answer within {timeout:.0f}s{detail}")


@contextlib.contextmanager
def running_s3_server(port: int = SERVICES_S3_PORT) -> Iterator[str]:
    """Yield the endpoint URL of an S3 server on loopback, starting one for the block if needed."""
    url = endpoint_url(port)
    if answers(url):
        yield url
        return
    # The log goes to a file: moto logs every request, and a full pipe would block it.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            _command(port), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            try:
                _wait_until_answers(url, process, START_TIMEOUT, None)
            except RuntimeError as exc:
                log.seek(0)
                output = log.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"{exc}\n{output}".rstrip()) from None
            yield url
        finally:
            _terminate(process.pid, process)


def ensure_bucket(
    endpoint_url: str,
    bucket: str,
    key: str = "testing",
    secret: str = "testing",  # noqa: S107 (moto's dummy credentials)
    region: str = "us-east-1",
) -> None:
    """Create ``bucket`` on the server at ``endpoint_url`` unless it exists."""
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name=region,
    )
    try:
        client.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    options = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    try:
        client.create_bucket(Bucket=bucket, **options)
    except ClientError as exc:  # created by someone else in the meantime
        if exc.response.get("Error", {}).get("Code") not in ALREADY_THERE:
            raise


# -- the detached server of the CLI ------------------------------------------------------------


def _paths(state_dir: Path, port: int) -> tuple[Path, Path]:
    return state_dir / f"moto-{port}.pid", state_dir / f"moto-{port}.log"


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _is_our_server(pid: int) -> bool:
    """The pid is alive and runs moto.server (not a recycled pid of something else)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True  # no /proc (macOS): trust the pid file
    return b"moto.server" in cmdline


def _terminate(pid: int, process: subprocess.Popen | None = None) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if process is not None:
            if process.poll() is not None:
                return
        elif not _alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if process is not None:
        process.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours still "exists"; reap it
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        pass
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def start(port: int = SERVICES_S3_PORT, state_dir: Path = DEFAULT_STATE_DIR) -> str:
    """Start a detached server (unless one answers); return its endpoint URL."""
    url = endpoint_url(port)
    pid_file, log_file = _paths(state_dir, port)
    if answers(url):
        return url
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            _command(port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    pid_file.write_text(f"{process.pid}\n")
    try:
        _wait_until_answers(url, process, START_TIMEOUT, log_file)
    except RuntimeError:
        _terminate(process.pid, process)
        pid_file.unlink(missing_ok=True)
        raise
    return url


def stop(port: int = SERVICES_S3_PORT, state_dir: Path = DEFAULT_STATE_DIR) -> bool:
    """Stop the server started by ``start``; return whether one was running."""
    pid_file, _ = _paths(state_dir, port)
    pid = _read_pid(pid_file)
    running = pid is not None and _is_our_server(pid)
    if pid is not None and running:
        _terminate(pid)
    pid_file.unlink(missing_ok=True)
    return running


def status(port: int = SERVICES_S3_PORT, state_dir: Path = DEFAULT_STATE_DIR) -> tuple[bool, int | None]:
    """(answers on the port, pid of the server ``start`` left running or None)."""
    pid_file, _ = _paths(state_dir, port)
    pid = _read_pid(pid_file)
    if pid is not None and not _is_our_server(pid):
        pid = None
    return answers(endpoint_url(port)), pid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.s3_server",
        description="Run the loopback S3 API server (moto) of the services environment.",
    )
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--port", type=int, default=SERVICES_S3_PORT)
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="pid file and log")
    parser.add_argument("--bucket", action="append", default=[], help="start: also create this bucket")
    args = parser.parse_args(argv)
    url = endpoint_url(args.port)
    pid_file, log_file = _paths(args.state_dir, args.port)
    if args.action == "start":
        try:
            start(args.port, args.state_dir)
            for bucket in args.bucket:
                ensure_bucket(url, bucket)
        except RuntimeError as exc:
            print(f"s3 server: {exc}", file=sys.stderr)
            return 1
        pid = _read_pid(pid_file)
        owner = f"pid {pid}, log {log_file}" if pid and _is_our_server(pid) else "not started by us"
        print(f"s3 server: running on {url} ({owner})")
        return 0
    if args.action == "stop":
        if stop(args.port, args.state_dir):
            print(f"s3 server: stopped ({url})")
        else:
            print(f"s3 server: none started from {args.state_dir} on port {args.port}")
        return 0
    up, pid = status(args.port, args.state_dir)
    if up:
        owner = f"pid {pid}" if pid else "not started by us"
        print(f"s3 server: running on {url} ({owner})")
        return 0
    print(f"s3 server: not running on {url}")
    return 3


if __name__ == "__main__":
    sys.exit(main())
