"""The loopback S3 server: pyarrow's S3 filesystem against it, and the start/stop CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from devtools.s3_server import answers, ensure_bucket, status
from ingestion.environments import REPO_ROOT

pytestmark = pytest.mark.services


def filesystem(endpoint: str) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(
        access_key="testing",
        secret_key="testing",
        endpoint_override=endpoint.removeprefix("http://"),
        scheme="http",
        region="us-east-1",
    )


def test_multipart_upload_round_trips(s3_bucket: str, s3_endpoint: str) -> None:
    fs = filesystem(s3_endpoint)
    data = os.urandom(21 * 1024 * 1024)  # over the 5 MiB part size: a multipart upload
    path = f"{s3_bucket}/big/blob.bin"
    with fs.open_output_stream(path) as stream:
        for offset in range(0, len(data), 1 << 20):
            stream.write(data[offset : offset + (1 << 20)])
    assert fs.get_file_info(path).size == len(data)
    with fs.open_input_stream(path) as stream:
        assert stream.read() == data


def test_parquet_round_trips(s3_bucket: str, s3_endpoint: str) -> None:
    fs = filesystem(s3_endpoint)
    table = pa.table({"id": pa.array(range(3_000_000), pa.int64())})
    pq.write_table(table, f"{s3_bucket}/t/part-00000.parquet", filesystem=fs)
    assert pq.read_table(f"{s3_bucket}/t/part-00000.parquet", filesystem=fs).equals(table)


def test_ensure_bucket_is_idempotent(s3_endpoint: str) -> None:
    ensure_bucket(s3_endpoint, "it-idempotent")
    ensure_bucket(s3_endpoint, "it-idempotent")
    assert filesystem(s3_endpoint).get_file_info("it-idempotent").type == pafs.FileType.Directory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "devtools.s3_server", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_starts_a_detached_server_and_stops_it(tmp_path: Path) -> None:
    port, state = free_port(), str(tmp_path / "state")
    url = f"http://127.0.0.1:{port}"
    try:
        started = cli("start", "--port", str(port), "--state-dir", state, "--bucket", "stage")
        assert started.returncode == 0, started.stderr
        assert f"running on {url}" in started.stdout
        # The CLI process has exited; the server lives on, with its pid file and log.
        assert answers(url)
        up, pid = status(port, Path(state))
        assert up and pid is not None
        assert (tmp_path / "state" / f"moto-{port}.log").exists()
        assert filesystem(url).get_file_info("stage").type == pafs.FileType.Directory
        assert cli("status", "--port", str(port), "--state-dir", state).returncode == 0
        again = cli("start", "--port", str(port), "--state-dir", state)
        assert again.returncode == 0 and f"pid {pid}" in again.stdout
    finally:
        stopped = cli("stop", "--port", str(port), "--state-dir", state)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not answers(url)
    assert cli("status", "--port", str(port), "--state-dir", state).returncode == 3
    assert not (tmp_path / "state" / f"moto-{port}.pid").exists()
