#!/usr/bin/env bash
# The Airflow UI on the demo's metadata database (`make airflow-ui`): the API server
# (UI + REST API) on 127.0.0.1 only, the scheduler and the DAG processor, each started
# from the virtual environment by its path. Ctrl-C, or any component exiting, stops all
# three. No login: every visitor is admin (simple auth manager), which is why the server
# listens on loopback only.
set -euo pipefail
ENV_NAME="${1:-embedded}"; PORT="${2:-8081}"
cd "$(dirname "$0")/.."
BIN="$PWD/.venv/bin"
export PATH="$BIN:$PATH"  # a task that runs a tool by name (dbt) finds the project's
export PIPELINE_ENV="$ENV_NAME"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$PWD/.airflow}"
export AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT="$PORT"
export AIRFLOW__API__BASE_URL="http://127.0.0.1:$PORT/"  # where the scheduler's tasks reach the execution API
export AIRFLOW__CORE__EXECUTOR=LocalExecutor AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True
WITH_ENV=("$BIN/python" -m ingestion --env "$ENV_NAME" exec --)

"${WITH_ENV[@]}" "$BIN/airflow" db migrate > /dev/null
# The scheduler runs extract tasks only with slots of their pool (the source's connections).
"${WITH_ENV[@]}" "$BIN/airflow" pools set pipeline_source "${PIPELINE_SOURCE_POOL_SLOTS:-2}" \
    "source database connections (extract tasks)" > /dev/null

# Each component runs in its own process group with the processes it starts (the
# executor's workers, the DAG processor's parsers), so stopping a group stops them all.
groups=()
signal_groups() {
    local group alive=1
    for group in "${groups[@]}"; do kill "$1" -- "-$group" 2>/dev/null && alive=0; done
    return $alive
}
stop() {
    trap - INT TERM HUP EXIT
    [ ${#groups[@]} = 0 ] && return
    echo "airflow-ui: stopping the API server, scheduler and DAG processor"
    signal_groups -TERM || true
    for _ in $(seq 60); do
        signal_groups -0 || break
        sleep 0.5
    done
    signal_groups -KILL || true
    wait 2>/dev/null || true
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap 'stop; exit 129' HUP  # the terminal closed
trap stop EXIT

setsid "${WITH_ENV[@]}" "$BIN/airflow" dag-processor & groups+=($!)
setsid "${WITH_ENV[@]}" "$BIN/airflow" scheduler --skip-serve-logs & groups+=($!)  # task logs are local files
setsid "${WITH_ENV[@]}" "$BIN/airflow" api-server --host 127.0.0.1 --port "$PORT" & groups+=($!)
echo "airflow-ui: http://127.0.0.1:$PORT (no login on this local UI); Ctrl-C stops it"
wait -n "${groups[@]}" || true
echo "airflow-ui: a component exited; stopping the others" >&2
stop
exit 1
