//! Anthropic as a provider, end to end: the proxy translates OpenAI chat to the Messages API and
//! back, against a fake Anthropic server on 127.0.0.1.

use crate::support::fake::{self, Behavior, Fake};
use crate::support::http::{post_json, sse_data};
use crate::support::proxy::{Opts, Proxy};
use serde_json::{json, Value};

fn config(primary: &str, claude: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: production-llm
    litellm_params:
      model: openai/Meta-Llama-3.1-8B-Instruct
      api_base: {primary}
      api_key: dummy
    model_info: {{id: vllm}}
  - model_name: production-llm-fallback
    litellm_params:
      model: anthropic/claude-3-5-sonnet-20241022
      api_base: {claude}
      api_key: os.environ/ANTHROPIC_API_KEY
    model_info: {{id: claude}}
router_settings:
  fallbacks:
    - production-llm: [production-llm-fallback]
  context_window_fallbacks:
    - production-llm: [production-llm-fallback]
  num_retries: 2
  timeout: 5
  retry_after: 0
litellm_settings:
  drop_params: true
"#
    )
}

fn opts() -> Opts {
    Opts {
        env: vec![("ANTHROPIC_API_KEY".into(), "sk-ant-test-key-123456".into())],
        ..Opts::default()
    }
}

async fn setup(claude: Behavior) -> (Fake, Fake, Proxy) {
    let primary = Fake::start(fake::ok()).await;
    let anthropic = Fake::start(claude).await;
    let p = Proxy::start(
        &config(&primary.base(), &anthropic.anthropic_base()),
        opts(),
    )
    .await;
    (primary, anthropic, p)
}

#[tokio::test]
async fn plain_chat_system_prompts_usage_and_cost() {
    let (_, an, p) = setup(Behavior::AnthropicOk {
        input_tokens: 100,
        output_tokens: 20,
        cache_read: 1000,
    })
    .await;
    let body = json!({"model": "production-llm-fallback", "user": "u-1", "stop": "END", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "In French."}
    ]});
    let r = post_json(&p.url("/v1/chat/completions"), &[], &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["object"], "chat.completion");
    assert_eq!(j["choices"][0]["message"]["content"], "hello from claude");
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    assert_eq!(j["usage"]["prompt_tokens"], 1100);
    assert_eq!(j["usage"]["completion_tokens"], 20);
    assert_eq!(j["usage"]["prompt_tokens_details"]["cached_tokens"], 1000);
    // 100 x 3e-6 + 1000 x 3e-7 (cache read) + 20 x 1.5e-5 = 0.0009.
    let cost: f64 = r
        .header("x-litellm-response-cost")
        .unwrap()
        .parse()
        .unwrap();
    assert!((cost - 0.0009).abs() < 1e-12, "{cost}");
    let seen = &an.requests()[0];
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(
        seen.headers.get("x-api-key").unwrap(),
        "sk-ant-test-key-123456"
    );
    assert_eq!(seen.headers.get("anthropic-version").unwrap(), "2023-06-01");
    assert_eq!(seen.body["system"], "Be brief.\nIn French.");
    assert_eq!(seen.body["max_tokens"], 4096);
    assert_eq!(seen.body["stop_sequences"], json!(["END"]));
    assert_eq!(seen.body["metadata"]["user_id"], "u-1");
    assert_eq!(seen.body["model"], "claude-3-5-sonnet-20241022");
    assert_eq!(seen.body["messages"].as_array().unwrap().len(), 1);
    p.stop().await;
}

