"""Failure notices through the Slack provider's webhook notifier.

The notice goes to the Airflow connection ``slack_default`` (type
``slackwebhook``: the webhook URL in the password field, or host + token),
configured like any other connection: ``AIRFLOW_CONN_SLACK_DEFAULT``, the
metadata database or a secrets backend. Without it a failure sends nothing and
logs one line. ``PIPELINE_SLACK_WEBHOOK_URL``, the earlier setting, still works:
it is taken as that connection's webhook URL.

Airflow is imported inside functions only, so the package runs without it.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from ingestion.errors import first_line

log = logging.getLogger(__name__)

SLACK_CONN_ID = "slack_default"
LEGACY_WEBHOOK_VARIABLE = "PIPELINE_SLACK_WEBHOOK_URL"


def notify_failure(context: dict[str, Any]) -> None:
    """``on_failure_callback``: post the failure to Slack when a connection is configured."""
    text = failure_text(context)
    if not slack_configured():
        log.info("no Slack connection %r configured; not notifying: %s", SLACK_CONN_ID, text.splitlines()[0])
        return
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    # notify(), not __call__: the text is final, rendering it as a template could
    # break on braces in an error message.
    SlackWebhookNotifier(slack_webhook_conn_id=SLACK_CONN_ID, text=text).notify(context)


def slack_configured() -> bool:
    """Whether ``slack_default`` exists; the legacy variable becomes that connection."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.sdk import BaseHook
    from airflow.sdk.log import mask_secret

    url = os.environ.get(LEGACY_WEBHOOK_VARIABLE, "").strip()
    variable = f"AIRFLOW_CONN_{SLACK_CONN_ID.upper()}"
    if url and variable not in os.environ:
        mask_secret(url)
        os.environ[variable] = json.dumps({"conn_type": "slackwebhook", "password": url})
    try:
        BaseHook.get_connection(SLACK_CONN_ID)
    except AirflowNotFoundException:
        return False
    return True


def failure_text(context: dict[str, Any]) -> str:
    """The notice: where it failed, for which interval, the error's first line, the log."""
    ti = context["ti"]
    dag_run = context.get("dag_run")
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    interval = f"{start.isoformat()} → {end.isoformat()}" if start and end else "none"
    error = context.get("exception")
    return "\n".join(
        [
            f":red_circle: Task failed: {ti.dag_id}.{ti.task_id}",
            f"Run: {getattr(dag_run, 'run_id', ti.run_id)}",
            f"Data interval: {interval}",
            f"Try: {ti.try_number}",
            f"Error: {first_line(error) if error else 'unknown (no exception in the context)'}",
            f"Log: {ti.log_url}",
        ]
    )
