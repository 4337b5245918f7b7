//! The simulator against the live proxy: parity (a trace recorded by the proxy replays to the
//! same decisions), the fake provider server, and the `sim` command line.

use crate::support::http::{post_json, sse_data};
use crate::support::proxy::{Opts, Proxy};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard_engine::config::{load_config, LoadOptions};
use switchyard_engine::core::event::Event;
use switchyard_engine::cost::PriceTable;
use switchyard_engine::events::trace::{TraceFormat, TraceWriter};
use switchyard_engine::store::{Store, StoreOptions};
use switchyard_sim::engine::{SimSetup, Simulation};
use switchyard_sim::mock;
use switchyard_sim::model::parse;
use switchyard_sim::workload::arrivals::ArrivalLine;
use switchyard_sim::workload::trace::TraceWorkload;
use switchyard_sim::workload::Item;

/// A fleet with failures, rate limits and a small context window, fast enough for a test.
const FLEET: &str = r#"
deployments:
  vllm:
    protocol: openai
    ttft_ms: {base: 5, per_input_token: 0.002, noise: {lognormal: {sigma: 0.3}}}
    per_output_token_ms: {base: 0.5}
    errors:
      good: {rate: 0.08, mean_duration_s: 2}
      bad: {rate: 0.7, mean_duration_s: 0.5}
      statuses: {500: 1, 503: 1}
      timeout_share: 0.05
    rate_limits: {rpm: 2400}
    context_window: 1500
  vllm-b:
    protocol: openai
    ttft_ms: {base: 8, noise: {lognormal: {sigma: 0.3}}}
    per_output_token_ms: {base: 0.6}
    errors: {rate: 0.05, statuses: {502: 1}}
  claude:
    protocol: anthropic
    ttft_ms: {base: 12, noise: {lognormal: {sigma: 0.2}}}
    per_output_token_ms: {base: 0.4}
    errors: {rate: 0.02, statuses: {529: 1}}
"#;

fn config(bases: &BTreeMap<String, String>, strategy: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: production-llm
    litellm_params: {{model: openai/llama, api_base: "{}", api_key: dummy, weight: 3}}
    model_info: {{id: vllm}}
  - model_name: production-llm
    litellm_params: {{model: hosted_vllm/llama-b, api_base: "{}", weight: 1}}
    model_info: {{id: vllm-b}}
  - model_name: production-llm-fallback
    litellm_params: {{model: anthropic/claude-3-5-sonnet-20241022, api_base: "{}", api_key: mock-key}}
    model_info: {{id: claude}}
router_settings:
  routing_strategy: {strategy}
  num_retries: 2
  timeout: 1
  retry_after: 0.05
  cooldown_time: 0.5
  allowed_fails: 2
  fallbacks: [{{production-llm: [production-llm-fallback]}}]
  context_window_fallbacks: [{{production-llm: [production-llm-fallback]}}]
"#,
        bases["vllm"], bases["vllm-b"], bases["claude"]
    )
}

async fn fleet() -> (BTreeMap<String, String>, tokio::sync::oneshot::Sender<()>) {
    let set = parse::parse(FLEET, "fleet.yaml").unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let listening = mock::start(&set, 5, "127.0.0.1", 0, None, async move {
        let _ = rx.await;
    })
    .await
    .unwrap();
    (
        listening
            .into_iter()
            .map(|l| (l.name, l.api_base))
            .collect(),
        tx,
    )
}

fn export(dir: &Path, out: &Path) -> u64 {
    let (store, _) = Store::open(dir, StoreOptions::default()).unwrap();
    let f = std::fs::File::create(out).unwrap();
    let mut w = TraceWriter::new(std::io::BufWriter::new(f), TraceFormat::Binary).unwrap();
    for item in store.scan(0) {
        let (seq, ev) = item.unwrap();
        w.write(seq, &ev).unwrap();
    }
    let n = w.n_events;
    w.finish().unwrap();
    store.close().unwrap();
    n
}

