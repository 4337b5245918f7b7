//! Anthropic's Messages API: OpenAI chat requests into it, its responses and event streams back
//! into OpenAI's format. Pure conversion functions; Anthropic's wire types stay in this module.

use super::sse::SseEvent;
use super::{StreamOut, Usage, PROXY_ONLY_PARAMS};
use crate::config::Deployment;
use crate::core::outcome::RouteError;
use serde_json::{json, Map, Value};

pub const API_VERSION: &str = "2023-06-01";
pub const DEFAULT_MAX_TOKENS: u64 = 4096;
/// The forced tool through which `response_format` JSON schemas are answered.
pub const JSON_TOOL: &str = "json_tool_call";

/// OpenAI parameters Anthropic cannot take: dropped with `drop_params`, else a 400.
const UNSUPPORTED: &[&str] = &[
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "service_tier",
    "modalities",
    "audio",
    "prediction",
    "functions",
    "function_call",
    "store",
    "web_search_options",
];

/// Parameters handled here (translated or passed through under the same name).
const HANDLED: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "temperature",
    "top_p",
    "top_k",
    "user",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "stream",
    "stream_options",
    "n",
    "metadata",
    "thinking",
    "reasoning_effort",
];

pub fn url(api_base: &str) -> String {
    let base = api_base.trim_end_matches('/');
    if base.ends_with("/v1/messages") {
        base.to_string()
    } else if base.ends_with("/v1") {
        format!("{base}/messages")
    } else {
        format!("{base}/v1/messages")
    }
}

fn bad(msg: impl Into<String>) -> RouteError {
    RouteError::new(400, "invalid_request_error", msg)
}

/// The JSON schema a `response_format` asks for, if any.
pub fn json_schema(client: &Map<String, Value>) -> Option<Value> {
    let rf = client.get("response_format")?;
    match rf.get("type").and_then(Value::as_str)? {
        "json_schema" => Some(
            rf.get("json_schema")
                .and_then(|j| j.get("schema"))
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"})),
        ),
        "json_object" => Some(json!({"type": "object"})),
        _ => None,
    }
}

/// Content of an OpenAI message as Anthropic content blocks.
fn blocks(content: &Value) -> Result<Vec<Value>, RouteError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(if s.is_empty() {
            Vec::new()
        } else {
            vec![json!({"type": "text", "text": s})]
        }),
        Value::Array(parts) => {
            let mut out = Vec::with_capacity(parts.len());
            for p in parts {
                let ty = p.get("type").and_then(Value::as_str).unwrap_or("text");
                match ty {
                    "text" => {
                        let mut b = json!({"type": "text", "text": p.get("text").and_then(Value::as_str).unwrap_or("")});
                        if let Some(cc) = p.get("cache_control") {
                            b["cache_control"] = cc.clone();
                        }
                        out.push(b);
                    }
                    "image_url" => {
                        let url = p
                            .get("image_url")
                            .and_then(|i| i.get("url").or(Some(i)))
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad("image_url part without a url"))?;
                        out.push(image_block(url)?);
                    }
                    other => {
                        return Err(bad(format!(
                            "content part type `{other}` is not supported for Anthropic models"
                        )))
                    }
                }
            }
            Ok(out)
        }
        _ => Err(bad("message content must be a string or a list of parts").with_param("messages")),
    }
}

fn image_block(url: &str) -> Result<Value, RouteError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| bad("malformed data: URL in image_url"))?;
        let media_type = meta
            .strip_suffix(";base64")
            .ok_or_else(|| bad("image data: URLs must be base64"))?;
        Ok(
            json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}),
        )
    } else if url.starts_with("http://") || url.starts_with("https://") {
        Ok(json!({"type": "image", "source": {"type": "url", "url": url}}))
    } else {
        Err(bad("image_url must be a data: URL or an http(s) URL"))
    }
}

/// Appends a turn, merging it into the previous one when the role repeats (Anthropic requires
/// user and assistant to alternate).
fn push_turn(turns: &mut Vec<(String, Vec<Value>)>, role: &str, content: Vec<Value>) {
    if content.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some((r, c)) if r == role => c.extend(content),
        _ => turns.push((role.to_string(), content)),
    }
}

