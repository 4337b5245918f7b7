//! The client's request: JSON parsed and checked, with the facts routing needs pulled out (model,
//! stream, token estimate, tags, user). Every mistake becomes an OpenAI-style 400 naming the
//! parameter.

use crate::core::event::{Endpoint, RequestOverrides};
use crate::core::outcome::RouteError;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

pub struct ClientRequest {
    pub endpoint: Endpoint,
    pub body: Map<String, Value>,
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
    pub max_tokens: Option<u64>,
    pub tags: Vec<String>,
    pub user: Option<String>,
    pub drop_params: Option<bool>,
    /// Bytes of prompt text (upper bound on the token count).
    pub text_bytes: u64,
    pub n_messages: u64,
    pub prompt_sha: String,
    /// Client headers to pass on to the provider (`forward_client_headers_to_llm_api`).
    pub forwarded_headers: Vec<(String, String)>,
    /// LiteLLM's request-level routing parameters (`fallbacks`, `num_retries`, `timeout`,
    /// `mock_testing_fallbacks`).
    pub overrides: RequestOverrides,
}

fn bad(param: &str, msg: impl Into<String>) -> RouteError {
    RouteError::new(400, "invalid_request_error", msg)
        .with_param(param)
        .with_code("400")
}

fn check_type(
    body: &Map<String, Value>,
    key: &str,
    ok: fn(&Value) -> bool,
    what: &str,
) -> Result<(), RouteError> {
    match body.get(key) {
        Some(v) if !v.is_null() && !ok(v) => Err(bad(key, format!("`{key}` must be {what}"))),
        _ => Ok(()),
    }
}

/// Parses and validates a request body.
pub fn parse(endpoint: Endpoint, bytes: &[u8]) -> Result<ClientRequest, RouteError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(bad(
            "body",
            "the request body is empty; expected a JSON object",
        ));
    }
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| bad("body", format!("the request body is not valid JSON: {e}")))?;
    let Value::Object(body) = v else {
        return Err(bad("body", "the request body must be a JSON object"));
    };
    let model = match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(bad("model", "`model` is required"))
        }
        Some(_) => return Err(bad("model", "`model` must be a string")),
    };
    check_type(&body, "stream", Value::is_boolean, "a boolean")?;
    check_type(&body, "max_tokens", Value::is_u64, "a non-negative integer")?;
    check_type(
        &body,
        "max_completion_tokens",
        Value::is_u64,
        "a non-negative integer",
    )?;
    check_type(&body, "n", Value::is_u64, "a positive integer")?;
    check_type(&body, "temperature", Value::is_number, "a number")?;
    check_type(&body, "top_p", Value::is_number, "a number")?;
    check_type(&body, "tools", Value::is_array, "a list")?;
    check_type(
        &body,
        "stop",
        |v| v.is_string() || v.is_array(),
        "a string or a list of strings",
    )?;
    check_type(&body, "user", Value::is_string, "a string")?;
    check_type(&body, "stream_options", Value::is_object, "an object")?;
    check_type(&body, "tags", Value::is_array, "a list of strings")?;
    check_type(&body, "metadata", Value::is_object, "an object")?;
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if endpoint == Endpoint::Embedding && stream {
        return Err(bad("stream", "embeddings cannot be streamed"));
    }
    let include_usage = stream
        && body
            .get("stream_options")
            .and_then(|s| s.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
    let max_tokens = body
        .get("max_tokens")
        .or_else(|| body.get("max_completion_tokens"))
        .and_then(Value::as_u64);
    let mut text_bytes = 0u64;
    let mut n_messages = 0u64;
    let hashed: &Value;
    match endpoint {
        Endpoint::Chat => {
            let msgs = match body.get("messages") {
                Some(Value::Array(a)) if !a.is_empty() => a,
                Some(Value::Array(_)) => {
                    return Err(bad("messages", "`messages` must not be empty"))
                }
                None | Some(Value::Null) => return Err(bad("messages", "`messages` is required")),
                Some(_) => return Err(bad("messages", "`messages` must be a list of messages")),
            };
            for (i, m) in msgs.iter().enumerate() {
                let Some(o) = m.as_object() else {
                    return Err(bad("messages", format!("messages[{i}] must be an object")));
                };
                match o.get("role") {
                    Some(Value::String(r)) if ["system", "user", "assistant", "tool", "function", "developer"].contains(&r.as_str()) => {}
                    Some(Value::String(r)) => return Err(bad("messages", format!("messages[{i}].role `{r}` is not one of system, developer, user, assistant, tool"))),
                    _ => return Err(bad("messages", format!("messages[{i}].role is required"))),
                }
                match o.get("content") {
                    None | Some(Value::Null) | Some(Value::String(_)) | Some(Value::Array(_)) => {}
                    Some(_) => {
                        return Err(bad(
                            "messages",
                            format!(
                                "messages[{i}].content must be a string or a list of content parts"
                            ),
                        ))
                    }
                }
                text_bytes += content_bytes(o.get("content"));
                if let Some(Value::Array(calls)) = o.get("tool_calls") {
                    for c in calls {
                        text_bytes += c
                            .get("function")
                            .and_then(|f| f.get("arguments"))
                            .and_then(Value::as_str)
                            .map_or(0, |s| s.len() as u64);
                    }
                }
                n_messages += 1;
            }
            if let Some(Value::Array(tools)) = body.get("tools") {
                for t in tools {
                    text_bytes += t.to_string().len() as u64;
                }
            }
            hashed = body.get("messages").expect("checked above");
        }
        Endpoint::Completion => {
            let p = body
                .get("prompt")
                .ok_or_else(|| bad("prompt", "`prompt` is required"))?;
            text_bytes = strings_bytes(p)
                .ok_or_else(|| bad("prompt", "`prompt` must be a string or a list of strings"))?;
            hashed = p;
        }
        Endpoint::Embedding => {
            let p = body
                .get("input")
                .ok_or_else(|| bad("input", "`input` is required"))?;
            text_bytes = strings_bytes(p).ok_or_else(|| {
                bad(
                    "input",
                    "`input` must be a string, a list of strings or a list of token ids",
                )
            })?;
            hashed = p;
        }
    }
    let mut tags: Vec<String> = Vec::new();
    for src in [
        body.get("tags"),
        body.get("metadata").and_then(|m| m.get("tags")),
    ]
    .into_iter()
    .flatten()
    {
        if let Value::Array(a) = src {
            tags.extend(a.iter().filter_map(Value::as_str).map(str::to_string));
        }
    }
    let user = body.get("user").and_then(Value::as_str).map(str::to_string);
    let drop_params = body.get("drop_params").and_then(Value::as_bool);
    let overrides = overrides(&body)?;
    let digest = Sha256::digest(serde_json::to_vec(hashed).unwrap_or_default());
    let prompt_sha = crate::config::load::hex(&digest[..16]);
    Ok(ClientRequest {
        endpoint,
        body,
        model,
        stream,
        include_usage,
        max_tokens,
        tags,
        user,
        drop_params,
        text_bytes,
        n_messages,
        prompt_sha,
        forwarded_headers: Vec::new(),
        overrides,
    })
}

