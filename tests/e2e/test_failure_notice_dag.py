"""A failing task in a real `airflow dags test` run posts its notice through the Slack
provider's webhook notifier to a loopback HTTP server; without a connection, nothing is
posted and one line is logged."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.airflow_helpers import BIN, REPO_ROOT, pipeline_env

pytestmark = pytest.mark.e2e

DAG_ID = "failing_for_notice"
WEBHOOK_PATH = "/services/T000/B000/notice-token"
FAILING_DAG = f'''
import pendulum
from airflow.sdk import DAG, task
from airflow.timetables.interval import CronDataIntervalTimetable

from ingestion.notify import notify_failure

with DAG(
    dag_id="{DAG_ID}",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 10, 1, tz="UTC"),
    default_args={{"retries": 0, "on_failure_callback": notify_failure}},
):

    @task
    def load_nps():
        raise RuntimeError("table raw_data.nps: load failed, nothing changed\\nDETAIL: second line")

    load_nps()
'''


class Webhook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append({"path": self.path, "payload": json.loads(body)})
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    Webhook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}{WEBHOOK_PATH}", Webhook.received
    server.shutdown()


def dags_test_failing(tmp_path: Path, **extra: str) -> str:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "failing_for_notice.py").write_text(FAILING_DAG)
    env = pipeline_env(tmp_path, "embedded", AIRFLOW__CORE__DAGS_FOLDER=str(dags), **extra)
    env.pop("AIRFLOW_CONN_SLACK_DEFAULT", None)
    env.update(extra)
    airflow = str(BIN / "airflow")
    for command in ([airflow, "db", "migrate"], [airflow, "dags", "test", DAG_ID, "2026-10-31"]):
        done = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert "new_state=failed" in output or "state=failed" in output, output[-4000:]
    return output


def test_a_failed_task_posts_dag_task_run_interval_try_error_and_log_link(tmp_path, webhook):
    url, received = webhook
    connection = json.dumps({"conn_type": "slackwebhook", "password": url})
    output = dags_test_failing(tmp_path, AIRFLOW_CONN_SLACK_DEFAULT=connection)

    assert len(received) == 1, output[-4000:]
    assert received[0]["path"] == WEBHOOK_PATH
    lines = dict(line.split(": ", 1) for line in received[0]["payload"]["text"].splitlines()[1:])
    assert f"{DAG_ID}.load_nps" in received[0]["payload"]["text"].splitlines()[0]
    assert lines["Run"].startswith("manual__")  # `dags test` names the run after the wall clock
    assert lines["Data interval"] == "2026-10-30T00:00:00+00:00 → 2026-10-31T00:00:00+00:00"
    assert lines["Try"] == "1"
    assert lines["Error"] == "table raw_data.nps: load failed, nothing changed"
    run_id = quote(lines["Run"], safe="")
    assert lines["Log"].endswith(f"/dags/{DAG_ID}/runs/{run_id}/tasks/load_nps?try_number=1")
    assert "notice-token" not in received[0]["payload"]["text"]


def test_the_former_webhook_variable_still_notifies(tmp_path, webhook):
    url, received = webhook
    dags_test_failing(tmp_path, PIPELINE_SLACK_WEBHOOK_URL=url)

    assert [r["path"] for r in received] == [WEBHOOK_PATH]
    assert "load failed, nothing changed" in received[0]["payload"]["text"]


def test_without_a_connection_nothing_is_posted_and_one_line_is_logged(tmp_path, webhook):
    _, received = webhook
    output = dags_test_failing(tmp_path)

    assert received == []
    assert output.count("no Slack connection 'slack_default' configured") == 1, output[-4000:]
