#!/usr/bin/env bash
# Installs the Debian packages the test suite needs (a PostgreSQL server with pg_stat_statements,
# and HypoPG) when they are missing. Without root or apt, it says exactly what to install.
set -euo pipefail

PG_MAJOR="${PG_MAJOR:-15}"
packages=()
[ -x "/usr/lib/postgresql/${PG_MAJOR}/bin/initdb" ] || packages+=("postgresql-${PG_MAJOR}")
[ -f "/usr/share/postgresql/${PG_MAJOR}/extension/pg_stat_statements.control" ] \
  || packages+=("postgresql-contrib")
[ -f "/usr/share/postgresql/${PG_MAJOR}/extension/hypopg.control" ] \
  || packages+=("postgresql-${PG_MAJOR}-hypopg")

[ ${#packages[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "querywatch tests need: ${packages[*]}" >&2
  echo "install them with: sudo apt-get install -y ${packages[*]}   (or set PG_BINDIR to a PostgreSQL ${PG_MAJOR} bin dir)" >&2
  exit 1
fi
echo "installing ${packages[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The server package must not start (or keep) a cluster that the suite does not need.
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
