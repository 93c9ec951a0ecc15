#!/usr/bin/env bash
# Portico operator-script benchmark (issue "Operator scripting with Rhai"):
# - the Information page of the demo client alice (who lives in Blansko) with
#   scripts/examples/outage-panel.rhai in the scripts folder (one panel added) and with an
#   empty scripts folder, on one release server (the script is added and removed between the
#   rounds; hot reload applies it); target: with ≥ 0.8 × without;
# - a trivial hook function, `fn before_login(event) { }`, through the whole dispatch
#   (cargo bench -p portico-core --bench script_hook); target: ≤ 20 µs per call.
#
# Usage (from the repository root):   bench/scripts.sh
# Options (environment):
#   DURATION=10s CONNECTIONS=64 THREADS=2   wrk run length, connections, threads
#   ROUNDS=3                  wrk runs per variant, alternating; req/s is the mean
#   N=20000 WARMUP=2000       timed and warm-up hook calls
#   PORT=                     port to serve on (default: a free one)
#   KEEP=0                    1 keeps the temp folder
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
N=${N:-20000}
WARMUP=${WARMUP:-2000}
PORT=${PORT:-}
KEEP=${KEEP:-0}
T_PAGE_RATIO=0.8
T_HOOK_US=20

cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-target}
die() { echo "bench/scripts: error: $*" >&2; exit 1; }
log() { echo "bench/scripts: $*" >&2; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
for tool in cargo curl awk wrk; do command -v $tool >/dev/null || die "$tool is not installed"; done

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  [[ $KEEP == 1 ]] && log "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

log "1/4 building the release binary"
cargo build --release -p portico --bin portico >&2 || die "build failed"
BIN=$TARGET_DIR/release/portico
[[ -n $PORT ]] || PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
mkdir -p "$WORK/scripts"

log "2/4 starting the demo portal on $URL with --scripts $WORK/scripts"
"$BIN" demo --data "$WORK/data" --bind "127.0.0.1:$PORT" --themes themes --scripts "$WORK/scripts" \
  > "$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 600); do curl -sf -o /dev/null --max-time 1 "$URL/healthz" && break; sleep 0.1; done
curl -sf -o /dev/null "$URL/healthz" || { cat "$WORK/serve.log" >&2; die "the server did not start"; }
COOKIE=$(curl -s -D - -o /dev/null --data-urlencode username=alice --data-urlencode password=alice-demo-pass \
  "$URL/sign/" | sed -n 's/^set-cookie: *\(\(__Host-\)\{0,1\}portico_session=[^;]*\).*/\1/Ip' | head -1)
[[ -n $COOKIE ]] || die "the demo login gave no session cookie"

panel() { curl -s -H "Cookie: $COOKIE" "$URL/" | grep -c 'class="card info-panel"' || true; }
use_script() { # use_script 1|0: add or remove the panel script, wait for hot reload
  if [[ $1 == 1 ]]; then cp scripts/examples/outage-panel.rhai "$WORK/scripts/"; else rm -f "$WORK/scripts/outage-panel.rhai"; fi
  for _ in $(seq 1 50); do [[ $(panel) == "$1" ]] && return; sleep 0.1; done
  die "the page did not follow the scripts folder (panel wanted: $1)"
}

log "3/4 wrk -t$THREADS -c$CONNECTIONS -d$DURATION on / as alice, $ROUNDS round(s) each, alternating"
declare -A SUM=([with]=0 [without]=0)
for variant in without with; do
  use_script $([[ $variant == with ]] && echo 1 || echo 0)
  wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -H "Cookie: $COOKIE" "$URL/" >/dev/null 2>&1 || die "wrk warm-up failed"
done
for round in $(seq 1 "$ROUNDS"); do
  for variant in without with; do
    use_script $([[ $variant == with ]] && echo 1 || echo 0)
    out=$WORK/wrk-$variant-$round.txt
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -H "Cookie: $COOKIE" "$URL/" > "$out" 2>&1 || die "wrk failed"
    grep -q "Non-2xx" "$out" && { cat "$out" >&2; die "non-2xx answers during the $variant run"; }
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    log "  round $round, $variant script: $rps req/s"
    SUM[$variant]=$(calc "${SUM[$variant]} + $rps" 1)
  done
done
WITH=$(calc "${SUM[with]} / $ROUNDS" 0)
WITHOUT=$(calc "${SUM[without]} / $ROUNDS" 0)
RATIO=$(calc "$WITH / $WITHOUT" 3)
"$BIN" scripts status --data "$WORK/data" >&2 || true

log "4/4 cargo bench -p portico-core --bench script_hook (N=$N)"
HOOK_OUT=$(N=$N WARMUP=$WARMUP cargo bench -q -p portico-core --bench script_hook 2>/dev/null) || die "the hook benchmark failed"
echo "$HOOK_OUT" | grep -v '^result ' >&2
HOOK_US=$(echo "$HOOK_OUT" | sed -n 's/^result hook_script_mean_us=//p')

echo
echo "| measure | figure | target |"
echo "|---|---|---|"
echo "| Information page, no script | $WITHOUT req/s | |"
echo "| Information page, outage-panel.rhai | $WITH req/s ($RATIO ×) | ≥ $T_PAGE_RATIO × |"
echo "| trivial hook function (before_login), mean | $HOOK_US µs | ≤ $T_HOOK_US µs |"
