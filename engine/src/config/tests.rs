use super::*;
use crate::cost::PriceTable;

fn load_with(text: &str, env: &[(&str, &str)], strict: bool) -> Result<Loaded, Vec<Diagnostic>> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let prices = PriceTable::builtin();
    load_config(
        text,
        &LoadOptions {
            file_name: "test.yaml",
            strict,
            env: &lookup,
            prices: &prices,
        },
    )
}

fn render(diags: &[Diagnostic]) -> String {
    diags.iter().map(|d| format!("{d}\n")).collect()
}

const SEED: &str = include_str!("../../../traces/litellm_config.yaml");

#[test]
fn seed_config_loads_unchanged() {
    let loaded = load_with(SEED, &[("ANTHROPIC_API_KEY", "sk-ant-test")], false).unwrap();
    assert!(loaded.warnings.is_empty(), "{}", render(&loaded.warnings));
    let r = &loaded.config.routing;
    assert_eq!(r.deployments.len(), 2);
    let vllm = &r.deployments[0];
    assert_eq!(vllm.model_group, "production-llm");
    assert_eq!(vllm.provider, "openai");
    assert_eq!(vllm.upstream_model, "Meta-Llama-3.1-8B-Instruct");
    assert_eq!(vllm.api_base, "http://your-vllm:8000/v1");
    assert_eq!(vllm.prices.source, "self_hosted");
    let claude = &r.deployments[1];
    assert_eq!(claude.protocol, Protocol::Anthropic);
    assert_eq!(claude.api_key, Secret::Value("sk-ant-test".into()));
    assert_eq!(claude.prices.input_per_token, PicoUsd(3_000_000));
    assert_eq!(claude.max_input_tokens, Some(200_000));
    assert_eq!(
        r.fallbacks["production-llm"],
        vec!["production-llm-fallback".to_string()]
    );
    assert_eq!(
        r.context_window_fallbacks["production-llm"],
        vec!["production-llm-fallback".to_string()]
    );
    assert_eq!(r.num_retries, 2);
    assert_eq!(r.timeout, DurationUs::from_secs(30));
    assert!(r.drop_params);
    // Secrets never show in the normalized form.
    let json = loaded.config.normalized_json().to_string();
    assert!(!json.contains("sk-ant-test"), "{json}");
    assert!(!json.contains("dummy"), "{json}");
}