/// The request-level routing parameters, checked. Unknown shapes are a 400 naming the parameter
/// rather than silently ignored: a client that asks for a fallback must get one or hear why not.
fn overrides(body: &Map<String, Value>) -> Result<RequestOverrides, RouteError> {
    let mut o = RequestOverrides::default();
    match body.get("fallbacks") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            let mut groups = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let model = match item {
                    Value::String(m) if !m.is_empty() => m.clone(),
                    Value::Object(obj) => {
                        if let Some(k) = obj.keys().find(|k| k.as_str() != "model") {
                            return Err(bad(
                                "fallbacks",
                                format!("fallbacks[{i}]: `{k}` is not supported in a fallback; give the model group only (`\"model-name\"` or `{{\"model\": \"model-name\"}}`)"),
                            ));
                        }
                        match obj.get("model") {
                            Some(Value::String(m)) if !m.is_empty() => m.clone(),
                            _ => {
                                return Err(bad(
                                    "fallbacks",
                                    format!("fallbacks[{i}].model must be a model group name"),
                                ))
                            }
                        }
                    }
                    _ => {
                        return Err(bad(
                            "fallbacks",
                            format!("fallbacks[{i}] must be a model group name"),
                        ))
                    }
                };
                groups.push(model);
            }
            o.fallbacks = Some(groups);
        }
        Some(_) => {
            return Err(bad(
                "fallbacks",
                "`fallbacks` must be a list of model group names",
            ))
        }
    }
    match body.get("num_retries") {
        None | Some(Value::Null) => {}
        Some(v) => match v.as_u64() {
            Some(n) if n <= 100 => o.num_retries = Some(n as u32),
            _ => {
                return Err(bad(
                    "num_retries",
                    "`num_retries` must be an integer from 0 to 100",
                ))
            }
        },
    }
    for key in ["timeout", "request_timeout"] {
        match body.get(key) {
            None | Some(Value::Null) => {}
            Some(v) => {
                let secs = v
                    .as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse::<f64>().ok()));
                match secs {
                    Some(s) if s > 0.0 && s <= 86_400.0 => {
                        o.timeout_us = Some((s * 1e6).round() as u64);
                        break;
                    }
                    _ => {
                        let msg = format!(
                            "`{key}` must be a number of seconds, greater than 0 and at most 86400"
                        );
                        return Err(bad(key, msg));
                    }
                }
            }
        }
    }
    if body.get("mock_response").is_some_and(|v| !v.is_null()) {
        // Stripping it would turn a client's mock into a real, paid call.
        return Err(bad(
            "mock_response",
            "`mock_response` is not supported: Switchyard always calls a deployment. For tests without a provider, run the fake fleet (`sim mock`) as the deployment; to exercise fallbacks, use `mock_testing_fallbacks`",
        ));
    }
    match body.get("mock_testing_fallbacks") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => o.mock_testing_fallbacks = *b,
        Some(_) => {
            return Err(bad(
                "mock_testing_fallbacks",
                "`mock_testing_fallbacks` must be a boolean",
            ))
        }
    }
    Ok(o)
}

