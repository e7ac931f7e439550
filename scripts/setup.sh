#!/usr/bin/env bash
# Create the virtualenv and install the pinned dependencies.
# mysqlclient (Airflow's MySQL provider and our MySQL reader) compiles against
# the MariaDB/MySQL client library: install it with apt when we may, or say so.
set -euo pipefail
PYTHON="${1:-python3}"
VENV="${2:-.venv}"

have_client_lib() {
    command -v pkg-config >/dev/null &&
        { pkg-config --exists libmariadb || pkg-config --exists mysqlclient; }
}

if ! have_client_lib; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing libmariadb-dev and pkg-config (needed to build mysqlclient)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libmariadb-dev pkg-config
    else
        echo "setup: mysqlclient needs the MariaDB client library and pkg-config." >&2
        echo "       Debian/Ubuntu: sudo apt-get install libmariadb-dev pkg-config" >&2
        echo "       macOS:         brew install mariadb-connector-c pkg-config" >&2
        exit 1
    fi
fi

"$PYTHON" -c 'import sys; assert sys.version_info[:2] in ((3, 11), (3, 12)), sys.version' || {
    echo "setup: Python 3.11 or 3.12 is required (PYTHON=$PYTHON)" >&2; exit 1; }

# uv installs the ~300 pinned packages in seconds; it never downloads a Python.
export UV_PYTHON_DOWNLOADS=never
if command -v uv >/dev/null; then
    UV=uv
    [ -x "$VENV/bin/python" ] || uv venv --quiet --python "$PYTHON" "$VENV"
else
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    [ -x "$VENV/bin/uv" ] || "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check uv
    UV="$VENV/bin/uv"
fi
# --compile-bytecode, as pip does: the DAG processor's first parse then finds Airflow's,
# Cosmos's and dbt's bytecode instead of compiling it (~1 s).
"$UV" pip install --quiet --compile-bytecode --python "$VENV/bin/python" -r requirements.txt
"$UV" pip install --quiet --python "$VENV/bin/python" --no-deps -e .
echo "setup: $VENV ready ($("$VENV/bin/python" --version), dbt $("$VENV/bin/dbt" --version 2>/dev/null | sed -n "s/.*installed: //p"))"
