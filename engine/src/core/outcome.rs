//! What an attempt came to, in classes the router understands, and the errors a request can end
//! with. The provider adapters map HTTP statuses and provider messages into these classes; the
//! router never looks at raw bodies.

use serde::{Deserialize, Serialize};

/// The class of an attempt's outcome. The router's retry, fallback and cooldown rules are written
/// in terms of these.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeClass {
    Success,
    /// 429 from the provider.
    RateLimited,
    /// The prompt does not fit the model's context window.
    ContextWindowExceeded,
    /// The provider refused the content.
    ContentPolicy,
    /// No complete answer within the attempt's timeout.
    Timeout,
    /// Connection refused, reset, DNS failure, TLS failure.
    ConnectionError,
    /// 5xx other than overload.
    ServerError,
    /// 529 / `overloaded_error` / 503 with an overload message: retryable.
    Overloaded,
    /// 401 / 403, or a missing credential.
    AuthError,
    /// 404: the model or endpoint does not exist.
    NotFound,
    /// Other 4xx.
    BadRequest,
    /// The stream broke after it had started.
    StreamInterrupted,
    /// The client went away before the attempt finished.
    Cancelled,
}

impl OutcomeClass {
    pub const ALL: [OutcomeClass; 13] = [
        OutcomeClass::Success,
        OutcomeClass::RateLimited,
        OutcomeClass::ContextWindowExceeded,
        OutcomeClass::ContentPolicy,
        OutcomeClass::Timeout,
        OutcomeClass::ConnectionError,
        OutcomeClass::ServerError,
        OutcomeClass::Overloaded,
        OutcomeClass::AuthError,
        OutcomeClass::NotFound,
        OutcomeClass::BadRequest,
        OutcomeClass::StreamInterrupted,
        OutcomeClass::Cancelled,
    ];

    pub fn is_success(self) -> bool {
        self == OutcomeClass::Success
    }

    pub fn name(self) -> &'static str {
        match self {
            OutcomeClass::Success => "success",
            OutcomeClass::RateLimited => "rate_limited",
            OutcomeClass::ContextWindowExceeded => "context_window_exceeded",
            OutcomeClass::ContentPolicy => "content_policy",
            OutcomeClass::Timeout => "timeout",
            OutcomeClass::ConnectionError => "connection_error",
            OutcomeClass::ServerError => "server_error",
            OutcomeClass::Overloaded => "overloaded",
            OutcomeClass::AuthError => "auth_error",
            OutcomeClass::NotFound => "not_found",
            OutcomeClass::BadRequest => "bad_request",
            OutcomeClass::StreamInterrupted => "stream_interrupted",
            OutcomeClass::Cancelled => "cancelled",
        }
    }

    pub fn from_name(s: &str) -> Option<OutcomeClass> {
        OutcomeClass::ALL.iter().copied().find(|c| c.name() == s)
    }

    /// The HTTP status a client sees when this is the last error, if the provider gave none
    /// (LiteLLM's mapping: timeouts are 408, connection errors 500).
    pub fn default_status(self) -> u16 {
        match self {
            OutcomeClass::Success => 200,
            OutcomeClass::RateLimited => 429,
            OutcomeClass::ContextWindowExceeded
            | OutcomeClass::ContentPolicy
            | OutcomeClass::BadRequest => 400,
            OutcomeClass::Timeout => 408,
            OutcomeClass::ConnectionError
            | OutcomeClass::ServerError
            | OutcomeClass::StreamInterrupted => 500,
            OutcomeClass::Overloaded => 529,
            OutcomeClass::AuthError => 401,
            OutcomeClass::NotFound => 404,
            OutcomeClass::Cancelled => 499,
        }
    }

    /// OpenAI-style error `type` for this class.
    pub fn error_type(self) -> &'static str {
        match self {
            OutcomeClass::RateLimited => "rate_limit_error",
            OutcomeClass::ContextWindowExceeded
            | OutcomeClass::ContentPolicy
            | OutcomeClass::BadRequest => "invalid_request_error",
            OutcomeClass::AuthError => "authentication_error",
            OutcomeClass::NotFound => "not_found_error",
            OutcomeClass::Timeout => "timeout",
            _ => "api_error",
        }
    }
}

/// Why a request ended without an answer. Becomes an OpenAI-style error body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteError {
    pub status: u16,
    /// OpenAI `type` (`invalid_request_error`, `rate_limit_error`, `budget_exceeded`, ...).
    pub kind: String,
    /// OpenAI `code`, when there is a stable one (`context_length_exceeded`, `model_not_found`).
    pub code: Option<String>,
    pub param: Option<String>,
    pub message: String,
    /// For 429s: when to try again (becomes `Retry-After`).
    pub retry_after_ms: Option<u64>,
}

impl RouteError {
    pub fn new(status: u16, kind: &str, message: impl Into<String>) -> RouteError {
        RouteError {
            status,
            kind: kind.into(),
            code: None,
            param: None,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    pub fn with_code(mut self, code: &str) -> RouteError {
        self.code = Some(code.into());
        self
    }

    pub fn with_param(mut self, param: &str) -> RouteError {
        self.param = Some(param.into());
        self
    }
}
