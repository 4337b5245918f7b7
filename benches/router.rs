//! One request through the routing core: receive, decide, report the outcome, finish — for
//! groups of 2, 16 and 256 deployments under each strategy. Inputs are built outside the timed
//! closure. Target: under 1 µs per request for 16 deployments.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;
use std::sync::Arc;
use switchyard_engine::config::{load_config, LoadOptions};
use switchyard_engine::core::router::{AttemptReport, Poll, RequestInput, Router};
use switchyard_engine::core::units::{DurationUs, InstantUs};
use switchyard_engine::cost::PriceTable;

fn config(n: usize, strategy: &str) -> String {
    let mut y = String::from("model_list:\n");
    for i in 0..n {
        y.push_str(&format!(
            "  - model_name: g\n    litellm_params: {{model: hosted_vllm/m{i}, api_base: 'http://h{i}/v1', rpm: 1000000, weight: {}, input_cost_per_token: {}e-8}}\n    model_info: {{id: d{i}, max_input_tokens: 100000}}\n",
            1 + i % 3,
            1 + i % 5
        ));
    }
    y.push_str(&format!(
        "router_settings:\n  routing_strategy: {strategy}\n  num_retries: 2\n"
    ));
    y
}

fn bench(c: &mut Criterion) {
    let prices = PriceTable::builtin();
    let env = |_: &str| None;
    let mut g = c.benchmark_group("decide_observe");
    for strategy in [
        "simple-shuffle",
        "least-busy",
        "usage-based-routing-v2",
        "latency-based-routing",
        "cost-based-routing",
    ] {
        for n in [2usize, 16, 256] {
            let cfg = Arc::new(
                load_config(
                    &config(n, strategy),
                    &LoadOptions {
                        file_name: "b.yaml",
                        strict: false,
                        env: &env,
                        prices: &prices,
                    },
                )
                .unwrap()
                .config
                .routing,
            );
            let mut router = Router::new(cfg, 1);
            let input = RequestInput {
                model: "g".into(),
                tokens_in: 500,
                max_tokens: Some(200),
                ..RequestInput::default()
            };
            let report = AttemptReport::success(150_000, 500, 200);
            let mut now = InstantUs(1_000_000_000);
            g.bench_with_input(BenchmarkId::new(strategy, n), &n, |b, _| {
                b.iter(|| {
                    now = now.plus(DurationUs(1000));
                    let ev = router.receive(now, input.clone(), None);
                    let id = ev.request_id().unwrap();
                    let Poll::Attempt { .. } = router.poll(now, id) else {
                        panic!("no attempt")
                    };
                    router.attempt_finished(now.plus(DurationUs(150_000)), id, report.clone());
                    black_box(router.poll(now.plus(DurationUs(150_000)), id));
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
