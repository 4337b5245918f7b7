//! The live proxy against fake OpenAI-compatible upstreams on 127.0.0.1.

use crate::support::fake::{self, Behavior, Fake};
use crate::support::http::{get, post_json, send, sse_data};
use crate::support::proxy::{Opts, Proxy};
use serde_json::{json, Value};
use std::time::Duration;
use switchyard_engine::core::event::{Event, RequestResult};
use switchyard_engine::store::{Durability, Store, StoreOptions};

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

fn two_groups(primary: &str, fallback: &str, extra: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: production-llm
    litellm_params:
      model: openai/Meta-Llama-3.1-8B-Instruct
      api_base: {primary}
      api_key: dummy
    model_info:
      id: vllm
  - model_name: production-llm-fallback
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {fallback}
      api_key: sk-fallback-secret-123456
      input_cost_per_token: 1.5e-7
      output_cost_per_token: 6e-7
    model_info:
      id: backup
router_settings:
  fallbacks:
    - production-llm: [production-llm-fallback]
  context_window_fallbacks:
    - production-llm: [production-llm-fallback]
  num_retries: 2
  timeout: 2
  retry_after: 0
{extra}"#
    )
}

/// Events of a stopped proxy's log.
fn events(dir: &tempfile::TempDir) -> Vec<Event> {
    let (store, _) = Store::open(&dir.path().join("data"), StoreOptions::default()).unwrap();
    let evs: Vec<Event> = store.scan(0).map(|r| r.unwrap().1).collect();
    store.close().unwrap();
    evs
}

