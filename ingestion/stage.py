"""The stage: Parquet parts and a manifest per attempt, in a folder or in S3.

Layout: ``<stage>/<table>/<interval>/<attempt>/part-NNNNN.parquet`` plus
``manifest.json`` in the Redshift COPY manifest format, every entry
``mandatory: true`` with ``content_length`` and ``record_count``. A load reads
only what its manifest lists, so files of an earlier failed attempt are never
loaded. Both kinds of stage go through ``pyarrow.fs`` (S3 uploads are
multipart and streamed, so memory stays bounded); S3 with the credentials the
Amazon provider resolves from the AWS connection (:mod:`ingestion.aws`).
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ingestion.aws import S3Access
from ingestion.connection import Connection
from ingestion.errors import ConfigError, LoadError, PipelineError, StageError, first_line

# One S3 request per window (32 for a 128 MB part). 16 MB windows cost the load ~10 MB more
# peak RSS than 4 MB ones at 5,000,000 and 20,000,000 rows, and no measurable time.
READ_WINDOW_BYTES = 4 * 1024 * 1024

# Arrow's jemalloc pool (see ingestion/__init__.py) hands the pages a batch freed back to
# the system within this many milliseconds instead of a second: before the next batches
# pile up on them. 0 (at once) costs the extract ~10% more CPU in page purges.
JEMALLOC_DECAY_MS = 10
if pa.default_memory_pool().backend_name == "jemalloc":
    pa.jemalloc_set_decay_ms(JEMALLOC_DECAY_MS)


@dataclass(frozen=True)
class ManifestEntry:
    url: str
    content_length: int
    record_count: int


@dataclass(frozen=True)
class Manifest:
    url: str
    entries: tuple[ManifestEntry, ...]

    @property
    def record_count(self) -> int:
        return sum(entry.record_count for entry in self.entries)

    @property
    def content_length(self) -> int:
        return sum(entry.content_length for entry in self.entries)

    def to_json(self) -> str:
        return json.dumps(
            {
                "entries": [
                    {
                        "url": entry.url,
                        "mandatory": True,
                        "meta": {
                            "content_length": entry.content_length,
                            "record_count": entry.record_count,
                        },
                    }
                    for entry in self.entries
                ]
            },
            indent=1,
        )


# pyarrow's S3 errors read "...: AWS Error <CODE> during <Operation> operation: <message>".
AWS_ERROR = re.compile(r"AWS Error (\w+)")
STAGE_VARIABLE = "PIPELINE_STAGE_URI"


class Stage:
    """A stage location (``/local/folder`` or ``s3://bucket/prefix``)."""

    def __init__(self, uri: str, root: str, access: S3Access | None = None) -> None:
        """A local folder without ``access``; an S3 location through it."""
        self.uri = uri
        self.root = root.rstrip("/")
        self.access = access
        self.scheme = "file" if access is None else "s3"
        self.aws = access.aws if access is not None else None
        self.local = pafs.LocalFileSystem()

    @property
    def filesystem(self) -> pafs.FileSystem:
        """The filesystem to open a file with: on S3, one carrying the AWS connection's
        current credentials (see :mod:`ingestion.aws`), so ask for it at each open."""
        return self.local if self.access is None else self.access.filesystem()

    def error(self, exc: OSError, doing: str, kind: type[PipelineError] = StageError) -> PipelineError:
        """A filesystem error of this stage as one line saying which setting to fix."""
        reason = first_line(exc)
        if self.scheme != "s3":
            return kind(f"{doing}: {reason} ({STAGE_VARIABLE}={self.uri})", retryable=False)
        bucket = self.root.split("/", 1)[0]
        match = AWS_ERROR.search(reason)
        code = match.group(1) if match else ""
        if match:
            reason = reason[match.start() :]  # the key and bucket are said already
        credentials = self.aws.setting if self.aws else "the AWS credentials"
        if code == "NO_SUCH_BUCKET":
            hint, retryable = f"bucket {bucket!r} does not exist: create it or fix {STAGE_VARIABLE}", False
        elif code in ("ACCESS_DENIED", "INVALID_ACCESS_KEY_ID", "SIGNATURE_DOES_NOT_MATCH") or (
            "HTTP status 403" in reason
        ):
            hint, retryable = (
                f"no permission on bucket {bucket!r}: grant the credentials of {credentials} "
                "s3:PutObject, s3:GetObject and s3:ListBucket on it, or check the keys",
                False,
            )
        elif code == "NETWORK_CONNECTION" or "curlCode" in reason:
            endpoint = (self.aws.extra or {}).get("endpoint_url") if self.aws else None
            hint, retryable = (
                f"cannot reach S3{f' at {endpoint}' if endpoint else ''}: check endpoint_url and "
                f"region_name in the extra of {credentials}",
                True,
            )
        else:
            hint, retryable = f"check {STAGE_VARIABLE}={self.uri} and {credentials}", True
        return kind(f"{doing}: {hint} ({reason})", retryable=retryable)

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    def url(self, *parts: str) -> str:
        path = "/".join([self.root, *parts])
        return f"s3://{path}" if self.scheme == "s3" else path

    def path(self, url: str) -> str:
        """The filesystem path of a stage URL."""
        if self.scheme == "s3":
            if not url.startswith("s3://"):
                raise LoadError(f"stage URL {url!r} is not an s3:// URL of stage {self.uri}")
            return url[len("s3://") :]
        return url.removeprefix("file://")

    def attempt_url(self, table: str, interval: str, attempt: str) -> str:
        return self.url(table, interval, attempt)

    def open_output(self, url: str) -> Any:
        path = self.path(url)
        if self.is_local:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return self.filesystem.open_output_stream(path)

    def write_manifest(self, url: str, manifest: Manifest) -> None:
        with self.open_output(url) as stream:
            stream.write(manifest.to_json().encode())

    def read_manifest(self, url: str) -> Manifest:
        try:
            with self.filesystem.open_input_stream(self.path(url)) as stream:
                document = json.loads(stream.read())
        except OSError as exc:
            raise self.error(exc, f"manifest {url} cannot be read", LoadError) from None
        except ValueError as exc:
            raise LoadError(f"manifest {url} is not JSON ({first_line(exc)})", retryable=False) from None
        try:
            entries = tuple(
                ManifestEntry(
                    url=entry["url"],
                    content_length=int(entry["meta"]["content_length"]),
                    record_count=int(entry["meta"]["record_count"]),
                )
                for entry in document["entries"]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LoadError(
                f"manifest {url} is not a Redshift COPY manifest ({type(exc).__name__}: {exc}); "
                "load a manifest.json written by the extract",
                retryable=False,
            ) from None
        if not entries:
            raise LoadError(f"manifest {url} lists no files")
        return Manifest(url=url, entries=entries)

    def open_parquet(self, url: str) -> pq.ParquetFile:
        try:
            source = self.filesystem.open_input_file(self.path(url))
            return pq.ParquetFile(source if self.is_local else ReadAheadFile(source))
        except (OSError, pa.ArrowInvalid) as exc:
            raise self.error(
                exc, f"staged file {url} listed in the manifest cannot be read", LoadError
            ) from None


class ReadAheadFile(io.RawIOBase):
    """A remote file read in windows of ``window`` bytes, one request each.

    Reading a Parquet part row group by row group asks for each row group's
    byte range: one S3 request per row group, each paying the request's
    latency (and, on the loopback S3 server, a copy of the whole object).
    The reads move forward through the file, so one window serves many of
    them: a 128 MB part takes 32 requests instead of one per row group.
    Memory: one window (reads return views of it, not copies; the last
    window is let go before the next one is read).
    """

    def __init__(self, source: pa.NativeFile, window: int = READ_WINDOW_BYTES) -> None:
        self.source = source
        self.window = window
        self.size = source.size()
        self.position = 0
        self.buffer = memoryview(b"")
        self.buffer_start = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = base + offset
        return self.position

    def read(self, size: int = -1) -> memoryview:
        end = self.size if size < 0 else min(self.position + size, self.size)
        if end <= self.position:
            return memoryview(b"")
        buffer_end = self.buffer_start + len(self.buffer)
        if not (self.buffer_start <= self.position and end <= buffer_end):
            length = min(max(end - self.position, self.window), self.size - self.position)
            self.buffer = memoryview(b"")  # the last window goes before the next one comes
            self.buffer = memoryview(self.source.read_at(length, self.position))
            self.buffer_start = self.position
        chunk = self.buffer[self.position - self.buffer_start : end - self.buffer_start]
        self.position = end
        return chunk

    def close(self) -> None:
        self.source.close()
        self.buffer = memoryview(b"")
        super().close()


def s3_filesystem(aws: Connection | None) -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem with the AWS connection's credentials now (see :mod:`ingestion.aws`)."""
    return S3Access(aws).filesystem()


def open_stage(uri: str, aws: Connection | None = None) -> Stage:
    """Open the stage named by ``PIPELINE_STAGE_URI``."""
    if uri.startswith("s3://"):
        root = uri[len("s3://") :].strip("/")
        if not root:
            raise ConfigError(f"PIPELINE_STAGE_URI={uri!r} names no bucket")
        return Stage(uri, root, S3Access(aws))
    if "://" in uri and not uri.startswith("file://"):
        raise ConfigError(f"PIPELINE_STAGE_URI={uri!r}: use a local folder or s3://bucket/prefix")
    root = str(Path(uri.removeprefix("file://")).resolve())
    return Stage(uri, root)
