//! The facts the router's state is folded from: one type per event kind.
//!
//! These are plain data. `engine::events` owns their wire form (envelope, versions, fixtures);
//! the router owns their meaning (`Router::apply`). Invariant: no secret ever appears in an event
//! (keys appear as their non-secret id; prompts only when the operator opts in).

use crate::config::VirtualKey;
use crate::core::outcome::{OutcomeClass, RouteError};
use crate::core::units::{InstantUs, PicoUsd};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Deployment ids and model group names: shared, cheap to clone.
pub type Name = Arc<str>;
pub type RequestId = u64;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    // Every payload is behind a pointer, so an `Event` is two words and moves cheaply.
    ConfigApplied(Box<ConfigApplied>),
    ProxyStarted(Box<ProxyStarted>),
    /// Shared: the router keeps it for the request's lifetime without copying.
    RequestReceived(Arc<RequestReceived>),
    AttemptDecided(Box<AttemptDecided>),
    AttemptFinished(Box<AttemptFinished>),
    RequestFinished(Box<RequestFinished>),
    KeyCreated(Box<KeyCreated>),
    KeyDeleted(Box<KeyDeleted>),
}

/// Event kinds as stored in the envelope. Never renumber.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum EventKind {
    ConfigApplied = 1,
    ProxyStarted = 2,
    RequestReceived = 3,
    AttemptDecided = 4,
    AttemptFinished = 5,
    RequestFinished = 6,
    KeyCreated = 7,
    KeyDeleted = 8,
}

impl EventKind {
    pub const ALL: [EventKind; 8] = [
        EventKind::ConfigApplied,
        EventKind::ProxyStarted,
        EventKind::RequestReceived,
        EventKind::AttemptDecided,
        EventKind::AttemptFinished,
        EventKind::RequestFinished,
        EventKind::KeyCreated,
        EventKind::KeyDeleted,
    ];

    pub fn from_u8(v: u8) -> Option<EventKind> {
        EventKind::ALL.iter().copied().find(|k| *k as u8 == v)
    }

    pub fn name(self) -> &'static str {
        match self {
            EventKind::ConfigApplied => "config_applied",
            EventKind::ProxyStarted => "proxy_started",
            EventKind::RequestReceived => "request_received",
            EventKind::AttemptDecided => "attempt_decided",
            EventKind::AttemptFinished => "attempt_finished",
            EventKind::RequestFinished => "request_finished",
            EventKind::KeyCreated => "key_created",
            EventKind::KeyDeleted => "key_deleted",
        }
    }
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::ConfigApplied(_) => EventKind::ConfigApplied,
            Event::ProxyStarted(_) => EventKind::ProxyStarted,
            Event::RequestReceived(_) => EventKind::RequestReceived,
            Event::AttemptDecided(_) => EventKind::AttemptDecided,
            Event::AttemptFinished(_) => EventKind::AttemptFinished,
            Event::RequestFinished(_) => EventKind::RequestFinished,
            Event::KeyCreated(_) => EventKind::KeyCreated,
            Event::KeyDeleted(_) => EventKind::KeyDeleted,
        }
    }

    pub fn at(&self) -> InstantUs {
        match self {
            Event::ConfigApplied(e) => e.at,
            Event::ProxyStarted(e) => e.at,
            Event::RequestReceived(e) => e.at,
            Event::AttemptDecided(e) => e.at,
            Event::AttemptFinished(e) => e.at,
            Event::RequestFinished(e) => e.at,
            Event::KeyCreated(e) => e.at,
            Event::KeyDeleted(e) => e.at,
        }
    }

    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            Event::RequestReceived(e) => Some(e.id),
            Event::AttemptDecided(e) => Some(e.id),
            Event::AttemptFinished(e) => Some(e.id),
            Event::RequestFinished(e) => Some(e.id),
            _ => None,
        }
    }
}

/// A config became active. `content` is the normalized config as JSON with secrets redacted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigApplied {
    pub at: InstantUs,
    pub hash_hex: String,
    pub content: String,
    /// The seed request seeds are drawn from.
    pub seed: u64,
}

/// The proxy (re)started: requests in flight before this point were abandoned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProxyStarted {
    pub at: InstantUs,
    pub version: String,
    /// First request id this process will assign.
    pub next_request_id: RequestId,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Chat,
    Completion,
    Embedding,
}

