#!/usr/bin/env bash
# Remakes the sample data in traces/ for real: the fake fleet (sim mock) serves
# traces/providers.yaml, the live proxy runs traces/current.yaml against it, and sim drive replays
# the arrival pattern of the public Azure 2023 conversation trace in real time (about 11 minutes).
#
#   traces/record.sh [path/to/AzureLLMInferenceTrace_conv.csv]
set -euo pipefail
cd "$(dirname "$0")/.."
csv="${1:-../shared/datasets/azure-llm-inference-2023/AzureLLMInferenceTrace_conv.csv}"
cargo build --release --quiet
bin=target/release
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# 1. The first 3000 requests of the public trace, onto the production-llm group; 30 % streamed.
$bin/sim import "$csv" --model production-llm --limit 3000 --stream-share 0.3 --max-tokens 1024 --seed 7 -o traces/workload.jsonl

# 2. The fake fleet on 18101 (vLLM), 18102 (Claude), 18103 (GPT-4o mini), and the proxy on 18100.
$bin/sim mock --providers traces/providers.yaml --base-port 18101 --seed 7 > "$work/mock.out" &
$bin/switchyard --config traces/current.yaml --host 127.0.0.1 --port 18100 --data "$work/data" --seed 7 > "$work/proxy.out" 2>&1 &
proxy=$!
for _ in $(seq 1 100); do
  curl -fsS http://127.0.0.1:18100/health/readiness > /dev/null 2>&1 && break
  sleep 0.1
done

# 3. Real time, open loop.
$bin/sim drive traces/workload.jsonl --target http://127.0.0.1:18100

# 4. Stop the proxy (it flushes its log), export the trace.
kill -TERM "$proxy"
wait "$proxy" || true
$bin/switchyard log export --data "$work/data" --out traces/prod.log --format bin
$bin/switchyard log stats traces/prod.log
