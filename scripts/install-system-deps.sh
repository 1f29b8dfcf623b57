#!/usr/bin/env bash
# Installs the Debian packages the test suite needs (a PostgreSQL server with pg_stat_statements,
# HypoPG, promtool for the Prometheus rules, and Chromium for the dashboard's browser tests) when
# they are missing. Without root or apt, it says exactly what to install.
set -euo pipefail

PG_MAJOR="${PG_MAJOR:-15}"
packages=()
[ -x "/usr/lib/postgresql/${PG_MAJOR}/bin/initdb" ] || packages+=("postgresql-${PG_MAJOR}")
[ -f "/usr/share/postgresql/${PG_MAJOR}/extension/pg_stat_statements.control" ] \
  || packages+=("postgresql-contrib")
[ -f "/usr/share/postgresql/${PG_MAJOR}/extension/hypopg.control" ] \
  || packages+=("postgresql-${PG_MAJOR}-hypopg")
# Debian's Chromium, which Playwright drives in tests/test_web_browser.py (Playwright's own browser
# download is not used: it is not reachable from every CI machine).
[ -x /usr/bin/chromium ] || packages+=("chromium")

# promtool checks docs/prometheus/alerts.yml (tests/test_prometheus_docs.py).
need_promtool=false
command -v promtool >/dev/null 2>&1 || need_promtool=true

[ ${#packages[@]} -eq 0 ] && ! $need_promtool && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "querywatch tests need: ${packages[*]}$($need_promtool && echo ' promtool')" >&2
  echo "install them with: sudo apt-get install -y ${packages[*]}   (or set PG_BINDIR to a PostgreSQL ${PG_MAJOR} bin dir)" >&2
  $need_promtool && echo "promtool: sudo apt-get install -y prometheus, or put promtool on PATH" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ ${#packages[@]} -gt 0 ]; then
  echo "installing ${packages[*]}" >&2
  # The server package must not start (or keep) a cluster that the suite does not need.
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
if $need_promtool; then
  # Only the promtool binary of Debian's prometheus package: installing the package would add
  # the Prometheus server and its service, which nothing here may start.
  echo "installing promtool (from Debian's prometheus package)" >&2
  tmp="$(mktemp -d)"
  (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root prometheus >/dev/null)
  dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp" ./usr/bin/promtool
  install -m 0755 "$tmp/usr/bin/promtool" /usr/local/bin/promtool
  rm -rf "$tmp"
fi