/// Why an attempt goes where it goes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Primary,
    Retry,
    Fallback,
    ContextWindow,
    ContentPolicy,
    Escalation,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Primary => "primary",
            Reason::Retry => "retry",
            Reason::Fallback => "fallback",
            Reason::ContextWindow => "context-window",
            Reason::ContentPolicy => "content-policy",
            Reason::Escalation => "escalation",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Admission {
    /// Accepted: routed to `group` (after key aliases, escalation rules and model aliases).
    Admitted {
        group: Name,
        /// A request for one deployment by its id.
        pinned: Option<Name>,
        reason: Reason,
        /// Cost reserved against the key's budget until the request finishes.
        reserved: PicoUsd,
    },
    /// Boxed: rejections are rare and the error is large.
    Rejected(Box<RouteError>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestReceived {
    pub at: InstantUs,
    pub id: RequestId,
    /// All randomness of this request's decisions derives from this seed.
    pub seed: u64,
    /// The virtual key's non-secret id, if a virtual key was used.
    pub key_id: Option<Name>,
    /// The model the client asked for.
    pub model: Name,
    pub endpoint: Endpoint,
    /// Prompt tokens as estimated by the proxy (the context-window pre-check uses this).
    pub tokens_in: u64,
    pub max_tokens: Option<u64>,
    pub stream: bool,
    pub tags: Vec<String>,
    /// Routing-relevant request headers only (lower-case names), as configured.
    pub headers: Vec<(String, String)>,
    pub user: Option<String>,
    /// SHA-256 of the request's messages (hex, first 16 bytes): lets identical prompts be matched
    /// without storing them.
    pub prompt_sha: String,
    /// The prompt itself, only with `store_prompts`.
    pub prompt: Option<String>,
    pub admission: Admission,
    /// Routing parameters the client set for this request alone (schema version 2; empty when
    /// read from a version-1 log).
    #[serde(default)]
    pub overrides: RequestOverrides,
}

/// LiteLLM's request-level routing parameters, as the client sent them in the body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestOverrides {
    /// `fallbacks`: model groups to try, in order, once the requested group has failed. They
    /// replace the config's generic fallbacks for this request (`default_fallbacks` included).
    pub fallbacks: Option<Vec<String>>,
    /// `num_retries`: retries within a group, in place of the configured number (retry policies
    /// by error class still win, as in LiteLLM).
    pub num_retries: Option<u32>,
    /// `timeout` / `request_timeout`: per attempt, in place of the configured timeouts.
    pub timeout_us: Option<u64>,
    /// `mock_testing_fallbacks`: the requested group fails at once without calling a provider,
    /// so the fallbacks run (LiteLLM's way to test a fallback chain).
    pub mock_testing_fallbacks: bool,
}

impl RequestOverrides {
    pub fn is_empty(&self) -> bool {
        *self == RequestOverrides::default()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptDecided {
    pub at: InstantUs,
    pub id: RequestId,
    /// 0-based attempt number within the request.
    pub attempt: u32,
    pub group: Name,
    pub deployment: Name,
    pub reason: Reason,
    /// The pick was an exploration draw (uniform over all eligible deployments).
    pub explored: bool,
    /// Eligible deployments the pick was made from (inline up to four; serialized as a list).
    pub candidates: smallvec::SmallVec<[Name; 4]>,
    /// Probability that this deployment was picked, given the candidates (for unbiased
    /// counterfactual estimates).
    pub probability: f64,
    /// Wait the router imposed before this attempt (backoff or cooldown wait), microseconds.
    pub waited_us: u64,
}

/// Rate-limit headers a provider sent (`x-ratelimit-*`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitInfo {
    pub limit_requests: Option<u64>,
    pub remaining_requests: Option<u64>,
    pub limit_tokens: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub reset_requests_ms: Option<u64>,
    pub reset_tokens_ms: Option<u64>,
}

impl RateLimitInfo {
    pub fn is_empty(&self) -> bool {
        *self == RateLimitInfo::default()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptFinished {
    pub at: InstantUs,
    pub id: RequestId,
    pub attempt: u32,
    pub deployment: Name,
    pub class: OutcomeClass,
    /// HTTP status from the provider (0: none, e.g. a connection error or timeout).
    pub status: u16,
    pub stream: bool,
    /// Time to first token (streams) or first byte, microseconds.
    pub ttft_us: Option<u64>,
    pub duration_us: u64,
    /// Prompt tokens (including cached ones) as reported by the provider.
    pub tokens_in: u64,
    pub tokens_cache_read: u64,
    pub tokens_cache_creation: u64,
    pub tokens_out: u64,
    pub cost: PicoUsd,
    pub retry_after_ms: Option<u64>,
    pub rate_limit: RateLimitInfo,
    /// Bytes of this attempt's answer already reached the client: it cannot be retried.
    pub committed: bool,
    /// The provider's error message (secrets redacted, truncated).
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RequestResult {
    Ok,
    Err(RouteError),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestFinished {
    pub at: InstantUs,
    pub id: RequestId,
    pub result: RequestResult,
    pub latency_us: u64,
    pub ttft_us: Option<u64>,
    pub cost: PicoUsd,
    pub n_attempts: u32,
    pub n_fallbacks: u32,
    /// The deployment that answered (or the last one tried).
    pub deployment: Option<Name>,
    pub tokens_in: u64,
    pub tokens_out: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyCreated {
    pub at: InstantUs,
    /// The key's settings; the key itself appears only as its SHA-256.
    pub key: VirtualKey,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyDeleted {
    pub at: InstantUs,
    pub key_id: String,
}