fn routing(yaml: &str) -> Arc<switchyard_engine::config::RoutingConfig> {
    let prices = PriceTable::builtin();
    let env = |_: &str| None;
    Arc::new(
        load_config(
            yaml,
            &LoadOptions {
                file_name: "c.yaml",
                strict: false,
                env: &env,
                prices: &prices,
            },
        )
        .unwrap()
        .config
        .routing,
    )
}

/// Records traffic through the live proxy, then replays the trace with the same config: every
/// decision must come out the same.
async fn parity(strategy: &str) {
    let (bases, _stop) = fleet().await;
    let cfg = config(&bases, strategy);
    let p = Proxy::start(&cfg, Opts::default()).await;
    // 400 requests at ~200/s, some too long for the primary's context window, some streams.
    let mut rng = switchyard_engine::core::rng::Rng::new(3);
    let lines: Vec<ArrivalLine> = (0..400u64)
        .map(|i| ArrivalLine {
            at_us: i * 5_000,
            model: "production-llm".into(),
            tokens_in: if i % 17 == 0 {
                2500
            } else {
                50 + rng.below(600)
            },
            tokens_out: Some(5 + rng.below(40)),
            stream: i % 3 == 0,
            // Some clients set LiteLLM's request-level routing parameters.
            mock_testing_fallbacks: i % 23 == 5,
            num_retries: (i % 13 == 7).then_some(0),
            fallbacks: (i % 19 == 3).then(|| vec!["production-llm-fallback".to_string()]),
            timeout_s: (i % 29 == 11).then_some(0.05),
            ..ArrivalLine::default()
        })
        .collect();
    let items = lines
        .iter()
        .map(|l| Ok(Item::Request(Box::new(l.to_arrival()))));
    let opts = switchyard_sim::drive::DriveOptions {
        target: format!("http://{}", p.addr),
        speed: 1.0,
        key: None,
        max_in_flight: 1000,
        limit: None,
    };
    let stats = switchyard_sim::drive::drive(items, opts, |_| {})
        .await
        .unwrap();
    assert_eq!(stats.sent.load(std::sync::atomic::Ordering::Relaxed), 400);
    let dir = p.stop().await;
    let trace = dir.path().join("trace.bin");
    export(&dir.path().join("data"), &trace);

    let events = || {
        let f = std::fs::File::open(&trace).unwrap();
        switchyard_engine::events::trace::TraceReader::new(std::io::BufReader::new(f))
            .unwrap()
            .map(|r| r.map_err(|e| e.to_string()))
    };
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for (_, e) in events().filter_map(|r| r.ok()) {
        let k = match &e {
            Event::AttemptDecided(d) => format!("decided {}", d.reason.name()),
            Event::AttemptFinished(a) => format!("finished {}", a.class.name()),
            Event::RequestFinished(f) => match &f.result {
                switchyard_engine::core::event::RequestResult::Ok => "request true".to_string(),
                switchyard_engine::core::event::RequestResult::Err(e) => format!(
                    "request false {} {}",
                    e.status,
                    e.message.chars().take(80).collect::<String>()
                ),
            },
            e => e.kind().name().to_string(),
        };
        *kinds.entry(k).or_default() += 1;
    }
    assert!(
        kinds
            .keys()
            .any(|k| k.starts_with("finished") && k != "finished success"),
        "{kinds:?}"
    );
    let recorded: Vec<Event> = events()
        .filter_map(|r| r.ok())
        .map(|(_, e)| e)
        .filter(|e| matches!(e, Event::AttemptDecided(_)))
        .collect();
    let n_fallbacks = recorded.iter().filter(|e| matches!(e, Event::AttemptDecided(d) if d.reason != switchyard_engine::core::event::Reason::Primary)).count();
    assert!(
        recorded.len() >= 300,
        "few decisions recorded: {} ({kinds:?})",
        recorded.len()
    );
    assert!(
        n_fallbacks > 10,
        "the fleet should force retries and fallbacks; got {n_fallbacks}"
    );

    let providers = parse::parse(FLEET, "fleet.yaml").unwrap();
    let setup = SimSetup {
        routing: routing(&cfg),
        providers,
        seed: 99,
        reuse_recorded: true,
    };
    let out = Simulation::new(&setup)
        .unwrap()
        .keep_decisions()
        .run(TraceWorkload::new(events()), &mut |_| {})
        .unwrap();
    assert_eq!(
        out.n_sampled, 0,
        "with the recorded config, every outcome comes from the trace"
    );
    let key = |e: &Event| match e {
        Event::AttemptDecided(d) => (d.id, d.attempt),
        _ => unreachable!(),
    };
    let mut rec: Vec<&Event> = recorded.iter().collect();
    let mut sim: Vec<&Event> = out.decisions.iter().collect();
    rec.sort_by_key(|e| key(e));
    sim.sort_by_key(|e| key(e));
    assert_eq!(rec.len(), sim.len(), "number of decisions");
    for (r, s) in rec.iter().zip(&sim) {
        assert_eq!(r, s, "decision differs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parity_simple_shuffle() {
    parity("simple-shuffle").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parity_latency_based() {
    parity("latency-based-routing").await;
}

#[tokio::test]
async fn fake_server_speaks_both_protocols() {
    let set = parse::parse(
        r#"
deployments:
  oa:
    protocol: openai
    ttft_ms: {base: 40}
    per_output_token_ms: {base: 10}
    rate_limits: {rpm: 2}
    context_window: 100
  an:
    protocol: anthropic
    ttft_ms: {base: 30}
    per_output_token_ms: {base: 5}
    context_window: 100
"#,
        "f.yaml",
    )
    .unwrap();
    let (_tx, rx) = tokio::sync::oneshot::channel::<()>();
    let l = mock::start(&set, 1, "127.0.0.1", 0, None, async move {
        let _ = rx.await;
    })
    .await
    .unwrap();
    let oa = &l.iter().find(|x| x.name == "oa").unwrap().api_base;
    let an = &l.iter().find(|x| x.name == "an").unwrap().api_base;
    let steer = [("x-switchyard-output-tokens", "10")];
    // OpenAI non-streaming: well formed, with usage.
    let r = post_json(
        &format!("{oa}/chat/completions"),
        &steer,
        &json!({"model": "m", "messages": [{"role": "user", "content": "hello there"}]}),
    )
    .await;
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["object"], "chat.completion");
    assert_eq!(j["usage"]["completion_tokens"], 10);
    assert!(
        j["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len()
            > 10
    );
    // Streaming, timed as modelled: first chunk at 40 ms, then 10 ms per token.
    let t = Instant::now();
    let r = post_json(&format!("{oa}/chat/completions"), &steer, &json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "x"}]})).await;
    let elapsed = t.elapsed();
    assert!(elapsed >= Duration::from_millis(40 + 9 * 10), "{elapsed:?}");
    let data = sse_data(&r.text());
    assert_eq!(data.last().unwrap(), "[DONE]");
    let usage: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 10);
    // rpm 2: the third request gets a 429 with retry-after and rate-limit headers.
    let r = post_json(
        &format!("{oa}/chat/completions"),
        &[],
        &json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    assert_eq!(r.header("x-ratelimit-limit-requests").as_deref(), Some("2"));
    // Anthropic: a Messages API answer, streams with its events, and its own context error.
    let r = post_json(&format!("{an}/v1/messages"), &steer, &json!({"model": "claude", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["type"], "message");
    let r = post_json(&format!("{an}/v1/messages"), &steer, &json!({"model": "claude", "max_tokens": 20, "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await;
    let text = r.text();
    assert!(
        text.contains("event: message_start") && text.contains("event: message_stop"),
        "{text}"
    );
    let long = "word ".repeat(1000);
    let r = post_json(&format!("{an}/v1/messages"), &[], &json!({"model": "claude", "max_tokens": 20, "messages": [{"role": "user", "content": long}]})).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("prompt is too long"), "{}", r.text());
    let r = post_json(
        &format!("{oa}/chat/completions"),
        &[("x-switchyard-tokens-in", "5000")],
        &json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert!(r.status == 400 || r.status == 429);
}
