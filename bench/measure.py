"""Measuring: the clock, the worker subprocess with its RSS sampler, the servers' CPU.

:func:`measure` starts one worker (``python -m bench.worker NAME --spec JSON``, see
``bench/worker.py``), samples the RSS of its process tree every 50 ms with psutil and reads
the one JSON object the worker prints. :class:`Clock` is what the workers time their
measured part with.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.settings import DESCRIPTIONS, REPO_ROOT, Settings

SAMPLE_SECONDS = 0.05
MEASUREMENT_TIMEOUT = 3600.0


def rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


# ------------------------------------------------------------------ inside the workers


class Clock:
    """Wall seconds and CPU seconds (this process and its waited-for children) of a block."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self._wall0 = self._cpu0 = 0.0

    @staticmethod
    def _cpu() -> float:
        times = os.times()
        return times.user + times.system + times.children_user + times.children_system

    def __enter__(self) -> Clock:
        self._wall0, self._cpu0 = time.perf_counter(), self._cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall0
        self.cpu = self._cpu() - self._cpu0


def timed_command(command: list[str], env: dict[str, str], rss_file: Path) -> tuple[Clock, Any]:
    """Run a command under the clock; under GNU time (its max RSS into rss_file) when installed."""
    if Path("/usr/bin/time").exists():
        command = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *command]
    with Clock() as clock:
        done = subprocess.run(command, env=env, check=False, capture_output=True, text=True)
    return clock, done


