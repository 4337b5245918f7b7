//! Validation: the YAML tree in, a typed [`Config`] out, every problem reported at once.
//!
//! Pure: the caller passes the file's text, its name (for messages), an environment lookup and the
//! price table. Unknown keys are warnings with the closest known key; `strict` turns warnings into
//! errors.

use super::yaml::{self, Node, Pos, Value};
use super::*;
use crate::core::units::{parse_decimal_scaled, DurationUs, PicoUsd};
use crate::cost::PriceTable;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

pub struct LoadOptions<'a> {
    /// Shown in diagnostics.
    pub file_name: &'a str,
    pub strict: bool,
    /// Environment lookup for `os.environ/NAME` (the config's `environment_variables` are consulted
    /// first, as LiteLLM sets them into its environment).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub prices: &'a PriceTable,
}

#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// Loads and validates a config. `Err` holds every diagnostic (errors and warnings), in file order.
pub fn load_config(text: &str, opts: &LoadOptions) -> Result<Loaded, Vec<Diagnostic>> {
    let mut cx = Ctx {
        file: opts.file_name.to_string(),
        diags: Vec::new(),
        env: opts.env,
        overlay: BTreeMap::new(),
    };
    let root = match yaml::parse(text) {
        Ok(n) => n,
        Err(e) => {
            cx.error(e.pos, "", format!("invalid YAML: {}", e.message));
            return Err(cx.diags);
        }
    };
    let built = build(&mut cx, &root, opts.prices);
    let mut diags = cx.diags;
    diags.sort_by(|a, b| (a.line, a.col, &a.path).cmp(&(b.line, b.col, &b.path)));
    if opts.strict {
        for d in &mut diags {
            d.severity = Severity::Error;
        }
    }
    let has_error = diags.iter().any(|d| d.severity == Severity::Error);
    match built {
        Some(config) if !has_error => Ok(Loaded {
            config,
            warnings: diags,
        }),
        _ => {
            if !has_error {
                diags.push(Diagnostic {
                    severity: Severity::Error,
                    file: opts.file_name.to_string(),
                    line: 1,
                    col: 1,
                    path: String::new(),
                    message: "config is not valid".into(),
                });
            }
            Err(diags)
        }
    }
}

struct Ctx<'a> {
    file: String,
    diags: Vec<Diagnostic>,
    env: &'a dyn Fn(&str) -> Option<String>,
    overlay: BTreeMap<String, String>,
}

const ENV_PREFIX: &str = "os.environ/";

enum Str {
    Value(String),
    MissingEnv(String),
}

impl Ctx<'_> {
    fn push(&mut self, severity: Severity, pos: Pos, path: &str, message: String) {
        self.diags.push(Diagnostic {
            severity,
            file: self.file.clone(),
            line: pos.line,
            col: pos.col,
            path: path.to_string(),
            message,
        });
    }

    fn error(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.push(Severity::Error, pos, path, message.into());
    }

    fn warn(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.push(Severity::Warning, pos, path, message.into());
    }

    fn env_lookup(&self, name: &str) -> Option<String> {
        self.overlay.get(name).cloned().or_else(|| (self.env)(name))
    }

    /// A scalar as a string, with `os.environ/NAME` resolved.
    fn raw_str(&mut self, n: &Node, path: &str) -> Option<Str> {
        match &n.value {
            Value::Scalar { text, .. } if !n.is_null() => {
                if let Some(var) = text.strip_prefix(ENV_PREFIX) {
                    match self.env_lookup(var) {
                        Some(v) => Some(Str::Value(v)),
                        None => Some(Str::MissingEnv(var.to_string())),
                    }
                } else {
                    Some(Str::Value(text.clone()))
                }
            }
            _ => {
                self.error(
                    n.pos,
                    path,
                    format!("expected a string, got {}", n.kind_name()),
                );
                None
            }
        }
    }

    fn string(&mut self, n: &Node, path: &str) -> Option<String> {
        match self.raw_str(n, path)? {
            Str::Value(v) => Some(v),
            Str::MissingEnv(var) => {
                self.warn(
                    n.pos,
                    path,
                    format!("environment variable {var} is not set"),
                );
                None
            }
        }
    }

    fn secret(&mut self, n: &Node, path: &str) -> Secret {
        match self.raw_str(n, path) {
            Some(Str::Value(v)) => Secret::Value(v),
            Some(Str::MissingEnv(var)) => {
                self.warn(
                    n.pos,
                    path,
                    format!("environment variable {var} is not set; calls that need it will fail"),
                );
                Secret::MissingEnv(var)
            }
            None => Secret::None,
        }
    }

    /// A number given as a scalar (or an `os.environ/` string holding one), scaled by 10^scale.
    fn decimal(&mut self, n: &Node, path: &str, scale: i32, what: &str) -> Option<u64> {
        if n.is_null() {
            return None;
        }
        if n.as_bool().is_some() || !matches!(n.value, Value::Scalar { .. }) {
            self.error(
                n.pos,
                path,
                format!("expected {what}, got {}", n.kind_name()),
            );
            return None;
        }
        let text = match self.raw_str(n, path)? {
            Str::Value(v) => v,
            Str::MissingEnv(var) => {
                self.warn(
                    n.pos,
                    path,
                    format!("environment variable {var} is not set; ignoring this key"),
                );
                return None;
            }
        };
        match parse_decimal_scaled(&text, scale) {
            Ok(v) => Some(v),
            Err(_) => {
                self.error(n.pos, path, format!("expected {what}, got `{text}`"));
                None
            }
        }
    }

    fn u64(&mut self, n: &Node, path: &str) -> Option<u64> {
        let v = self.decimal(n, path, 3, "a whole number")?;
        if v % 1000 != 0 {
            self.error(n.pos, path, "expected a whole number");
            return None;
        }
        Some(v / 1000)
    }

    fn u32(&mut self, n: &Node, path: &str) -> Option<u32> {
        let v = self.u64(n, path)?;
        match u32::try_from(v) {
            Ok(v) => Some(v),
            Err(_) => {
                self.error(n.pos, path, "number is too large");
                None
            }
        }
    }

    fn seconds(&mut self, n: &Node, path: &str) -> Option<DurationUs> {
        self.decimal(n, path, 6, "a number of seconds")
            .map(DurationUs)
    }

    fn usd(&mut self, n: &Node, path: &str) -> Option<PicoUsd> {
        self.decimal(n, path, 12, "a price in USD").map(PicoUsd)
    }

    fn milli(&mut self, n: &Node, path: &str) -> Option<u64> {
        self.decimal(n, path, 3, "a number")
    }

    /// A fraction in [0, 1] as parts per million.
    fn fraction_ppm(&mut self, n: &Node, path: &str) -> Option<u32> {
        let v = self.decimal(n, path, 6, "a fraction between 0 and 1")?;
        if v > 1_000_000 {
            self.error(n.pos, path, "expected a fraction between 0 and 1");
            return None;
        }
        Some(v as u32)
    }

    fn bool(&mut self, n: &Node, path: &str) -> Option<bool> {
        if n.is_null() {
            return None;
        }
        match n.as_bool() {
            Some(b) => Some(b),
            None => {
                // `os.environ/FLAG` holding true/false.
                if let Some(Str::Value(v)) = n
                    .as_str()
                    .filter(|t| t.starts_with(ENV_PREFIX))
                    .and_then(|_| self.raw_str(n, path))
                {
                    match v.to_ascii_lowercase().as_str() {
                        "true" | "1" | "yes" => return Some(true),
                        "false" | "0" | "no" => return Some(false),
                        _ => {}
                    }
                }
                self.error(
                    n.pos,
                    path,
                    format!("expected true or false, got {}", n.kind_name()),
                );
                None
            }
        }
    }

    fn map<'n>(&mut self, n: &'n Node, path: &str) -> Option<&'n [(Node, Node)]> {
        if n.is_null() {
            return Some(&[]);
        }
        match n.as_map() {
            Some(m) => Some(m),
            None => {
                self.error(
                    n.pos,
                    path,
                    format!("expected a mapping, got {}", n.kind_name()),
                );
                None
            }
        }
    }

    fn seq<'n>(&mut self, n: &'n Node, path: &str) -> Option<&'n [Node]> {
        if n.is_null() {
            return Some(&[]);
        }
        match n.as_seq() {
            Some(s) => Some(s),
            None => {
                self.error(
                    n.pos,
                    path,
                    format!("expected a list, got {}", n.kind_name()),
                );
                None
            }
        }
    }

    /// A list of strings; a single string is accepted as a one-element list.
    fn str_list(&mut self, n: &Node, path: &str) -> Vec<String> {
        if n.is_null() {
            return Vec::new();
        }
        if let Value::Scalar { .. } = n.value {
            return self.string(n, path).into_iter().collect();
        }
        let Some(items) = self.seq(n, path) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, it) in items.iter().enumerate() {
            if let Some(s) = self.string(it, &format!("{path}[{i}]")) {
                out.push(s);
            }
        }
        out
    }

    /// Reports duplicate keys, unknown keys (with a suggestion) and known-but-unused keys.
    fn check_keys(
        &mut self,
        entries: &[(Node, Node)],
        path: &str,
        known: &[&str],
        ignored: &[&str],
    ) {
        let mut seen = BTreeSet::new();
        for (k, _) in entries {
            let Some(name) = k.as_str() else {
                self.error(k.pos, path, "mapping keys must be strings");
                continue;
            };
            let kp = join(path, name);
            if !seen.insert(name.to_string()) {
                self.error(k.pos, &kp, "duplicate key");
                continue;
            }
            if known.contains(&name) {
                continue;
            }
            if ignored.contains(&name) {
                self.warn(
                    k.pos,
                    &kp,
                    "a LiteLLM setting that Switchyard does not use; ignored",
                );
                continue;
            }
            match closest(name, known) {
                Some(s) => self.warn(k.pos, &kp, format!("unknown key; did you mean `{s}`?")),
                None => self.warn(k.pos, &kp, "unknown key; ignored"),
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn get<'n>(entries: &'n [(Node, Node)], key: &str) -> Option<&'n Node> {
    entries
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// Levenshtein distance, bounded inputs (config keys).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest known key, if it is close enough to be a plausible typo.
pub fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let limit = (name.len() / 3).max(2);
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, k)| k)
}