/// Builds the Messages API body from an OpenAI chat body.
pub fn request(
    dep: &Deployment,
    client: &Map<String, Value>,
    stream: bool,
    drop_params: bool,
) -> Result<Value, RouteError> {
    let mut unsupported: Vec<String> = Vec::new();
    for (k, v) in client {
        if UNSUPPORTED.contains(&k.as_str()) || (k == "n" && v.as_u64().is_some_and(|n| n > 1)) {
            unsupported.push(k.clone());
        }
    }
    if !unsupported.is_empty() && !drop_params {
        return Err(bad(format!(
            "anthropic does not support parameters: {unsupported:?}, for model={}. To drop these, set `drop_params: true` under `litellm_settings` (or on the deployment).",
            dep.upstream_model
        ))
        .with_param(&unsupported[0]));
    }
    let messages = client
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("`messages` is required").with_param("messages"))?;
    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("messages[{i}] has no role")).with_param("messages"))?;
        let content = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => system.extend(blocks(content)?),
            "user" => push_turn(&mut turns, "user", blocks(content)?),
            "assistant" => {
                let mut c = blocks(content)?;
                if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
                    for tc in calls {
                        let f = tc.get("function").unwrap_or(&Value::Null);
                        let args = f.get("arguments").and_then(Value::as_str).unwrap_or("{}");
                        let input: Value = if args.trim().is_empty() {
                            json!({})
                        } else {
                            serde_json::from_str(args).map_err(|_| {
                                bad(format!(
                                    "messages[{i}].tool_calls: arguments are not valid JSON"
                                ))
                            })?
                        };
                        c.push(json!({
                            "type": "tool_use",
                            "id": tc.get("id").and_then(Value::as_str).unwrap_or(""),
                            "name": f.get("name").and_then(Value::as_str).unwrap_or(""),
                            "input": input,
                        }));
                    }
                }
                push_turn(&mut turns, "assistant", c);
            }
            "tool" | "function" => {
                let id = m
                    .get("tool_call_id")
                    .or_else(|| m.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let inner = match content {
                    Value::String(s) => Value::String(s.clone()),
                    other => Value::Array(blocks(other)?),
                };
                push_turn(
                    &mut turns,
                    "user",
                    vec![json!({"type": "tool_result", "tool_use_id": id, "content": inner})],
                );
            }
            other => {
                return Err(
                    bad(format!("messages[{i}]: unknown role `{other}`")).with_param("messages")
                )
            }
        }
    }
    if turns.first().is_some_and(|(r, _)| r == "assistant") {
        turns.insert(
            0,
            ("user".into(), vec![json!({"type": "text", "text": "."})]),
        );
    }
    if turns.is_empty() {
        return Err(
            bad("at least one user or assistant message is required").with_param("messages")
        );
    }
    let mut out = Map::new();
    out.insert("model".into(), Value::String(dep.upstream_model.clone()));
    let max_tokens = client
        .get("max_tokens")
        .or_else(|| client.get("max_completion_tokens"))
        .and_then(Value::as_u64)
        .or_else(|| dep.extra_params.get("max_tokens").and_then(Value::as_u64))
        .unwrap_or(DEFAULT_MAX_TOKENS);
    out.insert("max_tokens".into(), json!(max_tokens));
    out.insert(
        "messages".into(),
        Value::Array(
            turns
                .into_iter()
                .map(|(role, content)| json!({"role": role, "content": content}))
                .collect(),
        ),
    );
    if !system.is_empty() {
        let has_cache = system.iter().any(|b| b.get("cache_control").is_some());
        if has_cache {
            out.insert("system".into(), Value::Array(system));
        } else {
            let joined: Vec<&str> = system
                .iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            out.insert("system".into(), Value::String(joined.join("\n")));
        }
    }
    match client.get("stop") {
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            out.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    for k in ["temperature", "top_p", "top_k", "thinking"] {
        if let Some(v) = client.get(k).filter(|v| !v.is_null()) {
            out.insert(k.into(), v.clone());
        }
    }
    if let Some(u) = client.get("user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({"user_id": u}));
    }
    let mut tools: Vec<Value> = Vec::new();
    if let Some(ts) = client.get("tools").and_then(Value::as_array) {
        for t in ts {
            let f = t.get("function").ok_or_else(|| {
                bad("only `function` tools are supported for Anthropic models").with_param("tools")
            })?;
            let mut tool = json!({
                "name": f.get("name").and_then(Value::as_str).unwrap_or(""),
                "input_schema": f.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            });
            if let Some(d) = f.get("description").and_then(Value::as_str) {
                tool["description"] = Value::String(d.to_string());
            }
            if let Some(cc) = t.get("cache_control") {
                tool["cache_control"] = cc.clone();
            }
            tools.push(tool);
        }
    }
    let mut tool_choice: Option<Value> = match client.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "required" | "any" => Some(json!({"type": "any"})),
            "none" => Some(json!({"type": "none"})),
            other => {
                return Err(bad(format!("unknown tool_choice `{other}`")).with_param("tool_choice"))
            }
        },
        Some(v) => {
            let name = v
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str);
            match name {
                Some(n) => Some(json!({"type": "tool", "name": n})),
                None => {
                    return Err(
                        bad("tool_choice must be auto, required, none or a named function")
                            .with_param("tool_choice"),
                    )
                }
            }
        }
    };
    if let Some(schema) = json_schema(client) {
        tools.push(json!({"name": JSON_TOOL, "description": "Respond with the requested JSON.", "input_schema": schema}));
        tool_choice = Some(json!({"type": "tool", "name": JSON_TOOL}));
    }
    if client.get("parallel_tool_calls") == Some(&Value::Bool(false)) {
        let tc = tool_choice.get_or_insert_with(|| json!({"type": "auto"}));
        tc["disable_parallel_tool_use"] = Value::Bool(true);
    }
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(tc) = tool_choice {
        out.insert("tool_choice".into(), tc);
    }
    if stream {
        out.insert("stream".into(), Value::Bool(true));
    }
    // Deployment-level parameters (defaults) and other Anthropic parameters pass through.
    for (k, v) in client {
        if !HANDLED.contains(&k.as_str())
            && !UNSUPPORTED.contains(&k.as_str())
            && !PROXY_ONLY_PARAMS.contains(&k.as_str())
        {
            out.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    for (k, v) in &dep.extra_params {
        out.entry(k.clone()).or_insert_with(|| v.clone());
    }
    Ok(Value::Object(out))
}

pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "end_turn" | "stop_sequence" | "pause_turn" => "stop",
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

fn usage_of(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let input = n("input_tokens");
    let read = n("cache_read_input_tokens");
    let creation = n("cache_creation_input_tokens");
    Usage {
        prompt_tokens: input + read + creation,
        completion_tokens: n("output_tokens"),
        cache_read_tokens: read,
        cache_creation_tokens: creation,
    }
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "cache_creation_input_tokens": u.cache_creation_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
    })
}

