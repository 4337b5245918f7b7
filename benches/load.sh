#!/usr/bin/env bash
# Proxy load test: throughput and the latency the proxy adds (proxied minus direct, same run),
# with the event log on (batched durability).
#
# Method: the proxy on one core (taskset -c 1); the fake upstream (`sim mock`) and the load
# generator (wrk) on the other (taskset -c 0); 15 s per cell after a 3 s warm-up. Cells:
# concurrency 1, 16, 64 with a 0 ms upstream; 64 with a 50 ms upstream; streaming at 16. Then
# RSS idle and at peak, and RSS with 1,000 concurrent streams.
#
#   benches/load.sh            (installs wrk from Debian if missing; needs 2 cores)
#   DURATION=5 WARMUP=1 benches/load.sh    (quicker)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-15}"
WARMUP="${WARMUP:-3}"
if ! command -v wrk >/dev/null; then
  (apt-get install -y wrk >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y wrk >/dev/null)) || { echo "cannot install wrk"; exit 1; }
fi
cargo build --release --quiet
bin=target/release
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

cat > "$work/fleet.yaml" <<'YAML'
deployments:
  fast: {protocol: openai, ttft_ms: {base: 0}, per_output_token_ms: {base: 0}, output_tokens: {constant: 1}}
  slow50: {protocol: openai, ttft_ms: {base: 50}, per_output_token_ms: {base: 0}, output_tokens: {constant: 1}}
  long: {protocol: openai, ttft_ms: {base: 100}, per_output_token_ms: {base: 10}, output_tokens: {constant: 1500}}
YAML
cat > "$work/load.yaml" <<'YAML'
model_list:
  - model_name: fast
    litellm_params: {model: hosted_vllm/fast, api_base: "http://127.0.0.1:18301/v1"}
  - model_name: slow50
    litellm_params: {model: hosted_vllm/slow50, api_base: "http://127.0.0.1:18302/v1"}
  - model_name: long
    litellm_params: {model: hosted_vllm/long, api_base: "http://127.0.0.1:18303/v1"}
YAML
taskset -c 0 "$bin/sim" mock --providers "$work/fleet.yaml" --base-port 18301 > "$work/mock.out" &
taskset -c 1 "$bin/switchyard" --config "$work/load.yaml" --host 127.0.0.1 --port 18300 --data "$work/data" --durability batched > "$work/proxy.out" 2>&1 &
proxy=$!
for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:18300/health/readiness >/dev/null 2>&1 && break; sleep 0.1; done
sleep 0.5
rss() { awk '/^'"$1"':/{printf "%.1f", $2/1024}' "/proc/$proxy/status"; }
echo "proxy RSS idle: $(rss VmRSS) MiB"
idle=$(rss VmRSS)

body() { # model stream
  printf 'wrk.method = "POST"\nwrk.body = '"'"'{"model": "%s", "stream": %s, "max_tokens": 1, "messages": [{"role": "user", "content": "hello"}]}'"'"'\nwrk.headers["Content-Type"] = "application/json"\n' "$1" "$2" > "$work/req.lua"
}

# wrk -> "rps p50 p99" (latencies in ms)
run_wrk() { # url conns
  local url=$1 c=$2 t=$(( $2 < 2 ? 1 : 2 ))
  taskset -c 0 wrk -t"$t" -c"$c" -d"${WARMUP}s" -s "$work/req.lua" "$url" >/dev/null 2>&1 || true
  taskset -c 0 wrk -t"$t" -c"$c" -d"${DURATION}s" --latency -s "$work/req.lua" "$url" > "$work/wrk.out" 2>&1
  awk '
    function ms(v) { if (v ~ /us$/) { sub(/us/, "", v); return v / 1000 } if (v ~ /ms$/) { sub(/ms/, "", v); return v } if (v ~ /s$/) { sub(/s/, "", v); return v * 1000 } return v }
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
    /Non-2xx/ { bad = $NF }
    END { printf "%s %.3f %.3f %s\n", rps, p50, p99, (bad == "" ? 0 : bad) }' "$work/wrk.out"
}

printf '\n| cell | direct req/s | proxied req/s | direct p50 | proxied p50 | added p50 | direct p99 | proxied p99 | added p99 | non-2xx |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
cell() { # label model stream conns port
  body "$2" "$3"
  read -r drps dp50 dp99 _ <<<"$(run_wrk "http://127.0.0.1:$5/v1/chat/completions" "$4")"
  read -r prps pp50 pp99 bad <<<"$(run_wrk "http://127.0.0.1:18300/v1/chat/completions" "$4")"
  awk -v l="$1" -v dr="$drps" -v pr="$prps" -v d5="$dp50" -v p5="$pp50" -v d9="$dp99" -v p9="$pp99" -v b="$bad" \
    'BEGIN { printf "| %s | %.0f | %.0f | %.3f ms | %.3f ms | %.3f ms | %.3f ms | %.3f ms | %.3f ms | %s |\n", l, dr, pr, d5, p5, p5 - d5, d9, p9, p9 - d9, b }'
}
cell "c=1, 0 ms upstream" fast false 1 18301
cell "c=16, 0 ms upstream" fast false 16 18301
cell "c=64, 0 ms upstream" fast false 64 18301
cell "c=64, 50 ms upstream" slow50 false 64 18302
cell "c=16, streaming" fast true 16 18301
echo
echo "proxy RSS at peak so far: $(rss VmHWM) MiB"

# 1,000 concurrent streams of about 15 s each.
python3 - "$work/streams.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    f.write(json.dumps({"switchyard_workload": 1, "source": "1000 concurrent streams"}) + "\n")
    for i in range(1000):
        f.write(json.dumps({"at_us": i * 1000, "model": "long", "tokens_in": 50, "stream": True}) + "\n")
PY
taskset -c 0 "$bin/sim" drive "$work/streams.jsonl" --target http://127.0.0.1:18300 > "$work/drive.out" 2>&1 &
drive=$!
sleep 8
streams_rss=$(rss VmRSS)
echo "proxy RSS with 1,000 concurrent streams: ${streams_rss} MiB ($(curl -fsS http://127.0.0.1:18300/metrics | awk '/^switchyard_requests_in_flight/{print $2}') requests in flight)"
wait $drive || true
cat "$work/drive.out"
echo "proxy RSS idle ${idle} MiB, peak $(rss VmHWM) MiB"
