//! `sim mock`: the provider models served over real HTTP, in real time — OpenAI and Anthropic
//! wire formats, streaming and not, first chunk at the sampled TTFT and one chunk per token
//! interval after it. Each deployment gets its own 127.0.0.1 port (or one port with a path per
//! deployment). Seeded: the same seed and the same request sequence behave the same.
//!
//! Clients may steer a request with headers (the load driver does): `x-switchyard-tokens-in`
//! (prompt tokens to report), `x-switchyard-output-tokens` (tokens to generate).

use crate::model::{
    context_window_message, Ask, DeploymentSim, Fate, ProviderModel, ProviderSet, Sampled,
};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchyard_engine::config::Protocol;

struct Dep {
    name: String,
    sim: Mutex<DeploymentSim>,
    protocol: Protocol,
    counter: AtomicU64,
    started: Instant,
}

#[derive(Clone)]
struct Shared {
    deps: Arc<Vec<Arc<Dep>>>,
}

/// Where each deployment listens.
#[derive(Clone, Debug)]
pub struct Listening {
    pub name: String,
    pub protocol: Protocol,
    /// Base URL to put in a config's `api_base` (`http://127.0.0.1:PORT/v1` for OpenAI,
    /// `http://127.0.0.1:PORT` for Anthropic).
    pub api_base: String,
    pub addr: SocketAddr,
}

fn api_base(addr: SocketAddr, prefix: &str, protocol: Protocol) -> String {
    match protocol {
        Protocol::Openai => format!("http://{addr}{prefix}/v1"),
        Protocol::Anthropic => format!("http://{addr}{prefix}"),
    }
}

/// Starts serving every model of `set`. With `single_port`, all on that port under
/// `/{name}/...`; otherwise each on its own port (`base_port + i`, or random ports with 0).
pub async fn start(
    set: &ProviderSet,
    seed: u64,
    host: &str,
    base_port: u16,
    single_port: Option<u16>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<Vec<Listening>> {
    let started = Instant::now();
    let deps: Vec<Arc<Dep>> = set
        .models
        .iter()
        .map(|m: &ProviderModel| {
            Arc::new(Dep {
                name: m.name.clone(),
                sim: Mutex::new(DeploymentSim::new(m.clone(), seed, &m.name)),
                protocol: m.protocol,
                counter: AtomicU64::new(0),
                started,
            })
        })
        .collect();
    let (tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let stop = tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(());
    });
    let mut out = Vec::new();
    if let Some(port) = single_port {
        let listener = tokio::net::TcpListener::bind((host, port)).await?;
        let addr = listener.local_addr()?;
        let shared = Shared {
            deps: Arc::new(deps.clone()),
        };
        let app = axum::Router::new()
            .fallback(handle_prefixed)
            .with_state(shared);
        let mut rx = tx.subscribe();
        tokio::spawn(async move {
            let listener =
                axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
                    let _ = tcp.set_nodelay(true);
                });
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.recv().await;
                })
                .await;
        });
        for d in &deps {
            out.push(Listening {
                name: d.name.clone(),
                protocol: d.protocol,
                api_base: api_base(addr, &format!("/{}", d.name), d.protocol),
                addr,
            });
        }
    } else {
        for (i, d) in deps.iter().enumerate() {
            let port = if base_port == 0 {
                0
            } else {
                base_port + i as u16
            };
            let listener = tokio::net::TcpListener::bind((host, port)).await?;
            let addr = listener.local_addr()?;
            let shared = Shared {
                deps: Arc::new(vec![d.clone()]),
            };
            let app = axum::Router::new()
                .fallback(handle_single)
                .with_state(shared);
            let mut rx = tx.subscribe();
            tokio::spawn(async move {
                let listener = axum::serve::ListenerExt::tap_io(
                    listener,
                    |tcp: &mut tokio::net::TcpStream| {
                        let _ = tcp.set_nodelay(true);
                    },
                );
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = rx.recv().await;
                    })
                    .await;
            });
            out.push(Listening {
                name: d.name.clone(),
                protocol: d.protocol,
                api_base: api_base(addr, "", d.protocol),
                addr,
            });
        }
    }
    Ok(out)
}

