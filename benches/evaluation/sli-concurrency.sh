#!/bin/sh
# Measures that SLIs are queried concurrently: 1 SLI vs 20 SLIs against a stand-in Prometheus
# that answers every query after 500 ms. Usage: benches/evaluation/sli-concurrency.sh (after cargo build)
set -eu
cd "$(dirname "$0")/../.."
B=target/debug/keptn-native
T=$(mktemp -d)
python3 benches/evaluation/slow-prometheus.py & PID=$!
trap 'kill $PID; rm -rf "$T"' EXIT
sleep 1
python3 - "$T" <<'PY'
import sys
d = sys.argv[1]
open(f"{d}/sli.yaml", "w").write("indicators:\n" + "".join(f"  s{i}: up\n" for i in range(20)))
for n in (1, 20):
    open(f"{d}/slo{n}.yaml", "w").write("objectives:\n" + "".join(
        f"  - sli: s{i}\n    pass: [{{criteria: [\">=0\"]}}]\n" for i in range(n)) + "total_score:\n  pass: \"90%\"\n")
PY
for n in 1 20; do
  /usr/bin/time -f "$n SLIs: %e s" "$B" evaluate --slo "$T/slo$n.yaml" --sli "$T/sli.yaml" \
    --prometheus http://127.0.0.1:19392 --project p --stage s --service svc --timeframe 5m >/dev/null 2>"$T/err" || true
  tail -1 "$T/err"
done