#[tokio::test]
async fn multi_turn_tool_use_and_images() {
    let tool_answer = json!({"id": "msg_t", "type": "message", "role": "assistant", "model": "claude", "content": [
        {"type": "text", "text": "Checking."}, {"type": "tool_use", "id": "toolu_7", "name": "get_weather", "input": {"city": "Oslo"}}
    ], "stop_reason": "tool_use", "usage": {"input_tokens": 50, "output_tokens": 30}});
    let (_, an, p) = setup(Behavior::Status {
        status: 200,
        body: tool_answer,
        headers: vec![],
    })
    .await;
    let body = json!({"model": "production-llm-fallback", "tool_choice": "required", "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Weather here?"}, {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}]},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "toolu_6", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "toolu_6", "content": "rain"},
        {"role": "user", "content": "And Oslo?"}
    ]});
    let r = post_json(&p.url("/v1/chat/completions"), &[], &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["choices"][0]["finish_reason"], "tool_calls");
    let tc = &j["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(tc["id"], "toolu_7");
    assert_eq!(tc["function"]["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(tc["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Oslo"})
    );
    let sent = &an.requests()[0].body;
    assert_eq!(sent["tool_choice"], json!({"type": "any"}));
    assert_eq!(
        sent["tools"][0]["input_schema"]["properties"]["city"]["type"],
        "string"
    );
    let msgs = sent["messages"].as_array().unwrap();
    assert_eq!(
        msgs.len(),
        3,
        "user / assistant / user(tool_result + text): {sent}"
    );
    assert_eq!(
        msgs[0]["content"][1]["source"],
        json!({"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"})
    );
    assert_eq!(msgs[1]["content"][0]["type"], "tool_use");
    assert_eq!(msgs[1]["content"][0]["input"], json!({"city": "Paris"}));
    assert_eq!(
        msgs[2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "toolu_6", "content": "rain"})
    );
    assert_eq!(msgs[2]["content"][1]["text"], "And Oslo?");
    p.stop().await;
}