#[tokio::test]
async fn non_streaming_chat_passes_through_and_is_logged() {
    let up = Fake::start(fake::ok()).await;
    let fb = Fake::start(fake::ok()).await;
    let p = Proxy::start(&two_groups(&up.base(), &fb.base(), ""), Opts::default()).await;
    let body = json!({"model": "production-llm", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2, "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}], "n": 1, "logprobs": true, "tags": ["x"]});
    let r = post_json(&p.url("/v1/chat/completions"), &[], &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["choices"][0]["message"]["content"], "hello from fake");
    assert_eq!(r.header("x-litellm-model-id").as_deref(), Some("vllm"));
    assert_eq!(
        r.header("x-litellm-model-group").as_deref(),
        Some("production-llm")
    );
    assert_eq!(
        r.header("x-litellm-attempted-retries").as_deref(),
        Some("0")
    );
    assert!(r.header("x-litellm-overhead-duration-ms").is_some());
    let call_id = r.header("x-litellm-call-id").unwrap();
    // The upstream got the deployment's model, the client's parameters, no LiteLLM-only keys.
    let seen = up.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(seen[0].body["model"], "Meta-Llama-3.1-8B-Instruct");
    assert_eq!(seen[0].body["temperature"], 0.2);
    assert_eq!(seen[0].body["logprobs"], true);
    assert!(seen[0].body["tools"].is_array());
    assert!(seen[0].body.get("tags").is_none());
    assert_eq!(
        seen[0].headers.get("authorization").unwrap(),
        "Bearer dummy"
    );
    // /chat/completions works too.
    let r2 = post_json(&p.url("/chat/completions"), &[], &chat("production-llm")).await;
    assert_eq!(r2.status, 200);
    let dir = p.stop().await;
    let evs = events(&dir);
    let id: u64 = call_id.parse().unwrap();
    let kinds: Vec<&str> = evs
        .iter()
        .filter(|e| e.request_id() == Some(id))
        .map(|e| e.kind().name())
        .collect();
    assert_eq!(
        kinds,
        [
            "request_received",
            "attempt_decided",
            "attempt_finished",
            "request_finished"
        ]
    );
    // No secret in any event.
    for e in &evs {
        let line = switchyard_engine::events::jsonl::to_line(0, e);
        assert!(
            !line.contains("sk-fallback-secret"),
            "secret leaked: {line}"
        );
    }
}

#[tokio::test]
async fn streaming_forwards_chunks_and_usage_only_when_asked() {
    let up = Fake::start(Behavior::Stream {
        n: 5,
        gap_ms: 1,
        first_ms: 0,
    })
    .await;
    let p = Proxy::start(&two_groups(&up.base(), &up.base(), ""), Opts::default()).await;
    let mut body = chat("production-llm");
    body["stream"] = json!(true);
    let r = post_json(&p.url("/v1/chat/completions"), &[], &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    let data = sse_data(&r.text());
    assert_eq!(data.last().unwrap(), "[DONE]");
    assert!(
        data.iter().all(|d| !d.contains("\"usage\"")),
        "usage chunk sent without include_usage: {data:?}"
    );
    let content: String = data
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(content, "tok0 tok1 tok2 tok3 tok4 ");
    // The upstream was asked for usage anyway (exact stream cost).
    assert_eq!(
        up.requests()[0].body["stream_options"]["include_usage"],
        true
    );
    body["stream_options"] = json!({"include_usage": true});
    let r = post_json(&p.url("/v1/chat/completions"), &[], &body).await;
    let data = sse_data(&r.text());
    let usage: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 5);
    assert_eq!(usage["choices"], json!([]));
    let dir = p.stop().await;
    let fin: Vec<_> = events(&dir)
        .into_iter()
        .filter_map(|e| {
            if let Event::AttemptFinished(a) = e {
                Some(a)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(fin.len(), 2);
    assert!(
        fin.iter()
            .all(|a| a.tokens_out == 5 && a.tokens_in == 11 && a.ttft_us.is_some()),
        "{fin:?}"
    );
}

#[tokio::test]
async fn retries_then_fallback_on_500_429_timeout_and_refused() {
    let fb = Fake::start(fake::ok()).await;
    // 500s: 1 + 2 retries on the primary, then the fallback.
    let up = Fake::start(fake::status(500, "boom")).await;
    let p = Proxy::start(&two_groups(&up.base(), &fb.base(), ""), Opts::default()).await;
    let r = post_json(&p.url("/v1/chat/completions"), &[], &chat("production-llm")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.count(), 3);
    assert_eq!(r.header("x-litellm-model-id").as_deref(), Some("backup"));
    assert_eq!(
        r.header("x-litellm-attempted-retries").as_deref(),
        Some("2")
    );
    assert_eq!(
        r.header("x-litellm-attempted-fallbacks").as_deref(),
        Some("1")
    );
    let cost: f64 = r
        .header("x-litellm-response-cost")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (cost - (10.0 * 1.5e-7 + 5.0 * 6e-7)).abs() < 1e-12,
        "{cost}"
    );
    p.stop().await;

    // A hanging primary times out (timeout: 2 s here is too slow for a test; use 0.2 s).
    let hang = Fake::start(Behavior::Hang).await;
    let cfg = two_groups(&hang.base(), &fb.base(), "")
        .replace("timeout: 2", "timeout: 0.2")
        .replace("num_retries: 2", "num_retries: 0");
    let p = Proxy::start(&cfg, Opts::default()).await;
    let t = std::time::Instant::now();
    let r = post_json(&p.url("/v1/chat/completions"), &[], &chat("production-llm")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-litellm-model-id").as_deref(), Some("backup"));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    p.stop().await;

    // Connection refused.
    let port = fake::dead_port().await;
    let cfg = two_groups(&format!("http://127.0.0.1:{port}/v1"), &fb.base(), "")
        .replace("num_retries: 2", "num_retries: 0");
    let p = Proxy::start(&cfg, Opts::default()).await;
    let r = post_json(&p.url("/v1/chat/completions"), &[], &chat("production-llm")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-litellm-model-id").as_deref(), Some("backup"));
    p.stop().await;

    // Everything fails: the last upstream status comes back as an OpenAI error.
    let bad = Fake::start(fake::status(503, "down")).await;
    let cfg = two_groups(&bad.base(), &bad.base(), "").replace("num_retries: 2", "num_retries: 0");
    let p = Proxy::start(&cfg, Opts::default()).await;
    let r = post_json(&p.url("/v1/chat/completions"), &[], &chat("production-llm")).await;
    assert_eq!(r.status, 503);
    let j = r.json();
    assert!(
        j["error"]["message"].as_str().unwrap().contains("down"),
        "{j}"
    );
    assert!(j["error"]["type"].is_string());
    p.stop().await;
}

#[tokio::test]
async fn request_level_fallbacks_retries_timeout_and_mock_testing_fallbacks() {
    let up = Fake::start(fake::ok()).await;
    let fb = Fake::start(fake::ok()).await;
    let cfg = two_groups(&up.base(), &fb.base(), "");
    let p = Proxy::start(&cfg, Opts::default()).await;
    let url = p.url("/v1/chat/completions");
    // mock_testing_fallbacks: the primary is never called, the fallback answers.
    let mut body = chat("production-llm");
    body["mock_testing_fallbacks"] = json!(true);
    let r = post_json(&url, &[], &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-litellm-model-id").as_deref(), Some("backup"));
    assert_eq!(
        r.header("x-litellm-attempted-fallbacks").as_deref(),
        Some("1")
    );
    assert_eq!((up.count(), fb.count()), (0, 1));
    // The routing parameters never reach a provider.
    let sent = &fb.requests()[0].body;
    for k in [
        "mock_testing_fallbacks",
        "fallbacks",
        "num_retries",
        "timeout",
    ] {
        assert!(sent.get(k).is_none(), "{k} forwarded: {sent}");
    }
    // A client's own fallback list and retry count: the 500 is not retried and the client's
    // fallback answers.
    up.set_default(fake::status(500, "boom"));
    let mut body = chat("production-llm");
    body["fallbacks"] = json!([{"model": "production-llm-fallback"}]);
    body["num_retries"] = json!(0);
    let r = post_json(&url, &[], &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("x-litellm-attempted-retries").as_deref(),
        Some("0")
    );
    assert_eq!(up.count(), 1);
    // An empty list means no fallbacks at all: the provider's error comes back.
    body["fallbacks"] = json!([]);
    let r = post_json(&url, &[], &body).await;
    assert_eq!(r.status, 500, "{}", r.text());
    // A per-request timeout shorter than the configured 2 s.
    up.set_default(Behavior::Hang);
    let mut body = chat("production-llm");
    body["timeout"] = json!(0.2);
    body["num_retries"] = json!(0);
    let t = std::time::Instant::now();
    let r = post_json(&url, &[], &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    // Bad values and unknown groups are 400s naming the parameter.
    for (k, v) in [
        ("fallbacks", json!(["no-such-group"])),
        ("fallbacks", json!("production-llm-fallback")),
        ("num_retries", json!("two")),
        ("timeout", json!(-1)),
    ] {
        let mut body = chat("production-llm");
        body[k] = v.clone();
        let r = post_json(&url, &[], &body).await;
        assert_eq!(r.status, 400, "{k}={v}: {}", r.text());
        assert_eq!(r.json()["error"]["param"], json!(k), "{}", r.text());
    }
    let dir = p.stop().await;
    // The log keeps what the client asked for, so a replay makes the same decisions.
    let asked: Vec<_> = events(&dir)
        .into_iter()
        .filter_map(|e| match e {
            Event::RequestReceived(r) if !r.overrides.is_empty() => Some(r.overrides.clone()),
            _ => None,
        })
        .collect();
    assert!(asked[0].mock_testing_fallbacks);
    assert_eq!(
        asked[1].fallbacks.as_deref(),
        Some(&["production-llm-fallback".to_string()][..])
    );
    assert_eq!(asked[1].num_retries, Some(0));
    assert_eq!(asked[3].timeout_us, Some(200_000));
}

#[tokio::test]
async fn rate_limit_cools_a_deployment_and_retry_after_is_honoured() {
    let a = Fake::start(fake::ok()).await;
    let b = Fake::start(fake::ok()).await;
    a.push(Behavior::Status {
        status: 429,
        body: json!({"error": {"message": "slow down"}}),
        headers: vec![("retry-after".into(), "30".into())],
    });
    let cfg = format!(
        r#"
model_list:
  - model_name: g
    litellm_params: {{model: openai/m, api_base: "{}", api_key: k, order: 1}}
    model_info: {{id: a}}
  - model_name: g
    litellm_params: {{model: openai/m, api_base: "{}", api_key: k, order: 2}}
    model_info: {{id: b}}
router_settings: {{num_retries: 1}}
"#,
        a.base(),
        b.base()
    );
    let p = Proxy::start(&cfg, Opts::default()).await;
    let r = post_json(&p.url("/v1/chat/completions"), &[], &chat("g")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-litellm-model-id").as_deref(), Some("b"));
    // a is cooling down for 30 s: the next requests go straight to b.
    for _ in 0..3 {
        let r = post_json(&p.url("/v1/chat/completions"), &[], &chat("g")).await;
        assert_eq!(r.header("x-litellm-model-id").as_deref(), Some("b"));
    }
    assert_eq!(a.count(), 1);
    let health = get(&p.url("/health"), &[]).await.json();
    assert_eq!(health["unhealthy_count"], 1);
    assert_eq!(health["unhealthy_endpoints"][0]["model_id"], "a");
    let metrics = get(&p.url("/metrics"), &[]).await.text();
    assert!(metrics.contains("switchyard_deployment_cooling_down{model_group=\"g\",deployment=\"a\",model=\"openai/m\"} 1"), "{metrics}");
    assert!(
        metrics.contains("switchyard_requests_total{model_group=\"g\",status=\"200\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchyard_overhead_seconds_count"),
        "{metrics}"
    );
    p.stop().await;
}

#[tokio::test]
async fn context_window_fallback_by_precheck_and_by_provider_error() {
    let up = Fake::start(fake::ok()).await;
    let fb = Fake::start(fake::ok()).await;
    let cfg = two_groups(&up.base(), &fb.base(), "").replace(
        "      id: vllm\n",
        "      id: vllm\n      max_input_tokens: 50\n",
    );
    let p = Proxy::start(&cfg, Opts::default()).await;
    let long = "word ".repeat(400);
    let r = post_json(
        &p.url("/v1/chat/completions"),
        &[],
        &json!({"model": "production-llm", "messages": [{"role": "user", "content": long}]}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-litellm-model-id").as_deref(), Some("backup"));
    assert_eq!(up.count(), 0, "the pre-check must skip the primary");
    // Short prompts still go to the primary.
    let r = post_json(&p.url("/v1/chat/completions"), &[], &chat("production-llm")).await;
    assert_eq!(r.header("x-litellm-model-id").as_deref(), Some("vllm"));
    p.stop().await;

    let up = Fake::start(fake::ok()).await;
    up.push(Behavior::Status {
        status: 400,
        body: json!({"object": "error", "message": "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens", "type": "BadRequestError", "code": 400}),
        headers: vec![],
    });
    let p = Proxy::start(&two_groups(&up.base(), &fb.base(), ""), Opts::default()).await;
    let r = post_json(&p.url("/v1/chat/completions"), &[], &chat("production-llm")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-litellm-model-id").as_deref(), Some("backup"));
    assert_eq!(up.count(), 1, "a context-window error is not retried");
    p.stop().await;
}

const KEYS: &str = r#"
general_settings:
  master_key: sk-master-1234
switchyard_settings:
  keys:
    - key: sk-free-user-key
      key_alias: free
      models: [production-llm]
      rpm_limit: 2
    - key: sk-tiny-budget-key
      key_alias: tiny
      max_budget: 0.0000035
"#;

#[tokio::test]
async fn auth_keys_limits_and_budgets() {
    let up = Fake::start(fake::ok()).await;
    let fb = Fake::start(fake::ok()).await;
    let p = Proxy::start(&two_groups(&up.base(), &fb.base(), KEYS), Opts::default()).await;
    let url = p.url("/v1/chat/completions");
    // No key, a wrong key: 401.
    let r = post_json(&url, &[], &chat("production-llm")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["type"], "auth_error");
    let r = post_json(
        &url,
        &[("authorization", "Bearer sk-nope")],
        &chat("production-llm"),
    )
    .await;
    assert_eq!(r.status, 401);
    // Master key, x-api-key and api-key headers.
    assert_eq!(
        post_json(
            &url,
            &[("authorization", "Bearer sk-master-1234")],
            &chat("production-llm")
        )
        .await
        .status,
        200
    );
    assert_eq!(
        post_json(
            &url,
            &[("x-api-key", "sk-free-user-key")],
            &chat("production-llm")
        )
        .await
        .status,
        200
    );
    let r = post_json(
        &url,
        &[("api-key", "sk-free-user-key")],
        &chat("production-llm"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-ratelimit-limit-requests").as_deref(), Some("2"));
    assert_eq!(
        r.header("x-ratelimit-remaining-requests").as_deref(),
        Some("0")
    );
    // rpm 2 reached.
    let r = post_json(
        &url,
        &[("authorization", "Bearer sk-free-user-key")],
        &chat("production-llm"),
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        r.header("x-ratelimit-remaining-requests").as_deref(),
        Some("0")
    );
    // Not allowed to call the fallback group directly.
    let r = post_json(
        &url,
        &[("authorization", "Bearer sk-free-user-key")],
        &chat("production-llm-fallback"),
    )
    .await;
    assert_eq!(r.status, 401);
    // /v1/models shows what the key may use.
    let m = get(
        &p.url("/v1/models"),
        &[("authorization", "Bearer sk-free-user-key")],
    )
    .await
    .json();
    let ids: Vec<&str> = m["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["production-llm"]);
    // Budget: the fallback costs 1.5e-6 + 3e-6 = 4.5e-6 > 3.5e-6 per call, reserved up front.
    let tiny = [("authorization", "Bearer sk-tiny-budget-key")];
    let r = post_json(&url, &tiny, &json!({"model": "production-llm-fallback", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["type"], "budget_exceeded");
    // The free (self-hosted) group costs nothing and stays allowed.
    assert_eq!(
        post_json(&url, &tiny, &chat("production-llm")).await.status,
        200
    );
    let info = get(&p.url("/key/info"), &tiny).await.json();
    assert_eq!(info["info"]["key_alias"], "tiny");
    p.stop().await;
}

#[tokio::test]
async fn bad_input_gets_clear_4xx_never_a_panic() {
    let up = Fake::start(fake::ok()).await;
    let cfg = two_groups(
        &up.base(),
        &up.base(),
        "general_settings:\n  max_request_size_mb: 0.01\n",
    );
    let p = Proxy::start(&cfg, Opts::default()).await;
    let url = p.url("/v1/chat/completions");
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{not json".to_vec(), 400, "not valid JSON"),
        (b"".to_vec(), 400, "empty"),
        (b"[]".to_vec(), 400, "JSON object"),
        (br#"{"messages": [{"role": "user", "content": "x"}]}"#.to_vec(), 400, "`model` is required"),
        (br#"{"model": "production-llm"}"#.to_vec(), 400, "`messages` is required"),
        (br#"{"model": 5, "messages": []}"#.to_vec(), 400, "`model` must be a string"),
        (br#"{"model": "production-llm", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}"#.to_vec(), 400, "`stream` must be a boolean"),
        (br#"{"model": "nope", "messages": [{"role": "user", "content": "x"}]}"#.to_vec(), 400, "Invalid model name passed in model=nope"),
        (format!(r#"{{"model": "production-llm", "messages": [{{"role": "user", "content": "{}"}}]}}"#, "x".repeat(20_000)).into_bytes(), 413, "larger than"),
    ];
    for (body, status, needle) in cases {
        let r = send(
            "POST",
            &url,
            &[("content-type", "application/json")],
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            r.status.as_u16(),
            status,
            "{}: {}",
            String::from_utf8_lossy(&body[..body.len().min(80)]),
            r.text()
        );
        let j = r.json();
        let msg = j["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg}");
        assert!(j["error"]["type"].is_string() && j["error"].get("code").is_some());
    }
    let r = get(&p.url("/no/such/path"), &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(up.count(), 0);
    // Liveliness and readiness.
    assert_eq!(
        get(&p.url("/health/liveliness"), &[]).await.json(),
        json!("I'm alive!")
    );
    assert_eq!(
        get(&p.url("/health/readiness"), &[]).await.json()["status"],
        "healthy"
    );
    p.stop().await;
}

#[tokio::test]
async fn streaming_failures_before_and_after_the_first_byte() {
    // Before the first byte: the fallback answers.
    let broken = Fake::start(fake::status(502, "bad gateway")).await;
    let fb = Fake::start(Behavior::Stream {
        n: 3,
        gap_ms: 0,
        first_ms: 0,
    })
    .await;
    let cfg =
        two_groups(&broken.base(), &fb.base(), "").replace("num_retries: 2", "num_retries: 0");
    let p = Proxy::start(&cfg, Opts::default()).await;
    let mut body = chat("production-llm");
    body["stream"] = json!(true);
    let r = post_json(&p.url("/v1/chat/completions"), &[], &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-litellm-model-id").as_deref(), Some("backup"));
    assert_eq!(sse_data(&r.text()).last().unwrap(), "[DONE]");
    p.stop().await;
    // After the first byte: the error arrives in-band and is recorded; no retry.
    let breaks = Fake::start(Behavior::StreamThenBreak { n: 2 }).await;
    let cfg = two_groups(&breaks.base(), &fb.base(), "");
    let p = Proxy::start(&cfg, Opts::default()).await;
    let r = post_json(&p.url("/v1/chat/completions"), &[], &body).await;
    assert_eq!(r.status, 200);
    let data = sse_data(&r.text());
    assert!(data.iter().any(|d| d.contains("\"error\"")), "{data:?}");
    assert_eq!(breaks.count(), 1);
    let dir = p.stop().await;
    let evs = events(&dir);
    let fin = evs
        .iter()
        .rev()
        .find_map(|e| {
            if let Event::AttemptFinished(a) = e {
                Some(a.clone())
            } else {
                None
            }
        })
        .unwrap();
    assert!(fin.committed);
    assert!(fin.tokens_out > 0, "generated tokens are charged: {fin:?}");
}

#[tokio::test]
async fn client_leaving_a_stream_is_still_charged() {
    let fb = Fake::start(Behavior::Stream {
        n: 200,
        gap_ms: 5,
        first_ms: 0,
    })
    .await;
    let cfg = two_groups(&fb.base(), &fb.base(), "").replace("production-llm\n    litellm_params:\n      model: openai/Meta", "production-llm\n    litellm_params:\n      input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\n      model: openai/Meta");
    let p = Proxy::start(&cfg, Opts::default()).await;
    // Read a few chunks, then drop the connection.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(p.addr).await.unwrap();
        let body = serde_json::to_vec(&json!({"model": "production-llm", "stream": true, "messages": [{"role": "user", "content": "hi"}]})).unwrap();
        let head = format!("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len());
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&body).await.unwrap();
        let mut buf = vec![0u8; 2048];
        let mut got = 0;
        while got < 600 {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0);
            got += n;
        }
    }
    // Wait (bounded) for the stream to be accounted.
    let mut finished = None;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if p.app.hub.lock().router.requests_in_flight() == 0 {
            finished = Some(());
            break;
        }
    }
    assert!(
        finished.is_some(),
        "the abandoned stream was never accounted"
    );
    let dir = p.stop().await;
    let a = events(&dir)
        .into_iter()
        .rev()
        .find_map(|e| {
            if let Event::AttemptFinished(a) = e {
                Some(a)
            } else {
                None
            }
        })
        .unwrap();
    assert_eq!(a.class, switchyard_engine::core::OutcomeClass::Cancelled);
    // Priced deployment: read on to the provider's usage, so the whole generation is charged.
    assert_eq!(a.tokens_out, 200, "{a:?}");
    assert!(a.cost.0 > 0);
}

#[tokio::test]
async fn restart_rebuilds_spend_and_cooldowns_from_the_log() {
    let up = Fake::start(fake::ok()).await;
    let fb = Fake::start(fake::ok()).await;
    up.push(fake::status(401, "bad key"));
    let cfg = two_groups(&up.base(), &fb.base(), KEYS).replace(
        "  retry_after: 0\n",
        "  retry_after: 0\n  cooldown_time: 300\n",
    );
    let opts = || Opts {
        durability: Durability::Sync,
        ..Opts::default()
    };
    let p = Proxy::start(&cfg, opts()).await;
    let key = [("authorization", "Bearer sk-free-user-key")];
    let r = post_json(
        &p.url("/v1/chat/completions"),
        &key,
        &chat("production-llm"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("x-litellm-model-id").as_deref(),
        Some("backup"),
        "401 on the primary falls back"
    );
    let spend_before = get(&p.url("/key/info"), &key).await.json()["info"]["spend"]
        .as_f64()
        .unwrap();
    assert!(spend_before > 0.0);
    let dir = p.stop().await;
    let p = Proxy::start_in(dir, &cfg, opts()).await;
    let info = get(&p.url("/key/info"), &key).await.json();
    assert_eq!(
        info["info"]["spend"].as_f64().unwrap(),
        spend_before,
        "spend survives a restart"
    );
    // The 401 cooled the primary for 300 s; after the restart it is still cooling.
    let r = post_json(
        &p.url("/v1/chat/completions"),
        &[("authorization", "Bearer sk-master-1234")],
        &chat("production-llm"),
    )
    .await;
    assert_eq!(r.header("x-litellm-model-id").as_deref(), Some("backup"));
    assert_eq!(up.count(), 1);
    p.stop().await;
}

#[tokio::test]
async fn keys_generated_at_runtime_survive_restarts() {
    let up = Fake::start(fake::ok()).await;
    let cfg = two_groups(
        &up.base(),
        &up.base(),
        "general_settings:\n  master_key: sk-master-1234\n",
    );
    let p = Proxy::start(&cfg, Opts::default()).await;
    let admin = [("authorization", "Bearer sk-master-1234")];
    let r = post_json(
        &p.url("/key/generate"),
        &admin,
        &json!({"key_alias": "team", "models": ["production-llm"], "max_budget": 10}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let key = r.json()["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("sk-"));
    // Only the master key may generate keys.
    let bearer = format!("Bearer {key}");
    let r = post_json(
        &p.url("/key/generate"),
        &[("authorization", bearer.as_str())],
        &json!({}),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        post_json(
            &p.url("/v1/chat/completions"),
            &[("authorization", bearer.as_str())],
            &chat("production-llm")
        )
        .await
        .status,
        200
    );
    let dir = p.stop().await;
    let p = Proxy::start_in(dir, &cfg, Opts::default()).await;
    assert_eq!(
        post_json(
            &p.url("/v1/chat/completions"),
            &[("authorization", bearer.as_str())],
            &chat("production-llm")
        )
        .await
        .status,
        200
    );
    let r = post_json(&p.url("/key/delete"), &admin, &json!({"keys": [key]})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        post_json(
            &p.url("/v1/chat/completions"),
            &[("authorization", bearer.as_str())],
            &chat("production-llm")
        )
        .await
        .status,
        401
    );
    p.stop().await;
}

#[tokio::test]
async fn reload_validates_first_and_logs_the_new_config() {
    let up = Fake::start(fake::ok()).await;
    let cfg = two_groups(&up.base(), &up.base(), "");
    let p = Proxy::start(&cfg, Opts::default()).await;
    std::fs::write(&p.config_path, "model_list: [oops").unwrap();
    let r = send("POST", &p.url("/config/reload"), &[], None).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("invalid YAML"), "{}", r.text());
    // Still serving with the old config.
    assert_eq!(
        post_json(&p.url("/v1/chat/completions"), &[], &chat("production-llm"))
            .await
            .status,
        200
    );
    std::fs::write(
        &p.config_path,
        cfg.replace("production-llm-fallback", "backup-group"),
    )
    .unwrap();
    let r = send("POST", &p.url("/config/reload"), &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let models = get(&p.url("/v1/models"), &[]).await.json();
    assert!(models.to_string().contains("backup-group"));
    let dir = p.stop().await;
    let n = events(&dir)
        .iter()
        .filter(|e| matches!(e, Event::ConfigApplied(_)))
        .count();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn every_request_leaves_its_events_and_sync_mode_is_durable_on_return() {
    let up = Fake::start(fake::ok()).await;
    let p = Proxy::start(
        &two_groups(&up.base(), &up.base(), ""),
        Opts {
            durability: Durability::Sync,
            ..Opts::default()
        },
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        let r = post_json(&p.url("/v1/chat/completions"), &[], &chat("production-llm")).await;
        ids.push(
            r.header("x-litellm-call-id")
                .unwrap()
                .parse::<u64>()
                .unwrap(),
        );
        // In sync mode the request's events are flushed before the response completes.
        assert_eq!(p.app.hub.store.flushed_seq(), p.app.hub.store.last_seq());
    }
    let dir = p.stop().await;
    let evs = events(&dir);
    for id in ids {
        assert!(evs.iter().any(|e| matches!(e, Event::RequestFinished(f) if f.id == id && f.result == RequestResult::Ok)));
    }
}

/// `--log-overflow drop`: with the log's writer behind (here: a queue of capacity 0, always
/// "behind"), requests are served at once and left out of the log whole; every drop is counted.
#[tokio::test]
async fn log_overflow_drop_serves_requests_and_counts_what_it_left_out() {
    let up = Fake::start(fake::ok()).await;
    let fb = Fake::start(fake::ok()).await;
    let cfg = two_groups(&up.base(), &fb.base(), "");
    let opts = Opts {
        queue_capacity: Some(0),
        overflow: switchyard_engine::proxy::hub::Overflow::Drop,
        ..Opts::default()
    };
    let p = Proxy::start(&cfg, opts).await;
    for _ in 0..5 {
        let r = post_json(&p.url("/v1/chat/completions"), &[], &chat("production-llm")).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let m = get(&p.url("/metrics"), &[]).await.text();
    assert!(
        m.contains("switchyard_event_log_dropped_requests_total 5"),
        "{m}"
    );
    assert!(
        m.contains("switchyard_event_log_dropped_events_total 20"),
        "{m}"
    );
    let h = get(&p.url("/health"), &[]).await.json();
    assert_eq!(h["event_log"]["dropped_requests"], json!(5), "{h}");
    assert_eq!(h["event_log"]["overflow"], json!("drop"));
    let dir = p.stop().await;
    // Only the start events are in the log: no request is half there.
    let kinds: Vec<&str> = events(&dir).iter().map(|e| e.kind().name()).collect();
    assert_eq!(kinds, ["proxy_started", "config_applied"]);
    // The default policy on the same log: requests are logged again, whole.
    let p = Proxy::start_in(dir, &cfg, Opts::default()).await;
    let r = post_json(&p.url("/v1/chat/completions"), &[], &chat("production-llm")).await;
    assert_eq!(r.status, 200);
    let dir = p.stop().await;
    let kinds: Vec<&str> = events(&dir).iter().map(|e| e.kind().name()).collect();
    assert_eq!(
        &kinds[kinds.len() - 4..],
        [
            "request_received",
            "attempt_decided",
            "attempt_finished",
            "request_finished"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_proxy_can_be_tailed_and_exported() {
    let up = Fake::start(fake::ok()).await;
    let cfg = two_groups(
        &up.base(),
        &up.base(),
        "general_settings:\n  master_key: sk-master-1234\n",
    );
    let p = Proxy::start(&cfg, Opts::default()).await;
    for _ in 0..5 {
        let r = post_json(
            &p.url("/v1/chat/completions"),
            &[("authorization", "Bearer sk-master-1234")],
            &chat("production-llm"),
        )
        .await;
        assert_eq!(r.status, 200);
    }
    // Let the batched writer catch up (the endpoint reads what is written).
    p.app.hub.store.flush().unwrap();
    let url = format!("http://{}", p.addr);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live.jsonl");
    let (url2, out2) = (url.clone(), out.clone());
    let (tail, export, denied) = tokio::task::spawn_blocking(move || {
        let bin = env!("CARGO_BIN_EXE_switchyard");
        let tail = std::process::Command::new(bin)
            .args(["log", "tail", &url2, "-n", "4", "--key", "sk-master-1234"])
            .output()
            .unwrap();
        let export = std::process::Command::new(bin)
            .args([
                "log",
                "export",
                "--url",
                &url2,
                "--key",
                "sk-master-1234",
                "--format",
                "jsonl",
                "--out",
            ])
            .arg(&out2)
            .output()
            .unwrap();
        let denied = std::process::Command::new(bin)
            .args(["log", "tail", &url2, "--key", "sk-wrong"])
            .env_remove("LITELLM_MASTER_KEY")
            .output()
            .unwrap();
        (tail, export, denied)
    })
    .await
    .unwrap();
    assert!(
        tail.status.success(),
        "{}",
        String::from_utf8_lossy(&tail.stderr)
    );
    let t = String::from_utf8_lossy(&tail.stdout);
    assert_eq!(t.lines().count(), 4, "{t}");
    assert!(t.lines().last().unwrap().contains("finished ok"), "{t}");
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("\"request_finished\""))
            .count(),
        5
    );
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("401"));
    p.stop().await;
}

#[tokio::test]
async fn client_headers_are_forwarded_only_when_configured() {
    let up = Fake::start(fake::ok()).await;
    let hdrs = [
        ("x-trace-id", "t-1"),
        ("anthropic-beta", "tools-2024"),
        ("x-api-key", "sk-client-secret"),
        ("x-litellm-tags", "a"),
    ];
    let p = Proxy::start(&two_groups(&up.base(), &up.base(), ""), Opts::default()).await;
    post_json(
        &p.url("/v1/chat/completions"),
        &hdrs,
        &chat("production-llm"),
    )
    .await;
    let seen = up.requests();
    assert!(
        seen[0].headers.get("x-trace-id").is_none(),
        "off by default"
    );
    p.stop().await;
    let cfg = two_groups(
        &up.base(),
        &up.base(),
        "general_settings:\n  forward_client_headers_to_llm_api: true\n",
    );
    let p = Proxy::start(&cfg, Opts::default()).await;
    post_json(
        &p.url("/v1/chat/completions"),
        &hdrs,
        &chat("production-llm"),
    )
    .await;
    let h = &up.requests()[1].headers;
    assert_eq!(h.get("x-trace-id").unwrap(), "t-1");
    assert_eq!(h.get("anthropic-beta").unwrap(), "tools-2024");
    assert!(
        h.get("x-api-key").is_none(),
        "credentials are never forwarded"
    );
    assert!(h.get("x-litellm-tags").is_none());
    assert_eq!(h.get("authorization").unwrap(), "Bearer dummy");
    p.stop().await;
}
