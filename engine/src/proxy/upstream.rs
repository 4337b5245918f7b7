//! Calling a deployment: one attempt over pooled keep-alive connections (TCP_NODELAY, whole small
//! bodies in one write), bounded by the attempt's timeout, classified into an outcome the router
//! understands. A stream is held until its first chunk has arrived, so a failure before the first
//! token is retried or falls back like any other.

use super::request::ClientRequest;
use crate::config::Deployment;
use crate::core::outcome::OutcomeClass;
use crate::core::router::AttemptReport;
use crate::providers::classify::{classify, rate_limit_info, redact};
use crate::providers::sse::{SseEvent, SseParser};
use crate::providers::{self, StreamOut, StreamTranslator};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::{Duration, Instant};

pub type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Largest upstream body read into memory (a non-streaming answer or an error body).
const MAX_UPSTREAM_BODY: usize = 64 * 1024 * 1024;
const MAX_ERROR_BODY: usize = 1024 * 1024;

pub fn client() -> HttpClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    http.set_keepalive(Some(Duration::from_secs(60)));
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .expect("the ring provider supports the default TLS versions")
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        // A fixed read buffer: hyper's adaptive one grows (up to ~400 KiB) whenever a read fills
        // it, which a busy proxy with a thousand slow streams turns into hundreds of MiB.
        .http1_read_buf_exact_size(16 * 1024)
        .build(https)
}

/// A stream whose first chunk has arrived: the attempt is committed to this deployment.
pub struct OpenStream {
    pub first: Vec<StreamOut>,
    pub body: Incoming,
    pub parser: SseParser,
    pub translator: StreamTranslator,
    pub started: Instant,
    pub ttft: Duration,
}

pub enum AttemptResult {
    /// The attempt is over: `body` holds the answer for the client on success.
    Done {
        report: Box<AttemptReport>,
        body: Option<Bytes>,
    },
    Stream(Box<OpenStream>),
}

fn failure(class: OutcomeClass, status: u16, started: Instant, message: String) -> AttemptResult {
    let mut r = AttemptReport::failure(class, status, started.elapsed().as_micros() as u64);
    r.message = Some(message);
    AttemptResult::Done {
        report: Box::new(r),
        body: None,
    }
}

fn headers_of(h: &http::HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_string(), v.to_string()))
        })
        .collect()
}

/// Reads a whole body, bounded in size and time.
async fn read_body(
    body: Incoming,
    limit: usize,
    deadline: tokio::time::Instant,
) -> Result<Bytes, String> {
    let mut body = body;
    let mut buf = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err("timeout".into()),
            Ok(None) => return Ok(Bytes::from(buf)),
            Ok(Some(Err(e))) => return Err(format!("reading the response failed: {e}")),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > limit {
                        return Err(format!("response larger than {limit} bytes"));
                    }
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
}

fn failure_from_status(
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    started: Instant,
    ttft: Duration,
) -> AttemptResult {
    let c = classify(status, headers, body);
    let mut r = AttemptReport::failure(c.class, status, started.elapsed().as_micros() as u64);
    r.retry_after_ms = c.retry_after_ms;
    r.rate_limit = c.rate_limit;
    r.message = Some(c.message);
    r.ttft_us = Some(ttft.as_micros() as u64);
    AttemptResult::Done {
        report: Box::new(r),
        body: None,
    }
}

