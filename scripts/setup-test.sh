#!/usr/bin/env bash
# System packages that only the tests need: Debian's Chromium and its driver for the
# browser tests (the dbt docs page, the Airflow UI). `make demo` does not need them.
# Under CI=true a missing browser is an error; on a laptop the browser tests skip.
set -euo pipefail

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
[ ${#missing[@]} = 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup-test: installing ${missing[*]} (browser tests)"
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade "${missing[@]}"; then
        exit 0
    fi
fi
echo "setup-test: ${missing[*]} missing; the browser tests need them (apt-get install ${missing[*]})" >&2
if [ "${CI:-}" = true ]; then exit 1; fi