#[test]
fn missing_env_is_a_warning_and_makes_the_deployment_unusable() {
    let loaded = load_with(SEED, &[], false).unwrap();
    expect_test::expect![[r#"
        test.yaml:13:16: warning: model_list[1].litellm_params.api_key: environment variable ANTHROPIC_API_KEY is not set; calls that need it will fail
    "#]]
    .assert_eq(&render(&loaded.warnings));
    let d = &loaded.config.routing.deployments[1];
    assert!(d.unusable.as_deref().unwrap().contains("ANTHROPIC_API_KEY"));
    // --strict turns the warning into an error.
    let errs = load_with(SEED, &[], true).unwrap_err();
    assert!(errs.iter().all(|d| d.severity == Severity::Error));
}

#[test]
fn every_mistake_is_reported_at_once_with_positions() {
    let text = r#"model_list:
  - model_name: a
    litellm_params:
      model: openai/gpt-4o
      rpm: lots
      weight: -1
  - model_name: b
    litellm_params:
      model: bedrok/claude
  - litellm_params:
      model: hosted_vllm/llama
router_settings:
  routing_strategy: least-bussy
  num_retrys: 3
  fallbacks:
    - a: [missing-group]
  timeout: soon
litellm_setings:
  drop_params: true
"#;
    let errs = load_with(text, &[("OPENAI_API_KEY", "sk-x")], false).unwrap_err();
    expect_test::expect![[r#"
        test.yaml:5:12: error: model_list[0].litellm_params.rpm: expected a whole number, got `lots`
        test.yaml:6:15: error: model_list[0].litellm_params.weight: expected a number, got `-1`
        test.yaml:9:14: error: model_list[1].litellm_params.model: provider `bedrok/` is not supported (supported: openai/, text-completion-openai/, hosted_vllm/, anthropic/, groq/, together_ai/, deepseek/, fireworks_ai/, openrouter/, mistral/, xai/, perplexity/).
        test.yaml:10:5: error: model_list[2].model_name: missing `model_name`
        test.yaml:11:7: error: model_list[2].litellm_params.api_base: `hosted_vllm/` needs an `api_base` (the server's URL, such as http://host:8000/v1)
        test.yaml:13:21: error: router_settings.routing_strategy: unknown strategy `least-bussy` (one of: simple-shuffle, least-busy, usage-based-routing, usage-based-routing-v2, latency-based-routing, cost-based-routing); did you mean `least-busy`?
        test.yaml:14:3: warning: router_settings.num_retrys: unknown key; did you mean `num_retries`?
        test.yaml:16:10: error: router_settings.fallbacks[0].a: fallback to unknown model group `missing-group`
        test.yaml:17:12: error: router_settings.timeout: expected a number of seconds, got `soon`
        test.yaml:18:1: warning: litellm_setings: unknown key; did you mean `litellm_settings`?
    "#]]
    .assert_eq(&render(&errs));
}

#[test]
fn yaml_syntax_error_has_a_position() {
    let errs = load_with("model_list:\n  - model_name: [a\n", &[], false).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].message.starts_with("invalid YAML"),
        "{}",
        render(&errs)
    );
    assert!(errs[0].line >= 2, "{}", render(&errs));
}

#[test]
fn full_feature_config() {
    let text = r#"
model_list:
  - model_name: chat
    litellm_params:
      model: hosted_vllm/llama
      api_base: http://127.0.0.1:8000/v1
      rpm: 100
      weight: 0.7
      order: 1
      tags: [free, default]
      input_cost_per_token: 1.5e-7
      output_cost_per_token: "6e-7"
      temperature: 0.2
      extra_body: {top_k: 5}
    model_info:
      id: vllm-a
      max_input_tokens: 8192
  - model_name: chat
    litellm_params:
      model: openai/gpt-4o-mini
      api_key: os.environ/OAI
      weight: 0.3
      order: 2
      tags: [paid]
      timeout: 12.5
      stream_timeout: 4
      num_retries: 1
      cooldown_time: 9
  - model_name: frontier
    litellm_params:
      model: anthropic/claude-3-5-sonnet-20241022
      api_key: sk-ant-x
router_settings:
  routing_strategy: latency-based-routing
  routing_strategy_args: {ttl: 60, lowest_latency_buffer: 0.5}
  num_retries: 3
  timeout: 20
  fallbacks: [{chat: [frontier]}]
  context_window_fallbacks: [{chat: [frontier]}]
  content_policy_fallbacks: [{chat: [frontier]}]
  default_fallbacks: [frontier]
  max_fallbacks: 2
  allowed_fails: 3
  allowed_fails_policy: {RateLimitErrorAllowedFails: 10, TimeoutErrorAllowedFails: 2}
  cooldown_time: 30
  disable_cooldowns: false
  retry_policy: {BadRequestErrorRetries: 0, RateLimitErrorRetries: 5}
  model_group_retry_policy: {frontier: {TimeoutErrorRetries: 0}}
  retry_after: 1
  enable_pre_call_checks: true
  model_group_alias: {gpt-4: chat, secret-frontier: {model: frontier, hidden: true}}
  enable_tag_filtering: true
litellm_settings:
  drop_params: true
  set_verbose: false
  request_timeout: 99
general_settings:
  master_key: sk-master
environment_variables:
  OAI: sk-from-config
switchyard_settings:
  keys:
    - key: sk-team-a
      key_alias: team-a
      models: [chat, gpt-4]
      aliases: {smart: frontier}
      rpm_limit: 10
      tpm_limit: 1000
      max_parallel_requests: 2
      max_budget: 1.5
      tags: [free]
  escalations:
    - {header: x-confidence, equals: low, from: chat, to: frontier}
  sticky: {by: user}
  exploration_rate: 0.05
  wait_for_cooldown: 2.5
"#;
    let loaded = load_with(text, &[], false).unwrap();
    let w = render(&loaded.warnings);
    assert!(
        w.contains("sticky assignment applies to the simple-shuffle strategy only"),
        "{w}"
    );
    let c = &loaded.config;
    let r = &c.routing;
    assert_eq!(r.strategy, Strategy::LatencyBasedRouting);
    assert_eq!(r.strategy_args.ttl, DurationUs::from_secs(60));
    assert_eq!(r.strategy_args.lowest_latency_buffer_milli, 500);
    let a = &r.deployments[0];
    assert_eq!(a.id, "vllm-a");
    assert_eq!(a.weight_milli, Some(700));
    assert_eq!(a.prices.input_per_token, PicoUsd(150_000));
    assert_eq!(a.prices.output_per_token, PicoUsd(600_000));
    assert_eq!(a.prices.source, "litellm_params");
    assert_eq!(a.extra_params["temperature"], serde_json::json!(0.2));
    assert_eq!(
        a.extra_params["extra_body"],
        serde_json::json!({"top_k": 5})
    );
    assert!(!a.extra_params.contains_key("rpm"));
    assert!(!a.extra_params.contains_key("order"));
    let b = &r.deployments[1];
    assert_eq!(b.api_key, Secret::Value("sk-from-config".into()));
    assert_eq!(b.timeout, Some(DurationUs(12_500_000)));
    assert_eq!(b.cooldown_time, Some(DurationUs::from_secs(9)));
    assert_eq!(b.prices.source, "price_table");
    assert_eq!(r.groups["chat"], vec![0, 1]);
    assert_eq!(r.timeout, DurationUs::from_secs(20));
    assert_eq!(r.allowed_fails_policy.rate_limit, Some(10));
    assert_eq!(r.retry_policy.rate_limit, Some(5));
    assert_eq!(r.model_group_retry_policy["frontier"].timeout, Some(0));
    assert_eq!(r.aliases["secret-frontier"], "frontier");
    assert_eq!(r.hidden_aliases, vec!["secret-frontier".to_string()]);
    assert_eq!(r.keys.len(), 1);
    let k = &r.keys[0];
    assert_eq!(k.alias.as_deref(), Some("team-a"));
    assert_eq!(k.max_budget, Some(PicoUsd(1_500_000_000_000)));
    assert_ne!(k.hash_hex, "sk-team-a");
    assert_eq!(r.escalations[0].to, "frontier");
    assert_eq!(r.sticky, Some(StickyBy::User));
    assert_eq!(r.exploration_ppm, 50_000);
    assert_eq!(r.wait_for_cooldown, DurationUs(2_500_000));
    assert_eq!(r.routing_headers, vec!["x-confidence".to_string()]);
    assert_eq!(c.server.master_key, Secret::Value("sk-master".into()));
    let json = c.normalized_json().to_string();
    for secret in ["sk-master", "sk-team-a", "sk-from-config", "sk-ant-x"] {
        assert!(!json.contains(secret), "{secret} leaked into {json}");
    }
}

#[test]
fn derived_ids_are_stable_and_unique() {
    let text = "model_list:\n  - model_name: a\n    litellm_params: {model: hosted_vllm/x, api_base: 'http://h:1/v1'}\n  - model_name: a\n    litellm_params: {model: hosted_vllm/x, api_base: 'http://h:1/v1'}\n";
    let c1 = load_with(text, &[], false).unwrap().config;
    let c2 = load_with(text, &[], false).unwrap().config;
    assert_eq!(c1.routing.deployments[0].id, c2.routing.deployments[0].id);
    assert_ne!(c1.routing.deployments[0].id, c1.routing.deployments[1].id);
    assert_eq!(c1.hash_hex, c2.hash_hex);
}

#[test]
fn duplicate_params_are_errors() {
    let errs = load_with("model_list:\n  - model_name: a\n    litellm_params:\n      model: hosted_vllm/x\n      api_base: http://h/v1\n      rpm: 1\n      rpm: 2\n", &[], false).unwrap_err();
    assert!(
        render(&errs)
            .contains("test.yaml:7:7: error: model_list[0].litellm_params.rpm: duplicate key"),
        "{}",
        render(&errs)
    );
}
