#!/usr/bin/env bash
# The demo: generate OLTP data, run the DAG for DAYS consecutive daily
# intervals with `airflow dags test`, then print what landed.
set -euo pipefail
ENV_NAME="${1:-embedded}"; DAYS="${2:-3}"; SIZE="${3:-1000}"; START="${4:-2026-10-30}"
EXECUTOR="${5:-local}"  # local: `airflow dags test`; celery: scheduler + Celery workers
case "$EXECUTOR" in
    local) ;;
    celery) [ "$ENV_NAME" = services ] || {
        echo "demo: EXECUTOR=celery needs ENV=services (workers share no disk: the stage is S3)" >&2; exit 2; } ;;
    *) echo "demo: EXECUTOR='$EXECUTOR' must be local or celery" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
PY="$PWD/.venv/bin/python"
WITH_ENV=("$PY" -m ingestion --env "$ENV_NAME" exec --)
export PIPELINE_ENV="$ENV_NAME"
export PIPELINE_TASK_RETRIES="${PIPELINE_TASK_RETRIES:-0}"  # the demo fails fast

step() { printf '\n==> %s\n' "$*"; }

if [ "$ENV_NAME" = services ]; then
    step "S3 API server on loopback (moto)"
    eval "$("$PY" -m ingestion --env services env)"  # PIPELINE_STAGE_URI and the connections
    bucket="${PIPELINE_STAGE_URI#s3://}"
    "$PY" -m devtools.s3_server start --bucket "${bucket%%/*}"
fi

step "demo OLTP data: $DAYS days from $START, $SIZE sessions a day"
"$PY" -m ingestion --env "$ENV_NAME" generate --size "$SIZE" --days "$DAYS" --start "$START"

"$PY" -m ingestion --env "$ENV_NAME" init-warehouse

step "dbt parse (the manifest Cosmos renders the DAG from)"
(cd dbt_project && "${WITH_ENV[@]}" "$(dirname "$PY")/dbt" parse --quiet)

if [ "$EXECUTOR" = celery ]; then
    # Scheduler, DAG processor, API server and two Celery workers on loopback, Redis as
    # the broker, PostgreSQL as the metadata database; all stopped when it returns.
    step "the DAG under the CeleryExecutor: $DAYS intervals from $START through the scheduler"
    last=$(date -u -d "$START + $((DAYS - 1)) day" +%F)
    exec "${WITH_ENV[@]}" "$PY" -m devtools.celery_demo --from-date "$START" --to-date "$last"
fi

step "Airflow metadata database ($AIRFLOW_HOME)"
"${WITH_ENV[@]}" .venv/bin/airflow db migrate > /dev/null
# The pool of the tasks that read the source: its slots cap the source connections.
"${WITH_ENV[@]}" .venv/bin/airflow pools set pipeline_source "${PIPELINE_SOURCE_POOL_SLOTS:-2}" \
    "source database connections (extract tasks)" > /dev/null

LOG_DIR=".data/$ENV_NAME/logs"; mkdir -p "$LOG_DIR"
for ((day = 0; day < DAYS; day++)); do
    # `airflow dags test DAG DATE` runs the interval that ends at DATE.
    interval_end=$(date -u -d "$START + $((day + 1)) day" +%F)
    interval_start=$(date -u -d "$START + $day day" +%F)
    step "airflow dags test mysql_to_redshift $interval_end  (interval $interval_start .. $interval_end)"
    log="$LOG_DIR/dags-test-$interval_end.log"
    if ! "${WITH_ENV[@]}" .venv/bin/airflow dags test mysql_to_redshift "$interval_end" > "$log" 2>&1; then
        tail -n 40 "$log"; echo "demo: the DAG run failed; full log: $log" >&2; exit 1
    fi
    grep -oE "(extract|load) [a-z_.]+: [0-9,]+ (rows in|staged).*" "$log" | sed 's/^/    /' || true
    failed=$(grep -c "new_state=failed" "$log" || true)
    if [ "$failed" != 0 ] || ! grep -q "state=success, run_type" "$log"; then
        tail -n 40 "$log"; echo "demo: the DAG run did not succeed; full log: $log" >&2; exit 1
    fi
    echo "    run succeeded; log: $log"
done
# `dags test` records each run's logical date as its start; give the UI the real one.
"${WITH_ENV[@]}" "$PY" -m devtools.dag_test_runs mysql_to_redshift | sed "s/^/    run /"

step "what landed"
"$PY" -m ingestion --env "$ENV_NAME" report

cat <<EOF2

Next:
  dbt by hand:     cd dbt_project && ../.venv/bin/python -m ingestion --env $ENV_NAME exec -- ../.venv/bin/dbt build
  dbt docs:        make docs ENV=$ENV_NAME           (http://127.0.0.1:8080)
  Airflow UI:      make airflow-ui ENV=$ENV_NAME     (http://127.0.0.1:8081, no login; Ctrl-C stops it)
  one table:       .venv/bin/python -m ingestion --env $ENV_NAME run nps --start $START --end $(date -u -d "$START + 1 day" +%F)
  DAG run logs:    $LOG_DIR/
EOF2
