//! A fake OpenAI-compatible or Anthropic upstream whose answers are scripted per request.

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
pub enum Behavior {
    /// An OpenAI chat completion echoing the request, with usage.
    Ok {
        delay_ms: u64,
        prompt_tokens: u64,
        completion_tokens: u64,
    },
    /// An OpenAI stream of `n` content chunks, `gap_ms` apart, then usage (if asked) and [DONE].
    Stream {
        n: usize,
        gap_ms: u64,
        first_ms: u64,
    },
    /// A stream that sends `n` chunks and then breaks the connection.
    StreamThenBreak { n: usize },
    /// Any status with a JSON body and headers.
    Status {
        status: u16,
        body: Value,
        headers: Vec<(String, String)>,
    },
    /// Never answers (until the test ends).
    Hang,
    /// Anthropic Messages API answer (non-streaming), echoing text.
    AnthropicOk {
        input_tokens: u64,
        output_tokens: u64,
        cache_read: u64,
    },
    /// Anthropic event stream with `n` text deltas.
    AnthropicStream { n: usize },
    /// Raw bytes with a status and content type.
    Raw {
        status: u16,
        content_type: String,
        body: String,
    },
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Clone)]
pub struct Fake {
    pub addr: SocketAddr,
    script: Arc<Mutex<VecDeque<Behavior>>>,
    default: Arc<Mutex<Behavior>>,
    pub seen: Arc<Mutex<Vec<Recorded>>>,
}

impl Fake {
    pub fn base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn anthropic_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn push(&self, b: Behavior) {
        self.script.lock().unwrap().push_back(b);
    }

    pub fn set_default(&self, b: Behavior) {
        *self.default.lock().unwrap() = b;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub async fn start(default: Behavior) -> Fake {
        let fake = Fake {
            addr: "127.0.0.1:0".parse().unwrap(),
            script: Arc::new(Mutex::new(VecDeque::new())),
            default: Arc::new(Mutex::new(default)),
            seen: Arc::new(Mutex::new(Vec::new())),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let fake = Fake { addr, ..fake };
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }
}

fn sse_body(chunks: Vec<(u64, String)>, end: Option<&'static str>) -> Body {
    let stream =
        futures_util::stream::unfold((chunks.into_iter(), end), |(mut it, end)| async move {
            match it.next() {
                Some((delay, data)) => {
                    if delay > 0 {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                    }
                    Some((Ok::<_, std::io::Error>(Bytes::from(data)), (it, end)))
                }
                None => match end {
                    Some("break") => {
                        Some((Err(std::io::Error::other("connection reset")), (it, None)))
                    }
                    _ => None,
                },
            }
        });
    Body::from_stream(stream)
}

fn chunk(id: &str, delta: Value, finish: Option<&str>) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": id, "object": "chat.completion.chunk", "created": 1, "model": "fake", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    )
}

async fn handle(
    State(fake): State<Fake>,
    uri: http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    fake.seen.lock().unwrap().push(Recorded {
        path: uri.path().to_string(),
        headers: headers.clone(),
        body: body.clone(),
    });
    let behavior = fake
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| fake.default.lock().unwrap().clone());
    let include_usage = body
        .get("stream_options")
        .and_then(|s| s.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match behavior {
        Behavior::Ok {
            delay_ms,
            prompt_tokens,
            completion_tokens,
        } => {
            if delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            }
            let model = body.get("model").cloned().unwrap_or(Value::Null);
            let out = json!({
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 1, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello from fake"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
            });
            Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(out.to_string()))
                .unwrap()
        }
        Behavior::Stream {
            n,
            gap_ms,
            first_ms,
        } => {
            let mut chunks = vec![(
                first_ms,
                chunk("s1", json!({"role": "assistant", "content": ""}), None),
            )];
            for i in 0..n {
                chunks.push((
                    gap_ms,
                    chunk("s1", json!({"content": format!("tok{i} ")}), None),
                ));
            }
            chunks.push((0, chunk("s1", json!({}), Some("stop"))));
            if include_usage {
                chunks.push((0, format!("data: {}\n\n", json!({"id": "s1", "object": "chat.completion.chunk", "created": 1, "model": "fake", "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": n, "total_tokens": 11 + n}}))));
            }
            chunks.push((0, "data: [DONE]\n\n".to_string()));
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(sse_body(chunks, None))
                .unwrap()
        }
        Behavior::StreamThenBreak { n } => {
            let mut chunks = vec![(
                0,
                chunk("s2", json!({"role": "assistant", "content": ""}), None),
            )];
            for i in 0..n {
                chunks.push((
                    5,
                    chunk("s2", json!({"content": format!("part{i} ")}), None),
                ));
            }
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(sse_body(chunks, Some("break")))
                .unwrap()
        }
        Behavior::Status {
            status,
            body,
            headers,
        } => {
            let mut b = Response::builder()
                .status(StatusCode::from_u16(status).unwrap())
                .header("content-type", "application/json");
            for (k, v) in headers {
                b = b.header(k, v);
            }
            b.body(Body::from(body.to_string())).unwrap()
        }
        Behavior::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Response::new(Body::empty())
        }
        Behavior::AnthropicOk {
            input_tokens,
            output_tokens,
            cache_read,
        } => {
            let out = json!({
                "id": "msg_fake", "type": "message", "role": "assistant", "model": body.get("model").cloned().unwrap_or(Value::Null),
                "content": [{"type": "text", "text": "hello from claude"}], "stop_reason": "end_turn",
                "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens, "cache_read_input_tokens": cache_read}
            });
            Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(out.to_string()))
                .unwrap()
        }
        Behavior::AnthropicStream { n } => {
            let ev = |name: &str, v: Value| format!("event: {name}\ndata: {v}\n\n");
            let mut chunks = vec![(
                0,
                ev(
                    "message_start",
                    json!({"type": "message_start", "message": {"id": "msg_s", "model": "claude", "usage": {"input_tokens": 20, "output_tokens": 1}}}),
                ),
            )];
            chunks.push((0, ev("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}))));
            for i in 0..n {
                chunks.push((2, ev("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": format!("w{i} ")}}))));
            }
            chunks.push((0, ev("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": n}}))));
            chunks.push((0, ev("message_stop", json!({"type": "message_stop"}))));
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(sse_body(chunks, None))
                .unwrap()
        }
        Behavior::Raw {
            status,
            content_type,
            body,
        } => Response::builder()
            .status(StatusCode::from_u16(status).unwrap())
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap(),
    }
}

/// A loopback port with nothing listening (connection refused).
pub async fn dead_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let p = l.local_addr().unwrap().port();
    drop(l);
    p
}

pub fn ok() -> Behavior {
    Behavior::Ok {
        delay_ms: 0,
        prompt_tokens: 10,
        completion_tokens: 5,
    }
}

pub fn status(code: u16, message: &str) -> Behavior {
    Behavior::Status {
        status: code,
        body: json!({"error": {"message": message, "type": "error"}}),
        headers: vec![],
    }
}

#[allow(unused)]
fn _infallible(_: Infallible) {}
