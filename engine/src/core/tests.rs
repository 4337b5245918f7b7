//! Scenario tests: each drives the router through a small story and compares a table of its
//! decisions with an expected snapshot.

use super::*;
use crate::config::{load_config, LoadOptions, RoutingConfig};
use crate::cost::PriceTable;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

pub(crate) fn cfg(yaml: &str) -> Arc<RoutingConfig> {
    let prices = PriceTable::builtin();
    let env = |name: &str| {
        (name == "ANTHROPIC_API_KEY" || name == "OPENAI_API_KEY").then(|| "sk-test".to_string())
    };
    let loaded = load_config(
        yaml,
        &LoadOptions {
            file_name: "t.yaml",
            strict: false,
            env: &env,
            prices: &prices,
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{}",
            e.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    Arc::new(loaded.config.routing)
}

pub(crate) fn req(model: &str) -> RequestInput {
    RequestInput {
        model: model.into(),
        tokens_in: 100,
        max_tokens: Some(50),
        ..Default::default()
    }
}

/// What a fake deployment answers: outcome and how long it takes.
#[derive(Clone, Debug)]
pub(crate) struct Answer {
    pub report: AttemptReport,
}

pub(crate) fn ok(ms: u64) -> Answer {
    Answer {
        report: AttemptReport::success(ms * 1000, 100, 50),
    }
}

pub(crate) fn fail(class: OutcomeClass, status: u16, ms: u64) -> Answer {
    Answer {
        report: AttemptReport::failure(class, status, ms * 1000),
    }
}

pub(crate) fn rate_limited(retry_after_ms: u64) -> Answer {
    let mut a = fail(OutcomeClass::RateLimited, 429, 5);
    a.report.retry_after_ms = Some(retry_after_ms);
    a
}

/// Drives requests one after another through the router; records every decision as a table row.
pub(crate) struct Driver {
    pub router: Router,
    pub now: InstantUs,
    pub table: String,
    pub events: Vec<Event>,
    /// Scripted answers per deployment id, consumed in order; `default` when a script runs out.
    pub scripts: BTreeMap<String, Vec<Answer>>,
    pub default: Answer,
}

impl Driver {
    pub fn new(yaml: &str) -> Driver {
        Driver {
            router: Router::new(cfg(yaml), 7),
            now: InstantUs(1_000_000_000),
            table: String::new(),
            events: Vec::new(),
            scripts: BTreeMap::new(),
            default: ok(100),
        }
    }

    pub fn script(mut self, deployment: &str, answers: Vec<Answer>) -> Driver {
        self.scripts.insert(deployment.into(), answers);
        self
    }

    fn t(&self) -> String {
        let rel = self.now.0 - 1_000_000_000;
        format!("t={:>3}.{:03}s", rel / 1_000_000, (rel % 1_000_000) / 1000)
    }

    pub fn advance_ms(&mut self, ms: u64) {
        self.now = self.now.plus(DurationUs::from_ms(ms));
    }

    /// Runs one request to completion; returns its result.
    pub fn run(&mut self, input: RequestInput) -> RequestResult {
        let ev = self.router.receive(self.now, input, None);
        let id = ev.request_id().unwrap();
        self.events.push(ev);
        for _ in 0..200 {
            match self.router.poll(self.now, id) {
                Poll::Attempt { event, plan } => {
                    let Event::AttemptDecided(d) = &event else {
                        unreachable!()
                    };
                    let dep = d.deployment.to_string();
                    let answer = match self.scripts.get_mut(&dep) {
                        Some(v) if !v.is_empty() => v.remove(0),
                        _ => self.default.clone(),
                    };
                    let _ = write!(
                        self.table,
                        "{} r{} #{} {:<14} {:<10} -> {:<8} p={:.2}{}",
                        self.t(),
                        id,
                        plan.attempt,
                        d.reason.name(),
                        d.group,
                        dep,
                        d.probability,
                        if d.explored { " explored" } else { "" }
                    );
                    self.events.push(event);
                    let dur = answer.report.duration_us.min(plan.timeout.0);
                    self.now = self.now.plus(DurationUs(dur));
                    let class = answer.report.class.unwrap();
                    let _ = writeln!(self.table, " : {} {}", class.name(), answer.report.status);
                    let ev = self
                        .router
                        .attempt_finished(self.now, id, answer.report)
                        .unwrap();
                    self.events.push(ev);
                }
                Poll::Wait { until } => {
                    let _ = writeln!(
                        self.table,
                        "{} r{} wait {}",
                        self.t(),
                        id,
                        until.since(self.now)
                    );
                    self.now = until;
                }
                Poll::Done { event, result } => {
                    let Event::RequestFinished(f) = &event else {
                        unreachable!()
                    };
                    match &result {
                        RequestResult::Ok => {
                            let _ = writeln!(
                                self.table,
                                "{} r{} ok cost={} attempts={}",
                                self.t(),
                                id,
                                f.cost,
                                f.n_attempts
                            );
                        }
                        RequestResult::Err(e) => {
                            let _ = writeln!(
                                self.table,
                                "{} r{} error {} {}: {}",
                                self.t(),
                                id,
                                e.status,
                                e.kind,
                                e.message
                            );
                        }
                    }
                    self.events.push(event);
                    return result;
                }
                Poll::InFlight | Poll::Unknown => panic!("driver bug"),
            }
        }
        panic!("request did not finish");
    }
}

const SEED: &str = include_str!("../../../traces/litellm_config.yaml");

fn seed_with_ids() -> String {
    SEED.replace(
        "      api_key: dummy\n",
        "      api_key: dummy\n    model_info:\n      id: vllm\n",
    )
    .replace(
        "      api_key: os.environ/ANTHROPIC_API_KEY\n",
        "      api_key: os.environ/ANTHROPIC_API_KEY\n    model_info:\n      id: claude\n",
    )
}

#[test]
fn seed_config_retries_then_falls_back() {
    let mut d = Driver::new(&seed_with_ids()).script(
        "vllm",
        vec![
            fail(OutcomeClass::ServerError, 500, 20),
            fail(OutcomeClass::ServerError, 502, 20),
            fail(OutcomeClass::ServerError, 503, 20),
        ],
    );
    d.run(req("production-llm"));
    expect_test::expect![[r#"
        t=  0.000s r1 #0 primary        production-llm -> vllm     p=1.00 : server_error 500
        t=  0.020s r1 wait 620.780ms
        t=  0.640s r1 #1 retry          production-llm -> vllm     p=1.00 : server_error 502
        t=  0.660s r1 wait 1.175s
        t=  1.836s r1 #2 retry          production-llm -> vllm     p=1.00 : server_error 503
        t=  1.856s r1 #3 fallback       production-llm-fallback -> claude   p=1.00 : success 200
        t=  1.956s r1 ok cost=$0.00105 attempts=4
    "#]]
    .assert_eq(&d.table);
}

#[test]
fn context_window_precheck_skips_the_primary() {
    let yaml = seed_with_ids().replace(
        "      id: vllm\n",
        "      id: vllm\n      max_input_tokens: 8192\n",
    );
    let mut d = Driver::new(&yaml);
    let mut r = req("production-llm");
    r.tokens_in = 10_000;
    d.run(r);
    expect_test::expect![[r#"
        t=  0.000s r1 #0 context-window production-llm-fallback -> claude   p=1.00 : success 200
        t=  0.100s r1 ok cost=$0.00105 attempts=1
    "#]]
    .assert_eq(&d.table);
}

#[test]
fn provider_context_window_error_falls_back_without_retry() {
    let mut d = Driver::new(&seed_with_ids()).script(
        "vllm",
        vec![fail(OutcomeClass::ContextWindowExceeded, 400, 10)],
    );
    d.run(req("production-llm"));
    expect_test::expect![[r#"
        t=  0.000s r1 #0 primary        production-llm -> vllm     p=1.00 : context_window_exceeded 400
        t=  0.010s r1 #1 context-window production-llm-fallback -> claude   p=1.00 : success 200
        t=  0.110s r1 ok cost=$0.00105 attempts=2
    "#]]
    .assert_eq(&d.table);
}

#[test]
fn context_window_error_without_fallbacks_is_a_400() {
    let yaml = "model_list:\n  - model_name: m\n    litellm_params: {model: hosted_vllm/x, api_base: 'http://h/v1'}\n    model_info: {id: a, max_input_tokens: 50}\n";
    let mut d = Driver::new(yaml);
    let res = d.run(req("m"));
    let RequestResult::Err(e) = res else { panic!() };
    assert_eq!(e.status, 400);
    assert_eq!(e.code.as_deref(), Some("context_length_exceeded"));
    assert!(
        e.message.contains("maximum context length is 50 tokens"),
        "{}",
        e.message
    );
}

const TWO: &str = r#"
model_list:
  - model_name: g
    litellm_params: {model: hosted_vllm/a, api_base: "http://a/v1"}
    model_info: {id: a}
  - model_name: g
    litellm_params: {model: hosted_vllm/b, api_base: "http://b/v1"}
    model_info: {id: b}
router_settings:
  num_retries: 2
  routing_strategy: least-busy
"#;

/// Like `TWO`, but `a` is always the first pick (order tiers), so stories are seed-independent.
const TWO_ORDERED: &str = r#"
model_list:
  - model_name: g
    litellm_params: {model: hosted_vllm/a, api_base: "http://a/v1", order: 1}
    model_info: {id: a}
  - model_name: g
    litellm_params: {model: hosted_vllm/b, api_base: "http://b/v1", order: 2}
    model_info: {id: b}
router_settings:
  num_retries: 2
"#;

#[test]
fn retry_avoids_the_failed_deployment_without_waiting() {
    let mut d =
        Driver::new(TWO_ORDERED).script("a", vec![fail(OutcomeClass::ServerError, 500, 10)]);
    d.run(req("g"));
    expect_test::expect![[r#"
        t=  0.000s r1 #0 primary        g          -> a        p=1.00 : server_error 500
        t=  0.010s r1 #1 retry          g          -> b        p=1.00 : success 200
        t=  0.110s r1 ok cost=$0 attempts=2
    "#]]
    .assert_eq(&d.table);
}

#[test]
fn rate_limit_cools_a_deployment_in_a_multi_deployment_group() {
    let mut d = Driver::new(TWO_ORDERED).script("a", vec![rate_limited(3_000)]);
    d.run(req("g"));
    d.advance_ms(100);
    d.run(req("g"));
    d.run(req("g"));
    d.advance_ms(3_000);
    d.run(req("g"));
    expect_test::expect![[r#"
        t=  0.000s r1 #0 primary        g          -> a        p=1.00 : rate_limited 429
        t=  0.005s r1 #1 retry          g          -> b        p=1.00 : success 200
        t=  0.105s r1 ok cost=$0 attempts=2
        t=  0.205s r2 #0 primary        g          -> b        p=1.00 : success 200
        t=  0.305s r2 ok cost=$0 attempts=1
        t=  0.305s r3 #0 primary        g          -> b        p=1.00 : success 200
        t=  0.405s r3 ok cost=$0 attempts=1
        t=  3.405s r4 #0 primary        g          -> a        p=1.00 : success 200
        t=  3.505s r4 ok cost=$0 attempts=1
    "#]]
    .assert_eq(&d.table);
}

#[test]
fn rate_limit_on_a_single_deployment_waits_retry_after() {
    let yaml = "model_list:\n  - model_name: m\n    litellm_params: {model: hosted_vllm/x, api_base: 'http://h/v1'}\n    model_info: {id: only}\nrouter_settings: {num_retries: 1}\n";
    let mut d = Driver::new(yaml).script("only", vec![rate_limited(2_000)]);
    d.run(req("m"));
    expect_test::expect![[r#"
        t=  0.000s r1 #0 primary        m          -> only     p=1.00 : rate_limited 429
        t=  0.005s r1 wait 2.000s
        t=  2.005s r1 #1 retry          m          -> only     p=1.00 : success 200
        t=  2.105s r1 ok cost=$0 attempts=2
    "#]]
    .assert_eq(&d.table);
}

#[test]
fn all_cooling_is_a_429_with_try_again_or_a_bounded_wait() {
    let yaml = TWO_ORDERED.replace("num_retries: 2", "num_retries: 0\n  cooldown_time: 10");
    let mut d = Driver::new(&yaml)
        .script("a", vec![fail(OutcomeClass::AuthError, 401, 5)])
        .script("b", vec![fail(OutcomeClass::NotFound, 404, 5)]);
    d.run(req("g"));
    d.run(req("g"));
    d.run(req("g"));
    expect_test::expect![[r#"
        t=  0.000s r1 #0 primary        g          -> a        p=1.00 : auth_error 401
        t=  0.005s r1 error 401 authentication_error: auth error. Received Model Group=g (deployment a, after 1 attempt(s))
        t=  0.005s r2 #0 primary        g          -> b        p=1.00 : not_found 404
        t=  0.010s r2 error 404 not_found_error: not found. Received Model Group=g (deployment b, after 1 attempt(s))
        t=  0.010s r3 error 429 rate_limit_error: No deployments available for selected model, Try again in 10 seconds. Passed model=g. pre-call-checks=false
    "#]]
    .assert_eq(&d.table);

    let yaml = format!("{yaml}switchyard_settings:\n  wait_for_cooldown: 15\n");
    let mut d = Driver::new(&yaml)
        .script("a", vec![fail(OutcomeClass::AuthError, 401, 5)])
        .script("b", vec![fail(OutcomeClass::NotFound, 404, 5)]);
    d.run(req("g"));
    d.run(req("g"));
    d.run(req("g"));
    assert!(d.table.contains("r3 wait 9.995s"), "{}", d.table);
    assert!(d.table.contains("r3 ok"), "{}", d.table);
}

#[test]
fn failure_rate_over_half_cools_after_five_requests() {
    let yaml = TWO
        .replace("num_retries: 2", "num_retries: 0")
        .replace("least-busy", "simple-shuffle");
    let yaml = yaml
        .replace("model_info: {id: a}", "model_info: {id: a}\n    ")
        .replace(
            "hosted_vllm/a, api_base: \"http://a/v1\"",
            "hosted_vllm/a, api_base: \"http://a/v1\", order: 1",
        );
    let mut d = Driver::new(&yaml).script(
        "a",
        vec![
            ok(10),
            fail(OutcomeClass::ServerError, 500, 10),
            ok(10),
            fail(OutcomeClass::ServerError, 500, 10),
            fail(OutcomeClass::ServerError, 500, 10),
        ],
    );
    for _ in 0..6 {
        d.run(req("g"));
    }
    expect_test::expect![[r#"
        t=  0.000s r1 #0 primary        g          -> a        p=1.00 : success 200
        t=  0.010s r1 ok cost=$0 attempts=1
        t=  0.010s r2 #0 primary        g          -> a        p=1.00 : server_error 500
        t=  0.020s r2 error 500 api_error: server error. Received Model Group=g (deployment a, after 1 attempt(s))
        t=  0.020s r3 #0 primary        g          -> a        p=1.00 : success 200
        t=  0.030s r3 ok cost=$0 attempts=1
        t=  0.030s r4 #0 primary        g          -> a        p=1.00 : server_error 500
        t=  0.040s r4 error 500 api_error: server error. Received Model Group=g (deployment a, after 1 attempt(s))
        t=  0.040s r5 #0 primary        g          -> a        p=1.00 : server_error 500
        t=  0.050s r5 error 500 api_error: server error. Received Model Group=g (deployment a, after 1 attempt(s))
        t=  0.050s r6 #0 primary        g          -> b        p=1.00 : success 200
        t=  0.150s r6 ok cost=$0 attempts=1
    "#]]
    .assert_eq(&d.table);
}

#[test]
fn bad_request_is_not_retried_and_does_not_cool() {
    let mut d = Driver::new(TWO_ORDERED).script("a", vec![fail(OutcomeClass::BadRequest, 400, 5)]);
    let res = d.run(req("g"));
    assert!(matches!(res, RequestResult::Err(ref e) if e.status == 400));
    assert_eq!(
        d.router.state().deployments[0].cooldown_until,
        InstantUs::ZERO
    );
    assert!(!d.table.contains("retry"), "{}", d.table);
}

#[test]
fn order_tiers_then_next_tier_when_the_first_is_unavailable() {
    let yaml = r#"
model_list:
  - model_name: g
    litellm_params: {model: hosted_vllm/a, api_base: "http://a/v1", order: 1, rpm: 2}
    model_info: {id: a}
  - model_name: g
    litellm_params: {model: hosted_vllm/b, api_base: "http://b/v1", order: 2}
    model_info: {id: b}
"#;
    let mut d = Driver::new(yaml);
    for _ in 0..3 {
        d.run(req("g"));
    }
    expect_test::expect![[r#"
        t=  0.000s r1 #0 primary        g          -> a        p=1.00 : success 200
        t=  0.100s r1 ok cost=$0 attempts=1
        t=  0.100s r2 #0 primary        g          -> a        p=1.00 : success 200
        t=  0.200s r2 ok cost=$0 attempts=1
        t=  0.200s r3 #0 primary        g          -> b        p=1.00 : success 200
        t=  0.300s r3 ok cost=$0 attempts=1
    "#]]
    .assert_eq(&d.table);
}

#[test]
fn weighted_shuffle_converges_to_weights() {
    let yaml = r#"
model_list:
  - model_name: g
    litellm_params: {model: hosted_vllm/a, api_base: "http://a/v1", weight: 7}
    model_info: {id: a}
  - model_name: g
    litellm_params: {model: hosted_vllm/b, api_base: "http://b/v1", weight: 3}
    model_info: {id: b}
"#;
    let mut d = Driver::new(yaml);
    d.default = ok(0);
    for _ in 0..20_000 {
        d.run(req("g"));
    }
    let a = d.router.state().deployments[0].totals.attempts as f64;
    let share = a / 20_000.0;
    assert!((share - 0.7).abs() < 0.015, "share of a = {share}");
    assert!(d.table.contains("p=0.70") && d.table.contains("p=0.30"));
}

#[test]
fn least_busy_prefers_fewest_in_flight() {
    let mut d = Driver::new(TWO);
    // Start a request and leave its attempt in flight.
    let ev = d.router.receive(d.now, req("g"), None);
    let id1 = ev.request_id().unwrap();
    let Poll::Attempt { plan: p1, .. } = d.router.poll(d.now, id1) else {
        panic!()
    };
    // The next request goes to the other deployment, with certainty.
    let ev = d.router.receive(d.now, req("g"), None);
    let id2 = ev.request_id().unwrap();
    let Poll::Attempt { plan: p2, event } = d.router.poll(d.now, id2) else {
        panic!()
    };
    assert_ne!(p1.deployment, p2.deployment);
    let Event::AttemptDecided(ad) = event else {
        panic!()
    };
    assert_eq!(ad.probability, 1.0);
}

#[test]
fn latency_based_tries_unknown_first_then_fastest() {
    let yaml = TWO.replace("least-busy", "latency-based-routing");
    let mut d = Driver::new(&yaml)
        .script("a", vec![ok(500)])
        .script("b", vec![ok(100), ok(100), ok(100)]);
    for _ in 0..4 {
        d.run(req("g"));
    }
    expect_test::expect![[r#"
        t=  0.000s r1 #0 primary        g          -> b        p=0.50 : success 200
        t=  0.100s r1 ok cost=$0 attempts=1
        t=  0.100s r2 #0 primary        g          -> a        p=1.00 : success 200
        t=  0.600s r2 ok cost=$0 attempts=1
        t=  0.600s r3 #0 primary        g          -> b        p=1.00 : success 200
        t=  0.700s r3 ok cost=$0 attempts=1
        t=  0.700s r4 #0 primary        g          -> b        p=1.00 : success 200
        t=  0.800s r4 ok cost=$0 attempts=1
    "#]]
    .assert_eq(&d.table);
}

#[test]
fn cost_based_picks_the_cheapest() {
    let yaml = r#"
model_list:
  - model_name: g
    litellm_params: {model: openai/gpt-4o}
    model_info: {id: pricey}
  - model_name: g
    litellm_params: {model: openai/gpt-4o-mini}
    model_info: {id: cheap}
router_settings: {routing_strategy: cost-based-routing}
"#;
    let mut d = Driver::new(yaml);
    d.run(req("g"));
    assert!(d.table.contains("-> cheap"), "{}", d.table);
}

#[test]
fn usage_based_picks_least_used_and_respects_tpm() {
    let yaml = r#"
model_list:
  - model_name: g
    litellm_params: {model: hosted_vllm/a, api_base: "http://a/v1", tpm: 1000}
    model_info: {id: a}
  - model_name: g
    litellm_params: {model: hosted_vllm/b, api_base: "http://b/v1", tpm: 100000}
    model_info: {id: b}
router_settings: {routing_strategy: usage-based-routing-v2}
"#;
    let mut d = Driver::new(yaml);
    for _ in 0..12 {
        d.run(req("g"));
    }
    // a has room for 6 requests of 150 tokens; usage-based alternates until a is full.
    let st = d.router.state();
    assert!(
        st.deployments[0].window.tokens <= 1000,
        "{:?}",
        st.deployments[0].window
    );
    assert_eq!(
        st.deployments[0].totals.attempts + st.deployments[1].totals.attempts,
        12
    );
    assert!(st.deployments[1].totals.attempts >= 6);
}

#[test]
fn unknown_model_is_a_400_listing_available_models() {
    let mut d = Driver::new(TWO);
    let RequestResult::Err(e) = d.run(req("nope")) else {
        panic!()
    };
    assert_eq!(e.status, 400);
    assert!(
        e.message
            .contains("Invalid model name passed in model=nope"),
        "{}",
        e.message
    );
    assert!(e.message.contains("Available: g"), "{}", e.message);
}

#[test]
fn aliases_and_deployment_ids_resolve() {
    let yaml = format!("{TWO}  model_group_alias: {{gpt-4: g}}\n");
    let mut d = Driver::new(&yaml);
    assert_eq!(d.run(req("gpt-4")), RequestResult::Ok);
    d.run(req("b"));
    assert!(
        d.table.lines().nth(2).unwrap().contains("-> b"),
        "{}",
        d.table
    );
}

const KEYS: &str = r#"
model_list:
  - model_name: cheap
    litellm_params: {model: hosted_vllm/a, api_base: "http://a/v1"}
    model_info: {id: a}
  - model_name: premium
    litellm_params: {model: openai/gpt-4o}
    model_info: {id: p}
switchyard_settings:
  keys:
    - key: sk-free
      key_alias: free
      models: [chat]
      aliases: {chat: cheap}
      rpm_limit: 2
    - key: sk-paid
      key_alias: paid
      aliases: {chat: premium}
      max_parallel_requests: 1
      max_budget: 0.001
"#;

fn key_id(d: &Driver, alias: &str) -> Name {
    let k = d
        .router
        .state()
        .keys
        .values()
        .find(|k| k.def.alias.as_deref() == Some(alias))
        .unwrap();
    Name::from(k.def.id.as_str())
}

#[test]
fn keys_alias_models_limit_and_budget() {
    let mut d = Driver::new(KEYS);
    let free = key_id(&d, "free");
    let paid = key_id(&d, "paid");
    let with_key = |k: &Name, model: &str| RequestInput {
        key_id: Some(k.clone()),
        ..req(model)
    };
    // One public name, two routes.
    d.run(with_key(&free, "chat"));
    d.run(with_key(&paid, "chat"));
    // The free key may not call premium directly.
    let RequestResult::Err(e) = d.run(with_key(&free, "premium")) else {
        panic!()
    };
    assert_eq!(e.status, 401);
    // rpm 2: the third request in the minute is limited.
    d.run(with_key(&free, "chat"));
    let RequestResult::Err(e) = d.run(with_key(&free, "chat")) else {
        panic!()
    };
    assert_eq!(e.status, 429);
    assert!(e.retry_after_ms.is_some());
    expect_test::expect![[r#"
        t=  0.000s r1 #0 primary        cheap      -> a        p=1.00 : success 200
        t=  0.100s r1 ok cost=$0 attempts=1
        t=  0.100s r2 #0 primary        premium    -> p        p=1.00 : success 200
        t=  0.200s r2 ok cost=$0.00075 attempts=1
        t=  0.200s r3 error 401 key_model_access_denied: key not allowed to access model. This key can only access models=["chat"]. Tried to access premium
        t=  0.200s r4 #0 primary        cheap      -> a        p=1.00 : success 200
        t=  0.300s r4 ok cost=$0 attempts=1
        t=  0.300s r5 error 429 rate_limit_error: Rate limit exceeded for key: rpm limit 2, current 2. Try again in 20 seconds.
    "#]]
    .assert_eq(&d.table);
    // Budget: $0.001 with $0.00075 spent; the reservation of the next request does not fit.
    let RequestResult::Err(e) = d.run(with_key(&paid, "chat")) else {
        panic!("{}", d.table)
    };
    assert_eq!(e.kind, "budget_exceeded");
    assert_eq!(d.router.key(&paid).unwrap().spend, PicoUsd(750_000_000));
}

#[test]
fn parallel_limit_counts_requests_in_flight() {
    let mut d = Driver::new(KEYS);
    let paid = key_id(&d, "paid");
    let input = RequestInput {
        key_id: Some(paid.clone()),
        max_tokens: Some(1),
        tokens_in: 1,
        ..req("chat")
    };
    let ev = d.router.receive(d.now, input.clone(), None);
    assert!(
        matches!(&ev, Event::RequestReceived(r) if matches!(r.admission, Admission::Admitted { .. }))
    );
    let ev2 = d.router.receive(d.now, input, None);
    let Event::RequestReceived(r2) = ev2 else {
        panic!()
    };
    let Admission::Rejected(e) = r2.admission.clone() else {
        panic!()
    };
    assert_eq!(e.status, 429);
    assert!(e.message.contains("parallel"), "{}", e.message);
}

#[test]
fn tag_filtering_routes_by_request_tags() {
    let yaml = r#"
model_list:
  - model_name: g
    litellm_params: {model: hosted_vllm/a, api_base: "http://a/v1", tags: [teamA]}
    model_info: {id: a}
  - model_name: g
    litellm_params: {model: hosted_vllm/b, api_base: "http://b/v1", tags: [default]}
    model_info: {id: b}
router_settings: {enable_tag_filtering: true}
"#;
    let mut d = Driver::new(yaml);
    d.run(RequestInput {
        tags: vec!["teamA".into()],
        ..req("g")
    });
    d.run(req("g"));
    d.run(RequestInput {
        tags: vec!["teamZ".into()],
        ..req("g")
    });
    expect_test::expect![[r#"
        t=  0.000s r1 #0 primary        g          -> a        p=1.00 : success 200
        t=  0.100s r1 ok cost=$0 attempts=1
        t=  0.100s r2 #0 primary        g          -> b        p=1.00 : success 200
        t=  0.200s r2 ok cost=$0 attempts=1
        t=  0.200s r3 #0 primary        g          -> b        p=1.00 : success 200
        t=  0.300s r3 ok cost=$0 attempts=1
    "#]]
    .assert_eq(&d.table);
}

#[test]
fn escalation_header_routes_to_the_frontier_model() {
    let yaml = format!(
        "{}switchyard_settings:\n  escalations:\n    - {{header: x-confidence, equals: low, from: production-llm, to: production-llm-fallback}}\n",
        seed_with_ids()
    );
    let mut d = Driver::new(&yaml);
    d.run(RequestInput {
        headers: vec![("x-confidence".into(), "low".into())],
        ..req("production-llm")
    });
    d.run(RequestInput {
        headers: vec![("x-confidence".into(), "high".into())],
        ..req("production-llm")
    });
    expect_test::expect![[r#"
        t=  0.000s r1 #0 escalation     production-llm-fallback -> claude   p=1.00 : success 200
        t=  0.100s r1 ok cost=$0.00105 attempts=1
        t=  0.100s r2 #0 primary        production-llm -> vllm     p=1.00 : success 200
        t=  0.200s r2 ok cost=$0 attempts=1
    "#]]
    .assert_eq(&d.table);
}

const AB: &str = r#"
model_list:
  - model_name: g
    litellm_params: {model: hosted_vllm/a, api_base: "http://a/v1", weight: 1}
    model_info: {id: a}
  - model_name: g
    litellm_params: {model: hosted_vllm/b, api_base: "http://b/v1", weight: 1}
    model_info: {id: b}
"#;

#[test]
fn sticky_assignment_keeps_a_user_on_one_arm() {
    let yaml = format!("{AB}switchyard_settings:\n  sticky: {{by: user}}\n");
    let mut d = Driver::new(&yaml);
    let mut arms: BTreeMap<String, std::collections::BTreeSet<usize>> = BTreeMap::new();
    for i in 0..400 {
        let user = format!("user-{}", i % 40);
        d.run(RequestInput {
            user: Some(user.clone()),
            ..req("g")
        });
        let Some(Event::AttemptDecided(ad)) = d
            .events
            .iter()
            .rev()
            .find(|e| matches!(e, Event::AttemptDecided(_)))
        else {
            panic!()
        };
        arms.entry(user)
            .or_default()
            .insert(d.router.config().deployment_index(&ad.deployment).unwrap());
    }
    assert!(arms.values().all(|s| s.len() == 1), "a user switched arms");
    let on_a = arms.values().filter(|s| s.contains(&0)).count();
    assert!((10..=30).contains(&on_a), "users on a: {on_a} of 40");
}

#[test]
fn exploration_routes_a_share_uniformly_and_logs_probabilities() {
    let yaml = r#"
model_list:
  - model_name: g
    litellm_params: {model: hosted_vllm/a, api_base: "http://a/v1", order: 1}
    model_info: {id: a}
  - model_name: g
    litellm_params: {model: hosted_vllm/b, api_base: "http://b/v1", order: 2}
    model_info: {id: b}
switchyard_settings: {exploration_rate: 0.2}
"#;
    let mut d = Driver::new(yaml);
    d.default = ok(0);
    for _ in 0..10_000 {
        d.run(req("g"));
    }
    let mut explored = 0;
    let mut on_b = 0;
    for e in &d.events {
        if let Event::AttemptDecided(ad) = e {
            explored += usize::from(ad.explored);
            if &*ad.deployment == "b" {
                on_b += 1;
                // b is only reachable by exploration: 0.2 * 1/2.
                assert!((ad.probability - 0.1).abs() < 1e-9, "{}", ad.probability);
            } else {
                assert!((ad.probability - 0.9).abs() < 1e-9, "{}", ad.probability);
            }
        }
    }
    assert!((1_800..2_200).contains(&explored), "explored {explored}");
    assert!((850..1_150).contains(&on_b), "on b {on_b}");
}

#[test]
fn fallbacks_respect_max_and_never_revisit() {
    let yaml = r#"
model_list:
  - {model_name: a, litellm_params: {model: hosted_vllm/a, api_base: "http://a/v1"}, model_info: {id: a}}
  - {model_name: b, litellm_params: {model: hosted_vllm/b, api_base: "http://b/v1"}, model_info: {id: b}}
  - {model_name: c, litellm_params: {model: hosted_vllm/c, api_base: "http://c/v1"}, model_info: {id: c}}
router_settings:
  fallbacks: [{a: [b, a, c]}, {b: [a]}]
  default_fallbacks: [c]
  max_fallbacks: 1
"#;
    let mut d = Driver::new(yaml);
    d.default = fail(OutcomeClass::ServerError, 500, 1);
    d.run(req("a"));
    expect_test::expect![[r#"
        t=  0.000s r1 #0 primary        a          -> a        p=1.00 : server_error 500
        t=  0.001s r1 #1 fallback       b          -> b        p=1.00 : server_error 500
        t=  0.002s r1 error 500 api_error: server error. Received Model Group=b (deployment b, after 2 attempt(s))
    "#]]
    .assert_eq(&d.table);
    let mut d = Driver::new(&yaml.replace("max_fallbacks: 1", "max_fallbacks: 5"));
    d.default = fail(OutcomeClass::ServerError, 500, 1);
    d.run(req("a"));
    expect_test::expect![[r#"
        t=  0.000s r1 #0 primary        a          -> a        p=1.00 : server_error 500
        t=  0.001s r1 #1 fallback       b          -> b        p=1.00 : server_error 500
        t=  0.002s r1 #2 fallback       c          -> c        p=1.00 : server_error 500
        t=  0.003s r1 error 500 api_error: server error. Received Model Group=c (deployment c, after 3 attempt(s))
    "#]]
    .assert_eq(&d.table);
}

const THREE_GROUPS: &str = r#"
model_list:
  - {model_name: a, litellm_params: {model: hosted_vllm/a, api_base: "http://a/v1"}, model_info: {id: a}}
  - {model_name: b, litellm_params: {model: hosted_vllm/b, api_base: "http://b/v1"}, model_info: {id: b}}
  - {model_name: c, litellm_params: {model: hosted_vllm/c, api_base: "http://c/v1"}, model_info: {id: c}}
router_settings:
  num_retries: 2
  retry_after: 0
  fallbacks: [{a: [b]}]
  default_fallbacks: [b]
"#;

fn with(model: &str, o: RequestOverrides) -> RequestInput {
    RequestInput {
        overrides: o,
        ..req(model)
    }
}

#[test]
fn request_fallbacks_and_num_retries_replace_the_configured_ones() {
    let mut d = Driver::new(THREE_GROUPS).script(
        "a",
        vec![
            fail(OutcomeClass::ServerError, 500, 10),
            fail(OutcomeClass::ServerError, 500, 10),
            fail(OutcomeClass::ServerError, 500, 10),
            fail(OutcomeClass::ServerError, 500, 10),
        ],
    );
    // The client's list replaces `fallbacks` and `default_fallbacks`; no retries asked for.
    let o = RequestOverrides {
        fallbacks: Some(vec!["c".into()]),
        num_retries: Some(0),
        ..Default::default()
    };
    d.run(with("a", o));
    // Without overrides: two retries, then the configured fallback.
    d.run(req("a"));
    expect_test::expect![[r#"
        t=  0.000s r1 #0 primary        a          -> a        p=1.00 : server_error 500
        t=  0.010s r1 #1 fallback       c          -> c        p=1.00 : success 200
        t=  0.110s r1 ok cost=$0 attempts=2
        t=  0.110s r2 #0 primary        a          -> a        p=1.00 : server_error 500
        t=  0.120s r2 wait 597.483ms
        t=  0.717s r2 #1 retry          a          -> a        p=1.00 : server_error 500
        t=  0.727s r2 wait 1.099s
        t=  1.827s r2 #2 retry          a          -> a        p=1.00 : server_error 500
        t=  1.837s r2 #3 fallback       b          -> b        p=1.00 : success 200
        t=  1.937s r2 ok cost=$0 attempts=4
    "#]]
    .assert_eq(&d.table);
}

#[test]
fn request_timeout_bounds_every_attempt() {
    let mut d = Driver::new(THREE_GROUPS);
    for (o, want) in [(None, 600_000_000u64), (Some(2_500_000u64), 2_500_000)] {
        let input = with(
            "a",
            RequestOverrides {
                timeout_us: o,
                ..Default::default()
            },
        );
        let ev = d.router.receive(d.now, input, None);
        let id = ev.request_id().unwrap();
        let Poll::Attempt { plan, .. } = d.router.poll(d.now, id) else {
            panic!("no attempt")
        };
        assert_eq!(plan.timeout.0, want);
    }
}

#[test]
fn a_clients_short_timeout_does_not_cool_the_deployment() {
    let yaml = format!("{THREE_GROUPS}  allowed_fails: 1\n");
    let slow = || vec![fail(OutcomeClass::Timeout, 0, 5_000); 4];
    let short = || RequestOverrides {
        timeout_us: Some(50_000),
        num_retries: Some(0),
        fallbacks: Some(vec![]),
        ..Default::default()
    };
    let mut d = Driver::new(&yaml).script("a", slow());
    for _ in 0..3 {
        d.run(with("a", short()));
    }
    let a = &d.router.state().deployments[0];
    assert_eq!((a.totals.attempts, a.totals.failures), (3, 0));
    assert!(!a.cooling(d.now), "{}", d.table);
    // The same timeouts under the configured timeout are the deployment's: it cools.
    let mut d = Driver::new(&yaml.replace("num_retries: 2", "num_retries: 0\n  timeout: 0.05"))
        .script("a", slow());
    for _ in 0..3 {
        d.run(with(
            "a",
            RequestOverrides {
                fallbacks: Some(vec![]),
                ..Default::default()
            },
        ));
    }
    let a = &d.router.state().deployments[0];
    assert!(a.totals.failures >= 2 && a.cooling(d.now), "{}", d.table);
}

#[test]
fn mock_testing_fallbacks_fails_the_requested_group_without_calling_it() {
    let mut d = Driver::new(THREE_GROUPS);
    let mock = |fallbacks: Option<Vec<String>>| RequestOverrides {
        mock_testing_fallbacks: true,
        fallbacks,
        ..Default::default()
    };
    // The configured fallback runs; `a` is never attempted, so its health is untouched.
    d.run(with("a", mock(None)));
    d.run(with("a", mock(Some(vec!["c".into()]))));
    // Nowhere to fall back to: the mock error itself.
    let RequestResult::Err(e) = d.run(with("c", mock(Some(vec![])))) else {
        panic!("{}", d.table)
    };
    assert_eq!(e.status, 500);
    expect_test::expect![[r#"
        t=  0.000s r1 #0 fallback       b          -> b        p=1.00 : success 200
        t=  0.100s r1 ok cost=$0 attempts=1
        t=  0.100s r2 #0 fallback       c          -> c        p=1.00 : success 200
        t=  0.200s r2 ok cost=$0 attempts=1
        t=  0.200s r3 error 500 api_error: This is a mock exception for model=c, to trigger a fallback (mock_testing_fallbacks). Fallbacks=[]
    "#]]
    .assert_eq(&d.table);
    let a = &d.router.state().deployments[0];
    assert_eq!((a.totals.attempts, a.totals.failures), (0, 0));
}

#[test]
fn request_fallbacks_must_name_groups_the_key_may_use() {
    let mut d = Driver::new(KEYS);
    let free = key_id(&d, "free");
    let asking = |k: &Name, fallbacks: &[&str]| RequestInput {
        key_id: Some(k.clone()),
        overrides: RequestOverrides {
            fallbacks: Some(fallbacks.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        },
        ..req("chat")
    };
    // Not a group at all.
    let RequestResult::Err(e) = d.run(asking(&free, &["nope"])) else {
        panic!()
    };
    assert_eq!((e.status, e.param.as_deref()), (400, Some("fallbacks")));
    // A group the free key may not use: no way around `models` through a fallback.
    let RequestResult::Err(e) = d.run(asking(&free, &["premium"])) else {
        panic!()
    };
    assert_eq!((e.status, e.param.as_deref()), (401, Some("fallbacks")));
    // Its own alias is fine.
    assert_eq!(d.run(asking(&free, &["chat"])), RequestResult::Ok);
    // Without a key, any group.
    let RequestResult::Ok = d.run(with(
        "cheap",
        RequestOverrides {
            fallbacks: Some(vec!["premium".into()]),
            mock_testing_fallbacks: true,
            ..Default::default()
        },
    )) else {
        panic!("{}", d.table)
    };
    assert!(
        d.table.contains("#0 fallback       premium    -> p "),
        "{}",
        d.table
    );
}

#[test]
fn committed_stream_failure_is_not_retried() {
    let mut a = fail(OutcomeClass::StreamInterrupted, 0, 10);
    a.report.committed = true;
    let mut d = Driver::new(TWO_ORDERED)
        .script("a", vec![a])
        .script("b", vec![a_clone_stream()]);
    let res = d.run(RequestInput {
        stream: true,
        ..req("g")
    });
    assert!(matches!(res, RequestResult::Err(_)), "{}", d.table);
    fn a_clone_stream() -> Answer {
        let mut a = fail(OutcomeClass::StreamInterrupted, 0, 10);
        a.report.committed = true;
        a
    }
    assert!(!d.table.contains("retry"), "{}", d.table);
}

#[test]
fn same_seed_same_decisions_and_replay_rebuilds_state() {
    let run = || {
        let mut d = Driver::new(&AB.replace("weight: 1}", "weight: 1, rpm: 30}"));
        d.default = ok(7);
        d.scripts.insert(
            "a".into(),
            (0..50)
                .map(|i| {
                    if i % 3 == 0 {
                        fail(OutcomeClass::ServerError, 500, 3)
                    } else {
                        ok(5)
                    }
                })
                .collect(),
        );
        for i in 0..200 {
            d.run(RequestInput {
                user: Some(format!("u{}", i % 7)),
                ..req("g")
            });
            d.advance_ms(97);
        }
        d
    };
    let d1 = run();
    let d2 = run();
    assert_eq!(d1.table, d2.table);
    assert_eq!(d1.events, d2.events);
    // Folding the log into a fresh router gives the same state as living through it.
    let mut fresh = Router::new(d1.router.config().clone(), 7);
    for e in &d1.events {
        fresh.apply(e);
    }
    assert_eq!(fresh.state().fingerprint(), d1.router.state().fingerprint());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    struct Setup {
        yaml: String,
        groups: Vec<String>,
    }

    fn setup() -> impl Strategy<Value = Setup> {
        let group = prop::collection::vec(
            (
                prop::option::of(1u32..3),
                prop::option::of(1u64..10),
                prop::option::of(2u64..6),
            ),
            1..4,
        );
        (
            prop::collection::vec(group, 1..4),
            0usize..6,
            prop::collection::vec((0usize..4, 0usize..4), 0..6),
            0u32..3,
            any::<bool>(),
        )
            .prop_map(|(groups, strat, fbs, retries, explore)| {
                let strategies = crate::config::Strategy::NAMES;
                let mut y = String::from("model_list:\n");
                let names: Vec<String> = (0..groups.len()).map(|g| format!("g{g}")).collect();
                for (g, deps) in groups.iter().enumerate() {
                    for (i, (order, weight, rpm)) in deps.iter().enumerate() {
                        y.push_str(&format!(
                            "  - model_name: g{g}\n    litellm_params:\n      model: hosted_vllm/m{g}{i}\n      api_base: http://h{g}{i}/v1\n      input_cost_per_token: {}e-7\n      output_cost_per_token: 1e-6\n"
                            , i + 1
                        ));
                        if let Some(o) = order {
                            y.push_str(&format!("      order: {o}\n"));
                        }
                        if let Some(w) = weight {
                            y.push_str(&format!("      weight: {w}\n"));
                        }
                        if let Some(r) = rpm {
                            y.push_str(&format!("      rpm: {r}\n"));
                        }
                        y.push_str(&format!("    model_info: {{id: d{g}{i}, max_input_tokens: {}}}\n", 100 + 50 * i));
                    }
                }
                y.push_str(&format!("router_settings:\n  routing_strategy: {}\n  num_retries: {retries}\n  cooldown_time: 2\n", strategies[strat]));
                let fbs: Vec<(usize, usize)> = fbs.into_iter().filter(|(a, b)| a != b && *a < names.len() && *b < names.len()).collect();
                if !fbs.is_empty() {
                    y.push_str("  fallbacks:\n");
                    for (a, b) in &fbs {
                        y.push_str(&format!("    - g{a}: [g{b}]\n"));
                    }
                    y.push_str("  context_window_fallbacks:\n");
                    for (a, b) in &fbs {
                        y.push_str(&format!("    - g{a}: [g{b}]\n"));
                    }
                }
                if explore {
                    y.push_str("switchyard_settings:\n  exploration_rate: 0.1\n");
                }
                Setup { yaml: y, groups: names }
            })
    }

    fn outcome() -> impl Strategy<Value = Answer> {
        prop_oneof![
            4 => (1u64..400).prop_map(ok),
            1 => (1u64..50).prop_map(|ms| fail(OutcomeClass::ServerError, 500, ms)),
            1 => (100u64..3000).prop_map(rate_limited),
            1 => Just(fail(OutcomeClass::Timeout, 0, 100)),
            1 => Just(fail(OutcomeClass::ContextWindowExceeded, 400, 3)),
            1 => Just(fail(OutcomeClass::AuthError, 401, 3)),
            1 => Just(fail(OutcomeClass::BadRequest, 400, 3)),
        ]
    }

    fn run(s: &Setup, reqs: &[(usize, u64, u64)], answers: &[Answer]) -> Driver {
        let mut d = Driver::new(&s.yaml);
        let mut k = 0usize;
        // Every deployment answers from the same shared sequence, in order of attempts.
        let mut all = BTreeMap::new();
        for dep in d.router.config().deployments.iter() {
            all.insert(dep.id.clone(), Vec::new());
        }
        for _ in 0..400 {
            for v in all.values_mut() {
                v.push(answers[k % answers.len()].clone());
                k += 1;
            }
        }
        d.scripts = all;
        for &(g, tokens, gap_ms) in reqs {
            let name = &s.groups[g % s.groups.len()];
            d.run(RequestInput {
                tokens_in: tokens,
                ..req(name)
            });
            d.advance_ms(gap_ms);
        }
        d
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

        #[test]
        fn picks_are_eligible_chains_terminate_and_runs_repeat(
            s in setup(),
            reqs in prop::collection::vec((0usize..4, 10u64..300, 0u64..3000), 1..40),
            answers in prop::collection::vec(outcome(), 1..20),
        ) {
            let d = run(&s, &reqs, &answers);
            let cfg = d.router.config().clone();
            let mut replay = Router::new(cfg.clone(), 7);
            let mut visited: BTreeMap<RequestId, Vec<Name>> = BTreeMap::new();
            for e in &d.events {
                if let Event::AttemptDecided(ad) = e {
                    // The pick is one of the candidates, in the decided group, and not cooling.
                    prop_assert!(ad.candidates.contains(&ad.deployment));
                    let i = cfg.deployment_index(&ad.deployment).unwrap();
                    prop_assert_eq!(&cfg.deployments[i].model_group, &*ad.group);
                    let ds = &replay.state().deployments[i];
                    prop_assert!(!ds.cooling(ad.at), "picked a cooling deployment");
                    if let Some(lim) = cfg.deployments[i].rpm {
                        prop_assert!(ds.window.requests_at(ad.at) < lim, "picked a deployment at its rpm limit");
                    }
                    prop_assert!(ad.probability > 0.0 && ad.probability <= 1.0 + 1e-9);
                    let v = visited.entry(ad.id).or_default();
                    if matches!(ad.reason, Reason::Fallback | Reason::ContextWindow | Reason::ContentPolicy) {
                        prop_assert!(!v.contains(&ad.group), "fallback revisited {}", ad.group);
                    }
                    if !v.contains(&ad.group) {
                        v.push(ad.group.clone());
                    }
                    prop_assert!(ad.attempt < router::MAX_ATTEMPTS);
                }
                replay.apply(e);
            }
            // Every request finished.
            prop_assert_eq!(d.router.requests_in_flight(), 0);
            // Same inputs, same seed: the same decisions.
            let d2 = run(&s, &reqs, &answers);
            prop_assert_eq!(&d.events, &d2.events);
            prop_assert_eq!(replay.state().fingerprint(), d.router.state().fingerprint());
        }
    }
}
