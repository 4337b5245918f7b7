//! OpenAI-compatible upstreams (OpenAI, vLLM, and other servers speaking Chat Completions):
//! request bodies and usage. The client's body passes through untouched apart from the model
//! name, LiteLLM-only keys, and `stream_options.include_usage` (always asked for, so stream cost
//! is exact). Pure.

use super::{Usage, PROXY_ONLY_PARAMS};
use crate::config::Deployment;
use crate::core::event::Endpoint;
use crate::core::outcome::RouteError;
use serde_json::{Map, Value};

/// Parameters OpenAI's own API takes on Chat Completions (others are dropped with `drop_params`
/// or refused). OpenAI-compatible servers at another `api_base` get everything.
const OPENAI_CHAT_PARAMS: &[&str] = &[
    "messages",
    "model",
    "audio",
    "frequency_penalty",
    "function_call",
    "functions",
    "logit_bias",
    "logprobs",
    "max_completion_tokens",
    "max_tokens",
    "metadata",
    "modalities",
    "n",
    "parallel_tool_calls",
    "prediction",
    "presence_penalty",
    "prompt_cache_key",
    "reasoning_effort",
    "response_format",
    "safety_identifier",
    "seed",
    "service_tier",
    "stop",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "user",
    "verbosity",
    "web_search_options",
];

pub fn url(api_base: &str, endpoint: Endpoint) -> String {
    let base = api_base.trim_end_matches('/');
    match endpoint {
        Endpoint::Chat => format!("{base}/chat/completions"),
        Endpoint::Completion => format!("{base}/completions"),
        Endpoint::Embedding => format!("{base}/embeddings"),
    }
}

/// Builds the upstream body. `strict_params` applies OpenAI's parameter list.
pub fn body(
    dep: &Deployment,
    endpoint: Endpoint,
    client: &Map<String, Value>,
    stream: bool,
    drop_params: bool,
    strict_params: bool,
) -> Result<Map<String, Value>, RouteError> {
    let mut out = Map::with_capacity(client.len() + dep.extra_params.len() + 1);
    let mut unsupported = Vec::new();
    for (k, v) in client {
        if PROXY_ONLY_PARAMS.contains(&k.as_str()) {
            continue;
        }
        if strict_params && endpoint == Endpoint::Chat && !OPENAI_CHAT_PARAMS.contains(&k.as_str())
        {
            if drop_params {
                continue;
            }
            unsupported.push(k.clone());
            continue;
        }
        out.insert(k.clone(), v.clone());
    }
    if !unsupported.is_empty() {
        return Err(RouteError::new(
            400,
            "invalid_request_error",
            format!(
                "{} does not support parameters: {:?}, for model={}. To drop these, set `drop_params: true` under `litellm_settings` (or on the deployment).",
                dep.provider, unsupported, dep.upstream_model
            ),
        )
        .with_param(&unsupported[0]));
    }
    // Deployment parameters are defaults: the request's own values win (as in LiteLLM).
    for (k, v) in &dep.extra_params {
        out.entry(k.clone()).or_insert_with(|| v.clone());
    }
    out.insert("model".into(), Value::String(dep.upstream_model.clone()));
    if stream && endpoint != Endpoint::Embedding {
        let so = out
            .entry("stream_options")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = so {
            m.insert("include_usage".into(), Value::Bool(true));
        } else {
            *so = serde_json::json!({"include_usage": true});
        }
    }
    Ok(out)
}

/// Usage of a response (non-streaming, or the final usage chunk of a stream).
pub fn usage(v: &Value) -> Option<Usage> {
    let u = v.get("usage")?;
    if u.is_null() {
        return None;
    }
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let cached = u
        .get("prompt_tokens_details")
        .and_then(|d| d.get("cached_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let prompt = if u.get("prompt_tokens").is_some() {
        n("prompt_tokens")
    } else {
        n("input_tokens")
    };
    let completion = if u.get("completion_tokens").is_some() {
        n("completion_tokens")
    } else {
        n("output_tokens")
    };
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        cache_read_tokens: cached,
        cache_creation_tokens: 0,
    })
}

/// What one chunk of an OpenAI-compatible stream carries, read without re-encoding it.
#[derive(Debug, Default, PartialEq)]
pub struct ChunkInfo {
    pub usage: Option<Usage>,
    /// A chunk with no choices (the trailing usage chunk): hidden unless the client asked.
    pub usage_only: bool,
    /// Characters of generated content in this chunk (for charging a stream the client left).
    pub content_chars: usize,
    /// An in-band error object.
    pub error: Option<String>,
}

pub fn chunk_info(data: &str) -> ChunkInfo {
    let Ok(v) = serde_json::from_str::<Value>(data) else {
        return ChunkInfo::default();
    };
    let choices = v.get("choices").and_then(Value::as_array);
    let usage_only =
        choices.is_none_or(|c| c.is_empty()) && v.get("usage").is_some_and(|u| !u.is_null());
    let mut content_chars = 0;
    if let Some(cs) = choices {
        for c in cs {
            let d = c.get("delta").or_else(|| c.get("text"));
            if let Some(d) = d {
                if let Some(s) = d.as_str() {
                    content_chars += s.len();
                }
                for key in ["content", "reasoning_content"] {
                    if let Some(s) = d.get(key).and_then(Value::as_str) {
                        content_chars += s.len();
                    }
                }
                if let Some(tc) = d.get("tool_calls").and_then(Value::as_array) {
                    for t in tc {
                        if let Some(a) = t
                            .get("function")
                            .and_then(|f| f.get("arguments"))
                            .and_then(Value::as_str)
                        {
                            content_chars += a.len();
                        }
                    }
                }
            }
            if let Some(s) = c.get("text").and_then(Value::as_str) {
                content_chars += s.len();
            }
        }
    }
    let error = v.get("error").map(|e| {
        e.get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| e.to_string())
    });
    ChunkInfo {
        usage: usage(&v),
        usage_only,
        content_chars,
        error,
    }
}