const TOP_KEYS: &[&str] = &[
    "model_list",
    "router_settings",
    "litellm_settings",
    "general_settings",
    "environment_variables",
    "switchyard_settings",
];
const TOP_IGNORED: &[&str] = &[
    "callback_settings",
    "guardrails",
    "credential_list",
    "mcp_servers",
    "files_settings",
    "assistant_settings",
    "finetune_settings",
    "vector_store_registry",
    "include",
    "search_tools",
    "prompts",
];

const ROUTER_KEYS: &[&str] = &[
    "routing_strategy",
    "routing_strategy_args",
    "num_retries",
    "timeout",
    "stream_timeout",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "default_fallbacks",
    "max_fallbacks",
    "allowed_fails",
    "allowed_fails_policy",
    "cooldown_time",
    "disable_cooldowns",
    "retry_policy",
    "model_group_retry_policy",
    "retry_after",
    "enable_pre_call_checks",
    "model_group_alias",
    "enable_tag_filtering",
];
const ROUTER_IGNORED: &[&str] = &[
    "redis_host",
    "redis_port",
    "redis_password",
    "redis_url",
    "cache_responses",
    "cache_kwargs",
    "set_verbose",
    "debug_level",
    "client_ttl",
    "polling_interval",
    "alerting_config",
    "router_general_settings",
    "provider_budget_config",
    "optional_pre_call_checks",
    "ignore_invalid_deployments",
    "deployment_affinity_ttl_seconds",
];

const LITELLM_KEYS: &[&str] = &[
    "drop_params",
    "set_verbose",
    "num_retries",
    "request_timeout",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "default_fallbacks",
    "allowed_fails",
    "cooldown_time",
    "json_logs",
];
const LITELLM_IGNORED: &[&str] = &[
    "success_callback",
    "failure_callback",
    "callbacks",
    "service_callback",
    "cache",
    "cache_params",
    "telemetry",
    "turn_off_message_logging",
    "redact_user_api_key_info",
    "modify_params",
    "enable_preview_features",
    "max_budget",
    "budget_duration",
    "default_team_settings",
    "max_internal_user_budget",
    "internal_user_budget_duration",
    "upperbound_key_generate_params",
    "default_key_generate_params",
    "force_ipv4",
    "ssl_verify",
    "disable_end_user_cost_tracking",
    "return_response_headers",
    "log_raw_request_response",
    "tag_budget_config",
    "key_generation_settings",
    "default_internal_user_params",
    "context_window_fallback_dict",
    "drop_params_for",
    "extra_spend_tag_headers",
];

const GENERAL_KEYS: &[&str] = &[
    "master_key",
    "forward_client_headers_to_llm_api",
    "max_request_size_mb",
    "background_health_checks",
];
const GENERAL_IGNORED: &[&str] = &[
    "database_url",
    "database_connection_pool_limit",
    "database_connection_timeout",
    "store_model_in_db",
    "store_prompts_in_spend_logs",
    "disable_spend_logs",
    "disable_master_key_return",
    "allow_requests_on_db_unavailable",
    "alerting",
    "alerting_threshold",
    "alert_types",
    "alert_to_webhook_url",
    "proxy_batch_write_at",
    "health_check_interval",
    "health_check_details",
    "use_redis_transaction_buffer",
    "custom_auth",
    "enable_jwt_auth",
    "litellm_jwtauth",
    "ui_access_mode",
    "allowed_routes",
    "admin_only_routes",
    "public_routes",
    "maximum_spend_logs_retention_period",
    "disable_reset_budget",
    "max_response_size_mb",
    "infer_model_from_keys",
    "disable_retry_on_max_parallel_request_limit_error",
    "user_header_name",
    "pass_through_endpoints",
    "forward_openai_org_id",
    "enforce_user_param",
];

