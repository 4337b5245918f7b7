use super::dist::empirical_quantile;
use super::fit::Fitter;
use super::*;
use switchyard_engine::core::event::{AttemptFinished, Event, Name, RateLimitInfo};
use switchyard_engine::core::outcome::OutcomeClass;
use switchyard_engine::core::units::{InstantUs, PicoUsd};

const FLEET: &str = r#"
deployments:
  vllm:
    match: [openai/llama]
    protocol: openai
    ttft_ms: {base: 40, per_input_token: 0.02, noise: {lognormal: {sigma: 0.3}}}
    per_output_token_ms: {base: 12, noise: {quantiles: [[0, 0.8], [0.5, 1.0], [0.99, 2.0], [1, 3]]}}
    slowdown: {per_request_in_flight: 0.01, max: 3}
    output_tokens: {lognormal: {median: 150, sigma: 0.7}}
    errors:
      good: {rate: 0.01, mean_duration_s: 600}
      bad: {rate: 0.5, mean_duration_s: 60}
      statuses: {500: 3, 503: 1}
      timeout_share: 0.1
      reset_share: 0.1
    rate_limits: {rpm: 60}
    context_window: 8192
  claude:
    protocol: anthropic
    ttft_ms: {base: 600, noise: {mixture: [{weight: 0.95, lognormal: {sigma: 0.2}}, {weight: 0.05, lognormal: {sigma: 0.2}, scale: 4}]}}
    per_output_token_ms: {base: 20}
    prices: {input_per_token: "3e-6", output_per_token: "1.5e-5"}
"#;