#[tokio::test]
async fn streaming_text_and_tool_calls() {
    let (_, _, p) = setup(Behavior::AnthropicStream { n: 4 }).await;
    let body = json!({"model": "production-llm-fallback", "stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "hi"}]});
    let r = post_json(&p.url("/v1/chat/completions"), &[], &body).await;
    assert_eq!(r.status, 200);
    let data = sse_data(&r.text());
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let ids: std::collections::BTreeSet<&str> =
        chunks.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1, "one id for the whole stream");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "w0 w1 w2 w3 ");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "stop"));
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 4);
    assert_eq!(usage["usage"]["prompt_tokens"], 20);
    p.stop().await;

    // Tool-call deltas from a recorded Anthropic event stream.
    let stream = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/engine/tests/fixtures/anthropic/stream-tool-calls/anthropic_stream.txt"
    ))
    .unwrap();
    let (_, _, p) = setup(Behavior::Raw {
        status: 200,
        content_type: "text/event-stream".into(),
        body: stream,
    })
    .await;
    let r = post_json(&p.url("/v1/chat/completions"), &[], &json!({"model": "production-llm-fallback", "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await;
    let data = sse_data(&r.text());
    let chunks: Vec<Value> = data
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let mut args: [String; 2] = Default::default();
    for c in &chunks {
        if let Some(tcs) = c["choices"][0]["delta"]["tool_calls"].as_array() {
            for tc in tcs {
                let i = tc["index"].as_u64().unwrap() as usize;
                args[i].push_str(tc["function"]["arguments"].as_str().unwrap_or(""));
            }
        }
    }
    assert_eq!(
        serde_json::from_str::<Value>(&args[0]).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(args[1], "{}");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
    assert!(
        chunks.iter().all(|c| c["choices"] != json!([])),
        "no usage chunk without include_usage"
    );
    p.stop().await;
}

#[tokio::test]
async fn stop_reasons_map_to_finish_reasons() {
    for (stop, finish) in [
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
        ("refusal", "content_filter"),
        ("end_turn", "stop"),
    ] {
        let body = json!({"id": "m", "type": "message", "role": "assistant", "model": "c", "content": [{"type": "text", "text": "x"}], "stop_reason": stop, "usage": {"input_tokens": 1, "output_tokens": 1}});
        let (_, _, p) = setup(Behavior::Status {
            status: 200,
            body,
            headers: vec![],
        })
        .await;
        let r = post_json(&p.url("/v1/chat/completions"), &[], &json!({"model": "production-llm-fallback", "messages": [{"role": "user", "content": "hi"}]})).await;
        assert_eq!(r.json()["choices"][0]["finish_reason"], finish, "{stop}");
        p.stop().await;
    }
}

fn anthropic_error(status: u16, ty: &str, msg: &str, headers: Vec<(String, String)>) -> Behavior {
    Behavior::Status {
        status,
        body: json!({"type": "error", "error": {"type": ty, "message": msg}}),
        headers,
    }
}

#[tokio::test]
async fn error_classes() {
    // 429 with retry-after: retried after the wait (a single deployment does not cool down).
    let (_, an, p) = setup(Behavior::AnthropicOk {
        input_tokens: 1,
        output_tokens: 1,
        cache_read: 0,
    })
    .await;
    an.push(anthropic_error(
        429,
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit",
        vec![("retry-after".into(), "1".into())],
    ));
    let t = std::time::Instant::now();
    let r = post_json(&p.url("/v1/chat/completions"), &[], &json!({"model": "production-llm-fallback", "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(r.status, 200);
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(950),
        "retry-after honoured: {:?}",
        t.elapsed()
    );
    assert_eq!(an.count(), 2);
    // 529 overloaded: retried at once by backoff rules.
    an.push(anthropic_error(
        529,
        "overloaded_error",
        "Overloaded",
        vec![],
    ));
    let r = post_json(&p.url("/v1/chat/completions"), &[], &json!({"model": "production-llm-fallback", "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("x-litellm-attempted-retries").as_deref(),
        Some("1")
    );
    p.stop().await;
    // 401 / 403 / 404 / 400 come back as themselves, not retried (401 and 404 also start a
    // cooldown, so each runs on a fresh proxy).
    for (status, ty) in [
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (400, "invalid_request_error"),
    ] {
        let (_, an, p) = setup(Behavior::AnthropicOk {
            input_tokens: 1,
            output_tokens: 1,
            cache_read: 0,
        })
        .await;
        an.push(anthropic_error(status, ty, "nope", vec![]));
        let r = post_json(&p.url("/v1/chat/completions"), &[], &json!({"model": "production-llm-fallback", "messages": [{"role": "user", "content": "hi"}]})).await;
        assert_eq!(r.status.as_u16(), status, "{}", r.text());
        assert_eq!(an.count(), 1, "{status} must not be retried");
        p.stop().await;
    }
}

#[tokio::test]
async fn prompt_too_long_fires_the_context_window_fallback() {
    // Claude is the primary here; its context error falls back to another group.
    let other = Fake::start(fake::ok()).await;
    let an = Fake::start(anthropic_error(
        400,
        "invalid_request_error",
        "prompt is too long: 210000 tokens > 200000 maximum",
        vec![],
    ))
    .await;
    let cfg = format!(
        r#"
model_list:
  - model_name: claude
    litellm_params: {{model: anthropic/claude-3-5-sonnet-20241022, api_base: "{}", api_key: k}}
  - model_name: big
    litellm_params: {{model: openai/big, api_base: "{}", api_key: k}}
router_settings:
  num_retries: 2
  context_window_fallbacks: [{{claude: [big]}}]
"#,
        an.anthropic_base(),
        other.base()
    );
    let p = Proxy::start(&cfg, opts()).await;
    let r = post_json(
        &p.url("/v1/chat/completions"),
        &[],
        &json!({"model": "claude", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(an.count(), 1);
    assert_eq!(other.count(), 1);
    p.stop().await;
}

#[tokio::test]
async fn seed_config_falls_back_from_a_failing_primary_to_anthropic() {
    let primary = Fake::start(fake::status(500, "vllm down")).await;
    let an = Fake::start(Behavior::AnthropicOk {
        input_tokens: 10,
        output_tokens: 5,
        cache_read: 0,
    })
    .await;
    // The seed config as shipped, with the two api_bases pointed at the fakes.
    let seed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/traces/litellm_config.yaml"
    ))
    .unwrap();
    let cfg = seed
        .replace("http://your-vllm:8000/v1", &primary.base())
        .replace(
            "      api_key: os.environ/ANTHROPIC_API_KEY",
            &format!(
                "      api_key: os.environ/ANTHROPIC_API_KEY\n      api_base: {}",
                an.anthropic_base()
            ),
        );
    let p = Proxy::start(&cfg, opts()).await;
    let r = post_json(&p.url("/v1/chat/completions"), &[], &json!({"model": "production-llm", "messages": [{"role": "user", "content": "hi"}], "logit_bias": {"1": 1}})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "hello from claude"
    );
    assert_eq!(primary.count(), 3, "1 + num_retries: 2");
    assert_eq!(
        r.header("x-litellm-attempted-fallbacks").as_deref(),
        Some("1")
    );
    // drop_params: true dropped logit_bias for Anthropic.
    assert!(an.requests()[0].body.get("logit_bias").is_none());
    p.stop().await;
}