async fn handle_single(
    State(s): State<Shared>,
    uri: http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let d = s.deps[0].clone();
    serve_one(d, uri.path().to_string(), headers, body).await
}

async fn handle_prefixed(
    State(s): State<Shared>,
    uri: http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_start_matches('/');
    let (name, rest) = path.split_once('/').unwrap_or((path, ""));
    match s.deps.iter().find(|d| d.name == name) {
        Some(d) => serve_one(d.clone(), format!("/{rest}"), headers, body).await,
        None => json_response(
            404,
            json!({"error": {"message": format!("no deployment `{name}` here"), "type": "not_found_error"}}),
            vec![],
        ),
    }
}

/// Waits, but not at all for zero: a zero-length tokio sleep still waits for the next timer tick
/// (a millisecond), which would show up as upstream latency in every benchmark.
async fn pause(us: u64) {
    if us > 0 {
        tokio::time::sleep(Duration::from_micros(us)).await;
    }
}

fn json_response(status: u16, v: Value, headers: Vec<(String, String)>) -> Response {
    let mut b = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json");
    for (k, val) in headers {
        b = b.header(k, val);
    }
    b.body(Body::from(v.to_string())).expect("valid response")
}

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Prompt tokens of a request body, estimated as the proxy does (bytes / 4 plus 4 per message).
fn estimate_tokens(body: &Value) -> u64 {
    let mut bytes = 0u64;
    let mut n = 0u64;
    if let Some(msgs) = body.get("messages").and_then(Value::as_array) {
        for m in msgs {
            n += 1;
            match m.get("content") {
                Some(Value::String(s)) => bytes += s.len() as u64,
                Some(Value::Array(parts)) => {
                    bytes += parts
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .map(|s| s.len() as u64)
                        .sum::<u64>()
                }
                _ => {}
            }
        }
    }
    for k in ["prompt", "input", "system"] {
        if let Some(Value::String(s)) = body.get(k) {
            bytes += s.len() as u64;
        }
    }
    bytes.div_ceil(4) + 4 * n + 3
}

fn words(n: u64) -> String {
    let mut s = String::with_capacity(n as usize * 4);
    for i in 0..n {
        s.push_str(["lor ", "ips ", "dol ", "sit ", "ame "][(i % 5) as usize]);
    }
    s
}

fn error_body(protocol: Protocol, status: u16, message: &str) -> Value {
    match protocol {
        Protocol::Openai => {
            let ty = if status == 400 {
                "invalid_request_error"
            } else if status == 429 {
                "rate_limit_error"
            } else {
                "server_error"
            };
            json!({"error": {"message": message, "type": ty, "param": null, "code": if status == 400 && message.contains("context length") { json!("context_length_exceeded") } else { json!(null) }}})
        }
        Protocol::Anthropic => {
            let ty = match status {
                400 => "invalid_request_error",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                _ => "api_error",
            };
            json!({"type": "error", "error": {"type": ty, "message": message}})
        }
    }
}

async fn serve_one(d: Arc<Dep>, path: String, headers: HeaderMap, body: Bytes) -> Response {
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return json_response(
                400,
                error_body(d.protocol, 400, &format!("invalid JSON: {e}")),
                vec![],
            )
        }
    };
    let expected = match d.protocol {
        Protocol::Openai => {
            path.ends_with("/chat/completions")
                || path.ends_with("/completions")
                || path.ends_with("/embeddings")
        }
        Protocol::Anthropic => path.ends_with("/v1/messages"),
    };
    if !expected {
        return json_response(
            404,
            error_body(d.protocol, 404, &format!("no route {path}")),
            vec![],
        );
    }
    let embeddings = path.ends_with("/embeddings");
    let stream = v.get("stream").and_then(Value::as_bool).unwrap_or(false) && !embeddings;
    let include_usage = v
        .get("stream_options")
        .and_then(|s| s.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let tokens_in =
        header_u64(&headers, "x-switchyard-tokens-in").unwrap_or_else(|| estimate_tokens(&v));
    let tokens_out = if embeddings {
        Some(1)
    } else {
        header_u64(&headers, "x-switchyard-output-tokens")
    };
    let max_tokens = v
        .get("max_tokens")
        .or_else(|| v.get("max_completion_tokens"))
        .and_then(Value::as_u64);
    let model = v
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(&d.name)
        .to_string();
    let key = d.counter.fetch_add(1, Ordering::Relaxed);
    let sampled: Sampled = {
        let mut sim = d.sim.lock().unwrap_or_else(|e| e.into_inner());
        let s = sim.sample(&Ask {
            now_us: d.started.elapsed().as_micros() as u64,
            key,
            tokens_in,
            tokens_out,
            max_tokens,
            stream,
        });
        sim.start();
        s
    };
    let guard = InFlight(d.clone());
    let resp = respond(&d, sampled, stream, include_usage, embeddings, &model).await;
    drop(guard);
    resp
}

