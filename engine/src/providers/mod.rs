//! Provider adapters: plain conversion functions between the OpenAI API that clients speak and
//! each provider's wire format, and the classification of provider errors. Vendor wire types stay
//! private to their module. Pure: no sockets, no clock (callers pass `created`).

pub mod anthropic;
pub mod classify;
pub mod openai;
pub mod sse;

use crate::config::{Deployment, Protocol};
use crate::core::event::Endpoint;
use crate::core::outcome::RouteError;
use serde_json::{Map, Value};

/// Keys of LiteLLM's own request extensions: never forwarded to a provider.
pub const PROXY_ONLY_PARAMS: &[&str] = &[
    "tags",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "num_retries",
    "timeout",
    "request_timeout",
    "mock_response",
    "mock_testing_fallbacks",
    "caching",
    "cache",
    "guardrails",
    "litellm_metadata",
    "litellm_call_id",
    "api_key",
    "api_base",
    "base_url",
    "proxy_server_request",
    "model_info",
    "metadata_key",
    "drop_params",
];

/// Token usage of one attempt. `prompt_tokens` includes cached prompt tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_creation_tokens: u64,
}

/// An HTTP request to make upstream.
#[derive(Clone, Debug, PartialEq)]
pub struct UpstreamRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

fn is_official_openai(dep: &Deployment) -> bool {
    dep.provider == "openai" && dep.api_base == "https://api.openai.com/v1"
}

/// Builds the upstream request for a deployment from the client's JSON body.
pub fn build_request(
    dep: &Deployment,
    endpoint: Endpoint,
    client: &Map<String, Value>,
    stream: bool,
    drop_params: bool,
) -> Result<UpstreamRequest, RouteError> {
    let key = dep.api_key.value();
    match dep.protocol {
        Protocol::Openai => {
            let body = openai::body(
                dep,
                endpoint,
                client,
                stream,
                drop_params,
                is_official_openai(dep),
            )?;
            let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
            if let Some(k) = key {
                headers.push(("authorization".to_string(), format!("Bearer {k}")));
            }
            Ok(UpstreamRequest {
                url: openai::url(&dep.api_base, endpoint),
                headers,
                body: serde_json::to_vec(&Value::Object(body)).expect("JSON values serialize"),
            })
        }
        Protocol::Anthropic => {
            if endpoint != Endpoint::Chat {
                return Err(RouteError::new(
                    400,
                    "invalid_request_error",
                    format!(
                        "{} is an Anthropic model: only chat completions are supported",
                        dep.upstream_model
                    ),
                ));
            }
            let body = anthropic::request(dep, client, stream, drop_params)?;
            let mut headers = vec![
                ("content-type".to_string(), "application/json".to_string()),
                (
                    "anthropic-version".to_string(),
                    anthropic::API_VERSION.to_string(),
                ),
            ];
            if let Some(k) = key {
                headers.push(("x-api-key".to_string(), k.to_string()));
            }
            Ok(UpstreamRequest {
                url: anthropic::url(&dep.api_base),
                headers,
                body: serde_json::to_vec(&body).expect("JSON values serialize"),
            })
        }
    }
}

/// A complete (non-streaming) response in OpenAI's format, with its usage.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    /// `None`: forward the upstream body unchanged.
    pub body: Option<Vec<u8>>,
    pub usage: Usage,
}

/// Translates a successful response body. `created` is the Unix time for translated responses.
pub fn parse_response(dep: &Deployment, body: &[u8], created: u64) -> Result<Parsed, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("upstream sent invalid JSON: {e}"))?;
    match dep.protocol {
        Protocol::Openai => Ok(Parsed {
            body: None,
            usage: openai::usage(&v).unwrap_or_default(),
        }),
        Protocol::Anthropic => {
            let (out, usage) = anthropic::response(&v, created)?;
            Ok(Parsed {
                body: Some(serde_json::to_vec(&out).expect("JSON values serialize")),
                usage,
            })
        }
    }
}

/// What a stream translator produced from one upstream event.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamOut {
    /// An OpenAI chunk to send as `data: ...` (the JSON text).
    Chunk(String),
    /// The usage chunk: sent only if the client asked for `include_usage`.
    UsageChunk(String),
    /// The upstream reported an error in the stream.
    Error { status: u16, body: Vec<u8> },
    /// The upstream said the stream is complete.
    Done,
}

/// Per-stream translation state.
pub enum StreamTranslator {
    Openai {
        usage: Option<Usage>,
        content_chars: usize,
    },
    Anthropic(Box<anthropic::StreamState>),
}

impl StreamTranslator {
    pub fn new(dep: &Deployment, created: u64, json_mode: bool) -> StreamTranslator {
        match dep.protocol {
            Protocol::Openai => StreamTranslator::Openai {
                usage: None,
                content_chars: 0,
            },
            Protocol::Anthropic => StreamTranslator::Anthropic(Box::new(
                anthropic::StreamState::new(created, json_mode),
            )),
        }
    }

    /// Feeds one SSE event from upstream.
    pub fn on_event(&mut self, ev: &sse::SseEvent, out: &mut Vec<StreamOut>) {
        match self {
            StreamTranslator::Openai {
                usage,
                content_chars,
            } => {
                if ev.data == "[DONE]" {
                    out.push(StreamOut::Done);
                    return;
                }
                if ev.data.is_empty() {
                    return;
                }
                let info = openai::chunk_info(&ev.data);
                *content_chars += info.content_chars;
                if let Some(e) = info.error {
                    out.push(StreamOut::Error {
                        status: 500,
                        body: serde_json::json!({"error": {"message": e}})
                            .to_string()
                            .into_bytes(),
                    });
                    return;
                }
                if let Some(u) = info.usage {
                    *usage = Some(u);
                }
                if info.usage_only {
                    out.push(StreamOut::UsageChunk(ev.data.clone()));
                } else {
                    out.push(StreamOut::Chunk(ev.data.clone()));
                }
            }
            StreamTranslator::Anthropic(st) => st.on_event(ev, out),
        }
    }

    pub fn usage(&self) -> Option<Usage> {
        match self {
            StreamTranslator::Openai { usage, .. } => *usage,
            StreamTranslator::Anthropic(st) => st.usage(),
        }
    }

    /// Characters generated so far (to charge a stream the client left before usage arrived).
    pub fn content_chars(&self) -> usize {
        match self {
            StreamTranslator::Openai { content_chars, .. } => *content_chars,
            StreamTranslator::Anthropic(st) => st.content_chars,
        }
    }
}

/// Whether the client's body asks for JSON output that Anthropic gets through a forced tool.
pub fn wants_json_mode(client: &Map<String, Value>) -> bool {
    anthropic::json_schema(client).is_some()
}
