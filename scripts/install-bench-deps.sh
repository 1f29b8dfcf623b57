#!/usr/bin/env bash
# Installs the Debian packages the benchmarks compare querywatch with, when they are missing:
# pgBadger and pt-query-digest (percona-toolkit) for bench/digest.py, and sysbench, which writes
# its MariaDB slow log. The test suite needs none of them (scripts/install-system-deps.sh is what
# the tests use). Without root or apt, it says what to install.
set -euo pipefail

packages=()
command -v pgbadger >/dev/null 2>&1 || packages+=("pgbadger")
command -v pt-query-digest >/dev/null 2>&1 || packages+=("percona-toolkit")
command -v sysbench >/dev/null 2>&1 || packages+=("sysbench")
command -v pgbench >/dev/null 2>&1 || packages+=("postgresql-contrib")
command -v mariadb >/dev/null 2>&1 || command -v mysql >/dev/null 2>&1 || packages+=("mariadb-client")

[ ${#packages[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "bench/digest.py needs: ${packages[*]}" >&2
  echo "install them with: sudo apt-get install -y ${packages[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
echo "installing ${packages[*]}" >&2
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
