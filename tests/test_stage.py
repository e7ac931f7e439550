"""The stage's reading side: remote Parquet parts read in a few large requests."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingestion.environments import Connection, loopback_s3_connection
from ingestion.stage import Manifest, ManifestEntry, ReadAheadFile, open_stage, s3_filesystem
from ingestion.warehouse.base import READ_BATCH_ROWS, StagedBatch


class RemoteBytes:
    """A stand-in for a remote object: pyarrow's ``size``/``read_at``/``close``, counting requests."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.requests: list[tuple[int, int]] = []
        self.closed = False

    def size(self) -> int:
        return len(self.data)

    def read_at(self, nbytes: int, offset: int) -> bytes:
        self.requests.append((offset, nbytes))
        return self.data[offset : offset + nbytes]

    def close(self) -> None:
        self.closed = True


def parquet_bytes(rows: int, row_group_rows: int) -> tuple[bytes, pa.Table]:
    table = pa.table(
        {
            "id": pa.array(range(rows), pa.int32()),
            "label": pa.array([f"row {n} " + "x" * (n % 50) for n in range(rows)]),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=row_group_rows)
    return sink.getvalue(), table


def test_reading_a_part_row_group_by_row_group_takes_one_request_per_window() -> None:
    data, table = parquet_bytes(rows=200_000, row_group_rows=5_000)  # 40 row groups
    remote = RemoteBytes(data)
    window = 256 * 1024
    parquet = pq.ParquetFile(ReadAheadFile(remote, window=window))

    groups = [parquet.read_row_group(i) for i in range(parquet.num_row_groups)]

    assert pa.concat_tables(groups) == table
    assert parquet.num_row_groups == 40
    # Every byte is fetched about once: the footer, then one request per window.
    assert len(remote.requests) <= len(data) // window + 3
    assert sum(n for _, n in remote.requests) < 2 * len(data)


@pytest.mark.parametrize("window", [1, 7, 1000, 10**9])
def test_any_sequence_of_seeks_and_reads_returns_the_bytes_at_that_offset(window: int) -> None:
    data = bytes(random.Random(7).getrandbits(8) for _ in range(5_000))
    file = ReadAheadFile(RemoteBytes(data), window=window)
    rng = random.Random(window)

    for _ in range(300):
        offset, size = rng.randrange(0, len(data) + 10), rng.randrange(0, 700)
        whence = rng.choice([io.SEEK_SET, io.SEEK_CUR, io.SEEK_END])
        base = {io.SEEK_SET: 0, io.SEEK_CUR: file.tell(), io.SEEK_END: len(data)}[whence]
        target = min(max(offset - base, -base), len(data) + 10 - base)
        assert file.seek(target, whence) == base + target
        assert file.read(size) == data[base + target : base + target + size]
        assert file.tell() == min(base + target + size, max(base + target, len(data)))
    file.seek(0)
    assert file.read() == data
    assert file.read(10) == b""


def test_the_last_window_is_let_go_before_the_next_one_is_read() -> None:
    data = bytes(range(256)) * 64  # 16 KiB
    window_held_at_each_request: list[int] = []

    class Remote(RemoteBytes):
        def read_at(self, nbytes: int, offset: int) -> bytes:
            window_held_at_each_request.append(len(file.buffer))
            return super().read_at(nbytes, offset)

    remote = Remote(data)
    file = ReadAheadFile(remote, window=4096)

    chunks = [bytes(file.read(1000)) for _ in range(16)]

    assert b"".join(chunks) == data[:16_000]
    # windows at 0, 4000, 8000 and 12000: each read while no earlier window is held
    assert [offset for offset, _ in remote.requests] == [0, 4000, 8000, 12000]
    assert window_held_at_each_request == [0, 0, 0, 0]


def test_the_bulk_load_reads_row_groups_in_slices_of_read_batch_rows(tmp_path: Path) -> None:
    stage = open_stage(str(tmp_path))
    rows = 3 * READ_BATCH_ROWS + 123
    data, table = parquet_bytes(rows=rows, row_group_rows=2 * READ_BATCH_ROWS + 7)
    entries = []
    for name in ("part-00000.parquet", "part-00001.parquet"):
        (tmp_path / name).write_bytes(data)
        entries.append(ManifestEntry(stage.url(name), len(data), rows))
    manifest = Manifest(url=stage.url("manifest.json"), entries=tuple(entries))

    batches = list(StagedBatch(manifest, stage, ["id", "label"], {}).record_batches())

    assert max(batch.num_rows for batch in batches) == READ_BATCH_ROWS
    assert pa.Table.from_batches(batches) == pa.concat_tables([table, table])


@pytest.mark.skipif(sys.platform != "linux", reason="the package chooses jemalloc on Linux only")
@pytest.mark.parametrize(("setting", "pool"), [(None, "jemalloc"), ("system", "system")])
def test_importing_the_package_first_chooses_arrows_allocator(setting: str | None, pool: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if setting:
        env["ARROW_DEFAULT_MEMORY_POOL"] = setting  # the environment's choice wins
    code = "import ingestion.stage, pyarrow; print(pyarrow.default_memory_pool().backend_name)"

    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)

    assert done.stdout.split() == [pool]


def test_closing_the_file_closes_the_remote_object() -> None:
    remote = RemoteBytes(b"abc")
    with ReadAheadFile(remote) as file:
        assert file.read(2) == b"ab"
    assert remote.closed


def test_the_connection_checksum_setting_reaches_the_s3_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REQUEST_CHECKSUM_CALCULATION", raising=False)
    s3_filesystem(Connection("pipeline_aws", "aws", extra={"endpoint_url": "http://127.0.0.1:9"}))
    assert "AWS_REQUEST_CHECKSUM_CALCULATION" not in os.environ

    s3_filesystem(loopback_s3_connection("http://127.0.0.1:9"))
    assert os.environ["AWS_REQUEST_CHECKSUM_CALCULATION"] == "when_required"