fn chat_id(id: &str) -> String {
    if id.is_empty() {
        "chatcmpl-anthropic".into()
    } else {
        format!("chatcmpl-{id}")
    }
}

/// A Messages API response as an OpenAI chat completion.
pub fn response(v: &Value, created: u64) -> Result<(Value, Usage), String> {
    let content = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or("Anthropic response has no `content`")?;
    let mut text = String::new();
    let mut thinking = String::new();
    let mut tool_calls: Vec<Value> = Vec::new();
    let mut json_answer: Option<String> = None;
    for b in content {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("thinking") => {
                thinking.push_str(b.get("thinking").and_then(Value::as_str).unwrap_or(""))
            }
            Some("tool_use") => {
                let name = b.get("name").and_then(Value::as_str).unwrap_or("");
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                if name == JSON_TOOL {
                    json_answer = Some(input.to_string());
                    continue;
                }
                tool_calls.push(json!({
                    "id": b.get("id").and_then(Value::as_str).unwrap_or(""),
                    "type": "function",
                    "function": {"name": name, "arguments": input.to_string()},
                }));
            }
            _ => {}
        }
    }
    let stop = v
        .get("stop_reason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let mut finish = finish_reason(stop);
    let content_value = if let Some(j) = &json_answer {
        finish = "stop";
        Value::String(j.clone())
    } else if text.is_empty() && !tool_calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    let mut message = json!({"role": "assistant", "content": content_value});
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    if !thinking.is_empty() {
        message["reasoning_content"] = Value::String(thinking);
    }
    let usage = v.get("usage").map(usage_of).unwrap_or_default();
    let out = json!({
        "id": chat_id(v.get("id").and_then(Value::as_str).unwrap_or("")),
        "object": "chat.completion",
        "created": created,
        "model": v.get("model").and_then(Value::as_str).unwrap_or(""),
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": null}],
        "usage": usage_json(&usage),
    });
    Ok((out, usage))
}

/// Translation state of one Anthropic event stream into OpenAI chunks (one id throughout).
pub struct StreamState {
    id: String,
    model: String,
    created: u64,
    json_mode: bool,
    /// Anthropic content-block index -> OpenAI tool-call index (`None` for non-tool blocks).
    tool_index: Vec<Option<usize>>,
    json_block: Option<usize>,
    n_tools: usize,
    usage: Usage,
    saw_usage: bool,
    finish: Option<&'static str>,
    pub content_chars: usize,
}

impl StreamState {
    pub fn new(created: u64, json_mode: bool) -> StreamState {
        StreamState {
            id: chat_id(""),
            model: String::new(),
            created,
            json_mode,
            tool_index: Vec::new(),
            json_block: None,
            n_tools: 0,
            usage: Usage::default(),
            saw_usage: false,
            finish: None,
            content_chars: 0,
        }
    }

