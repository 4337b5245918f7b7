//! Upstream failures into outcome classes: status, headers and body in; class, retry-after,
//! rate-limit info and a redacted message out. Pure.

use crate::core::event::RateLimitInfo;
use crate::core::outcome::OutcomeClass;

#[derive(Clone, Debug, PartialEq)]
pub struct Classified {
    pub class: OutcomeClass,
    pub retry_after_ms: Option<u64>,
    pub rate_limit: RateLimitInfo,
    /// The provider's message, secrets redacted, at most 500 characters.
    pub message: String,
}

/// Provider messages that mean "the prompt does not fit the context window".
pub const CONTEXT_WINDOW_PATTERNS: &[&str] = &[
    "maximum context length",
    "context_length_exceeded",
    "context length exceeded",
    "prompt is too long",
    "exceeds the available context size",
    "input tokens exceed the configured limit",
    "exceeds the context window",
    "context window",
    "reduce the length of the messages",
    "is longer than the model's context length",
    "input is too long",
    "too many input tokens",
    "maximum input length",
    "please reduce the length",
];

pub const CONTENT_POLICY_PATTERNS: &[&str] = &[
    "content_policy_violation",
    "content management policy",
    "content_filter",
    "safety system",
    "violates our usage policy",
    "flagged by",
];

/// Replaces things that look like credentials (`sk-...`, `Bearer ...`, `key=...`) with `***`.
pub fn redact(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let bytes: Vec<char> = s.chars().collect();
    let mut i = 0;
    let is_tok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    while i < bytes.len() {
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        let lower = rest.to_ascii_lowercase();
        let prefix_len = if lower.starts_with("sk-") {
            3
        } else if lower.starts_with("bearer ") {
            7
        } else {
            0
        };
        let at_boundary = i == 0 || !is_tok(bytes[i - 1]);
        if prefix_len > 0 && at_boundary {
            let mut j = i + prefix_len;
            while j < bytes.len() && is_tok(bytes[j]) {
                j += 1;
            }
            if j - (i + prefix_len) >= 6 {
                out.extend(&bytes[i..i + prefix_len]);
                out.push_str("***");
                i = j;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The human message inside a provider's error body (OpenAI `error.message`, Anthropic
/// `error.message`, vLLM `message`, FastAPI `detail`), or the body itself.
pub fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let msg = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => {
            let pick = |v: &serde_json::Value| -> Option<String> {
                match v {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Object(o) => o
                        .get("message")
                        .and_then(|m| m.as_str())
                        .map(str::to_string),
                    _ => None,
                }
            };
            v.get("error")
                .and_then(pick)
                .or_else(|| {
                    v.get("message")
                        .and_then(|m| m.as_str())
                        .map(str::to_string)
                })
                .or_else(|| {
                    v.get("detail").map(|d| {
                        d.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| d.to_string())
                    })
                })
                .unwrap_or_else(|| text.to_string())
        }
        Err(_) => text.to_string(),
    };
    let msg = redact(msg.trim());
    if msg.chars().count() > 500 {
        let cut: String = msg.chars().take(500).collect();
        format!("{cut}…")
    } else {
        msg
    }
}

fn error_type(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let e = v.get("error")?;
    e.get("type")
        .or_else(|| e.get("code"))
        .and_then(|t| t.as_str())
        .map(str::to_string)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `Retry-After` in seconds (or an HTTP date, treated as unknown), or `retry-after-ms`.
pub fn retry_after_ms(headers: &[(String, String)]) -> Option<u64> {
    if let Some(ms) = header(headers, "retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok()) {
        return Some(ms.max(0.0) as u64);
    }
    let v = header(headers, "retry-after")?;
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| (s * 1000.0) as u64)
}

/// OpenAI's reset durations: `1s`, `6m0s`, `20ms`, `1h2m3.5s`.
pub fn parse_reset(v: &str) -> Option<u64> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return Some((secs * 1000.0) as u64);
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = v.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        let unit_ms = match c {
            'h' => 3_600_000.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1.0
            }
            'm' => 60_000.0,
            's' => 1000.0,
            _ => return None,
        };
        total += n * unit_ms;
        any = true;
    }
    if !num.is_empty() {
        return None;
    }
    any.then_some(total as u64)
}

pub fn rate_limit_info(headers: &[(String, String)]) -> RateLimitInfo {
    let num = |n: &str| header(headers, n).and_then(|v| v.trim().parse::<u64>().ok());
    RateLimitInfo {
        limit_requests: num("x-ratelimit-limit-requests")
            .or_else(|| num("anthropic-ratelimit-requests-limit")),
        remaining_requests: num("x-ratelimit-remaining-requests")
            .or_else(|| num("anthropic-ratelimit-requests-remaining")),
        limit_tokens: num("x-ratelimit-limit-tokens")
            .or_else(|| num("anthropic-ratelimit-tokens-limit")),
        remaining_tokens: num("x-ratelimit-remaining-tokens")
            .or_else(|| num("anthropic-ratelimit-tokens-remaining")),
        reset_requests_ms: header(headers, "x-ratelimit-reset-requests").and_then(parse_reset),
        reset_tokens_ms: header(headers, "x-ratelimit-reset-tokens").and_then(parse_reset),
    }
}