def command_max_rss_mb(rss_file: Path) -> float | None:
    try:
        return round(int(rss_file.read_text().split()[-1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        return None


def own_peak_rss_mb() -> float | None:
    """This process's RSS high-water mark (VmHWM); reset by exec, so not the parent's."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


# ------------------------------------------------------------------ in the parent


@dataclass
class Measurement:
    name: str
    ok: bool = False
    wall_s: float | None = None
    rows: int | None = None
    peak_rss_mb: float | None = None
    sampled_tree_rss_mb: float | None = None
    worker_peak_rss_mb: float | None = None
    cpu_s: float | None = None
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None

    @property
    def rows_per_s(self) -> float | None:
        if self.ok and self.wall_s and self.rows is not None:
            return self.rows / self.wall_s
        return None

    def fail(self, message: str) -> None:
        self.ok = False
        self.error = message
        print(f"bench: {self.name}: ERROR {message}", flush=True)

    def as_dict(self) -> dict[str, Any]:
        document = {
            "name": self.name,
            "description": DESCRIPTIONS.get(self.name, ""),
            "ok": self.ok,
            "wall_s": rounded(self.wall_s, 3),
            "rows": self.rows,
            "rows_per_s": rounded(self.rows_per_s, 0),
            "peak_rss_mb": rounded(self.peak_rss_mb, 1),
            "sampled_tree_rss_mb": rounded(self.sampled_tree_rss_mb, 1),
            "worker_peak_rss_mb": rounded(self.worker_peak_rss_mb, 1),
            "cpu_s": rounded(self.cpu_s, 3),
            "detail": self.detail,
        }
        if self.error:
            document["error"] = self.error
        if self.skipped:
            document["skipped"] = self.skipped
        return document


def tree_rss(process: Any) -> int:
    """RSS of a process and all of its descendants, in bytes (0 once it is gone)."""
    import psutil

    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    for member in members:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def worker_command(name: str, settings: Settings, **extra: Any) -> list[str]:
    """The command line of one worker; everything it needs is in its spec (JSON)."""
    spec = json.dumps(settings.spec(**extra))
    return [sys.executable, "-m", "bench.worker", name, "--spec", spec]


def measure(name: str, settings: Settings, env: dict[str, str], **extra: Any) -> Measurement:
    """Run one worker subprocess, sample its tree's RSS every 50 ms, read its JSON result."""
    import psutil

    measurement = Measurement(name)
    workdir = Path(settings.workdir)
    out_path, log_path = workdir / f"{name}.out", workdir / f"{name}.log"
    print(f"bench: {name}: running ({DESCRIPTIONS[name]}) ...", flush=True)
    with open(out_path, "wb") as out, open(log_path, "wb") as log:
        # cwd is the repository: `python -m bench.worker` finds the bench package there.
        child = subprocess.Popen(
            worker_command(name, settings, **extra), stdin=subprocess.DEVNULL, stdout=out, stderr=log,
            env=env, cwd=REPO_ROOT, start_new_session=True,
        )  # fmt: skip
        process = psutil.Process(child.pid)
        peak = 0
        deadline = time.monotonic() + MEASUREMENT_TIMEOUT
        try:
            while True:
                peak = max(peak, tree_rss(process))
                pid, status, rusage = os.wait4(child.pid, os.WNOHANG)
                if pid:
                    # CPU of the whole worker tree over its life (imports included)
                    measurement.detail["worker_total_cpu_s"] = round(rusage.ru_utime + rusage.ru_stime, 2)
                    child.returncode = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} did not finish within {MEASUREMENT_TIMEOUT:.0f}s")
                time.sleep(SAMPLE_SECONDS)
        except BaseException as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            if not isinstance(exc, TimeoutError):
                raise
            measurement.error = str(exc)
            print(f"bench: {name}: ERROR {exc}", flush=True)
            return measurement
    measurement.sampled_tree_rss_mb = peak / 2**20
    return read_result(measurement, child.returncode, out_path, log_path)


def read_result(measurement: Measurement, returncode: int, out_path: Path, log_path: Path) -> Measurement:
    """Fill the measurement from the worker's JSON line (or its error and the log's tail)."""
    name = measurement.name
    text = out_path.read_text().strip()
    try:
        result = json.loads(text.splitlines()[-1]) if text else {}
    except json.JSONDecodeError:
        result = {}
    if returncode != 0 or not result.get("ok"):
        tail = log_path.read_text(errors="replace")[-3000:]
        error = result.get("error") or f"worker exited with code {returncode}"
        measurement.error = f"{error}\n--- last lines of {log_path} ---\n{tail}"
        print(f"bench: {name}: ERROR {error}", flush=True)
        return measurement
    measurement.ok = True
    measurement.wall_s = float(result.pop("wall_s"))
    measurement.cpu_s = result.pop("cpu_s", None)
    measurement.rows = result.pop("rows", None)
    measurement.worker_peak_rss_mb = result.pop("worker_peak_rss_mb", None)
    # Peak RSS: the largest sum over the worker's process tree seen by the 50 ms sampler, or
    # the worker's own high-water mark when a short spike fell between two samples.
    sampled = measurement.sampled_tree_rss_mb or 0.0
    measurement.peak_rss_mb = max(sampled, measurement.worker_peak_rss_mb or 0.0)
    result.pop("ok", None)
    measurement.detail = {**result, **measurement.detail}
    print(
        f"bench: {name}: {measurement.wall_s:.2f} s, peak RSS {measurement.peak_rss_mb:.0f} MB",
        flush=True,
    )
    return measurement


# ------------------------------------------------------------------ the machine meanwhile


class ServerCpu:
    """CPU seconds used by MariaDB, PostgreSQL and the S3 server (for the record: the three
    share the machine's cores with the measured process). Other clients' work counts too."""

    def __init__(self, s3_port: int) -> None:
        import psutil

        self.groups: dict[str, list[Any]] = {"mariadb": [], "postgres": [], "s3_server": []}
        for process in psutil.process_iter(["name", "cmdline"]):
            name, cmdline = process.info["name"] or "", process.info["cmdline"] or []
            if name in ("mariadbd", "mysqld"):
                self.groups["mariadb"].append(process)
            elif name in ("postgres", "postmaster"):
                self.groups["postgres"].append(process)
            elif "moto.server" in cmdline and str(s3_port) in cmdline:
                self.groups["s3_server"].append(process)

    @staticmethod
    def _cpu(process: Any) -> float:
        # children: PostgreSQL backends that ended (one per connection) are counted there
        try:
            t = process.cpu_times()
        except Exception:
            return 0.0
        return t.user + t.system + t.children_user + t.children_system

    def snapshot(self) -> dict[str, float]:
        return {group: sum(self._cpu(p) for p in processes) for group, processes in self.groups.items()}

    def since(self, before: dict[str, float]) -> dict[str, float]:
        after = self.snapshot()
        return {group: round(after[group] - before[group], 2) for group in after if self.groups[group]}


def busy_cpu_s() -> float:
    """CPU seconds all cores of the machine spent busy (not idle, not waiting for I/O)."""
    import psutil

    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def measure_on_machine(
    name: str, settings: Settings, env: dict[str, str], servers: ServerCpu, **extra: Any
) -> Measurement:
    """:func:`measure`, plus the servers' CPU and the other processes' cores meanwhile."""
    before, busy, started = servers.snapshot(), busy_cpu_s(), time.monotonic()
    measurement = measure(name, settings, env, **extra)
    elapsed, busy = time.monotonic() - started, busy_cpu_s() - busy
    server_cpu = servers.since(before)
    measurement.detail["server_cpu_s"] = server_cpu
    # CPU used by everything else on the machine meanwhile (other tests, other benchmarks):
    # the machine's busy time minus the worker tree's and the three servers'.
    other = busy - measurement.detail.get("worker_total_cpu_s", 0.0) - sum(server_cpu.values())
    measurement.detail["other_cpu_cores"] = round(max(0.0, other) / max(elapsed, 1e-3), 2)
    return measurement
