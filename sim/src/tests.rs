//! Known-answer scenarios (cost and latency computable by hand) and determinism.

use crate::engine::{SimSetup, Simulation};
use crate::model::parse;
use crate::report::{render, summarize};
use crate::workload::arrivals::ArrivalLine;
use crate::workload::{Item, ItemResult};
use std::sync::Arc;
use switchyard_engine::config::{load_config, LoadOptions, RoutingConfig};
use switchyard_engine::cost::PriceTable;

fn cfg(yaml: &str) -> Arc<RoutingConfig> {
    let prices = PriceTable::builtin();
    let env = |_: &str| Some("sk-test".to_string());
    let l = load_config(
        yaml,
        &LoadOptions {
            file_name: "t.yaml",
            strict: false,
            env: &env,
            prices: &prices,
        },
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    Arc::new(l.config.routing)
}

fn arrivals(n: u64, gap_ms: u64, model: &str) -> impl Iterator<Item = ItemResult> {
    let model = model.to_string();
    (0..n).map(move |i| {
        Ok(Item::Request(Box::new(
            ArrivalLine {
                at_us: i * gap_ms * 1000,
                model: model.as_str().into(),
                tokens_in: 100,
                tokens_out: Some(50),
                ..ArrivalLine::default()
            }
            .to_arrival(),
        )))
    })
}

const FIXED: &str = r#"
deployments:
  fast: {ttft_ms: {base: 100}, per_output_token_ms: {base: 10}}
  slow: {ttft_ms: {base: 400}, per_output_token_ms: {base: 20}}
  broken:
    ttft_ms: {base: 50}
    per_output_token_ms: {base: 10}
    errors: {rate: 1.0, statuses: {503: 1}}
"#;

fn run(
    config: &str,
    providers: &str,
    n: u64,
    gap_ms: u64,
    model: &str,
    seed: u64,
) -> crate::engine::RunOutput {
    let setup = SimSetup {
        routing: cfg(config),
        providers: parse::parse(providers, "p.yaml").unwrap(),
        seed,
        reuse_recorded: true,
    };
    Simulation::new(&setup)
        .unwrap()
        .run(arrivals(n, gap_ms, model), &mut |_| {})
        .unwrap()
}

#[test]
fn priced_deployment_with_fixed_latency() {
    let config = r#"
model_list:
  - model_name: g
    litellm_params: {model: hosted_vllm/x, api_base: "http://h/v1", input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}
    model_info: {id: fast}
"#;
    let out = run(config, FIXED, 1000, 500, "g", 1);
    let f = out.report.figures();
    // 1000 x (100 x 1e-6 + 50 x 2e-6) = $0.2 exactly.
    assert_eq!(f.overall["cost_usd"], 0.2);
    assert_eq!(f.overall["requests"], 1000.0);
    assert_eq!(f.overall["error_rate"], 0.0);
    // 100 ms + 49 x 10 ms = 590 ms, every request.
    for k in ["latency_p50_ms", "latency_p99_ms", "latency_p999_ms"] {
        assert!((f.overall[k] - 590.0).abs() < 1.0, "{k} = {}", f.overall[k]);
    }
    assert_eq!(out.n_sampled, 1000);
}

#[test]
fn fifty_fifty_split() {
    let config = r#"
model_list:
  - model_name: g
    litellm_params: {model: hosted_vllm/x, api_base: "http://a/v1", weight: 1, input_cost_per_token: 0.000001, output_cost_per_token: 0}
    model_info: {id: fast}
  - model_name: g
    litellm_params: {model: hosted_vllm/y, api_base: "http://b/v1", weight: 1, input_cost_per_token: 0.000003, output_cost_per_token: 0}
    model_info: {id: slow}
"#;
    let out = run(config, FIXED, 20_000, 100, "g", 2);
    let f = out.report.figures();
    let share = f.deployments["fast"]["share"];
    assert!((share - 0.5).abs() < 0.015, "{share}");
    // Expected cost: 20000 x 100 x (1e-6 + 3e-6) / 2 = $4.0.
    assert!(
        (f.overall["cost_usd"] - 4.0).abs() < 0.08,
        "{}",
        f.overall["cost_usd"]
    );
    // Half the requests take 590 ms, half 1380 ms: p50 sits at the boundary, p90 at the slow one.
    assert!(
        (f.overall["latency_p90_ms"] - 1380.0).abs() < 2.0,
        "{}",
        f.overall["latency_p90_ms"]
    );
}

#[test]
fn failing_primary_falls_back() {
    let config = r#"
model_list:
  - model_name: primary
    litellm_params: {model: hosted_vllm/x, api_base: "http://a/v1"}
    model_info: {id: broken}
  - model_name: backup
    litellm_params: {model: hosted_vllm/y, api_base: "http://b/v1", input_cost_per_token: 0.000001, output_cost_per_token: 0.000001}
    model_info: {id: fast}
router_settings:
  num_retries: 1
  retry_after: 1
  fallbacks: [{primary: [backup]}]
  disable_cooldowns: true
"#;
    let out = run(config, FIXED, 100, 10_000, "primary", 3);
    let f = out.report.figures();
    assert_eq!(f.overall["error_rate"], 0.0);
    assert_eq!(f.overall["retries"], 100.0);
    assert_eq!(f.overall["fallbacks"], 100.0);
    assert_eq!(f.deployments["broken"]["attempts"], 200.0);
    assert_eq!(f.deployments["fast"]["attempts"], 100.0);
    // Each request: 50 ms (503) + 1 s retry_after + 50 ms (503) + 590 ms = 1690 ms.
    assert!(
        (f.overall["latency_p50_ms"] - 1690.0).abs() < 2.0,
        "{}",
        f.overall["latency_p50_ms"]
    );
    assert!((f.overall["cost_usd"] - 100.0 * 150.0 * 1e-6).abs() < 1e-12);
}

#[test]
fn same_inputs_same_bytes() {
    let config = r#"
model_list:
  - model_name: g
    litellm_params: {model: hosted_vllm/x, api_base: "http://a/v1", weight: 3}
    model_info: {id: fast}
  - model_name: g
    litellm_params: {model: hosted_vllm/y, api_base: "http://b/v1", weight: 1}
    model_info: {id: slow}
router_settings: {num_retries: 2}
"#;
    let noisy = r#"
deployments:
  fast:
    ttft_ms: {base: 100, noise: {lognormal: {sigma: 0.5}}}
    per_output_token_ms: {base: 10, noise: {lognormal: {sigma: 0.2}}}
    errors: {good: {rate: 0.05, mean_duration_s: 30}, bad: {rate: 0.6, mean_duration_s: 5}}
  slow: {ttft_ms: {base: 400}, per_output_token_ms: {base: 20}, rate_limits: {rpm: 100}}
"#;
    let render_run = |seed| {
        let out = run(config, noisy, 5000, 50, "g", seed);
        let s = summarize(&[out.report.figures()]);
        render::json(&render::Meta::default(), &s)
    };
    assert_eq!(render_run(9), render_run(9));
    assert_ne!(render_run(9), render_run(10));
}

#[test]
fn missing_models_and_unknown_groups_are_clear_errors() {
    let config = "model_list:\n  - model_name: g\n    litellm_params: {model: hosted_vllm/x, api_base: 'http://h/v1'}\n    model_info: {id: newcomer}\n";
    let setup = SimSetup {
        routing: cfg(config),
        providers: parse::parse(FIXED, "p.yaml").unwrap(),
        seed: 1,
        reuse_recorded: true,
    };
    let e = Simulation::new(&setup).err().unwrap();
    assert!(e.to_string().contains("newcomer"), "{e}");
    let config = "model_list:\n  - model_name: g\n    litellm_params: {model: hosted_vllm/x, api_base: 'http://h/v1'}\n    model_info: {id: fast}\n";
    let setup = SimSetup {
        routing: cfg(config),
        providers: parse::parse(FIXED, "p.yaml").unwrap(),
        seed: 1,
        reuse_recorded: true,
    };
    let e = Simulation::new(&setup)
        .unwrap()
        .run(arrivals(3, 10, "other"), &mut |_| {})
        .err()
        .unwrap();
    assert!(e.to_string().contains("asks for model `other`"), "{e}");
}
