#!/usr/bin/env bash
# Runs the official OpenAI Python SDK against a live switchyard in front of the fake fleet.
#   tests/sdk/run.sh [path/to/bin-dir]   (default: target/debug)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-target/debug}"
python3 -c "import openai" 2>/dev/null || python3 -m pip install --quiet openai
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/fleet.yaml" <<'YAML'
deployments:
  llama: {protocol: openai, ttft_ms: {base: 5}, per_output_token_ms: {base: 1}}
  claude: {protocol: anthropic, ttft_ms: {base: 5}, per_output_token_ms: {base: 1}}
  embed: {protocol: openai, ttft_ms: {base: 2}, per_output_token_ms: {base: 0}}
YAML
"$bin/sim" mock --providers "$work/fleet.yaml" --base-port 18201 > "$work/mock.out" &
cat > "$work/config.yaml" <<'YAML'
model_list:
  - model_name: production-llm
    litellm_params: {model: hosted_vllm/llama, api_base: "http://127.0.0.1:18201/v1"}
  - model_name: claude
    litellm_params: {model: anthropic/claude-3-5-sonnet-20241022, api_base: "http://127.0.0.1:18202", api_key: mock}
  - model_name: embedder
    litellm_params: {model: hosted_vllm/embed, api_base: "http://127.0.0.1:18203/v1"}
general_settings:
  master_key: sk-sdk-test
  forward_client_headers_to_llm_api: true
YAML
"$bin/switchyard" --config "$work/config.yaml" --host 127.0.0.1 --port 18200 --data "$work/data" > "$work/proxy.out" 2>&1 &
for _ in $(seq 1 100); do
  curl -fsS http://127.0.0.1:18200/health/readiness > /dev/null 2>&1 && break
  sleep 0.1
done
python3 tests/sdk/openai_sdk.py http://127.0.0.1:18200/v1 sk-sdk-test