const SWITCHYARD_KEYS: &[&str] = &[
    "keys",
    "escalations",
    "sticky",
    "exploration_rate",
    "wait_for_cooldown",
    "routing_headers",
    "store_prompts",
    "graceful_shutdown_timeout",
    "default_output_tokens_estimate",
];

/// `litellm_params` keys that steer routing, pricing or the connection: never sent in a body.
const PARAM_ROUTING_KEYS: &[&str] = &[
    "model",
    "api_base",
    "base_url",
    "api_key",
    "rpm",
    "tpm",
    "timeout",
    "stream_timeout",
    "max_retries",
    "num_retries",
    "weight",
    "order",
    "tags",
    "cooldown_time",
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "drop_params",
    "custom_llm_provider",
    "max_parallel_requests",
    "api_version",
    "organization",
    "use_in_pass_through",
    "merge_reasoning_content_in_choices",
    "region_name",
];

const MODEL_INFO_KEYS: &[&str] = &[
    "id",
    "max_input_tokens",
    "max_output_tokens",
    "max_tokens",
    "base_model",
    "mode",
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
];

/// Providers Switchyard can call: (prefix, protocol, default api_base, default key variable).
const PROVIDERS: &[(&str, Protocol, Option<&str>, Option<&str>)] = &[
    (
        "openai",
        Protocol::Openai,
        Some("https://api.openai.com/v1"),
        Some("OPENAI_API_KEY"),
    ),
    (
        "text-completion-openai",
        Protocol::Openai,
        Some("https://api.openai.com/v1"),
        Some("OPENAI_API_KEY"),
    ),
    (
        "hosted_vllm",
        Protocol::Openai,
        None,
        Some("HOSTED_VLLM_API_KEY"),
    ),
    (
        "anthropic",
        Protocol::Anthropic,
        Some("https://api.anthropic.com"),
        Some("ANTHROPIC_API_KEY"),
    ),
    (
        "groq",
        Protocol::Openai,
        Some("https://api.groq.com/openai/v1"),
        Some("GROQ_API_KEY"),
    ),
    (
        "together_ai",
        Protocol::Openai,
        Some("https://api.together.xyz/v1"),
        Some("TOGETHERAI_API_KEY"),
    ),
    (
        "deepseek",
        Protocol::Openai,
        Some("https://api.deepseek.com/v1"),
        Some("DEEPSEEK_API_KEY"),
    ),
    (
        "fireworks_ai",
        Protocol::Openai,
        Some("https://api.fireworks.ai/inference/v1"),
        Some("FIREWORKS_AI_API_KEY"),
    ),
    (
        "openrouter",
        Protocol::Openai,
        Some("https://openrouter.ai/api/v1"),
        Some("OPENROUTER_API_KEY"),
    ),
    (
        "mistral",
        Protocol::Openai,
        Some("https://api.mistral.ai/v1"),
        Some("MISTRAL_API_KEY"),
    ),
    (
        "xai",
        Protocol::Openai,
        Some("https://api.x.ai/v1"),
        Some("XAI_API_KEY"),
    ),
    (
        "perplexity",
        Protocol::Openai,
        Some("https://api.perplexity.ai"),
        Some("PERPLEXITYAI_API_KEY"),
    ),
];

/// Providers whose keys are optional (self-hosted servers often run without auth).
const KEY_OPTIONAL: &[&str] = &["hosted_vllm"];

