#!/usr/bin/env bash
# Installs the Debian packages the test suite needs when they are missing: redis-server (the
# Redis storage and lock tests start a real one on 127.0.0.1), gnome-keyring + dbus-daemon +
# dbus-bin (the keychain storage tests run a Secret Service in a private D-Bus session) and,
# through .ci/ensure-chromium.sh when present, chromium. Idempotent and quiet (prints nothing
# when all is there). As a non-root user without sudo it only warns: those tests then fail under
# CI=true and skip elsewhere.
set -uo pipefail
cd "$(dirname "$0")/.."

status=0

if [ -x .ci/ensure-chromium.sh ] || [ -f .ci/ensure-chromium.sh ]; then
  bash .ci/ensure-chromium.sh || status=$?
fi

have_redis() {
  [ -x /usr/bin/redis-server ] || command -v redis-server >/dev/null 2>&1
}

have_keyring() {
  command -v gnome-keyring-daemon >/dev/null 2>&1 && command -v dbus-run-session >/dev/null 2>&1 &&
    command -v dbus-send >/dev/null 2>&1
}

missing=""
have_redis || missing="$missing redis-server"
have_keyring || missing="$missing gnome-keyring dbus-daemon dbus-bin"

if [ -n "$missing" ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      SUDO="sudo -n"
    else
      echo "ensure-test-deps: WARNING:$missing missing and this user cannot install them (apt-get needs root)" >&2
      exit 0
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-test-deps: WARNING:$missing missing and apt-get is not available" >&2
    exit 0
  fi
  echo "ensure-test-deps: installing$missing" >&2
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
  # shellcheck disable=SC2086 # word splitting of the package list is intended
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1 || true
  have_redis || echo "ensure-test-deps: WARNING: apt-get finished but redis-server is still missing" >&2
  have_keyring || echo "ensure-test-deps: WARNING: apt-get finished but gnome-keyring / dbus is still missing" >&2
  # Debian's redis package may start a system instance; the tests start their own on a free port.
fi

exit "$status"
