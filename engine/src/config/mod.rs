//! Configuration in LiteLLM's file format, in two steps: the YAML tree with positions
//! (`yaml`), then a pure validation (`load`) into the typed [`Config`] that reports every problem
//! at once with file, line, column and key path.
//!
//! The typed config separates what routing depends on ([`RoutingConfig`], what the simulator varies)
//! from server settings ([`ServerSettings`]: keys, storage). No I/O here: the caller reads the
//! file and passes an environment lookup.

pub mod load;
pub mod yaml;

use crate::core::units::{DurationUs, PicoUsd};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

pub use load::{load_config, LoadOptions, Loaded};

/// Where a problem is and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    pub line: u32,
    pub col: u32,
    /// Key path such as `model_list[0].litellm_params.rpm`.
    pub path: String,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        if self.path.is_empty() {
            write!(
                f,
                "{}:{}:{}: {}: {}",
                self.file, self.line, self.col, sev, self.message
            )
        } else {
            write!(
                f,
                "{}:{}:{}: {}: {}: {}",
                self.file, self.line, self.col, sev, self.path, self.message
            )
        }
    }
}

/// A credential. Never printed, serialized or logged: `Debug` and `Serialize` show only whether
/// it is set.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Secret {
    #[default]
    None,
    Value(String),
    /// `os.environ/NAME` where NAME was not set at load time.
    MissingEnv(String),
}

impl Secret {
    pub fn value(&self) -> Option<&str> {
        match self {
            Secret::Value(v) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::None => write!(f, "<none>"),
            Secret::Value(_) => write!(f, "<set>"),
            Secret::MissingEnv(n) => write!(f, "<os.environ/{n} not set>"),
        }
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{self:?}"))
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Secrets never round-trip through serialization: a deserialized config has none.
        let _ = String::deserialize(d)?;
        Ok(Secret::None)
    }
}

/// Wire protocol of a deployment's upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// OpenAI's Chat Completions API (OpenAI, vLLM, and other compatible servers).
    Openai,
    /// Anthropic's Messages API.
    Anthropic,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prices {
    pub input_per_token: PicoUsd,
    pub output_per_token: PicoUsd,
    /// Price of a prompt token read from the provider's cache (defaults to the input price).
    pub cache_read_per_token: PicoUsd,
    /// Price of a prompt token written to the provider's cache (defaults to the input price).
    pub cache_creation_per_token: PicoUsd,
    /// Where these prices came from: `litellm_params`, `price_table`, `self_hosted`, `unknown`.
    pub source: String,
}

impl Prices {
    pub fn zero(source: &str) -> Prices {
        Prices {
            input_per_token: PicoUsd::ZERO,
            output_per_token: PicoUsd::ZERO,
            cache_read_per_token: PicoUsd::ZERO,
            cache_creation_per_token: PicoUsd::ZERO,
            source: source.into(),
        }
    }

    /// Cost of one attempt from its real usage. `tokens_in` includes cached tokens.
    pub fn cost(
        &self,
        tokens_in: u64,
        tokens_cache_read: u64,
        tokens_cache_creation: u64,
        tokens_out: u64,
    ) -> PicoUsd {
        let plain = tokens_in
            .saturating_sub(tokens_cache_read)
            .saturating_sub(tokens_cache_creation);
        self.input_per_token
            .times(plain)
            .saturating_add(self.cache_read_per_token.times(tokens_cache_read))
            .saturating_add(self.cache_creation_per_token.times(tokens_cache_creation))
            .saturating_add(self.output_per_token.times(tokens_out))
    }
}

