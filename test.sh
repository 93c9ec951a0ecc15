#!/usr/bin/env bash
# Runs every Portico test. Installs what the tests need first (headless Chromium and its driver,
# nginx and openssl from Debian, an SMTP server from PyPI in .venv, axe-core and the smpp
# package from npm), so it works on a fresh machine. Usage: ./test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
# Debian's nginx and openssl for the TLS reverse proxy test (tests/deploy.rs, contrib/nginx.conf).
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || need_apt+=(nginx)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test.sh: installing ${need_apt[*]} (Debian packages for the browser and proxy tests)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# A real SMTP server for the mail tests: Python's aiosmtpd in a project venv.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import aiosmtpd" 2>/dev/null; then
  echo "test.sh: creating .venv with aiosmtpd (SMTP server for the mail tests)"
  if ! python3 -m venv .venv 2>/dev/null; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv .venv
  fi
  .venv/bin/pip install -q aiosmtpd
fi
export PORTICO_TEST_PYTHON="$PWD/.venv/bin/python"

# axe-core for the accessibility checks in the browser tests (from the npm registry).
if [ ! -f tests/a11y/node_modules/axe-core/axe.min.js ]; then
  echo "test.sh: installing axe-core into tests/a11y (accessibility checks)"
  npm ci --prefix tests/a11y --no-audit --no-fund --silent
fi

# The test SMSC for the SMS plugin's SMPP tests and benchmark: the npm smpp package in server
# mode (tests/smsc/smsc.js).
if [ ! -f tests/smsc/node_modules/smpp/lib/smpp.js ]; then
  echo "test.sh: installing the smpp package into tests/smsc (test SMSC)"
  npm ci --prefix tests/smsc --no-audit --no-fund --silent
fi

# Every test binary runs even if one fails; the last line sums them all up.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ {
       for (i = 1; i < NF; i++) {
         if ($(i + 1) ~ /^passed;?$/) passed += $i
         if ($(i + 1) ~ /^failed;?$/) failed += $i
       }
     }
     END { printf "tests: %d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