    pub fn usage(&self) -> Option<Usage> {
        self.saw_usage.then_some(self.usage)
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> String {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}],
        })
        .to_string()
    }

    pub fn on_event(&mut self, ev: &SseEvent, out: &mut Vec<StreamOut>) {
        let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
            return;
        };
        let ty = v
            .get("type")
            .and_then(Value::as_str)
            .or(ev.event.as_deref())
            .unwrap_or("");
        match ty {
            "message_start" => {
                let m = v.get("message").unwrap_or(&Value::Null);
                self.id = chat_id(m.get("id").and_then(Value::as_str).unwrap_or(""));
                self.model = m
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if let Some(u) = m.get("usage") {
                    let u = usage_of(u);
                    self.usage.prompt_tokens = u.prompt_tokens;
                    self.usage.cache_read_tokens = u.cache_read_tokens;
                    self.usage.cache_creation_tokens = u.cache_creation_tokens;
                    self.usage.completion_tokens = u.completion_tokens;
                    self.saw_usage = true;
                }
                out.push(StreamOut::Chunk(
                    self.chunk(json!({"role": "assistant", "content": ""}), None),
                ));
            }
            "content_block_start" => {
                let idx = v.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
                let b = v.get("content_block").unwrap_or(&Value::Null);
                if self.tool_index.len() <= idx {
                    self.tool_index.resize(idx + 1, None);
                }
                if b.get("type").and_then(Value::as_str) == Some("tool_use") {
                    let name = b.get("name").and_then(Value::as_str).unwrap_or("");
                    if self.json_mode && name == JSON_TOOL {
                        self.json_block = Some(idx);
                        return;
                    }
                    let ti = self.n_tools;
                    self.n_tools += 1;
                    self.tool_index[idx] = Some(ti);
                    let delta = json!({"tool_calls": [{
                        "index": ti,
                        "id": b.get("id").and_then(Value::as_str).unwrap_or(""),
                        "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }]});
                    out.push(StreamOut::Chunk(self.chunk(delta, None)));
                }
            }
            "content_block_delta" => {
                let idx = v.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
                let d = v.get("delta").unwrap_or(&Value::Null);
                match d.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        let t = d.get("text").and_then(Value::as_str).unwrap_or("");
                        self.content_chars += t.len();
                        out.push(StreamOut::Chunk(self.chunk(json!({"content": t}), None)));
                    }
                    Some("thinking_delta") => {
                        let t = d.get("thinking").and_then(Value::as_str).unwrap_or("");
                        self.content_chars += t.len();
                        out.push(StreamOut::Chunk(
                            self.chunk(json!({"reasoning_content": t}), None),
                        ));
                    }
                    Some("input_json_delta") => {
                        let p = d.get("partial_json").and_then(Value::as_str).unwrap_or("");
                        self.content_chars += p.len();
                        if self.json_block == Some(idx) {
                            out.push(StreamOut::Chunk(self.chunk(json!({"content": p}), None)));
                        } else if let Some(Some(ti)) = self.tool_index.get(idx) {
                            let delta = json!({"tool_calls": [{"index": ti, "function": {"arguments": p}}]});
                            out.push(StreamOut::Chunk(self.chunk(delta, None)));
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(s) = v
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str)
                {
                    let f = if self.json_block.is_some() {
                        "stop"
                    } else {
                        finish_reason(s)
                    };
                    self.finish = Some(f);
                }
                if let Some(u) = v.get("usage") {
                    if let Some(o) = u.get("output_tokens").and_then(Value::as_u64) {
                        self.usage.completion_tokens = o;
                        self.saw_usage = true;
                    }
                    // Newer API versions repeat the input counts here.
                    if let Some(i) = u.get("input_tokens").and_then(Value::as_u64) {
                        let read = u
                            .get("cache_read_input_tokens")
                            .and_then(Value::as_u64)
                            .unwrap_or(self.usage.cache_read_tokens);
                        let creation = u
                            .get("cache_creation_input_tokens")
                            .and_then(Value::as_u64)
                            .unwrap_or(self.usage.cache_creation_tokens);
                        self.usage.prompt_tokens = i + read + creation;
                        self.usage.cache_read_tokens = read;
                        self.usage.cache_creation_tokens = creation;
                    }
                }
                let f = self.finish.unwrap_or("stop");
                out.push(StreamOut::Chunk(self.chunk(json!({}), Some(f))));
            }
            "message_stop" => {
                let usage = json!({
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": usage_json(&self.usage),
                });
                out.push(StreamOut::UsageChunk(usage.to_string()));
                out.push(StreamOut::Done);
            }
            "error" => {
                let etype = v
                    .get("error")
                    .and_then(|e| e.get("type"))
                    .and_then(Value::as_str)
                    .unwrap_or("api_error");
                let status = match etype {
                    "overloaded_error" => 529,
                    "rate_limit_error" => 429,
                    "invalid_request_error" => 400,
                    "authentication_error" => 401,
                    "permission_error" => 403,
                    "not_found_error" => 404,
                    _ => 500,
                };
                out.push(StreamOut::Error {
                    status,
                    body: ev.data.clone().into_bytes(),
                });
            }
            _ => {} // ping, content_block_stop
        }
    }
}

#[cfg(test)]
mod tests;
