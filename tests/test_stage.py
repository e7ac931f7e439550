"""The stage's reading side: remote Parquet parts read in a few large requests."""

from __future__ import annotations

import io
import os
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingestion.environments import Connection, loopback_s3_connection
from ingestion.stage import ReadAheadFile, s3_filesystem


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
