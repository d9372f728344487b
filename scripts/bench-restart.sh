#!/usr/bin/env bash
# Restart-time comparison for the TSDB issue: Koban and Prometheus scrape the same
# fleet (shared/bench/fleet.py, 200 targets, 5s) for 300s side by side, stop (SIGTERM),
# then each restarts alone on its data; prints the seconds until /-/ready answers 200.
# Usage: scripts/bench-restart.sh [KOBAN_BIN]   (default target/release/koban)
set -u
koban=${1:-$(pwd)/target/release/koban}
shared=${KOBAN_SHARED_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
work=$(mktemp -d /tmp/restart.XXXX); cd "$work"
python3 "$shared/bench/fleet.py" --targets 200 --base-port 24000 --seconds 700 > fleet.log 2>&1 & fleet=$!
trap 'kill $fleet 2>/dev/null; rm -rf "$work"' EXIT
sleep 2
{ echo "global: {scrape_interval: 5s, scrape_timeout: 5s}"; echo "scrape_configs:"; echo "- job_name: node"; echo "  static_configs:"; echo "  - targets:"
  for i in $(seq 0 199); do echo "    - 127.0.0.1:$((24000 + i))"; done; } > scrape.yml
"$koban" --config.file=scrape.yml --storage.tsdb.path=kdata --web.listen-address=127.0.0.1:29461 > k1.log 2>&1 & k=$!
prometheus --config.file=scrape.yml --storage.tsdb.path=pdata --web.listen-address=127.0.0.1:29462 > p1.log 2>&1 & p=$!
sleep 300
curl -s 127.0.0.1:29461/metrics | grep '^koban_tsdb_head_samples_appended_total'
curl -s 127.0.0.1:29462/metrics | grep '^prometheus_tsdb_head_samples_appended_total'
kill $fleet; kill $k $p; wait $k $p
ready() { local port=$1 t0=$2; for _ in $(seq 6000); do curl -sf -o /dev/null "127.0.0.1:$port/-/ready" && { python3 -c "import time,sys; print(f'{time.time()-float(sys.argv[1]):.2f}')" "$t0"; return; }; sleep 0.05; done; echo timeout; }
for round in 1 2; do
  t0=$(date +%s.%N); "$koban" --config.file=scrape.yml --storage.tsdb.path=kdata --web.listen-address=127.0.0.1:29461 > k2.log 2>&1 & k=$!
  echo "round $round: koban ready after $(ready 29461 "$t0") s"; kill $k; wait $k
  t0=$(date +%s.%N); prometheus --config.file=scrape.yml --storage.tsdb.path=pdata --web.listen-address=127.0.0.1:29462 > p2.log 2>&1 & p=$!
  echo "round $round: prometheus ready after $(ready 29462 "$t0") s"; kill $p; wait $p
done
