#!/usr/bin/env bash
# Login and forgot-password floods: 200 concurrent wrong logins, then 200 concurrent "forgot
# password" requests (wrk), while a logged-in client keeps browsing. Measures the other pages'
# p99 latency during each flood and the server's memory.
# Targets: authenticated p99 <= 50 ms during either flood, memory bounded.
# The per-address throttles are lifted for the run, so every request does its full work
# (argon2, audit writes, outbox writes): the flood measures the work, not the throttle.
# Usage: bench/login-flood.sh   (env: FLOOD_CONNECTIONS=200 DURATION=15s)
set -euo pipefail
cd "$(dirname "$0")/.."
# Where cargo puts its builds (CARGO_TARGET_DIR, else ./target).
TARGET_DIR=${CARGO_TARGET_DIR:-target}

FLOOD_CONNECTIONS=${FLOOD_CONNECTIONS:-200}
DURATION=${DURATION:-15s}
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }

cargo build --release --bin portico >&2
WORK=$(mktemp -d /tmp/portico-flood.XXXXXX)
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PORTICO_LOG=warn "$TARGET_DIR"/release/portico demo --data "$WORK/data" --bind "127.0.0.1:$PORT" --themes themes >"$WORK/out" 2>"$WORK/err" &
SERVER_PID=$!
for _ in $(seq 1 500); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.02; done
BASE="http://127.0.0.1:$PORT"

# Every request of the flood does its full work: no per-address throttle.
"$TARGET_DIR"/release/portico settings set ci_login_throttle_free_attempts 100000 --data "$WORK/data" >/dev/null
"$TARGET_DIR"/release/portico settings set ci_password_forgot_per_address_per_hour 100000 --data "$WORK/data" >/dev/null

COOKIE=$(curl -s -o /dev/null -D - -d 'username=bob&password=bob-demo-pass' "$BASE/sign/" \
  | sed -n 's/^[Ss]et-[Cc]ookie: \(portico_session=[^;]*\).*/\1/p' | tr -d '\r')
[ -n "$COOKIE" ] || { echo "login failed" >&2; exit 1; }

cat >"$WORK/flood.lua" <<'LUA'
-- Wrong passwords for existing and unknown accounts, as an attacker would send them.
local n = 0
request = function()
  n = n + 1
  local user = (n % 2 == 0) and tostring(1003 + n % 50) or ("nobody" .. n)
  return wrk.format("POST", "/sign/", {["Content-Type"] = "application/x-www-form-urlencoded"},
    "username=" .. user .. "&password=wrong-" .. n)
end
LUA

cat >"$WORK/forgot.lua" <<'LUA'
-- "Forgot password" for known and unknown addresses, as a flood would send them.
local n = 0
request = function()
  n = n + 1
  local email = (n % 2 == 0) and ("client" .. (1003 + n % 50) .. "@example.com") or ("nobody" .. n .. "@example.org")
  return wrk.format("POST", "/sign/forgot/", {["Content-Type"] = "application/x-www-form-urlencoded"},
    "login=" .. email)
end
LUA

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status"; }
RSS_BEFORE=$(rss_kb)

# Baseline: the Information page alone.
wrk -t1 -c4 -d5s --latency -H "Cookie: $COOKIE" "$BASE/" >"$WORK/base.txt"

wrk -t1 -c"$FLOOD_CONNECTIONS" -d"$DURATION" --timeout 30s -s "$WORK/flood.lua" "$BASE" >"$WORK/flood.txt" &
FLOOD=$!
sleep 2
wrk -t1 -c4 -d"$(( ${DURATION%s} - 4 ))s" --latency -H "Cookie: $COOKIE" "$BASE/" >"$WORK/during.txt"
wait "$FLOOD"

wrk -t1 -c"$FLOOD_CONNECTIONS" -d"$DURATION" --timeout 30s -s "$WORK/forgot.lua" "$BASE" >"$WORK/forgot.txt" &
FLOOD=$!
sleep 2
wrk -t1 -c4 -d"$(( ${DURATION%s} - 4 ))s" --latency -H "Cookie: $COOKIE" "$BASE/" >"$WORK/during-forgot.txt"
wait "$FLOOD"
RSS_AFTER=$(rss_kb)
HWM=$(hwm_kb)

p99() { awk '/^ +99%/ {print $2}' "$1"; }
rps() { awk '/^Requests\/sec/ {print $2}' "$1"; }
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) {sub(/us/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v); print v} else if (v ~ /s$/) {sub(/s/,"",v); print v*1000} else print v }'; }

BASE_P99=$(to_ms "$(p99 "$WORK/base.txt")")
DURING_P99=$(to_ms "$(p99 "$WORK/during.txt")")
FORGOT_P99=$(to_ms "$(p99 "$WORK/during-forgot.txt")")
verdict() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b) ? "PASS" : "FAIL" }'; }

printf '\nLogin and forgot-password floods (%s connections each, %s) on %s cores\n' "$FLOOD_CONNECTIONS" "$DURATION" "$(nproc)"
printf '%-44s %14s %12s %6s\n' "measure" "value" "target" ""
printf '%-44s %14s %12s %6s\n' "wrong logins answered /s (flood)" "$(rps "$WORK/flood.txt")" "-" ""
printf '%-44s %14s %12s %6s\n' "Information page req/s, no flood" "$(rps "$WORK/base.txt")" "-" ""
printf '%-44s %14s %12s %6s\n' "Information page p99 ms, no flood" "$BASE_P99" "-" ""
printf '%-44s %14s %12s %6s\n' "Information page req/s, during flood" "$(rps "$WORK/during.txt")" "-" ""
printf '%-44s %14s %12s %6s\n' "Information page p99 ms, during login flood" "$DURING_P99" "<= 50" "$(verdict "$DURING_P99" 50)"
printf '%-44s %14s %12s %6s\n' "forgot requests answered /s (flood)" "$(rps "$WORK/forgot.txt")" "-" ""
printf '%-44s %14s %12s %6s\n' "Information page req/s, during forgot flood" "$(rps "$WORK/during-forgot.txt")" "-" ""
printf '%-44s %14s %12s %6s\n' "Information page p99 ms, during forgot flood" "$FORGOT_P99" "<= 50" "$(verdict "$FORGOT_P99" 50)"
printf '%-44s %14s %12s %6s\n' "server RSS MB before" "$(awk -v k="$RSS_BEFORE" 'BEGIN{printf "%.1f", k/1024}')" "-" ""
printf '%-44s %14s %12s %6s\n' "server RSS MB after flood" "$(awk -v k="$RSS_AFTER" 'BEGIN{printf "%.1f", k/1024}')" "-" ""
printf '%-44s %14s %12s %6s\n' "server peak RSS MB (VmHWM)" "$(awk -v k="$HWM" 'BEGIN{printf "%.1f", k/1024}')" "<= 150" "$(verdict "$(awk -v k="$HWM" 'BEGIN{print k/1024}')" 150)"
grep -E "Socket errors|Non-2xx" "$WORK/flood.txt" | sed 's/^/login flood: /' || true
grep -E "Socket errors|Non-2xx" "$WORK/forgot.txt" | sed 's/^/forgot flood: /' || true
