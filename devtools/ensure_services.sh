#!/usr/bin/env bash
# Before the tests (make test): the binaries of the services the tests start for themselves,
# RabbitMQ (rabbitmq-server, rabbitmqctl, epmd) and PostgreSQL (pg_ctl, initdb), installed from
# Debian's packages when missing and this user can (root, apt-get). It starts nothing: the tests
# run private servers on free loopback ports, never the machine's services. When it cannot
# install, it says so and the tests that need the missing service fail naming it.
#
#   devtools/ensure_services.sh            install what is missing, if possible
#   devtools/ensure_services.sh --check    only print the missing packages, one a line
#
# RABBITMQ_SCRIPTS and POSTGRESQL_VERSIONS say where Debian keeps the binaries off PATH (its
# tests point them elsewhere); tests/support/{rabbitmq,databases}.py look in the same places.
set -euo pipefail

RABBITMQ_SCRIPTS=${RABBITMQ_SCRIPTS:-/usr/lib/rabbitmq/bin}
POSTGRESQL_VERSIONS=${POSTGRESQL_VERSIONS:-/usr/lib/postgresql}

has_rabbitmq() {
  { command -v rabbitmq-server || [ -x "$RABBITMQ_SCRIPTS/rabbitmq-server" ]; } >/dev/null &&
    command -v epmd >/dev/null
}

has_server_binaries() {
  [ -x "$1/pg_ctl" ] && [ -x "$1/initdb" ]
}

# Where tests/support/databases.py looks: pg_config --bindir, Debian's versions, PATH.
has_postgresql() {
  local bindir
  if bindir=$(pg_config --bindir 2>/dev/null) && has_server_binaries "$bindir"; then
    return 0
  fi
  for bindir in "$POSTGRESQL_VERSIONS"/*/bin; do
    if has_server_binaries "$bindir"; then
      return 0
    fi
  done
  bindir=$(command -v pg_ctl) && has_server_binaries "${bindir%/*}"
}

missing=()
has_rabbitmq || missing+=(rabbitmq-server)
has_postgresql || missing+=(postgresql)

if [ "${1:-}" = --check ]; then
  for package in "${missing[@]}"; do
    echo "$package"
  done
  exit 0
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ensure_services: ${missing[*]} missing, and installing needs root and apt-get:" \
    "the tests that need them will fail" >&2
  exit 0
fi

echo "ensure_services: installing Debian's ${missing[*]} (their services stay stopped)" >&2
# Debian starts a package's service on install unless policy-rc.d answers 101 (forbidden).
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
  >/dev/null; then
  echo "ensure_services: installing ${missing[*]} failed: the tests that need them will fail" >&2
fi