/// One entry of `model_list`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Deployment {
    /// `model_info.id`, or a stable hash of model group, model and api_base (so the same
    /// deployment has the same id in two versions of a config).
    pub id: String,
    /// `model_name`: the model group clients ask for.
    pub model_group: String,
    /// `litellm_params.model` as written (`openai/Meta-Llama-3.1-8B-Instruct`).
    pub model: String,
    /// The provider prefix (`openai`, `hosted_vllm`, `anthropic`, ...).
    pub provider: String,
    pub protocol: Protocol,
    /// The model name sent upstream (the prefix removed).
    pub upstream_model: String,
    pub api_base: String,
    pub api_key: Secret,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub timeout: Option<DurationUs>,
    pub stream_timeout: Option<DurationUs>,
    /// `num_retries` (or `max_retries`) on the deployment: overrides the group's retries when this
    /// deployment failed last.
    pub num_retries: Option<u32>,
    /// Weight in thousandths (`weight: 0.5` is 500).
    pub weight_milli: Option<u64>,
    pub order: Option<u32>,
    pub tags: Vec<String>,
    pub cooldown_time: Option<DurationUs>,
    pub prices: Prices,
    pub max_input_tokens: Option<u64>,
    pub max_output_tokens: Option<u64>,
    pub base_model: Option<String>,
    pub drop_params: Option<bool>,
    /// Other `litellm_params` keys, passed through to the provider in the request body.
    pub extra_params: BTreeMap<String, serde_json::Value>,
    /// Why this deployment cannot be called (a missing `os.environ/` credential); its attempts fail
    /// with this message so that fallbacks apply.
    pub unusable: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    SimpleShuffle,
    LeastBusy,
    UsageBasedRouting,
    UsageBasedRoutingV2,
    LatencyBasedRouting,
    CostBasedRouting,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Strategy> {
        Some(match s {
            "simple-shuffle" => Strategy::SimpleShuffle,
            "least-busy" => Strategy::LeastBusy,
            "usage-based-routing" => Strategy::UsageBasedRouting,
            "usage-based-routing-v2" => Strategy::UsageBasedRoutingV2,
            "latency-based-routing" => Strategy::LatencyBasedRouting,
            "cost-based-routing" => Strategy::CostBasedRouting,
            _ => return None,
        })
    }

    pub const NAMES: [&'static str; 6] = [
        "simple-shuffle",
        "least-busy",
        "usage-based-routing",
        "usage-based-routing-v2",
        "latency-based-routing",
        "cost-based-routing",
    ];
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrategyArgs {
    /// Latency samples older than this are ignored (LiteLLM `ttl`, default 1 h).
    pub ttl: DurationUs,
    /// Deployments within `(1 + buffer) * best` latency are picked at random (LiteLLM
    /// `lowest_latency_buffer`, default 0), in thousandths.
    pub lowest_latency_buffer_milli: u64,
    /// How many recent latency samples per deployment are averaged (LiteLLM default 10).
    pub max_latency_list_size: usize,
}

impl Default for StrategyArgs {
    fn default() -> Self {
        StrategyArgs {
            ttl: DurationUs::from_secs(3600),
            lowest_latency_buffer_milli: 0,
            max_latency_list_size: 10,
        }
    }
}

/// Retries per error class (LiteLLM's `RetryPolicy`). `None` means "use `num_retries`".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub bad_request: Option<u32>,
    pub authentication: Option<u32>,
    pub timeout: Option<u32>,
    pub rate_limit: Option<u32>,
    pub content_policy: Option<u32>,
    pub internal_server: Option<u32>,
}

/// Failures allowed per minute per error class before a cooldown (LiteLLM's `AllowedFailsPolicy`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowedFailsPolicy {
    pub bad_request: Option<u32>,
    pub authentication: Option<u32>,
    pub timeout: Option<u32>,
    pub rate_limit: Option<u32>,
    pub content_policy: Option<u32>,
    pub internal_server: Option<u32>,
}

impl AllowedFailsPolicy {
    pub fn is_empty(&self) -> bool {
        *self == AllowedFailsPolicy::default()
    }
}

/// A virtual API key (tenant). The key itself is never stored: only its SHA-256.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VirtualKey {
    /// Stable, non-secret id: the first 16 hex digits of the key's SHA-256.
    pub id: String,
    /// SHA-256 of the key (hex). Used to authenticate; cannot be reversed.
    pub hash_hex: String,
    /// Human name (`key_alias`).
    pub alias: Option<String>,
    /// Model groups or aliases this key may use (empty: all).
    pub models: Vec<String>,
    /// Per-key aliases: public name -> model group.
    pub aliases: BTreeMap<String, String>,
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
    pub max_parallel_requests: Option<u64>,
    pub max_budget: Option<PicoUsd>,
    pub tags: Vec<String>,
}

/// Routes a request to another model group when a header has one of the given values
/// (the "confidence" pattern: ask for the frontier model when the cheap answer was not good enough).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    /// Lower-case header name.
    pub header: String,
    pub values: Vec<String>,
    /// Only requests for this model group (all when `None`).
    pub from: Option<String>,
    pub to: String,
}

/// Which request attribute keeps a caller on one A/B arm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StickyBy {
    User,
    Key,
    Header(String),
}