/// Classifies an upstream HTTP error response.
pub fn classify(status: u16, headers: &[(String, String)], body: &[u8]) -> Classified {
    let message = error_message(body);
    let lower = message.to_ascii_lowercase();
    let etype = error_type(body).unwrap_or_default().to_ascii_lowercase();
    let is_cw = etype == "context_length_exceeded"
        || CONTEXT_WINDOW_PATTERNS.iter().any(|p| lower.contains(p));
    let is_cp = etype == "content_policy_violation"
        || CONTENT_POLICY_PATTERNS.iter().any(|p| lower.contains(p));
    let class = match status {
        429 => {
            if etype == "overloaded_error" {
                OutcomeClass::Overloaded
            } else {
                OutcomeClass::RateLimited
            }
        }
        529 => OutcomeClass::Overloaded,
        408 => OutcomeClass::Timeout,
        401 | 403 => OutcomeClass::AuthError,
        404 => OutcomeClass::NotFound,
        400 | 413 | 422 if is_cw => OutcomeClass::ContextWindowExceeded,
        400 | 422 if is_cp => OutcomeClass::ContentPolicy,
        503 if lower.contains("overloaded") || etype == "overloaded_error" => {
            OutcomeClass::Overloaded
        }
        500..=599 => {
            if etype == "overloaded_error" {
                OutcomeClass::Overloaded
            } else if is_cw {
                // Some servers (older vLLM, TGI) answer an oversize prompt with a 5xx.
                OutcomeClass::ContextWindowExceeded
            } else {
                OutcomeClass::ServerError
            }
        }
        _ => OutcomeClass::BadRequest,
    };
    Classified {
        class,
        retry_after_ms: retry_after_ms(headers),
        rate_limit: rate_limit_info(headers),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn classes() {
        let c = classify(
            429,
            &h(&[
                ("Retry-After", "2"),
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-tokens", "6m0s"),
            ]),
            b"{}",
        );
        assert_eq!(c.class, OutcomeClass::RateLimited);
        assert_eq!(c.retry_after_ms, Some(2000));
        assert_eq!(c.rate_limit.remaining_requests, Some(0));
        assert_eq!(c.rate_limit.reset_tokens_ms, Some(360_000));
        let body = br#"{"error":{"message":"This model's maximum context length is 8192 tokens. However, you requested 9000 tokens","type":"invalid_request_error","code":"context_length_exceeded"}}"#;
        assert_eq!(
            classify(400, &[], body).class,
            OutcomeClass::ContextWindowExceeded
        );
        let body = br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#;
        assert_eq!(
            classify(400, &[], body).class,
            OutcomeClass::ContextWindowExceeded
        );
        let body = br#"{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens in the messages","type":"BadRequestError","code":400}"#;
        assert_eq!(
            classify(400, &[], body).class,
            OutcomeClass::ContextWindowExceeded
        );
        assert_eq!(classify(400, &[], b"{\"error\":{\"message\":\"the request exceeds the available context size, try increasing it\"}}").class, OutcomeClass::ContextWindowExceeded);
        assert_eq!(
            classify(400, &[], b"{\"error\":{\"message\":\"bad temperature\"}}").class,
            OutcomeClass::BadRequest
        );
        assert_eq!(
            classify(
                400,
                &[],
                b"{\"error\":{\"code\":\"content_policy_violation\",\"message\":\"no\"}}"
            )
            .class,
            OutcomeClass::ContentPolicy
        );
        assert_eq!(classify(529, &[], b"{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}").class, OutcomeClass::Overloaded);
        assert_eq!(classify(401, &[], b"").class, OutcomeClass::AuthError);
        assert_eq!(classify(403, &[], b"").class, OutcomeClass::AuthError);
        assert_eq!(classify(404, &[], b"").class, OutcomeClass::NotFound);
        assert_eq!(
            classify(502, &[], b"bad gateway").class,
            OutcomeClass::ServerError
        );
        assert_eq!(classify(418, &[], b"").class, OutcomeClass::BadRequest);
    }

    #[test]
    fn messages_are_redacted_and_bounded() {
        let m = error_message(br#"{"error":{"message":"Incorrect API key provided: sk-abcdef123456789. Bearer abcdefghijk"}}"#);
        assert_eq!(m, "Incorrect API key provided: sk-***. Bearer ***");
        assert!(error_message(&vec![b'x'; 2000]).chars().count() <= 501);
        assert_eq!(redact("task-runner sk-12"), "task-runner sk-12");
    }

    #[test]
    fn reset_durations() {
        assert_eq!(parse_reset("1s"), Some(1000));
        assert_eq!(parse_reset("20ms"), Some(20));
        assert_eq!(parse_reset("1h2m3.5s"), Some(3_723_500));
        assert_eq!(parse_reset("0.5"), Some(500));
        assert_eq!(parse_reset("soon"), None);
    }
}