fn build(cx: &mut Ctx, root: &Node, prices: &PriceTable) -> Option<Config> {
    if root.is_null() {
        cx.error(
            root.pos,
            "",
            "the config is empty; expected a mapping with `model_list`",
        );
        return None;
    }
    let top = cx.map(root, "")?;
    cx.check_keys(top, "", TOP_KEYS, TOP_IGNORED);

    // environment_variables first: LiteLLM puts them into the environment before reading the rest.
    if let Some(ev) = get(top, "environment_variables") {
        if let Some(m) = cx.map(ev, "environment_variables") {
            for (k, v) in m {
                let Some(name) = k.as_str() else { continue };
                let p = join("environment_variables", name);
                if let Some(val) = cx.string(v, &p) {
                    cx.overlay.insert(name.to_string(), val);
                }
            }
        }
    }

    let empty: &[(Node, Node)] = &[];
    let router = get(top, "router_settings")
        .and_then(|n| cx.map(n, "router_settings"))
        .unwrap_or(empty);
    cx.check_keys(router, "router_settings", ROUTER_KEYS, ROUTER_IGNORED);
    let lls = get(top, "litellm_settings")
        .and_then(|n| cx.map(n, "litellm_settings"))
        .unwrap_or(empty);
    cx.check_keys(lls, "litellm_settings", LITELLM_KEYS, LITELLM_IGNORED);
    let general = get(top, "general_settings")
        .and_then(|n| cx.map(n, "general_settings"))
        .unwrap_or(empty);
    cx.check_keys(general, "general_settings", GENERAL_KEYS, GENERAL_IGNORED);
    let sw = get(top, "switchyard_settings")
        .and_then(|n| cx.map(n, "switchyard_settings"))
        .unwrap_or(empty);
    cx.check_keys(sw, "switchyard_settings", SWITCHYARD_KEYS, &[]);

    // A router_settings key wins over the same litellm_settings key.
    let setting = |key: &str| -> Option<(&Node, String)> {
        get(router, key)
            .map(|n| (n, join("router_settings", key)))
            .or_else(|| get(lls, key).map(|n| (n, join("litellm_settings", key))))
    };

    let drop_params = match get(lls, "drop_params") {
        Some(n) => cx.bool(n, "litellm_settings.drop_params").unwrap_or(false),
        None => false,
    };
    if let Some(n) = get(lls, "set_verbose") {
        cx.bool(n, "litellm_settings.set_verbose");
    }

    // --- model_list ---
    let mut deployments: Vec<Deployment> = Vec::new();
    let mut id_pos: BTreeMap<String, Pos> = BTreeMap::new();
    match get(top, "model_list") {
        None => cx.warn(
            root.pos,
            "model_list",
            "no `model_list`: there is nothing to route to",
        ),
        Some(ml) => {
            if let Some(items) = cx.seq(ml, "model_list") {
                if items.is_empty() {
                    cx.warn(
                        ml.pos,
                        "model_list",
                        "`model_list` is empty: there is nothing to route to",
                    );
                }
                for (i, item) in items.iter().enumerate() {
                    let path = format!("model_list[{i}]");
                    if let Some(d) = deployment(cx, item, &path, prices) {
                        let explicit = item
                            .as_map()
                            .and_then(|m| get(m, "model_info"))
                            .and_then(|n| n.as_map())
                            .is_some_and(|mi| get(mi, "id").is_some());
                        if !explicit {
                            deployments.push(d);
                            continue;
                        }
                        if let Some(prev) = id_pos.get(&d.id) {
                            cx.error(
                                item.pos,
                                &join(&path, "model_info.id"),
                                format!(
                                    "duplicate deployment id `{}` (first at line {})",
                                    d.id, prev.line
                                ),
                            );
                        }
                        id_pos.insert(d.id.clone(), item.pos);
                        deployments.push(d);
                    }
                }
            }
        }
    }
    // Derived ids are hashes of group, model and api_base; disambiguate exact duplicates.
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for d in deployments.iter_mut() {
        let c = counts.entry(d.id.clone()).or_insert(0);
        *c += 1;
        if *c > 1 {
            d.id = format!("{}-{}", d.id, c);
        }
    }

    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, d) in deployments.iter().enumerate() {
        groups.entry(d.model_group.clone()).or_default().push(i);
    }
    let deployment_ids: BTreeSet<String> = deployments.iter().map(|d| d.id.clone()).collect();

    // --- router settings ---
    let strategy = match get(router, "routing_strategy") {
        None => Strategy::SimpleShuffle,
        Some(n) => match cx.string(n, "router_settings.routing_strategy") {
            Some(s) => match Strategy::parse(&s) {
                Some(st) => st,
                None => {
                    let hint = closest(&s, &Strategy::NAMES)
                        .map(|c| format!("; did you mean `{c}`?"))
                        .unwrap_or_default();
                    cx.error(
                        n.pos,
                        "router_settings.routing_strategy",
                        format!(
                            "unknown strategy `{s}` (one of: {}){hint}",
                            Strategy::NAMES.join(", ")
                        ),
                    );
                    Strategy::SimpleShuffle
                }
            },
            None => Strategy::SimpleShuffle,
        },
    };
    let mut strategy_args = StrategyArgs::default();
    if let Some(n) = get(router, "routing_strategy_args") {
        let p = "router_settings.routing_strategy_args";
        if let Some(m) = cx.map(n, p) {
            cx.check_keys(
                m,
                p,
                &["ttl", "lowest_latency_buffer", "max_latency_list_size"],
                &[],
            );
            if let Some(v) = get(m, "ttl").and_then(|v| cx.seconds(v, &join(p, "ttl"))) {
                strategy_args.ttl = v;
            }
            if let Some(v) = get(m, "lowest_latency_buffer")
                .and_then(|v| cx.milli(v, &join(p, "lowest_latency_buffer")))
            {
                strategy_args.lowest_latency_buffer_milli = v;
            }
            if let Some(v) = get(m, "max_latency_list_size")
                .and_then(|v| cx.u64(v, &join(p, "max_latency_list_size")))
            {
                strategy_args.max_latency_list_size = (v as usize).clamp(1, 1000);
            }
        }
    }

    let num_retries = setting("num_retries")
        .and_then(|(n, p)| cx.u32(n, &p))
        .unwrap_or(0);
    let timeout = get(router, "timeout")
        .and_then(|n| cx.seconds(n, "router_settings.timeout"))
        .or_else(|| {
            get(lls, "request_timeout")
                .and_then(|n| cx.seconds(n, "litellm_settings.request_timeout"))
        })
        .unwrap_or(DurationUs::from_secs(600));
    let stream_timeout =
        get(router, "stream_timeout").and_then(|n| cx.seconds(n, "router_settings.stream_timeout"));

    let alias_pairs = get(router, "model_group_alias")
        .map(|n| aliases(cx, n, "router_settings.model_group_alias"));
    let (aliases_map, hidden_aliases) = alias_pairs.unwrap_or_default();

    let known_target = |name: &str| groups.contains_key(name) || aliases_map.contains_key(name);

    let fallback_map = |cx: &mut Ctx, key: &str| -> BTreeMap<String, Vec<String>> {
        match setting(key) {
            None => BTreeMap::new(),
            Some((n, p)) => fallbacks(cx, n, &p, &|s: &str| known_target(s)),
        }
    };
    let fallbacks_m = fallback_map(cx, "fallbacks");
    let cw_fallbacks = fallback_map(cx, "context_window_fallbacks");
    let cp_fallbacks = fallback_map(cx, "content_policy_fallbacks");
    let default_fallbacks = match setting("default_fallbacks") {
        None => Vec::new(),
        Some((n, p)) => {
            let list = cx.str_list(n, &p);
            for g in &list {
                if !known_target(g) {
                    cx.error(n.pos, &p, format!("unknown model group `{g}`"));
                }
            }
            list
        }
    };
    let max_fallbacks = get(router, "max_fallbacks")
        .and_then(|n| cx.u32(n, "router_settings.max_fallbacks"))
        .unwrap_or(5);
    let allowed_fails = setting("allowed_fails").and_then(|(n, p)| cx.u32(n, &p));
    let allowed_fails_policy = match get(router, "allowed_fails_policy") {
        None => AllowedFailsPolicy::default(),
        Some(n) => {
            let p = "router_settings.allowed_fails_policy";
            let v = class_counts(cx, n, p, "AllowedFails");
            AllowedFailsPolicy {
                bad_request: v[0],
                authentication: v[1],
                timeout: v[2],
                rate_limit: v[3],
                content_policy: v[4],
                internal_server: v[5],
            }
        }
    };
    let cooldown_time = setting("cooldown_time")
        .and_then(|(n, p)| cx.seconds(n, &p))
        .unwrap_or(DurationUs::from_secs(5));
    let disable_cooldowns = get(router, "disable_cooldowns")
        .and_then(|n| cx.bool(n, "router_settings.disable_cooldowns"))
        .unwrap_or(false);
    let retry_policy_v = get(router, "retry_policy")
        .map(|n| retry_policy(cx, n, "router_settings.retry_policy"))
        .unwrap_or_default();
    let mut model_group_retry_policy = BTreeMap::new();
    if let Some(n) = get(router, "model_group_retry_policy") {
        let p = "router_settings.model_group_retry_policy";
        if let Some(m) = cx.map(n, p) {
            for (k, v) in m {
                let Some(g) = k.as_str() else { continue };
                let kp = join(p, g);
                if !known_target(g) {
                    cx.warn(k.pos, &kp, format!("unknown model group `{g}`"));
                }
                model_group_retry_policy.insert(g.to_string(), retry_policy(cx, v, &kp));
            }
        }
    }
    let retry_after = get(router, "retry_after")
        .and_then(|n| cx.seconds(n, "router_settings.retry_after"))
        .unwrap_or_default();
    let enable_pre_call_checks = get(router, "enable_pre_call_checks")
        .and_then(|n| cx.bool(n, "router_settings.enable_pre_call_checks"))
        .unwrap_or(false);
    let enable_tag_filtering = get(router, "enable_tag_filtering")
        .and_then(|n| cx.bool(n, "router_settings.enable_tag_filtering"))
        .unwrap_or(false);

    for (alias, target) in &aliases_map {
        if !groups.contains_key(target) && !deployment_ids.contains(target) {
            let pos = get(router, "model_group_alias")
                .map(|n| n.pos)
                .unwrap_or_default();
            cx.error(
                pos,
                &join("router_settings.model_group_alias", alias),
                format!("alias points to unknown model group `{target}`"),
            );
        }
    }

    // --- general_settings ---
    let master_key = get(general, "master_key")
        .map(|n| cx.secret(n, "general_settings.master_key"))
        .unwrap_or_default();
    if let Some(Secret::Value(k)) = Some(&master_key) {
        if !k.starts_with("sk-") {
            let pos = get(general, "master_key")
                .map(|n| n.pos)
                .unwrap_or_default();
            cx.warn(
                pos,
                "general_settings.master_key",
                "LiteLLM requires the master key to start with `sk-`",
            );
        }
    }
    let max_request_body_bytes = get(general, "max_request_size_mb")
        .and_then(|n| cx.milli(n, "general_settings.max_request_size_mb"))
        .map(|milli_mb| milli_mb.saturating_mul(1024 * 1024) / 1000)
        .unwrap_or(32 * 1024 * 1024);
    if let Some(n) = get(general, "background_health_checks") {
        if cx.bool(n, "general_settings.background_health_checks") == Some(true) {
            cx.warn(n.pos, "general_settings.background_health_checks", "Switchyard never makes paid health-check calls; /health reports recent outcomes instead");
        }
    }

    // --- switchyard_settings ---
    let sp = "switchyard_settings";
    let keys = match get(sw, "keys") {
        None => Vec::new(),
        Some(n) => virtual_keys(cx, n, &join(sp, "keys"), &|s: &str| known_target(s)),
    };
    let mut escalations = Vec::new();
    if let Some(n) = get(sw, "escalations") {
        let p = join(sp, "escalations");
        if let Some(items) = cx.seq(n, &p) {
            for (i, it) in items.iter().enumerate() {
                let ip = format!("{p}[{i}]");
                if let Some(e) = escalation(cx, it, &ip, &|s: &str| known_target(s)) {
                    escalations.push(e);
                }
            }
        }
    }
    let sticky = get(sw, "sticky").and_then(|n| sticky(cx, n, &join(sp, "sticky")));
    let exploration_ppm = get(sw, "exploration_rate")
        .and_then(|n| cx.fraction_ppm(n, &join(sp, "exploration_rate")))
        .unwrap_or(0);
    let wait_for_cooldown = get(sw, "wait_for_cooldown")
        .and_then(|n| cx.seconds(n, &join(sp, "wait_for_cooldown")))
        .unwrap_or_default();
    let mut routing_headers: Vec<String> = get(sw, "routing_headers")
        .map(|n| cx.str_list(n, &join(sp, "routing_headers")))
        .unwrap_or_default()
        .into_iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    for e in &escalations {
        routing_headers.push(e.header.clone());
    }
    if let Some(StickyBy::Header(h)) = &sticky {
        routing_headers.push(h.clone());
    }
    routing_headers.sort();
    routing_headers.dedup();
    let store_prompts = get(sw, "store_prompts")
        .and_then(|n| cx.bool(n, &join(sp, "store_prompts")))
        .unwrap_or(false);
    let graceful_shutdown = get(sw, "graceful_shutdown_timeout")
        .and_then(|n| cx.seconds(n, &join(sp, "graceful_shutdown_timeout")))
        .unwrap_or(DurationUs::from_secs(30));
    let default_output_tokens_estimate = get(sw, "default_output_tokens_estimate")
        .and_then(|n| cx.u64(n, &join(sp, "default_output_tokens_estimate")))
        .unwrap_or(256);
    if sticky.is_some() && strategy != Strategy::SimpleShuffle {
        let pos = get(sw, "sticky").map(|n| n.pos).unwrap_or_default();
        cx.warn(
            pos,
            &join(sp, "sticky"),
            "sticky assignment applies to the simple-shuffle strategy only",
        );
    }

    let routing = RoutingConfig {
        deployments,
        groups,
        aliases: aliases_map,
        hidden_aliases,
        strategy,
        strategy_args,
        num_retries,
        timeout,
        stream_timeout,
        fallbacks: fallbacks_m,
        context_window_fallbacks: cw_fallbacks,
        content_policy_fallbacks: cp_fallbacks,
        default_fallbacks,
        max_fallbacks,
        allowed_fails,
        allowed_fails_policy,
        cooldown_time,
        disable_cooldowns,
        retry_policy: retry_policy_v,
        model_group_retry_policy,
        retry_after,
        enable_pre_call_checks,
        enable_tag_filtering,
        drop_params,
        keys,
        escalations,
        sticky,
        exploration_ppm,
        wait_for_cooldown,
        routing_headers,
        default_output_tokens_estimate,
    };
    let server = ServerSettings {
        master_key,
        store_prompts,
        max_request_body_bytes,
        graceful_shutdown,
        forward_client_headers: get(general, "forward_client_headers_to_llm_api")
            .and_then(|n| cx.bool(n, "general_settings.forward_client_headers_to_llm_api"))
            .unwrap_or(false),
    };
    let mut config = Config {
        routing,
        server,
        hash_hex: String::new(),
    };
    let canonical = serde_json::to_string(&config.normalized_json()).expect("config serializes");
    config.hash_hex = hex(&Sha256::digest(canonical.as_bytes()));
    Some(config)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn deployment(cx: &mut Ctx, item: &Node, path: &str, prices: &PriceTable) -> Option<Deployment> {
    let m = cx.map(item, path)?;
    cx.check_keys(
        m,
        path,
        &["model_name", "litellm_params", "model_info"],
        &[],
    );
    let model_group = match get(m, "model_name") {
        Some(n) => cx.string(n, &join(path, "model_name")),
        None => {
            cx.error(item.pos, &join(path, "model_name"), "missing `model_name`");
            None
        }
    };
    let lp_path = join(path, "litellm_params");
    let Some(lp_node) = get(m, "litellm_params") else {
        cx.error(item.pos, &lp_path, "missing `litellm_params`");
        return None;
    };
    let lp = cx.map(lp_node, &lp_path)?;
    // Any key may pass through to the provider, so unknown keys are fine; duplicates are not.
    let mut seen_params = BTreeSet::new();
    for (k, _) in lp {
        if let Some(name) = k.as_str() {
            if !seen_params.insert(name) {
                cx.error(k.pos, &join(&lp_path, name), "duplicate key");
            }
        }
    }
    let mi_path = join(path, "model_info");
    let mi = match get(m, "model_info") {
        Some(n) => cx.map(n, &mi_path).unwrap_or(&[]),
        None => &[],
    };
    for (k, _) in mi {
        let Some(name) = k.as_str() else { continue };
        if !MODEL_INFO_KEYS.contains(&name) {
            // model_info is free-form metadata in LiteLLM: keep quiet unless it looks like a typo.
            if let Some(s) = closest(name, MODEL_INFO_KEYS) {
                cx.warn(
                    k.pos,
                    &join(&mi_path, name),
                    format!("unknown key; did you mean `{s}`?"),
                );
            }
        }
    }
    let lpk = |k: &str| join(&lp_path, k);
    let model = match get(lp, "model") {
        Some(n) => cx.string(n, &lpk("model")),
        None => {
            cx.error(
                lp_node.pos,
                &lpk("model"),
                "missing `model` (for example `openai/gpt-4o` or `hosted_vllm/my-model`)",
            );
            None
        }
    };
    let complete = model_group.is_some();
    let model_group = model_group.unwrap_or_default();
    let model = model?;
    let custom_provider =
        get(lp, "custom_llm_provider").and_then(|n| cx.string(n, &lpk("custom_llm_provider")));
    let (provider, upstream_model) = match (&custom_provider, model.split_once('/')) {
        (Some(p), _) => (
            p.clone(),
            model
                .strip_prefix(&format!("{p}/"))
                .unwrap_or(&model)
                .to_string(),
        ),
        (None, Some((p, rest))) if PROVIDERS.iter().any(|(name, ..)| *name == p) => {
            (p.to_string(), rest.to_string())
        }
        (None, Some((p, _)))
            if !p.contains('.')
                && p.chars().all(|c| {
                    c.is_ascii_lowercase() || c == '_' || c == '-' || c.is_ascii_digit()
                })
                && !model.starts_with("ft:") =>
        {
            let names: Vec<&str> = PROVIDERS.iter().map(|(n, ..)| *n).collect();
            let hint = closest(p, &names)
                .map(|c| format!(" Did you mean `{c}/`?"))
                .unwrap_or_default();
            let pos = get(lp, "model").map(|n| n.pos).unwrap_or(lp_node.pos);
            cx.error(
                pos,
                &lpk("model"),
                format!(
                    "provider `{p}/` is not supported (supported: {}).{hint}",
                    names
                        .iter()
                        .map(|n| format!("{n}/"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            return None;
        }
        (None, _) => {
            if model.starts_with("claude") {
                ("anthropic".to_string(), model.clone())
            } else {
                ("openai".to_string(), model.clone())
            }
        }
    };
    let Some(&(_, protocol, default_base, key_var)) =
        PROVIDERS.iter().find(|(n, ..)| *n == provider)
    else {
        let pos = get(lp, "custom_llm_provider")
            .map(|n| n.pos)
            .unwrap_or(lp_node.pos);
        cx.error(
            pos,
            &lpk("custom_llm_provider"),
            format!("provider `{provider}` is not supported"),
        );
        return None;
    };
    let api_base_node = get(lp, "api_base").or_else(|| get(lp, "base_url"));
    let api_base = match api_base_node {
        Some(n) => cx.string(n, &lpk("api_base")),
        None => None,
    };
    let mut unusable = None;
    let api_base = match (api_base, default_base) {
        (Some(b), _) => {
            if !(b.starts_with("http://") || b.starts_with("https://")) {
                cx.error(
                    api_base_node.map(|n| n.pos).unwrap_or(lp_node.pos),
                    &lpk("api_base"),
                    format!("`{b}` is not an http(s) URL"),
                );
            }
            b.trim_end_matches('/').to_string()
        }
        (None, Some(d)) => d.to_string(),
        (None, None) => {
            if api_base_node.is_none() {
                cx.error(lp_node.pos, &lpk("api_base"), format!("`{provider}/` needs an `api_base` (the server's URL, such as http://host:8000/v1)"));
            } else {
                unusable = Some(format!("{}: api_base is not set", lpk("api_base")));
            }
            String::new()
        }
    };
    let api_key = match get(lp, "api_key") {
        Some(n) => cx.secret(n, &lpk("api_key")),
        None => match key_var.and_then(|v| cx.env_lookup(v)) {
            Some(v) => Secret::Value(v),
            None => Secret::None,
        },
    };
    match &api_key {
        Secret::MissingEnv(var) => {
            unusable = Some(format!("environment variable {var} (litellm_params.api_key of deployment `{model_group}`) is not set"));
        }
        Secret::None
            if !KEY_OPTIONAL.contains(&provider.as_str())
                && default_base.is_some()
                && api_base_node.is_none() =>
        {
            let var = key_var.unwrap_or("the provider's key variable");
            cx.warn(
                lp_node.pos,
                &lpk("api_key"),
                format!("no `api_key` and {var} is not set; calls to this deployment will fail"),
            );
            unusable = Some(format!(
                "no API key for deployment `{model_group}` ({var} is not set)"
            ));
        }
        _ => {}
    }
    let rpm = get(lp, "rpm").and_then(|n| cx.u64(n, &lpk("rpm")));
    let tpm = get(lp, "tpm").and_then(|n| cx.u64(n, &lpk("tpm")));
    let timeout = get(lp, "timeout").and_then(|n| cx.seconds(n, &lpk("timeout")));
    let stream_timeout =
        get(lp, "stream_timeout").and_then(|n| cx.seconds(n, &lpk("stream_timeout")));
    let num_retries = get(lp, "num_retries")
        .and_then(|n| cx.u32(n, &lpk("num_retries")))
        .or_else(|| get(lp, "max_retries").and_then(|n| cx.u32(n, &lpk("max_retries"))));
    let weight_milli = get(lp, "weight").and_then(|n| cx.milli(n, &lpk("weight")));
    let order = get(lp, "order").and_then(|n| cx.u32(n, &lpk("order")));
    let tags = get(lp, "tags")
        .map(|n| cx.str_list(n, &lpk("tags")))
        .unwrap_or_default();
    let cooldown_time = get(lp, "cooldown_time").and_then(|n| cx.seconds(n, &lpk("cooldown_time")));
    let drop_params = get(lp, "drop_params").and_then(|n| cx.bool(n, &lpk("drop_params")));
    if let Some(n) = get(lp, "max_parallel_requests") {
        cx.warn(n.pos, &lpk("max_parallel_requests"), "per-deployment max_parallel_requests is not enforced; use rpm/tpm or a key's max_parallel_requests");
    }
    let mik = |k: &str| join(&mi_path, k);
    let id = match get(mi, "id") {
        Some(n) => cx.string(n, &mik("id")),
        None => None,
    }
    .unwrap_or_else(|| {
        let digest = Sha256::digest(format!("{model_group}\0{model}\0{api_base}").as_bytes());
        hex(&digest[..6])
    });
    let base_model = get(mi, "base_model").and_then(|n| cx.string(n, &mik("base_model")));
    let max_input_tokens =
        get(mi, "max_input_tokens").and_then(|n| cx.u64(n, &mik("max_input_tokens")));
    let max_output_tokens = get(mi, "max_output_tokens")
        .and_then(|n| cx.u64(n, &mik("max_output_tokens")))
        .or_else(|| get(mi, "max_tokens").and_then(|n| cx.u64(n, &mik("max_tokens"))));

    // Prices: litellm_params, then model_info, then the price table (base_model first), else zero
    // for self-hosted servers.
    let price_key = |k: &str| -> Option<(&Node, String)> {
        get(lp, k)
            .map(|n| (n, lpk(k)))
            .or_else(|| get(mi, k).map(|n| (n, mik(k))))
    };
    let p_in = price_key("input_cost_per_token").and_then(|(n, p)| cx.usd(n, &p));
    let p_out = price_key("output_cost_per_token").and_then(|(n, p)| cx.usd(n, &p));
    let p_cr = price_key("cache_read_input_token_cost").and_then(|(n, p)| cx.usd(n, &p));
    let p_cc = price_key("cache_creation_input_token_cost").and_then(|(n, p)| cx.usd(n, &p));
    let table = base_model
        .as_deref()
        .and_then(|b| prices.lookup(b))
        .or_else(|| prices.lookup(&model))
        .or_else(|| prices.lookup(&format!("{provider}/{upstream_model}")));
    let prices_resolved = if p_in.is_some() || p_out.is_some() {
        let i = p_in.unwrap_or_default();
        Prices {
            input_per_token: i,
            output_per_token: p_out.unwrap_or_default(),
            cache_read_per_token: p_cr.unwrap_or(i),
            cache_creation_per_token: p_cc.unwrap_or(i),
            source: "litellm_params".into(),
        }
    } else if let Some(t) = table {
        let i = t.input_per_token.unwrap_or_default();
        Prices {
            input_per_token: i,
            output_per_token: t.output_per_token.unwrap_or_default(),
            cache_read_per_token: p_cr.or(t.cache_read_per_token).unwrap_or(i),
            cache_creation_per_token: p_cc.or(t.cache_creation_per_token).unwrap_or(i),
            source: "price_table".into(),
        }
    } else {
        Prices::zero(if provider == "hosted_vllm" || api_base_node.is_some() {
            "self_hosted"
        } else {
            "unknown"
        })
    };
    let max_input_tokens = max_input_tokens.or_else(|| table.and_then(|t| t.max_input_tokens));
    let max_output_tokens = max_output_tokens.or_else(|| table.and_then(|t| t.max_output_tokens));

    let mut extra_params = BTreeMap::new();
    for (k, v) in lp {
        let Some(name) = k.as_str() else { continue };
        if PARAM_ROUTING_KEYS.contains(&name) {
            continue;
        }
        let mut j = v.to_json();
        resolve_env_json(cx, &mut j, &lpk(name), v.pos);
        extra_params.insert(name.to_string(), j);
    }
    if !complete {
        return None;
    }
    Some(Deployment {
        id,
        model_group,
        model,
        provider,
        protocol,
        upstream_model,
        api_base,
        api_key,
        rpm,
        tpm,
        timeout,
        stream_timeout,
        num_retries,
        weight_milli,
        order,
        tags,
        cooldown_time,
        prices: prices_resolved,
        max_input_tokens,
        max_output_tokens,
        base_model,
        drop_params,
        extra_params,
        unusable,
    })
}

/// `os.environ/NAME` inside pass-through parameters.
fn resolve_env_json(cx: &mut Ctx, v: &mut serde_json::Value, path: &str, pos: Pos) {
    match v {
        serde_json::Value::String(s) => {
            if let Some(var) = s.strip_prefix(ENV_PREFIX) {
                match cx.env_lookup(var) {
                    Some(val) => *s = val,
                    None => cx.warn(pos, path, format!("environment variable {var} is not set")),
                }
            }
        }
        serde_json::Value::Array(a) => a
            .iter_mut()
            .for_each(|x| resolve_env_json(cx, x, path, pos)),
        serde_json::Value::Object(o) => o
            .values_mut()
            .for_each(|x| resolve_env_json(cx, x, path, pos)),
        _ => {}
    }
}

/// `[{group: [fallback, ...]}, ...]` (LiteLLM's form) or `{group: [fallback, ...]}`.
fn fallbacks(
    cx: &mut Ctx,
    n: &Node,
    path: &str,
    known: &dyn Fn(&str) -> bool,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add = |cx: &mut Ctx, entries: &[(Node, Node)], p: &str| {
        for (k, v) in entries {
            let Some(g) = k.as_str() else { continue };
            let kp = join(p, g);
            if !known(g) {
                cx.error(k.pos, &kp, format!("unknown model group `{g}`"));
            }
            let list = cx.str_list(v, &kp);
            for f in &list {
                if !known(f) {
                    cx.error(v.pos, &kp, format!("fallback to unknown model group `{f}`"));
                }
                if f == g {
                    cx.warn(v.pos, &kp, format!("`{g}` falls back to itself; ignored"));
                }
            }
            let list: Vec<String> = list.into_iter().filter(|f| f != g).collect();
            out.entry(g.to_string()).or_default().extend(list);
        }
    };
    if n.is_null() {
        return out;
    }
    match &n.value {
        Value::Seq(items) => {
            for (i, it) in items.iter().enumerate() {
                let ip = format!("{path}[{i}]");
                if let Some(m) = cx.map(it, &ip) {
                    add(cx, m, &ip);
                }
            }
        }
        Value::Map(m) => add(cx, m, path),
        _ => cx.error(
            n.pos,
            path,
            format!(
                "expected a list like `- my-group: [fallback-group]`, got {}",
                n.kind_name()
            ),
        ),
    }
    out
}

fn aliases(cx: &mut Ctx, n: &Node, path: &str) -> (BTreeMap<String, String>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut hidden = Vec::new();
    let Some(m) = cx.map(n, path) else {
        return (out, hidden);
    };
    for (k, v) in m {
        let Some(alias) = k.as_str() else { continue };
        let kp = join(path, alias);
        match &v.value {
            Value::Map(inner) => {
                cx.check_keys(inner, &kp, &["model", "hidden"], &[]);
                if let Some(t) = get(inner, "model").and_then(|x| cx.string(x, &join(&kp, "model")))
                {
                    out.insert(alias.to_string(), t);
                } else {
                    cx.error(v.pos, &kp, "alias needs `model`");
                }
                if get(inner, "hidden").and_then(|x| cx.bool(x, &join(&kp, "hidden"))) == Some(true)
                {
                    hidden.push(alias.to_string());
                }
            }
            _ => {
                if let Some(t) = cx.string(v, &kp) {
                    out.insert(alias.to_string(), t);
                }
            }
        }
    }
    (out, hidden)
}

const CLASS_NAMES: [&str; 6] = [
    "BadRequestError",
    "AuthenticationError",
    "TimeoutError",
    "RateLimitError",
    "ContentPolicyViolationError",
    "InternalServerError",
];

fn class_counts(cx: &mut Ctx, n: &Node, path: &str, suffix: &str) -> [Option<u32>; 6] {
    let mut out = [None; 6];
    let Some(m) = cx.map(n, path) else { return out };
    let known: Vec<String> = CLASS_NAMES.iter().map(|c| format!("{c}{suffix}")).collect();
    let known_refs: Vec<&str> = known.iter().map(String::as_str).collect();
    cx.check_keys(m, path, &known_refs, &[]);
    for (i, name) in known.iter().enumerate() {
        if let Some(v) = get(m, name) {
            out[i] = cx.u32(v, &join(path, name));
        }
    }
    out
}

fn retry_policy(cx: &mut Ctx, n: &Node, path: &str) -> RetryPolicy {
    let v = class_counts(cx, n, path, "Retries");
    RetryPolicy {
        bad_request: v[0],
        authentication: v[1],
        timeout: v[2],
        rate_limit: v[3],
        content_policy: v[4],
        internal_server: v[5],
    }
}

const KEY_KEYS: &[&str] = &[
    "key",
    "key_alias",
    "models",
    "aliases",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "max_budget",
    "tags",
    "metadata",
];

fn virtual_keys(
    cx: &mut Ctx,
    n: &Node,
    path: &str,
    known: &dyn Fn(&str) -> bool,
) -> Vec<VirtualKey> {
    let mut out: Vec<VirtualKey> = Vec::new();
    let Some(items) = cx.seq(n, path) else {
        return out;
    };
    for (i, it) in items.iter().enumerate() {
        let ip = format!("{path}[{i}]");
        let Some(m) = cx.map(it, &ip) else { continue };
        cx.check_keys(m, &ip, KEY_KEYS, &[]);
        let secret = match get(m, "key") {
            Some(k) => cx.secret(k, &join(&ip, "key")),
            None => {
                cx.error(it.pos, &join(&ip, "key"), "missing `key` (the API key clients send, e.g. `sk-...` or `os.environ/TEAM_A_KEY`)");
                continue;
            }
        };
        let Secret::Value(secret) = secret else {
            continue;
        };
        let hash = Sha256::digest(secret.as_bytes());
        let hash_hex = hex(&hash);
        let id = hash_hex[..16].to_string();
        if out.iter().any(|k| k.hash_hex == hash_hex) {
            cx.error(it.pos, &join(&ip, "key"), "the same key is listed twice");
            continue;
        }
        let alias = get(m, "key_alias").and_then(|x| cx.string(x, &join(&ip, "key_alias")));
        let models = get(m, "models")
            .map(|x| cx.str_list(x, &join(&ip, "models")))
            .unwrap_or_default();
        let mut aliases = BTreeMap::new();
        if let Some(a) = get(m, "aliases") {
            let ap = join(&ip, "aliases");
            if let Some(am) = cx.map(a, &ap) {
                for (k, v) in am {
                    let Some(name) = k.as_str() else { continue };
                    if let Some(t) = cx.string(v, &join(&ap, name)) {
                        if !known(&t) {
                            cx.error(
                                v.pos,
                                &join(&ap, name),
                                format!("alias points to unknown model group `{t}`"),
                            );
                        }
                        aliases.insert(name.to_string(), t);
                    }
                }
            }
        }
        for mname in &models {
            if !known(mname) && !aliases.contains_key(mname) && mname != "*" {
                cx.warn(
                    it.pos,
                    &join(&ip, "models"),
                    format!("`{mname}` is not a model group or alias"),
                );
            }
        }
        out.push(VirtualKey {
            id,
            hash_hex,
            alias,
            models,
            aliases,
            rpm_limit: get(m, "rpm_limit").and_then(|x| cx.u64(x, &join(&ip, "rpm_limit"))),
            tpm_limit: get(m, "tpm_limit").and_then(|x| cx.u64(x, &join(&ip, "tpm_limit"))),
            max_parallel_requests: get(m, "max_parallel_requests")
                .and_then(|x| cx.u64(x, &join(&ip, "max_parallel_requests"))),
            max_budget: get(m, "max_budget").and_then(|x| cx.usd(x, &join(&ip, "max_budget"))),
            tags: get(m, "tags")
                .map(|x| cx.str_list(x, &join(&ip, "tags")))
                .unwrap_or_default(),
        });
    }
    out
}

fn escalation(
    cx: &mut Ctx,
    n: &Node,
    path: &str,
    known: &dyn Fn(&str) -> bool,
) -> Option<Escalation> {
    let m = cx.map(n, path)?;
    cx.check_keys(m, path, &["header", "equals", "values", "from", "to"], &[]);
    let header = match get(m, "header") {
        Some(h) => cx.string(h, &join(path, "header"))?.to_ascii_lowercase(),
        None => {
            cx.error(n.pos, &join(path, "header"), "missing `header`");
            return None;
        }
    };
    let mut values = Vec::new();
    if let Some(v) = get(m, "equals") {
        values.extend(cx.string(v, &join(path, "equals")));
    }
    if let Some(v) = get(m, "values") {
        values.extend(cx.str_list(v, &join(path, "values")));
    }
    if values.is_empty() {
        cx.error(n.pos, path, "needs `equals: VALUE` or `values: [..]`");
        return None;
    }
    let from = get(m, "from").and_then(|v| cx.string(v, &join(path, "from")));
    if let Some(f) = &from {
        if !known(f) {
            cx.error(
                n.pos,
                &join(path, "from"),
                format!("unknown model group `{f}`"),
            );
        }
    }
    let to = match get(m, "to") {
        Some(v) => cx.string(v, &join(path, "to"))?,
        None => {
            cx.error(
                n.pos,
                &join(path, "to"),
                "missing `to` (the model group to escalate to)",
            );
            return None;
        }
    };
    if !known(&to) {
        cx.error(
            n.pos,
            &join(path, "to"),
            format!("unknown model group `{to}`"),
        );
    }
    Some(Escalation {
        header,
        values,
        from,
        to,
    })
}

fn sticky(cx: &mut Ctx, n: &Node, path: &str) -> Option<StickyBy> {
    let by = match &n.value {
        Value::Map(m) => {
            cx.check_keys(m, path, &["by"], &[]);
            get(m, "by").and_then(|v| cx.string(v, &join(path, "by")))?
        }
        _ => cx.string(n, path)?,
    };
    match by.as_str() {
        "user" => Some(StickyBy::User),
        "key" => Some(StickyBy::Key),
        h if h.starts_with("header:") => Some(StickyBy::Header(
            h["header:".len()..].trim().to_ascii_lowercase(),
        )),
        other => {
            cx.error(
                n.pos,
                path,
                format!("`{other}`: expected `user`, `key` or `header:<name>`"),
            );
            None
        }
    }
}
