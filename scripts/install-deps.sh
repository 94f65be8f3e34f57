#!/usr/bin/env bash
# Install everything RecVector needs on Debian 12 + PostgreSQL 15, idempotently:
#   - PL/Python, server headers and pg_cron from Debian,
#   - pgvector built from Debian's source package (not packaged for Debian 12),
#   - the Python packages the code inside PostgreSQL imports, into a versioned directory
#     that PL/Python's system python3 finds (see python/recvector/_plpython.py).
# Run as root. Safe to run again: every step checks first.
set -euo pipefail

PG_MAJOR="${PG_MAJOR:-15}"
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config}"
PGVECTOR_SUITE="${PGVECTOR_SUITE:-trixie}"

log() { printf '==> %s\n' "$*"; }

export DEBIAN_FRONTEND=noninteractive
need_pkgs=()
for p in "postgresql-plpython3-${PG_MAJOR}" "postgresql-server-dev-${PG_MAJOR}" "postgresql-${PG_MAJOR}-cron" \
         build-essential dpkg-dev python3-pip python3-venv; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_pkgs+=("$p")
done
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  log "apt-get install ${need_pkgs[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}"
fi

sharedir="$("$PG_CONFIG" --sharedir)"
# A binary pgvector package where the configured repositories have one (e.g. PostgreSQL's own apt
# repository in the official Docker image); Debian 12 itself has none.
if [ ! -f "$sharedir/extension/vector.control" ] && \
   apt-cache policy "postgresql-${PG_MAJOR}-pgvector" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  log "apt-get install postgresql-${PG_MAJOR}-pgvector"
  apt-get install -y -qq --no-install-recommends "postgresql-${PG_MAJOR}-pgvector"
fi
if [ ! -f "$sharedir/extension/vector.control" ]; then
  log "building pgvector from Debian's source package ($PGVECTOR_SUITE)"
  src_list=/etc/apt/sources.list.d/recvector-pgvector-src.list
  echo "deb-src http://deb.debian.org/debian ${PGVECTOR_SUITE} main" > "$src_list"
  apt-get update -qq
  work="$(mktemp -d)"
  chmod 755 "$work"
  (cd "$work" && apt-get source -qq --download-only pgvector >/dev/null 2>&1 && dpkg-source -x --no-check ./pgvector_*.dsc src >/dev/null)
  make -C "$work/src" PG_CONFIG="$PG_CONFIG" -s
  make -C "$work/src" PG_CONFIG="$PG_CONFIG" -s install
  rm -rf "$work" "$src_list"
  apt-get update -qq || true
else
  log "pgvector already installed ($(grep default_version "$sharedir/extension/vector.control"))"
fi
