#!/usr/bin/env bash
# Installs the Debian packages the test suite needs when they are missing: redis-server (the
# Redis storage and lock tests start a real one on 127.0.0.1) and, through .ci/ensure-chromium.sh
# when present, chromium. Idempotent and quiet (prints nothing when all is there). As a non-root
# user without sudo it only warns: the Redis tests then fail under CI=true and skip elsewhere.
set -uo pipefail
cd "$(dirname "$0")/.."

status=0

if [ -x .ci/ensure-chromium.sh ] || [ -f .ci/ensure-chromium.sh ]; then
  bash .ci/ensure-chromium.sh || status=$?
fi

have_redis() {
  [ -x /usr/bin/redis-server ] || command -v redis-server >/dev/null 2>&1
}

if ! have_redis; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      SUDO="sudo -n"
    else
      echo "ensure-test-deps: WARNING: redis-server is missing and this user cannot install it (apt-get needs root)" >&2
      exit 0
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-test-deps: WARNING: redis-server is missing and apt-get is not available" >&2
    exit 0
  fi
  echo "ensure-test-deps: installing redis-server" >&2
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null 2>&1 || true
  if ! have_redis; then
    echo "ensure-test-deps: WARNING: apt-get finished but redis-server is still missing" >&2
  fi
  # Debian's package may start a system instance; the tests start their own on a free port.
fi

exit "$status"