/// Everything routing decisions depend on: what the simulator varies between baseline and
/// candidate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoutingConfig {
    pub deployments: Vec<Deployment>,
    /// Model group name -> indices into `deployments`, in file order.
    pub groups: BTreeMap<String, Vec<usize>>,
    /// `router_settings.model_group_alias`: alias -> model group.
    pub aliases: BTreeMap<String, String>,
    /// Aliases hidden from `/v1/models`.
    pub hidden_aliases: Vec<String>,
    pub strategy: Strategy,
    pub strategy_args: StrategyArgs,
    pub num_retries: u32,
    /// Per-attempt timeout unless the deployment sets one (router `timeout`, else
    /// `litellm_settings.request_timeout`, else 600 s as in LiteLLM).
    pub timeout: DurationUs,
    pub stream_timeout: Option<DurationUs>,
    pub fallbacks: BTreeMap<String, Vec<String>>,
    pub context_window_fallbacks: BTreeMap<String, Vec<String>>,
    pub content_policy_fallbacks: BTreeMap<String, Vec<String>>,
    pub default_fallbacks: Vec<String>,
    pub max_fallbacks: u32,
    pub allowed_fails: Option<u32>,
    pub allowed_fails_policy: AllowedFailsPolicy,
    pub cooldown_time: DurationUs,
    pub disable_cooldowns: bool,
    pub retry_policy: RetryPolicy,
    pub model_group_retry_policy: BTreeMap<String, RetryPolicy>,
    /// Minimum wait before retrying on the same deployment (LiteLLM `retry_after`, seconds).
    pub retry_after: DurationUs,
    pub enable_pre_call_checks: bool,
    pub enable_tag_filtering: bool,
    pub drop_params: bool,
    // --- switchyard_settings (extensions LiteLLM ignores) ---
    pub keys: Vec<VirtualKey>,
    pub escalations: Vec<Escalation>,
    pub sticky: Option<StickyBy>,
    /// Share of eligible requests routed uniformly at random, in parts per million.
    pub exploration_ppm: u32,
    /// When every deployment of a group is cooling down, wait up to this long for the first
    /// cooldown to end instead of answering 429 at once (0: answer at once, as LiteLLM does).
    pub wait_for_cooldown: DurationUs,
    /// Request headers (lower-case) recorded in events because routing may depend on them.
    pub routing_headers: Vec<String>,
    /// Output tokens assumed for a request without `max_tokens`, for budget reservations and the
    /// token-per-minute pre-check.
    pub default_output_tokens_estimate: u64,
}

impl RoutingConfig {
    /// The configured per-attempt timeout of deployment `d` (a stream's own timeout first).
    pub fn attempt_timeout(&self, d: usize, stream: bool) -> DurationUs {
        let dep = &self.deployments[d];
        if stream {
            dep.stream_timeout.or(self.stream_timeout)
        } else {
            None
        }
        .or(dep.timeout)
        .unwrap_or(self.timeout)
    }

    pub fn deployment_index(&self, id: &str) -> Option<usize> {
        self.deployments.iter().position(|d| d.id == id)
    }

    pub fn group_names(&self) -> impl Iterator<Item = &String> {
        self.groups.keys()
    }
}

/// Settings of the running server that routing does not depend on.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ServerSettings {
    pub master_key: Secret,
    /// Store prompt and response text in events (off: token counts and a hash only).
    pub store_prompts: bool,
    /// Maximum request body size in bytes (413 above it).
    pub max_request_body_bytes: u64,
    /// Bound on finishing in-flight requests at shutdown.
    pub graceful_shutdown: DurationUs,
    /// `general_settings.forward_client_headers_to_llm_api`: send the client's `x-*` headers
    /// (and `anthropic-beta`) on to the provider. Credentials and LiteLLM's own headers never are.
    pub forward_client_headers: bool,
}

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub routing: RoutingConfig,
    pub server: ServerSettings,
    /// SHA-256 of [`Config::normalized_json`]: identifies the config in events.
    pub hash_hex: String,
}

impl Config {
    /// The normalized config as JSON, secrets redacted. This is what events store.
    pub fn normalized_json(&self) -> serde_json::Value {
        serde_json::json!({
            "routing": self.routing,
            "server": {
                "master_key": self.server.master_key,
                "store_prompts": self.server.store_prompts,
                "max_request_body_bytes": self.server.max_request_body_bytes,
            }
        })
    }
}

#[cfg(test)]
mod tests;
