#!/usr/bin/env bash
# Benchmark of keptn-native's load generator against locust (FastHttpUser, HttpUser) and wrk.
#
# Closed model: every generator, pinned to CPU $GEN_CPU, drives 64 keep-alive connections /
# users with no think time against the same single-threaded target (bench_target, pinned to
# CPU $TARGET_CPU) for $DURATION s. Reported: requests served (the target's own counter),
# generator CPU seconds (user + system), requests per generator CPU-second.
# Open model (keptn-native only): a target with an injected delay, a constant arrival rate,
# percentiles compared with the delay.
#
# Usage: benches/loadtest/loadtest.sh            (needs: wrk from Debian, locust in $LOCUST or on PATH)
# Env: DURATION (default 10), USERS (64), DELAY_MS (100), RATES ("500 2000"),
#      GEN_CPU (1), TARGET_CPU (0), LOCUST (locust), OUT (benches/loadtest/results),
#      SKIP_CLOSED=1 (open model only).
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-10}
USERS=${USERS:-64}
DELAY_MS=${DELAY_MS:-100}
RATES=${RATES:-"500 2000"}
GEN_CPU=${GEN_CPU:-1}
TARGET_CPU=${TARGET_CPU:-0}
LOCUST=${LOCUST:-locust}
OUT=${OUT:-benches/loadtest/results}
PORT=${PORT:-18080}
mkdir -p "$OUT"

cargo build --release --bin keptn-native --example bench_target >&2
KN=target/release/keptn-native
TARGET=target/release/examples/bench_target
ulimit -n 65536 2>/dev/null || true

start_target() { # delay_ms
  taskset -c "$TARGET_CPU" "$TARGET" "$PORT" "$1" > "$OUT/target.out" &
  TARGET_PID=$!
  for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "target did not start" >&2; exit 1
}
stop_target() {
  kill -TERM "$TARGET_PID"; wait "$TARGET_PID" || true
  awk '/^served/ {print $2}' "$OUT/target.out"
}
target_delay() { awk '/^mean_delay_ms/ {print $2}' "$OUT/target.out"; }

echo "# machine: $(nproc) CPUs, $(uname -r); generator on CPU $GEN_CPU, target on CPU $TARGET_CPU"
echo "# versions: $($KN --version); $(wrk -v 2>&1 | head -1 | cut -c1-40); locust $($LOCUST --version 2>&1 | awk '{print $2}')"
echo
echo "## Closed model: $USERS connections/users, no think time, ${DURATION}s, GET / (keep-alive)"
printf '%-26s %10s %8s %10s %14s\n' tool requests cpu_s req/s "req/cpu_s"

bench() { # name cmd...
  local name=$1; shift
  start_target 0
  python3 benches/loadtest/cputime.py "$OUT/cpu.txt" taskset -c "$GEN_CPU" "$@" > "$OUT/$name.log" 2>&1 || true
  local served; served=$(stop_target)
  read -r cpu wall < "$OUT/cpu.txt"
  printf '%-26s %10d %8.2f %10.0f %14.0f\n' "$name" "$served" "$cpu" \
    "$(echo "$served / $DURATION" | bc -l)" "$(echo "$served / $cpu" | bc -l)"
}

URL=http://127.0.0.1:$PORT
if [ -z "${SKIP_CLOSED:-}" ]; then
bench keptn-native "$KN" loadtest --host "$URL" --locustfile benches/loadtest/fast_locustfile.py \
  --users "$USERS" --spawn-rate 100000 --run-time "${DURATION}s" --threads 1 --json
bench wrk wrk -t1 -c"$USERS" -d"${DURATION}s" "$URL/"
bench locust-FastHttpUser "$LOCUST" -f benches/loadtest/fast_locustfile.py --headless --only-summary \
  -u "$USERS" -r "$USERS" -t "${DURATION}s" --host "$URL"
bench locust-HttpUser "$LOCUST" -f benches/loadtest/http_locustfile.py --headless --only-summary \
  -u "$USERS" -r "$USERS" -t "${DURATION}s" --host "$URL"
fi

echo
echo "## Open model (keptn-native): target delays every response by ${DELAY_MS} ms, ${DURATION}s"
echo "# err% = (percentile - injected delay) / injected delay; target_ms = mean delay the target actually slept"
echo "# lag_p99_ms = 99th percentile of how late the generator started requests (included in latency)"
printf '%-8s %10s %10s %9s %9s %9s %9s %9s %9s %9s %10s\n' rate requests target_ms p50_ms p90_ms p95_ms p99_ms max_ms "p50_err%" "p99_err%" lag_p99_ms
for rate in $RATES; do
  start_target "$DELAY_MS"
  taskset -c "$GEN_CPU" "$KN" loadtest --host "$URL" --locustfile benches/loadtest/fast_locustfile.py \
    --rate "$rate" --run-time "${DURATION}s" --threads 1 --json > "$OUT/open-$rate.json" 2>/dev/null || true
  stop_target > /dev/null
  python3 - "$OUT/open-$rate.json" "$rate" "$DELAY_MS" "$(target_delay)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); t = r["total"]; d = float(sys.argv[3])
ms = lambda us: us / 1000
err = lambda us: (ms(us) - d) / d * 100
print(f'{sys.argv[2]:<8} {t["requests"]:>10} {float(sys.argv[4]):>10.2f} {ms(t["p50Us"]):>9.2f} {ms(t["p90Us"]):>9.2f} '
      f'{ms(t["p95Us"]):>9.2f} {ms(t["p99Us"]):>9.2f} {ms(t["maxUs"]):>9.2f} {err(t["p50Us"]):>9.1f} {err(t["p99Us"]):>9.1f} '
      f'{ms(r["startLag"]["p99Us"]):>10.2f}')
PY
done
