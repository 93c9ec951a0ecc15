#!/usr/bin/env bash
# A flamegraph (SVG) of one page of the demo portal under load: perf samples the server while
# wrk requests the page as alice; inferno draws the picture. See bench/README.md.
#
# Usage (from the repository root):  bench/flamegraph.sh [PAGE] [OUT.svg]
#   PAGE  path to load, default /  (the Information page)
#   OUT   where the SVG goes, default bench/results/flamegraph-<page>.svg
# Options (environment): BIN=path/to/portico (default: the release build), DURATION=6 (seconds), PORT=
# Needs: perf (Debian linux-perf), wrk, curl, and inferno (`cargo install inferno`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PAGE=${1:-/}
NAME=$(tr -c 'a-z0-9\n' '-' <<<"${PAGE#/}" | sed 's/^-*//; s/-*$//')
OUT=${2:-bench/results/flamegraph-${NAME:-information}.svg}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
DURATION=${DURATION:-6}
PORT=${PORT:-$(( 20000 + RANDOM % 40000 ))}
die() { echo "flamegraph: error: $*" >&2; exit 1; }
for tool in perf wrk curl inferno-collapse-perf inferno-flamegraph; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
if [[ -z ${BIN:-} ]]; then
  cargo build --release --bin portico >&2 || die "the release build failed"
  BIN=$TARGET_DIR/release/portico
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/portico-flame.XXXXXX")
PID=
cleanup() { [[ -n $PID ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
URL=http://127.0.0.1:$PORT
PORTICO_LOG=warn "$BIN" demo --data "$WORK/data" --bind "127.0.0.1:$PORT" --themes themes \
  > "$WORK/out" 2> "$WORK/err" &
PID=$!
for _ in $(seq 300); do curl -sf -o /dev/null "$URL/healthz" && break; sleep 0.1; done
curl -sf -o /dev/null "$URL/healthz" || { cat "$WORK/err" >&2; die "the demo portal did not start"; }
curl -s -D "$WORK/h" -o /dev/null -d "username=alice&password=alice-demo-pass" "$URL/sign/"
COOKIE=$(tr -d '\r' < "$WORK/h" | sed -n 's/^set-cookie: *\([^;]*portico_session=[^;]*\).*/\1/Ip' | head -1)
[[ -n $COOKIE ]] || die "logging in as alice failed"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE" "$URL$PAGE")
[[ $code == 200 ]] || die "GET $PAGE answered HTTP $code"
wrk -t2 -c64 -d3s -H "Cookie: $COOKIE" "$URL$PAGE" > /dev/null   # warm-up
perf record -F 499 -g --call-graph dwarf,16384 -p "$PID" -o "$WORK/perf.data" -- sleep "$DURATION" \
  > /dev/null 2>&1 &
PERF=$!
wrk -t2 -c64 -d"${DURATION}s" -H "Cookie: $COOKIE" "$URL$PAGE" > "$WORK/wrk.txt"
wait "$PERF" || true
perf script -i "$WORK/perf.data" 2> /dev/null | inferno-collapse-perf > "$WORK/folded"
mkdir -p "$(dirname "$OUT")"
inferno-flamegraph --minwidth 0.5 --title "Portico $PAGE (demo store, wrk -c64, $(git rev-parse --short HEAD 2>/dev/null || echo ?))" \
  < "$WORK/folded" > "$OUT"
echo "flamegraph: $OUT ($(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt") req/s while sampled)"
