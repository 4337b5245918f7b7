//! Anthropic translation: a realistic request (system prompt, multi-turn, tools), a response with
//! text and a tool call, and a 500-event stream.

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Map, Value};
use std::hint::black_box;
use switchyard_engine::config::{load_config, LoadOptions};
use switchyard_engine::cost::PriceTable;
use switchyard_engine::providers::anthropic::{request, response, StreamState};
use switchyard_engine::providers::sse::SseParser;

fn bench(c: &mut Criterion) {
    let prices = PriceTable::builtin();
    let env = |_: &str| Some("k".to_string());
    let cfg = load_config("model_list:\n  - model_name: c\n    litellm_params: {model: anthropic/claude-3-5-sonnet-20241022}\n", &LoadOptions { file_name: "b", strict: false, env: &env, prices: &prices }).unwrap();
    let dep = cfg.config.routing.deployments[0].clone();
    let body: Map<String, Value> = serde_json::from_value(json!({
        "model": "c", "max_tokens": 1024, "temperature": 0.3,
        "tools": [{"type": "function", "function": {"name": "search", "description": "Search the docs", "parameters": {"type": "object", "properties": {"q": {"type": "string"}, "k": {"type": "integer"}}, "required": ["q"]}}}],
        "messages": [
            {"role": "system", "content": "You are a support assistant for a SaaS product. Answer concisely and cite the docs."},
            {"role": "user", "content": "How do I rotate an API key without downtime? ".repeat(20)},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "search", "arguments": "{\"q\": \"rotate api key\", \"k\": 3}"}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "Keys can be rotated from the dashboard. ".repeat(30)},
            {"role": "user", "content": "Thanks. Summarise in three steps."}
        ]
    }))
    .unwrap();
    c.bench_function("anthropic_request", |b| {
        b.iter(|| black_box(request(&dep, black_box(&body), false, true).unwrap()))
    });
    let resp = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-5-sonnet-20241022",
        "content": [{"type": "text", "text": "Step one: create a new key. ".repeat(20)}, {"type": "tool_use", "id": "toolu_2", "name": "search", "input": {"q": "key expiry", "k": 2}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 900, "cache_read_input_tokens": 400, "output_tokens": 180}});
    c.bench_function("anthropic_response", |b| {
        b.iter(|| black_box(response(black_box(&resp), 1).unwrap()))
    });
    let mut stream = String::new();
    stream.push_str("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_s\",\"model\":\"claude\",\"usage\":{\"input_tokens\":900,\"output_tokens\":1}}}\n\n");
    stream.push_str("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    for i in 0..496 {
        stream.push_str(&format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"word{i} \"}}}}\n\n"));
    }
    stream.push_str("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":496}}\n\n");
    stream.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    let bytes = stream.into_bytes();
    c.bench_function("anthropic_stream_500_events", |b| {
        b.iter(|| {
            let mut p = SseParser::default();
            let mut evs = Vec::with_capacity(512);
            for chunk in bytes.chunks(1400) {
                p.push(chunk, &mut evs).unwrap();
            }
            p.finish(&mut evs);
            let mut st = StreamState::new(1, false);
            let mut out = Vec::with_capacity(512);
            for e in &evs {
                st.on_event(e, &mut out);
            }
            black_box(out.len())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