fn fleet() -> ProviderSet {
    parse::parse(FLEET, "fleet.yaml").unwrap_or_else(|e| {
        panic!(
            "{}",
            e.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

fn ask(now_us: u64, key: u64, tokens_in: u64) -> Ask {
    Ask {
        now_us,
        key,
        tokens_in,
        tokens_out: Some(100),
        max_tokens: None,
        stream: true,
    }
}

#[test]
fn parses_and_matches_by_id_model_or_default() {
    let f = fleet();
    assert_eq!(f.models.len(), 2);
    assert_eq!(f.find("x", "openai/llama", "llama").unwrap().name, "vllm");
    assert_eq!(
        f.find("claude", "", "").unwrap().protocol,
        Protocol::Anthropic
    );
    assert!(f.find("nope", "nope", "nope").is_none());
    let m = f.find("vllm", "", "").unwrap();
    assert_eq!(m.rate_limits.rpm, Some(60));
    assert_eq!(m.errors.statuses, vec![(500, 3.0), (503, 1.0)]);
}

#[test]
fn parse_errors_point_at_the_line() {
    let text = "deployments:\n  a:\n    ttft_ms: {base: fast}\n    per_output_token_ms: {bse: 3}\n    errors: {good: {rate: 2}}\n";
    let errs = parse::parse(text, "p.yaml").unwrap_err();
    let s: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert!(
        s.iter()
            .any(|e| e.starts_with("p.yaml:3:") && e.contains("expected a number")),
        "{s:?}"
    );
    assert!(s.iter().any(|e| e.contains("did you mean `base`")), "{s:?}");
    assert!(
        s.iter().any(|e| e.contains("rate must be between 0 and 1")),
        "{s:?}"
    );
}

#[test]
fn yaml_round_trip() {
    let f = fleet();
    let text = parse::to_yaml(&f, "round trip");
    let back = parse::parse(&text, "out.yaml").unwrap_or_else(|e| panic!("{text}\n{e:?}"));
    assert_eq!(back.models.len(), f.models.len());
    for (a, b) in f.models.iter().zip(&back.models) {
        assert_eq!(a.name, b.name);
        assert_eq!(a.protocol, b.protocol);
        assert_eq!(a.errors, b.errors);
        assert_eq!(a.rate_limits, b.rate_limits);
        assert_eq!(a.context_window, b.context_window);
        for q in [0.5, 0.9] {
            let (x, y) = (a.ttft.quantile_ms(100, q), b.ttft.quantile_ms(100, q));
            if let (Some(x), Some(y)) = (x, y) {
                assert!((x - y).abs() < 1e-3 * x.max(1.0), "{x} vs {y}");
            }
        }
    }
}

#[test]
fn sampling_is_deterministic_per_seed() {
    let m = fleet().find("vllm", "", "").unwrap().clone();
    let run = |seed| {
        let mut d = DeploymentSim::new(m.clone(), seed, "vllm");
        (0..500)
            .map(|i| d.sample(&ask(i * 1_500_000, i, 200)))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn latency_quantiles_match_the_model() {
    let mut m = fleet().find("vllm", "", "").unwrap().clone();
    m.errors = ErrorModel::default();
    m.rate_limits = RateLimits::default();
    let mut d = DeploymentSim::new(m.clone(), 7, "vllm");
    let mut ttft: Vec<f64> = (0..50_000)
        .map(|i| d.sample(&ask(i, i, 1000)).ttft_us as f64 / 1000.0)
        .collect();
    ttft.sort_by(f64::total_cmp);
    for q in [0.5, 0.9, 0.99] {
        let want = m.ttft.quantile_ms(1000, q).unwrap();
        let got = empirical_quantile(&ttft, q);
        assert!(
            (got / want - 1.0).abs() < 0.03,
            "ttft q{q}: {got} vs {want}"
        );
    }
    let mut itl: Vec<f64> = (0..50_000)
        .map(|i| d.sample(&ask(i, 100_000 + i, 1000)).itl_us as f64 / 1000.0)
        .collect();
    itl.sort_by(f64::total_cmp);
    let got = empirical_quantile(&itl, 0.99);
    assert!((got - 24.0).abs() < 1.0, "itl p99 {got}");
}

#[test]
fn errors_come_in_bursts_and_average_out() {
    let mut m = fleet().find("vllm", "", "").unwrap().clone();
    m.rate_limits = RateLimits::default();
    let mut d = DeploymentSim::new(m.clone(), 3, "vllm");
    let n = 200_000u64;
    let mut errors = 0u64;
    let mut errs_in_bad = 0u64;
    let mut reqs_in_bad = 0u64;
    for i in 0..n {
        let t = i * 100_000; // one request every 100 ms, ~5.5 hours
        let s = d.sample(&ask(t, i, 100));
        let bad = d.bad_at(t);
        let is_err = s.fate != Fate::Ok;
        errors += u64::from(is_err);
        if bad {
            reqs_in_bad += 1;
            errs_in_bad += u64::from(is_err);
        }
    }
    // Stationary share of the bad state: 60 / (600 + 60).
    let bad_share = reqs_in_bad as f64 / n as f64;
    assert!(
        (bad_share - 60.0 / 660.0).abs() < 0.04,
        "bad share {bad_share}"
    );
    assert!((errs_in_bad as f64 / reqs_in_bad as f64 - 0.5).abs() < 0.02);
    let want = 0.01 * (600.0 / 660.0) + 0.5 * (60.0 / 660.0);
    let got = errors as f64 / n as f64;
    assert!((got - want).abs() < 0.02, "error rate {got} vs {want}");
}

#[test]
fn rate_limits_are_token_buckets_with_retry_after() {
    let m = fleet().find("vllm", "", "").unwrap().clone();
    let mut quiet = m.clone();
    quiet.errors = ErrorModel::default();
    let mut d = DeploymentSim::new(quiet, 1, "vllm");
    let mut limited = 0;
    // 120 requests in the first second: 60 pass, 60 are limited.
    for i in 0..120 {
        if let Fate::RateLimited {
            retry_after_ms,
            limit_requests,
            ..
        } = d.sample(&ask(i * 1000, i, 10)).fate
        {
            limited += 1;
            assert!((850..=1000).contains(&retry_after_ms), "{retry_after_ms}");
            assert_eq!(limit_requests, Some(60));
        }
    }
    assert_eq!(limited, 60);
    // A second later one request's worth has refilled.
    assert_eq!(d.sample(&ask(1_121_000, 999, 10)).fate, Fate::Ok);
    assert!(matches!(
        d.sample(&ask(1_121_001, 1000, 10)).fate,
        Fate::RateLimited { .. }
    ));
}

#[test]
fn context_window_and_real_messages() {
    let m = fleet().find("vllm", "", "").unwrap().clone();
    let mut d = DeploymentSim::new(m, 1, "vllm");
    assert_eq!(
        d.sample(&ask(0, 1, 9000)).fate,
        Fate::ContextWindow { limit: 8192 }
    );
    let msg = context_window_message(Protocol::Openai, 8192, 9000, 100);
    assert!(msg.contains("maximum context length is 8192"));
    let c = switchyard_engine::providers::classify::classify(
        400,
        &[],
        serde_json::json!({"error": {"message": msg}})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(c.class, OutcomeClass::ContextWindowExceeded);
    let msg = context_window_message(Protocol::Anthropic, 200_000, 210_000, 1);
    let c = switchyard_engine::providers::classify::classify(400, &[], serde_json::json!({"type": "error", "error": {"type": "invalid_request_error", "message": msg}}).to_string().as_bytes());
    assert_eq!(c.class, OutcomeClass::ContextWindowExceeded);
}

/// Generate outcomes from a known model, fit a model from them, compare.
#[test]
fn fit_round_trip() {
    let truth = fleet().find("vllm", "", "").unwrap().clone();
    let mut truth = truth;
    truth.rate_limits = RateLimits::default();
    truth.slowdown_per_in_flight = 0.0;
    let mut d = DeploymentSim::new(truth.clone(), 11, "vllm");
    let mut fitter = Fitter::new();
    let mut rng = switchyard_engine::core::rng::Rng::new(5);
    let n = 30_000u64;
    for i in 0..n {
        let t = i * 400_000; // 2.5 requests/s for 3.3 hours
        let tokens_in = 50 + rng.below(4000);
        let s = d.sample(&Ask {
            now_us: t,
            key: i,
            tokens_in,
            tokens_out: None,
            max_tokens: None,
            stream: true,
        });
        let (class, status) = match s.fate {
            Fate::Ok => (OutcomeClass::Success, 200),
            Fate::HttpError { status } => (OutcomeClass::ServerError, status),
            Fate::Hang => (OutcomeClass::Timeout, 0),
            Fate::Reset => (OutcomeClass::ConnectionError, 0),
            Fate::MidStream { .. } => (OutcomeClass::StreamInterrupted, 200),
            Fate::ContextWindow { .. } => (OutcomeClass::ContextWindowExceeded, 400),
            Fate::RateLimited { .. } => (OutcomeClass::RateLimited, 429),
        };
        let dur = s.duration_us().min(60_000_000);
        fitter.observe(&Event::AttemptFinished(Box::new(AttemptFinished {
            at: InstantUs(t + dur),
            id: i,
            attempt: 0,
            deployment: Name::from("vllm"),
            class,
            status,
            stream: true,
            ttft_us: Some(s.ttft_us),
            duration_us: dur,
            tokens_in,
            tokens_cache_read: 0,
            tokens_cache_creation: 0,
            tokens_out: s.tokens_out,
            cost: PicoUsd::ZERO,
            retry_after_ms: None,
            rate_limit: RateLimitInfo::default(),
            committed: false,
            message: None,
        })));
    }
    let (set, notes) = fitter.finish();
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].to_string().contains("TTFT buckets"),
        "{}",
        notes[0]
    );
    let fitted = &set.models[0];
    // TTFT quantiles per input size within 10 % (fitted buckets are wider than one size).
    for tokens_in in [300u64, 2000, 3800] {
        for q in [0.5, 0.9] {
            let want = truth.ttft.quantile_ms(tokens_in, q).unwrap();
            let got = fitted.ttft.quantile_ms(tokens_in, q).unwrap();
            assert!(
                (got / want - 1.0).abs() < 0.15,
                "ttft({tokens_in}) q{q}: fitted {got:.1} vs true {want:.1}"
            );
        }
    }
    // Per-token time p50 and p99.
    for (q, want) in [(0.5, 12.0), (0.99, 24.0)] {
        let got = fitted.per_output_token.quantile_ms(1000, q).unwrap();
        assert!((got / want - 1.0).abs() < 0.1, "itl q{q}: {got} vs {want}");
    }
    // Error rates: long-run average within 1.5 points; bursts detected.
    let long_run = |e: &ErrorModel| {
        let pg = e.good_mean_s / (e.good_mean_s + e.bad_mean_s);
        e.good_rate * pg + e.bad_rate * (1.0 - pg)
    };
    let (want, got) = (long_run(&truth.errors), long_run(&fitted.errors));
    assert!(
        (got - want).abs() < 0.015,
        "error rate fitted {got:.4} vs true {want:.4} ({:?})",
        fitted.errors
    );
    // The fit finds bursts by windows, which blurs their edges: the bad rate comes out below the
    // true 0.5 but far above the good one.
    assert!(
        fitted.errors.bad_rate > 0.25 && fitted.errors.bad_rate > 10.0 * fitted.errors.good_rate,
        "{:?}",
        fitted.errors
    );
    assert!((fitted.errors.timeout_share - 0.1).abs() < 0.04);
    // The output-length median.
    let med = fitted.output_tokens.quantile(0.5).unwrap();
    assert!((med / 150.0 - 1.0).abs() < 0.1, "{med}");
}

/// A timeout the client asked for is censored: it is not a hang of the provider.
#[test]
fn fit_leaves_out_timeouts_the_client_imposed() {
    use switchyard_engine::core::event::{
        Admission, Endpoint, Reason, RequestFinished, RequestOverrides, RequestReceived,
        RequestResult,
    };
    let fit = |client_timeout: bool| {
        let mut fitter = Fitter::new();
        for i in 0..200u64 {
            let at = InstantUs(i * 1_000_000);
            let timed_out = i % 4 == 0;
            fitter.observe(&Event::RequestReceived(std::sync::Arc::new(
                RequestReceived {
                    at,
                    id: i,
                    seed: i,
                    key_id: None,
                    model: "m".into(),
                    endpoint: Endpoint::Chat,
                    tokens_in: 100,
                    max_tokens: None,
                    stream: false,
                    tags: vec![],
                    headers: vec![],
                    user: None,
                    prompt_sha: String::new(),
                    prompt: None,
                    admission: Admission::Admitted {
                        group: Name::from("m"),
                        pinned: None,
                        reason: Reason::Primary,
                        reserved: PicoUsd::ZERO,
                    },
                    overrides: RequestOverrides {
                        timeout_us: (client_timeout && timed_out).then_some(50_000),
                        ..Default::default()
                    },
                },
            )));
            let (class, status, dur) = if timed_out {
                (OutcomeClass::Timeout, 0, 50_000)
            } else {
                (OutcomeClass::Success, 200, 400_000)
            };
            fitter.observe(&Event::AttemptFinished(Box::new(AttemptFinished {
                at: InstantUs(at.0 + dur),
                id: i,
                attempt: 0,
                deployment: Name::from("vllm"),
                class,
                status,
                stream: false,
                ttft_us: None,
                duration_us: dur,
                tokens_in: 100,
                tokens_cache_read: 0,
                tokens_cache_creation: 0,
                tokens_out: 20,
                cost: PicoUsd::ZERO,
                retry_after_ms: None,
                rate_limit: RateLimitInfo::default(),
                committed: false,
                message: None,
            })));
            fitter.observe(&Event::RequestFinished(Box::new(RequestFinished {
                at: InstantUs(at.0 + dur),
                id: i,
                result: RequestResult::Ok,
                latency_us: dur,
                ttft_us: None,
                cost: PicoUsd::ZERO,
                n_attempts: 1,
                n_fallbacks: 0,
                deployment: Some(Name::from("vllm")),
                tokens_in: 100,
                tokens_out: 20,
            })));
        }
        let (set, notes) = fitter.finish();
        (set.models[0].errors.clone(), notes[0].attempts)
    };
    let (errors, attempts) = fit(true);
    assert_eq!(attempts, 200);
    assert_eq!(
        (errors.good_rate, errors.bad_rate, errors.timeout_share),
        (0.0, 0.0, 0.0),
        "{errors:?}"
    );
    // The same timeouts under the configured timeout are the provider's.
    let (errors, _) = fit(false);
    assert!(errors.timeout_share > 0.9, "{errors:?}");
}
