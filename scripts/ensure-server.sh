#!/usr/bin/env bash
# Start the local PostgreSQL cluster if it is down (CI machines may boot with it stopped).
set -euo pipefail
PG_MAJOR="${PG_MAJOR:-15}"
if ! pg_isready -q -h "${PGHOST:-127.0.0.1}" -p "${PGPORT:-5432}"; then
  echo "==> starting PostgreSQL ${PG_MAJOR}"
  pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main start || pg_ctlcluster "$PG_MAJOR" main start
  for _ in $(seq 1 30); do pg_isready -q -h "${PGHOST:-127.0.0.1}" -p "${PGPORT:-5432}" && exit 0; sleep 1; done
  echo "PostgreSQL did not start" >&2; exit 1
fi