struct InFlight(Arc<Dep>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .sim
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .finish();
    }
}

fn usage_openai(s: &Sampled, out: u64) -> Value {
    json!({"prompt_tokens": s.tokens_in, "completion_tokens": out, "total_tokens": s.tokens_in + out})
}

async fn respond(
    d: &Dep,
    s: Sampled,
    stream: bool,
    include_usage: bool,
    embeddings: bool,
    model: &str,
) -> Response {
    let protocol = d.protocol;
    match s.fate.clone() {
        Fate::RateLimited {
            retry_after_ms,
            remaining_requests,
            remaining_tokens,
            limit_requests,
            limit_tokens,
        } => {
            pause(s.duration_us()).await;
            let mut h = vec![
                (
                    "retry-after".to_string(),
                    retry_after_ms.div_ceil(1000).max(1).to_string(),
                ),
                ("retry-after-ms".to_string(), retry_after_ms.to_string()),
            ];
            let prefix = if protocol == Protocol::Anthropic {
                "anthropic-ratelimit"
            } else {
                "x-ratelimit"
            };
            if protocol == Protocol::Anthropic {
                if let Some(l) = limit_requests {
                    h.push((format!("{prefix}-requests-limit"), l.to_string()));
                }
                h.push((
                    format!("{prefix}-requests-remaining"),
                    remaining_requests.to_string(),
                ));
                if let Some(l) = limit_tokens {
                    h.push((format!("{prefix}-tokens-limit"), l.to_string()));
                }
                h.push((
                    format!("{prefix}-tokens-remaining"),
                    remaining_tokens.to_string(),
                ));
            } else {
                if let Some(l) = limit_requests {
                    h.push(("x-ratelimit-limit-requests".into(), l.to_string()));
                }
                h.push((
                    "x-ratelimit-remaining-requests".into(),
                    remaining_requests.to_string(),
                ));
                if let Some(l) = limit_tokens {
                    h.push(("x-ratelimit-limit-tokens".into(), l.to_string()));
                }
                h.push((
                    "x-ratelimit-remaining-tokens".into(),
                    remaining_tokens.to_string(),
                ));
                h.push((
                    "x-ratelimit-reset-requests".into(),
                    format!("{}ms", retry_after_ms),
                ));
            }
            json_response(
                429,
                error_body(
                    protocol,
                    429,
                    "Rate limit reached for requests. Please try again later.",
                ),
                h,
            )
        }
        Fate::ContextWindow { limit } => {
            pause(s.duration_us()).await;
            let msg = context_window_message(protocol, limit, s.tokens_in, s.tokens_out);
            json_response(400, error_body(protocol, 400, &msg), vec![])
        }
        Fate::HttpError { status } => {
            pause(s.ttft_us).await;
            let msg = match status {
                529 => "Overloaded".to_string(),
                503 => "The server is overloaded or not ready yet.".to_string(),
                _ => format!("Internal error {status} (simulated)"),
            };
            json_response(status, error_body(protocol, status, &msg), vec![])
        }
        Fate::Hang => {
            tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
            json_response(504, error_body(protocol, 504, "hung"), vec![])
        }
        Fate::Reset => {
            pause(s.ttft_us).await;
            let body = futures_util::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::other("connection reset (simulated)"))
            });
            Response::builder()
                .header("content-type", "application/json")
                .body(Body::from_stream(body))
                .expect("valid response")
        }
        Fate::Ok | Fate::MidStream { .. } if stream => stream_response(d, s, include_usage, model),
        Fate::Ok | Fate::MidStream { .. } => {
            pause(s.duration_us()).await;
            if matches!(s.fate, Fate::MidStream { .. }) {
                let body = futures_util::stream::once(async {
                    Err::<Bytes, std::io::Error>(std::io::Error::other(
                        "connection reset (simulated)",
                    ))
                });
                return Response::builder()
                    .header("content-type", "application/json")
                    .body(Body::from_stream(body))
                    .expect("valid response");
            }
            let text = words(s.tokens_out);
            let v = if embeddings {
                json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}], "model": model, "usage": {"prompt_tokens": s.tokens_in, "total_tokens": s.tokens_in}})
            } else {
                match protocol {
                    Protocol::Openai => json!({
                        "id": format!("chatcmpl-mock-{}", d.counter.load(Ordering::Relaxed)), "object": "chat.completion", "created": 0, "model": model,
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                        "usage": usage_openai(&s, s.tokens_out)
                    }),
                    Protocol::Anthropic => json!({
                        "id": "msg_mock", "type": "message", "role": "assistant", "model": model,
                        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": null,
                        "usage": {"input_tokens": s.tokens_in, "output_tokens": s.tokens_out}
                    }),
                }
            };
            json_response(200, v, vec![])
        }
    }
}