/// Makes one attempt against `dep`.
pub async fn attempt(
    client: &HttpClient,
    dep: &Deployment,
    req: &ClientRequest,
    drop_params: bool,
    timeout: Duration,
    created: u64,
) -> AttemptResult {
    let started = Instant::now();
    if let Some(msg) = &dep.unusable {
        return failure(OutcomeClass::AuthError, 0, started, msg.clone());
    }
    let up = match providers::build_request(dep, req.endpoint, &req.body, req.stream, drop_params) {
        Ok(u) => u,
        Err(e) => return failure(OutcomeClass::BadRequest, e.status, started, e.message),
    };
    let mut builder = hyper::Request::post(&up.url);
    for (k, v) in &up.headers {
        builder = builder.header(k, v);
    }
    for (k, v) in &req.forwarded_headers {
        if !up.headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(k)) {
            builder = builder.header(k, v);
        }
    }
    let request = match builder.body(Full::new(Bytes::from(up.body))) {
        Ok(r) => r,
        Err(e) => {
            return failure(
                OutcomeClass::BadRequest,
                0,
                started,
                format!("cannot build the upstream request to {}: {e}", up.url),
            )
        }
    };
    let deadline = tokio::time::Instant::from_std(started + timeout);
    let resp = match tokio::time::timeout_at(deadline, client.request(request)).await {
        Err(_) => {
            return failure(
                OutcomeClass::Timeout,
                0,
                started,
                format!("no response within {} ms", timeout.as_millis()),
            )
        }
        Ok(Err(e)) => {
            let mut msg = format!("connection to {} failed: {e}", dep.api_base);
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            return failure(OutcomeClass::ConnectionError, 0, started, redact(&msg));
        }
        Ok(Ok(r)) => r,
    };
    let ttfb = started.elapsed();
    let status = resp.status().as_u16();
    let headers = headers_of(resp.headers());
    let body = resp.into_body();
    if !(200..300).contains(&status) {
        let bytes = read_body(body, MAX_ERROR_BODY, deadline)
            .await
            .unwrap_or_default();
        return failure_from_status(status, &headers, &bytes, started, ttfb);
    }
    if !req.stream {
        let bytes = match read_body(body, MAX_UPSTREAM_BODY, deadline).await {
            Ok(b) => b,
            Err(e) if e == "timeout" => {
                return failure(
                    OutcomeClass::Timeout,
                    0,
                    started,
                    format!("response not complete within {} ms", timeout.as_millis()),
                )
            }
            Err(e) => return failure(OutcomeClass::ConnectionError, status, started, e),
        };
        return match providers::parse_response(dep, &bytes, created) {
            Ok(parsed) => {
                let u = parsed.usage;
                let mut r = AttemptReport::success(
                    started.elapsed().as_micros() as u64,
                    u.prompt_tokens,
                    u.completion_tokens,
                );
                r.tokens_cache_read = u.cache_read_tokens;
                r.tokens_cache_creation = u.cache_creation_tokens;
                r.ttft_us = Some(ttfb.as_micros() as u64);
                r.rate_limit = rate_limit_info(&headers);
                let body = parsed.body.map(Bytes::from).unwrap_or(bytes);
                AttemptResult::Done {
                    report: Box::new(r),
                    body: Some(body),
                }
            }
            Err(e) => failure(OutcomeClass::ServerError, status, started, e),
        };
    }
    // Streaming: wait for the first chunk before committing.
    let json_mode = providers::wants_json_mode(&req.body);
    let mut open = OpenStream {
        first: Vec::new(),
        body,
        parser: SseParser::default(),
        translator: StreamTranslator::new(dep, created, json_mode),
        started,
        ttft: Duration::ZERO,
    };
    let mut events: Vec<SseEvent> = Vec::new();
    loop {
        let mut ended = false;
        match tokio::time::timeout_at(deadline, open.body.frame()).await {
            Err(_) => {
                return failure(
                    OutcomeClass::Timeout,
                    status,
                    started,
                    format!("no first token within {} ms", timeout.as_millis()),
                )
            }
            Ok(None) => {
                open.parser.finish(&mut events);
                ended = true;
            }
            Ok(Some(Err(e))) => {
                return failure(
                    OutcomeClass::StreamInterrupted,
                    status,
                    started,
                    format!("the stream broke before the first token: {e}"),
                )
            }
            Ok(Some(Ok(f))) => {
                if let Ok(data) = f.into_data() {
                    if let Err(e) = open.parser.push(&data, &mut events) {
                        return failure(OutcomeClass::StreamInterrupted, status, started, e);
                    }
                }
            }
        }
        for ev in events.drain(..) {
            open.translator.on_event(&ev, &mut open.first);
        }
        if let Some(StreamOut::Error { status: s, body }) = open
            .first
            .iter()
            .find(|o| matches!(o, StreamOut::Error { .. }))
        {
            return failure_from_status(*s, &headers, body, started, started.elapsed());
        }
        if !open.first.is_empty() {
            open.ttft = started.elapsed();
            return AttemptResult::Stream(Box::new(open));
        }
        if ended {
            return failure(
                OutcomeClass::StreamInterrupted,
                status,
                started,
                "the stream ended before any data".into(),
            );
        }
    }
}