fn content_bytes(c: Option<&Value>) -> u64 {
    match c {
        Some(Value::String(s)) => s.len() as u64,
        Some(Value::Array(parts)) => parts
            .iter()
            .map(|p| match p.get("type").and_then(Value::as_str) {
                Some("text") | None => p
                    .get("text")
                    .and_then(Value::as_str)
                    .map_or(0, |s| s.len() as u64),
                // An image costs roughly a fixed number of tokens, far below its base64 size.
                Some("image_url") => 3_400,
                _ => 0,
            })
            .sum(),
        _ => 0,
    }
}

fn strings_bytes(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => Some(s.len() as u64),
        Value::Array(a) => {
            let mut n = 0;
            for x in a {
                n += match x {
                    Value::String(s) => s.len() as u64,
                    Value::Number(_) => 4,
                    Value::Array(inner) => inner.len() as u64 * 4,
                    _ => return None,
                };
            }
            Some(n)
        }
        _ => None,
    }
}

/// The text of a chat prompt, for exact tokenization.
fn prompt_text(req: &ClientRequest) -> String {
    let mut s = String::new();
    let push = |s: &mut String, v: &Value| match v {
        Value::String(t) => s.push_str(t),
        Value::Array(parts) => {
            for p in parts {
                if let Some(t) = p.as_str().or_else(|| p.get("text").and_then(Value::as_str)) {
                    s.push_str(t);
                    s.push('\n');
                }
            }
        }
        _ => {}
    };
    match req.endpoint {
        Endpoint::Chat => {
            if let Some(Value::Array(msgs)) = req.body.get("messages") {
                for m in msgs {
                    if let Some(c) = m.get("content") {
                        push(&mut s, c);
                    }
                    s.push('\n');
                }
            }
        }
        Endpoint::Completion => push(&mut s, req.body.get("prompt").unwrap_or(&Value::Null)),
        Endpoint::Embedding => push(&mut s, req.body.get("input").unwrap_or(&Value::Null)),
    }
    s
}

fn tokenizer() -> Option<&'static tiktoken_rs::CoreBPE> {
    static BPE: OnceLock<Option<tiktoken_rs::CoreBPE>> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::o200k_base().ok()).as_ref()
}

/// Prompt tokens. The cheap estimate (bytes / 4, plus 4 per message) is used unless the prompt
/// might not fit `tightest_limit` (the smallest known context window it could be routed to):
/// then the prompt is tokenized with `o200k_base` so the pre-check does not misfire.
pub fn estimate_tokens(req: &ClientRequest, tightest_limit: Option<u64>) -> u64 {
    let overhead = 4 * req.n_messages + 3;
    let estimate = req.text_bytes.div_ceil(4) + overhead;
    match tightest_limit {
        // A BPE token is at least one byte: a prompt with fewer bytes than the limit fits.
        Some(limit) if req.text_bytes + overhead > limit => match tokenizer() {
            Some(bpe) => bpe.encode_ordinary(&prompt_text(req)).len() as u64 + overhead,
            None => estimate,
        },
        _ => estimate,
    }
}

/// Output tokens when a provider reports no usage (cancelled streams): about four characters a
/// token.
pub fn estimate_output_tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4)
}