/// First chunk at TTFT, then one chunk per token interval; a mid-stream disconnect breaks the
/// body after its tokens.
fn stream_response(d: &Dep, s: Sampled, include_usage: bool, model: &str) -> Response {
    let protocol = d.protocol;
    let model = model.to_string();
    let (total, cut) = match s.fate {
        Fate::MidStream { after_tokens } => (after_tokens, true),
        _ => (s.tokens_out, false),
    };
    let ttft = Duration::from_micros(s.ttft_us);
    let itl = Duration::from_micros(s.itl_us);
    let tokens_in = s.tokens_in;
    let tokens_out = s.tokens_out;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        let send = |b: String| {
            let tx = tx.clone();
            async move { tx.send(Ok(Bytes::from(b))).await.is_ok() }
        };
        if !ttft.is_zero() {
            tokio::time::sleep_until(start + ttft).await;
        }
        let oa = |delta: Value, finish: Option<&str>| {
            format!(
                "data: {}\n\n",
                json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            )
        };
        let an = |name: &str, v: Value| format!("event: {name}\ndata: {v}\n\n");
        let first = match protocol {
            Protocol::Openai => oa(json!({"role": "assistant", "content": ""}), None),
            Protocol::Anthropic => format!(
                "{}{}",
                an(
                    "message_start",
                    json!({"type": "message_start", "message": {"id": "msg_mock", "type": "message", "role": "assistant", "model": model, "content": [], "usage": {"input_tokens": tokens_in, "output_tokens": 1}}})
                ),
                an(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
                )
            ),
        };
        if !send(first).await {
            return;
        }
        for i in 0..total {
            if i > 0 && !itl.is_zero() {
                tokio::time::sleep_until(start + ttft + itl * i as u32).await;
            }
            let w = ["lor ", "ips ", "dol ", "sit ", "ame "][(i % 5) as usize];
            let chunk = match protocol {
                Protocol::Openai => oa(json!({"content": w}), None),
                Protocol::Anthropic => an(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}}),
                ),
            };
            if !send(chunk).await {
                return;
            }
        }
        if cut {
            let _ = tx
                .send(Err(std::io::Error::other(
                    "connection reset mid-stream (simulated)",
                )))
                .await;
            return;
        }
        let tail = match protocol {
            Protocol::Openai => {
                let mut t = oa(json!({}), Some("stop"));
                if include_usage {
                    t.push_str(&format!("data: {}\n\n", json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [], "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": tokens_in + tokens_out}})));
                }
                t.push_str("data: [DONE]\n\n");
                t
            }
            Protocol::Anthropic => format!(
                "{}{}{}",
                an(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0})
                ),
                an(
                    "message_delta",
                    json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": tokens_out}})
                ),
                an("message_stop", json!({"type": "message_stop"}))
            ),
        };
        let _ = send(tail).await;
    });
    let body =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(body))
        .expect("valid response")
}
