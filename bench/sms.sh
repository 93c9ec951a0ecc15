#!/usr/bin/env bash
# SMS benchmark: sustained submission from the SMS outbox to a real SMSC (the npm smpp package
# in server mode, tests/smsc/smsc.js) with windowed submit_sm, and the latency from a message's
# acceptance into the outbox to its submit_sm at the SMSC. Release build. Prints a table.
#   SMS_BENCH_BACKLOG=3000 SMS_BENCH_PACED=1000 SMS_BENCH_RATE=200 bench/sms.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f tests/smsc/node_modules/smpp/lib/smpp.js ]; then
  npm ci --prefix tests/smsc --no-audit --no-fund --silent
fi
cargo test --release --locked -p portico --test sms_smpp bench_smpp_submission -- \
  --ignored --nocapture --test-threads 1 2>/dev/null | grep '^|'