/// Client headers worth passing on to a provider: `x-*` and `anthropic-beta`, never credentials,
/// cookies or LiteLLM's own headers.
pub fn forwardable(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    if [
        "x-api-key",
        "x-litellm-api-key",
        "x-forwarded-for",
        "x-real-ip",
    ]
    .contains(&n.as_str())
        || n.starts_with("x-litellm-")
    {
        return false;
    }
    n.starts_with("x-") || n == "anthropic-beta"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_parameter() {
        let cases: &[(&str, &str)] = &[
            ("", "body"),
            ("{not json", "body"),
            ("[1]", "body"),
            ("{}", "model"),
            ("{\"model\": 3, \"messages\": []}", "model"),
            ("{\"model\": \"m\"}", "messages"),
            ("{\"model\": \"m\", \"messages\": []}", "messages"),
            ("{\"model\": \"m\", \"messages\": \"hi\"}", "messages"),
            ("{\"model\": \"m\", \"messages\": [{\"content\": \"x\"}]}", "messages"),
            ("{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": 5}]}", "messages"),
            ("{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"stream\": \"yes\"}", "stream"),
            ("{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"max_tokens\": -1}", "max_tokens"),
            ("{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"temperature\": \"hot\"}", "temperature"),
        ];
        for (body, param) in cases {
            let e = parse(Endpoint::Chat, body.as_bytes())
                .err()
                .unwrap_or_else(|| panic!("accepted {body}"));
            assert_eq!(e.status, 400, "{body}");
            assert_eq!(e.param.as_deref(), Some(*param), "{body}: {}", e.message);
        }
        assert!(parse(Endpoint::Embedding, br#"{"model": "e"}"#).is_err());
        assert!(parse(
            Endpoint::Embedding,
            br#"{"model": "e", "input": ["a", "b"]}"#
        )
        .is_ok());
        assert!(parse(Endpoint::Completion, br#"{"model": "c", "prompt": "hi"}"#).is_ok());
    }

    #[test]
    fn facts_are_extracted() {
        let r = parse(
            Endpoint::Chat,
            br#"{"model": "m", "stream": true, "stream_options": {"include_usage": true}, "max_tokens": 9, "user": "u", "tags": ["a"], "metadata": {"tags": ["b"]}, "messages": [{"role": "user", "content": "hello world"}]}"#,
        )
        .unwrap();
        assert!(r.stream && r.include_usage);
        assert_eq!(r.max_tokens, Some(9));
        assert_eq!(r.tags, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(r.user.as_deref(), Some("u"));
        assert_eq!(r.text_bytes, 11);
        assert_eq!(estimate_tokens(&r, None), 3 + 4 + 3);
        // Tight limit: exact tokenization ("hello world" and the message separator: three tokens).
        assert_eq!(estimate_tokens(&r, Some(5)), 3 + 7);
        assert!(r.overrides.is_empty());
    }

    #[test]
    fn request_level_routing_parameters() {
        let chat = |extra: &str| {
            parse(
                Endpoint::Chat,
                format!(
                    r#"{{"model": "m", "messages": [{{"role": "user", "content": "x"}}]{extra}}}"#
                )
                .as_bytes(),
            )
        };
        let r = chat(r#", "fallbacks": ["b", {"model": "c"}], "num_retries": 0, "timeout": 2.5, "mock_testing_fallbacks": true"#).unwrap();
        assert_eq!(
            r.overrides,
            RequestOverrides {
                fallbacks: Some(vec!["b".into(), "c".into()]),
                num_retries: Some(0),
                timeout_us: Some(2_500_000),
                mock_testing_fallbacks: true,
            }
        );
        assert_eq!(
            chat(r#", "request_timeout": "30""#)
                .unwrap()
                .overrides
                .timeout_us,
            Some(30_000_000)
        );
        assert_eq!(
            chat(r#", "fallbacks": []"#).unwrap().overrides.fallbacks,
            Some(vec![])
        );
        for (extra, param) in [
            (r#", "fallbacks": "b""#, "fallbacks"),
            (r#", "fallbacks": [3]"#, "fallbacks"),
            (
                r#", "fallbacks": [{"model": "b", "messages": []}]"#,
                "fallbacks",
            ),
            (r#", "fallbacks": [{"messages": []}]"#, "fallbacks"),
            (r#", "num_retries": -1"#, "num_retries"),
            (r#", "num_retries": 1000"#, "num_retries"),
            (r#", "timeout": 0"#, "timeout"),
            (r#", "timeout": "soon""#, "timeout"),
            (r#", "request_timeout": -5"#, "request_timeout"),
            (
                r#", "mock_testing_fallbacks": "yes""#,
                "mock_testing_fallbacks",
            ),
            (r#", "mock_response": "hi""#, "mock_response"),
        ] {
            let e = chat(extra)
                .err()
                .unwrap_or_else(|| panic!("accepted {extra}"));
            assert_eq!(
                (e.status, e.param.as_deref()),
                (400, Some(param)),
                "{extra}: {}",
                e.message
            );
        }
    }
}
