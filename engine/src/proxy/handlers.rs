//! HTTP handlers: the OpenAI-compatible endpoints, health, metrics, keys and reload.
//!
//! A request runs in its own task, so a client that goes away does not cancel the accounting: the
//! attempt in flight finishes and its events are logged.

// Handlers return `Response` as their error: it is what axum sends, and boxing it buys nothing.
#![allow(clippy::result_large_err)]

use super::auth::{self, Caller};
use super::hub::await_ack;
use super::request::{self, ClientRequest};
use super::upstream::{self, AttemptResult, OpenStream};
use super::App;
use crate::config::RoutingConfig;
use crate::core::event::{Endpoint, Event, Reason, RequestResult};
use crate::core::outcome::{OutcomeClass, RouteError};
use crate::core::router::{AttemptReport, Poll, RequestInput};
use crate::providers::classify::classify;
use crate::providers::StreamOut;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A slow client gets this long to send its body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

pub fn error_response(e: &RouteError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"error": {
        "message": e.message,
        "type": e.kind,
        "param": e.param,
        "code": e.code.clone().unwrap_or_else(|| e.status.to_string()),
    }});
    let mut resp = (status, axum::Json(body)).into_response();
    if let Some(ms) = e.retry_after_ms {
        if let Ok(v) = HeaderValue::from_str(&ms.div_ceil(1000).max(1).to_string()) {
            resp.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
    }
    resp
}

fn err(status: u16, kind: &str, msg: impl Into<String>) -> Response {
    error_response(&RouteError::new(status, kind, msg))
}

async fn read_body(body: Body, limit: u64) -> Result<Bytes, Response> {
    let limited = http_body_util::Limited::new(body, limit as usize);
    match tokio::time::timeout(BODY_READ_TIMEOUT, limited.collect()).await {
        Err(_) => Err(err(
            408,
            "invalid_request_error",
            "the request body was not received in time",
        )),
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(err(413, "invalid_request_error", format!("the request body is larger than {limit} bytes (general_settings.max_request_size_mb)")))
            } else {
                Err(err(
                    400,
                    "invalid_request_error",
                    format!("the request body could not be read: {e}"),
                ))
            }
        }
    }
}

fn authenticate(app: &App, headers: &HeaderMap) -> Result<Caller, Response> {
    let master = app.master.read().unwrap_or_else(|e| e.into_inner()).clone();
    let core = app.hub.lock();
    auth::authenticate(&master, &core.router, headers).map_err(|m| {
        let mut r = RouteError::new(401, "auth_error", m);
        r.param = Some("None".into());
        error_response(&r)
    })
}

fn require_admin(app: &App, headers: &HeaderMap) -> Result<(), Response> {
    match authenticate(app, headers)? {
        Caller::Admin => Ok(()),
        Caller::Anonymous
            if !app
                .master
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .is_set() =>
        {
            Ok(())
        }
        _ => Err(err(401, "auth_error", "this endpoint needs the master key")),
    }
}

pub async fn chat(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    llm(app, Endpoint::Chat, headers, body).await
}

pub async fn completions(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    llm(app, Endpoint::Completion, headers, body).await
}

pub async fn embeddings(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    llm(app, Endpoint::Embedding, headers, body).await
}

async fn llm(app: Arc<App>, endpoint: Endpoint, headers: HeaderMap, body: Body) -> Response {
    let t0 = Instant::now();
    if app.shutting_down.load(Ordering::Acquire) {
        return err(503, "api_error", "the proxy is shutting down");
    }
    let caller = match authenticate(&app, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let limit = app.hub.lock().config.server.max_request_body_bytes;
    let bytes = match read_body(body, limit).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut req = match request::parse(endpoint, &bytes) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    if app.hub.lock().config.server.forward_client_headers {
        req.forwarded_headers = headers
            .iter()
            .filter(|(k, _)| request::forwardable(k.as_str()))
            .filter_map(|(k, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (k.as_str().to_string(), v.to_string()))
            })
            .collect();
    }
    // Backpressure: while the log writer is behind, new requests wait (never dropped), unless
    // the operator chose `--log-overflow drop` (the hub then leaves them out of the log).
    let mut waited = 0;
    let wait = app.hub.overflow == super::hub::Overflow::Wait;
    while wait && app.hub.store.over_capacity() && waited < 3000 {
        let notified = app.capacity.notified();
        let _ = tokio::time::timeout(Duration::from_millis(10), notified).await;
        waited += 1;
    }
    if wait && app.hub.store.over_capacity() {
        return err(
            503,
            "api_error",
            "the event log is not keeping up; try again",
        );
    }
    let routing_headers = {
        let core = app.hub.lock();
        let wanted = &core.router.config().routing_headers;
        let mut hs: Vec<(String, String)> = Vec::new();
        for h in wanted {
            if let Some(v) = headers.get(h.as_str()).and_then(|v| v.to_str().ok()) {
                hs.push((h.clone(), v.to_string()));
            }
        }
        hs
    };
    let header_tags: Vec<String> = headers
        .get("x-litellm-tags")
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let task = tokio::spawn(process(
        app.clone(),
        caller,
        req,
        routing_headers,
        header_tags,
        t0,
    ));
    match task.await {
        Ok(r) => r,
        Err(e) => err(500, "api_error", format!("internal error: {e}")),
    }
}

/// Counts and timings of one request for headers and metrics.
#[derive(Default)]
struct Tally {
    retries: u32,
    fallbacks: u32,
    upstream: Duration,
    last_deployment: Option<usize>,
    group: String,
    /// The model group the request was admitted to (or the model it asked for): metrics label.
    requested_group: String,
}

fn tightest_limit(cfg: &RoutingConfig) -> Option<u64> {
    cfg.deployments
        .iter()
        .filter_map(|d| d.max_input_tokens)
        .min()
}

async fn process(
    app: Arc<App>,
    caller: Caller,
    req: ClientRequest,
    routing_headers: Vec<(String, String)>,
    header_tags: Vec<String>,
    t0: Instant,
) -> Response {
    let store_prompts = app.hub.lock().config.server.store_prompts;
    let limit = tightest_limit(app.hub.lock().router.config());
    let tokens_in = request::estimate_tokens(&req, limit);
    let mut tags = req.tags.clone();
    tags.extend(header_tags);
    let input = RequestInput {
        key_id: match &caller {
            Caller::Key(k) => Some(k.clone()),
            _ => None,
        },
        model: req.model.as_str().into(),
        endpoint: Some(req.endpoint),
        tokens_in,
        max_tokens: req.max_tokens,
        stream: req.stream,
        tags,
        headers: routing_headers,
        user: req.user.clone(),
        prompt_sha: req.prompt_sha.clone(),
        prompt: if store_prompts {
            req.body
                .get("messages")
                .or_else(|| req.body.get("prompt"))
                .or_else(|| req.body.get("input"))
                .map(|v| truncate(&v.to_string(), 64 * 1024))
        } else {
            None
        },
        overrides: req.overrides.clone(),
    };
    let ((id, admitted_group), _) = app.hub.with(false, |c, now| {
        let ev = c.router.receive(now, input, None);
        let group = match &ev {
            Event::RequestReceived(r) => match &r.admission {
                crate::core::event::Admission::Admitted { group, .. } => Some(group.to_string()),
                crate::core::event::Admission::Rejected(_) => None,
            },
            _ => None,
        };
        (
            (ev.request_id().expect("request events have ids"), group),
            vec![ev],
        )
    });
    let mut tally = Tally {
        requested_group: admitted_group.unwrap_or_else(|| req.model.clone()),
        ..Tally::default()
    };
    let mut success_body: Option<Bytes> = None;
    for _ in 0..1000 {
        let sync = app.hub.sync();
        let ((poll, cfg), ack) = app.hub.with(sync, |c, now| {
            let p = c.router.poll(now, id);
            let cfg = c.router.config().clone();
            let evs = match &p {
                Poll::Attempt { event, .. } => vec![event.clone()],
                Poll::Done { event, .. } => vec![event.clone()],
                _ => vec![],
            };
            if let Poll::Done {
                event: Event::RequestFinished(f),
                result,
            } = &p
            {
                let status = match result {
                    RequestResult::Ok => 200,
                    RequestResult::Err(e) => e.status,
                };
                c.metrics.record_request(
                    &tally.requested_group,
                    status,
                    f.latency_us,
                    if req.stream { f.ttft_us } else { None },
                    tally.retries,
                    f.n_fallbacks,
                );
            }
            ((p, cfg), evs)
        });
        match poll {
            Poll::Attempt { event, plan } => {
                if let Event::AttemptDecided(d) = &event {
                    match d.reason {
                        Reason::Retry => tally.retries += 1,
                        Reason::Fallback | Reason::ContextWindow | Reason::ContentPolicy => {
                            tally.fallbacks += 1
                        }
                        _ => {}
                    }
                    tally.group = d.group.to_string();
                }
                tally.last_deployment = Some(plan.deployment);
                let dep = &cfg.deployments[plan.deployment];
                let drop_params = req
                    .drop_params
                    .or(dep.drop_params)
                    .unwrap_or(cfg.drop_params);
                let timeout = Duration::from_micros(plan.timeout.0);
                let result = upstream::attempt(
                    &app.client,
                    dep,
                    &req,
                    drop_params,
                    timeout,
                    app.clock.unix_secs(),
                )
                .await;
                match result {
                    AttemptResult::Done { report, body } => {
                        tally.upstream += Duration::from_micros(report.duration_us);
                        if report.class == Some(OutcomeClass::Success) {
                            success_body = body;
                        }
                        app.hub.with(false, |c, now| {
                            (
                                (),
                                c.router
                                    .attempt_finished(now, id, *report)
                                    .into_iter()
                                    .collect(),
                            )
                        });
                    }
                    AttemptResult::Stream(open) => {
                        let ttft = open.ttft;
                        tally.upstream += ttft;
                        return start_stream(
                            app,
                            id,
                            req,
                            open,
                            cfg.clone(),
                            plan.deployment,
                            tally,
                            t0,
                        );
                    }
                }
            }
            Poll::Wait { until } => {
                let before = Instant::now();
                tokio::time::sleep_until(app.clock.instant_of(until)).await;
                tally.upstream += before.elapsed();
            }
            Poll::Done { event, result } => {
                await_ack(ack).await;
                let Event::RequestFinished(f) = event else {
                    unreachable!("Done carries RequestFinished")
                };
                let overhead = t0.elapsed().saturating_sub(tally.upstream);
                let limits = {
                    let mut core = app.hub.lock();
                    core.metrics.record_overhead(overhead.as_micros() as u64);
                    key_limit_headers(&core.router, &caller, app.clock.now())
                };
                let mut resp = match result {
                    RequestResult::Ok => {
                        let mut resp = Response::new(Body::from(success_body.unwrap_or_default()));
                        resp.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        );
                        add_headers(
                            resp.headers_mut(),
                            id,
                            &cfg,
                            &tally,
                            Some(f.cost.as_usd_f64()),
                            overhead,
                            t0.elapsed(),
                        );
                        resp
                    }
                    RequestResult::Err(e) => {
                        let mut resp = error_response(&e);
                        add_headers(
                            resp.headers_mut(),
                            id,
                            &cfg,
                            &tally,
                            None,
                            overhead,
                            t0.elapsed(),
                        );
                        resp
                    }
                };
                for (k, v) in limits {
                    if let Ok(v) = HeaderValue::from_str(&v) {
                        resp.headers_mut().insert(k, v);
                    }
                }
                return resp;
            }
            Poll::InFlight | Poll::Unknown => break,
        }
    }
    err(
        500,
        "api_error",
        "internal error: the router lost track of the request",
    )
}

/// A virtual key's limits and what is left of them this minute (`x-ratelimit-*`, as LiteLLM
/// sends them).
fn key_limit_headers(
    router: &crate::core::router::Router,
    caller: &Caller,
    now: crate::core::units::InstantUs,
) -> Vec<(&'static str, String)> {
    let Caller::Key(id) = caller else {
        return Vec::new();
    };
    let Some(k) = router.key(id) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(l) = k.def.rpm_limit {
        out.push(("x-ratelimit-limit-requests", l.to_string()));
        out.push((
            "x-ratelimit-remaining-requests",
            l.saturating_sub(k.window.requests_at(now)).to_string(),
        ));
    }
    if let Some(l) = k.def.tpm_limit {
        out.push(("x-ratelimit-limit-tokens", l.to_string()));
        out.push((
            "x-ratelimit-remaining-tokens",
            l.saturating_sub(k.window.tokens_at(now)).to_string(),
        ));
    }
    if let Some(l) = k.def.max_parallel_requests {
        out.push(("x-ratelimit-limit-parallel-requests", l.to_string()));
    }
    out
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn add_headers(
    h: &mut HeaderMap,
    id: u64,
    cfg: &RoutingConfig,
    tally: &Tally,
    cost: Option<f64>,
    overhead: Duration,
    total: Duration,
) {
    let mut put = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    put("x-litellm-call-id", id.to_string());
    if let Some(d) = tally.last_deployment.and_then(|i| cfg.deployments.get(i)) {
        put("x-litellm-model-id", d.id.clone());
        put("x-litellm-model-group", d.model_group.clone());
        put("x-litellm-model-api-base", d.api_base.clone());
    }
    if let Some(c) = cost {
        put("x-litellm-response-cost", format!("{c}"));
    }
    put("x-litellm-attempted-retries", tally.retries.to_string());
    put("x-litellm-attempted-fallbacks", tally.fallbacks.to_string());
    put(
        "x-litellm-overhead-duration-ms",
        format!("{:.3}", overhead.as_secs_f64() * 1000.0),
    );
    put(
        "x-litellm-response-duration-ms",
        format!("{:.3}", total.as_secs_f64() * 1000.0),
    );
}

fn sse(data: &str) -> Bytes {
    let mut b = Vec::with_capacity(data.len() + 8);
    b.extend_from_slice(b"data: ");
    b.extend_from_slice(data.as_bytes());
    b.extend_from_slice(b"\n\n");
    Bytes::from(b)
}

#[allow(clippy::too_many_arguments)]
fn start_stream(
    app: Arc<App>,
    id: u64,
    req: ClientRequest,
    open: Box<OpenStream>,
    cfg: Arc<RoutingConfig>,
    dep: usize,
    tally: Tally,
    t0: Instant,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let overhead = t0.elapsed().saturating_sub(tally.upstream);
    let mut resp = Response::new(Body::from_stream(tokio_stream_from(rx)));
    {
        let h = resp.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        );
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        add_headers(h, id, &cfg, &tally, None, overhead, t0.elapsed());
    }
    app.streams.fetch_add(1, Ordering::AcqRel);
    let (metrics_group, retries) = (tally.requested_group.clone(), tally.retries);
    tokio::spawn(async move {
        let ctx = PumpCtx {
            app: &app,
            id,
            req: &req,
            cfg: &cfg,
            dep,
            metrics_group,
            retries,
        };
        pump(ctx, *open, tx).await;
        app.hub
            .lock()
            .metrics
            .record_overhead(overhead.as_micros() as u64);
        app.streams.fetch_sub(1, Ordering::AcqRel);
    });
    resp
}

/// A receiver as a `Stream` for the response body.
fn tokio_stream_from(
    rx: mpsc::Receiver<Result<Bytes, Infallible>>,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// Forwards a committed stream to the client, then records its outcome.
/// What a stream's pump needs besides the stream.
struct PumpCtx<'a> {
    app: &'a App,
    id: u64,
    req: &'a ClientRequest,
    cfg: &'a RoutingConfig,
    dep: usize,
    /// Metrics labels: the request's model group and its retries before the stream began.
    metrics_group: String,
    retries: u32,
}

async fn pump(ctx: PumpCtx<'_>, mut open: OpenStream, tx: mpsc::Sender<Result<Bytes, Infallible>>) {
    let PumpCtx {
        app,
        id,
        req,
        cfg,
        dep,
        metrics_group,
        retries,
    } = ctx;
    let d = &cfg.deployments[dep];
    let idle = Duration::from_micros(if req.stream {
        d.stream_timeout
            .or(cfg.stream_timeout)
            .or(d.timeout)
            .unwrap_or(cfg.timeout)
            .0
    } else {
        cfg.timeout.0
    });
    let priced = d.prices.output_per_token.0 > 0 || d.prices.input_per_token.0 > 0;
    let mut client_gone = false;
    let mut done = false;
    let mut failure: Option<(OutcomeClass, u16, String)> = None;
    let mut pending: Vec<StreamOut> = std::mem::take(&mut open.first);
    let mut events = Vec::new();
    'outer: loop {
        for out in pending.drain(..) {
            match out {
                StreamOut::Chunk(c) => {
                    if !client_gone && tx.send(Ok(sse(&c))).await.is_err() {
                        client_gone = true;
                    }
                }
                StreamOut::UsageChunk(c) => {
                    if req.include_usage && !client_gone && tx.send(Ok(sse(&c))).await.is_err() {
                        client_gone = true;
                    }
                }
                StreamOut::Error { status, body } => {
                    let c = classify(status, &[], &body);
                    failure = Some((c.class, status, c.message));
                    break 'outer;
                }
                StreamOut::Done => {
                    done = true;
                    break 'outer;
                }
            }
        }
        // A client that left a self-hosted (free) deployment: stop generating. A priced one: read
        // on to the usage, so the spend recorded is what the provider bills.
        if client_gone && !priced {
            break;
        }
        match tokio::time::timeout(idle, open.body.frame()).await {
            Err(_) => {
                failure = Some((
                    OutcomeClass::Timeout,
                    0,
                    format!("the stream stalled for {} ms", idle.as_millis()),
                ));
                break;
            }
            Ok(None) => {
                open.parser.finish(&mut events);
                for ev in events.drain(..) {
                    open.translator.on_event(&ev, &mut pending);
                }
                if pending.is_empty() {
                    break;
                }
            }
            Ok(Some(Err(e))) => {
                failure = Some((
                    OutcomeClass::StreamInterrupted,
                    0,
                    format!("the stream broke: {e}"),
                ));
                break;
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if let Err(e) = open.parser.push(&data, &mut events) {
                        failure = Some((OutcomeClass::StreamInterrupted, 0, e));
                        break;
                    }
                    for ev in events.drain(..) {
                        open.translator.on_event(&ev, &mut pending);
                    }
                }
            }
        }
    }
    let usage = open.translator.usage();
    if failure.is_none() && !done && usage.is_none() && !client_gone {
        failure = Some((
            OutcomeClass::StreamInterrupted,
            0,
            "the stream ended without [DONE]".into(),
        ));
    }
    let class = if client_gone {
        OutcomeClass::Cancelled
    } else {
        failure.as_ref().map_or(OutcomeClass::Success, |f| f.0)
    };
    let (tokens_in, tokens_out, cache_read, cache_creation) = match usage {
        Some(u) if u.completion_tokens > 0 || done => (
            u.prompt_tokens,
            u.completion_tokens,
            u.cache_read_tokens,
            u.cache_creation_tokens,
        ),
        // No usage from the provider: our prompt estimate and the generated text's length.
        _ => {
            let est_in = app
                .hub
                .lock()
                .router
                .state()
                .requests
                .get(&id)
                .map_or(0, |r| r.received.tokens_in);
            (
                usage.map_or(est_in, |u| u.prompt_tokens.max(est_in)),
                request::estimate_output_tokens(open.translator.content_chars()),
                0,
                0,
            )
        }
    };
    let report = AttemptReport {
        class: Some(class),
        status: failure.as_ref().map_or(200, |f| f.1),
        ttft_us: Some(open.ttft.as_micros() as u64),
        duration_us: open.started.elapsed().as_micros() as u64,
        tokens_in,
        tokens_cache_read: cache_read,
        tokens_cache_creation: cache_creation,
        tokens_out,
        retry_after_ms: None,
        rate_limit: Default::default(),
        committed: true,
        message: failure.as_ref().map(|f| f.2.clone()),
    };
    let sync = app.hub.sync();
    let (_, ack) = app.hub.with(sync, |c, now| {
        let mut evs: Vec<Event> = c
            .router
            .attempt_finished(now, id, report)
            .into_iter()
            .collect();
        if let Poll::Done { event, result } = c.router.poll(now, id) {
            if let Event::RequestFinished(f) = &event {
                let status = match &result {
                    RequestResult::Ok => 200,
                    RequestResult::Err(e) => e.status,
                };
                c.metrics.record_request(
                    &metrics_group,
                    status,
                    f.latency_us,
                    f.ttft_us,
                    retries,
                    f.n_fallbacks,
                );
                if client_gone {
                    c.metrics.streams_cancelled += 1;
                }
            }
            evs.push(event);
        }
        ((), evs)
    });
    await_ack(ack).await;
    if client_gone {
        return;
    }
    if let Some((class, status, message)) = failure {
        let e = json!({"error": {"message": message, "type": class.error_type(), "code": if status > 0 { status } else { class.default_status() }}});
        let _ = tx.send(Ok(sse(&e.to_string()))).await;
    }
    let _ = tx.send(Ok(sse("[DONE]"))).await;
}

pub async fn models(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let caller = match authenticate(&app, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let key = match &caller {
        Caller::Key(k) => Some(k.to_string()),
        _ => None,
    };
    let names = app.hub.lock().router.models_for(key.as_deref());
    let data: Vec<Value> = names.iter().map(|n| json!({"id": n, "object": "model", "created": 1_677_610_602u64, "owned_by": "openai"})).collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

pub async fn liveliness() -> Response {
    axum::Json(json!("I'm alive!")).into_response()
}

pub async fn readiness(State(app): State<Arc<App>>) -> Response {
    let failed = app.hub.store.failed();
    let shutting = app.shutting_down.load(Ordering::Acquire);
    let body = json!({
        "status": if failed || shutting { "unhealthy" } else { "healthy" },
        "db": if failed { "event log write failed" } else { "connected" },
        "event_log": app.hub.store.path().display().to_string(),
        "last_seq": app.hub.store.written_seq(),
        "switchyard_version": env!("CARGO_PKG_VERSION"),
    });
    let status = if failed || shutting {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, axum::Json(body)).into_response()
}

/// Per-deployment health from recent outcomes; no calls are made.
pub async fn health(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(r) = authenticate(&app, &headers) {
        return r;
    }
    let now = app.clock.now();
    let core = app.hub.lock();
    let cfg = core.router.config().clone();
    let st = core.router.state();
    let mut healthy = Vec::new();
    let mut unhealthy = Vec::new();
    for (d, ds) in cfg.deployments.iter().zip(&st.deployments) {
        let cooling = ds.cooling(now);
        let last_failed = ds.totals.last_class.is_some_and(|c| !c.is_success());
        let entry = json!({
            "model": d.model,
            "model_group": d.model_group,
            "model_id": d.id,
            "api_base": d.api_base,
            "cooling_down": cooling,
            "cooldown_remaining_ms": ds.cooldown_until.since(now).as_ms(),
            "last_outcome": ds.totals.last_class.map(|c| c.name()),
            "in_flight": ds.in_flight,
            "attempts": ds.totals.attempts,
            "failures": ds.totals.failures,
            "unusable": d.unusable,
        });
        if cooling || last_failed || d.unusable.is_some() {
            unhealthy.push(entry);
        } else {
            healthy.push(entry);
        }
    }
    axum::Json(json!({
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
        "healthy_count": healthy.len(),
        "unhealthy_count": unhealthy.len(),
        "event_log": {
            "queued": app.hub.store.queued(),
            "failed": app.hub.store.failed(),
            "overflow": if app.hub.overflow == super::hub::Overflow::Drop { "drop" } else { "wait" },
            "dropped_requests": core.dropped.requests,
            "dropped_events": core.dropped.events,
        },
    }))
    .into_response()
}

pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    let now = app.clock.now();
    let log = super::metrics::LogGauges {
        queued: app.hub.store.queued(),
        written_seq: app.hub.store.written_seq(),
        flushed_seq: app.hub.store.flushed_seq(),
        failed: app.hub.store.failed(),
        dropped: app.hub.dropped(),
    };
    let core = app.hub.lock();
    let text = core.metrics.render(&core.router, now, &log);
    (
        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
        .into_response()
}

fn random_key() -> String {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).expect("the OS random number generator is available");
    format!("sk-{}", crate::config::load::hex(&b))
}

fn key_json(k: &crate::core::state::KeyState) -> Value {
    json!({
        "token": k.def.id,
        "key_alias": k.def.alias,
        "models": k.def.models,
        "aliases": k.def.aliases,
        "rpm_limit": k.def.rpm_limit,
        "tpm_limit": k.def.tpm_limit,
        "max_parallel_requests": k.def.max_parallel_requests,
        "max_budget": k.def.max_budget.map(|b| b.as_usd_f64()),
        "spend": k.spend.as_usd_f64(),
        "reserved": k.reserved.as_usd_f64(),
        "tags": k.def.tags,
        "requests": k.requests,
        "deleted": k.deleted,
    })
}

pub async fn key_generate(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    if let Err(r) = require_admin(&app, &headers) {
        return r;
    }
    let bytes = match read_body(body, 1 << 20).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let v: Value = if bytes.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                return err(
                    400,
                    "invalid_request_error",
                    format!("the request body is not valid JSON: {e}"),
                )
            }
        }
    };
    let secret = v
        .get("key")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(random_key);
    let strs = |k: &str| -> Vec<String> {
        v.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let budget = match v.get("max_budget") {
        None | Some(Value::Null) => None,
        Some(b) => match b
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .and_then(|f| crate::core::units::PicoUsd::parse_usd(&format!("{f:e}")).ok())
        {
            Some(p) => Some(p),
            None => {
                return err(
                    400,
                    "invalid_request_error",
                    "`max_budget` must be a non-negative number",
                )
            }
        },
    };
    let hash_hex = auth::sha256_hex(&secret);
    let def = crate::config::VirtualKey {
        id: hash_hex[..16].to_string(),
        hash_hex,
        alias: v
            .get("key_alias")
            .and_then(Value::as_str)
            .map(str::to_string),
        models: strs("models"),
        aliases: v
            .get("aliases")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect::<BTreeMap<_, _>>()
            })
            .unwrap_or_default(),
        rpm_limit: v.get("rpm_limit").and_then(Value::as_u64),
        tpm_limit: v.get("tpm_limit").and_then(Value::as_u64),
        max_parallel_requests: v.get("max_parallel_requests").and_then(Value::as_u64),
        max_budget: budget,
        tags: strs("tags"),
    };
    let ((), ack) = app.hub.with(true, |c, now| {
        let ev = Event::KeyCreated(Box::new(crate::core::event::KeyCreated {
            at: now,
            key: def.clone(),
        }));
        c.router.apply(&ev);
        ((), vec![ev])
    });
    await_ack(ack).await;
    let core = app.hub.lock();
    let mut out = core.router.key(&def.id).map(key_json).unwrap_or(json!({}));
    out["key"] = Value::String(secret);
    axum::Json(out).into_response()
}

pub async fn key_info(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let caller = match authenticate(&app, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let core = app.hub.lock();
    let target: Option<String> = match q.get("key") {
        Some(k) if k.starts_with("sk-") => core
            .router
            .key_by_hash(&auth::sha256_hex(k))
            .map(|ks| ks.def.id.clone()),
        Some(k) => Some(k.clone()),
        None => match &caller {
            Caller::Key(k) => Some(k.to_string()),
            _ => None,
        },
    };
    let Some(id) = target else {
        return err(404, "not_found_error", "no such key");
    };
    let allowed = match &caller {
        Caller::Admin | Caller::Anonymous => true,
        Caller::Key(k) => **k == *id,
    };
    if !allowed {
        return err(403, "auth_error", "a key may only read its own info");
    }
    match core.router.key(&id) {
        Some(k) => axum::Json(json!({"key": id, "info": key_json(k)})).into_response(),
        None => err(404, "not_found_error", "no such key"),
    }
}

pub async fn key_delete(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    if let Err(r) = require_admin(&app, &headers) {
        return r;
    }
    let bytes = match read_body(body, 1 << 20).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let v: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return err(
                400,
                "invalid_request_error",
                format!("the request body is not valid JSON: {e}"),
            )
        }
    };
    let keys: Vec<String> = v
        .get("keys")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if keys.is_empty() {
        return err(
            400,
            "invalid_request_error",
            "expected {\"keys\": [\"sk-...\"]}",
        );
    }
    let (deleted, ack) = app.hub.with(true, |c, now| {
        let mut evs = Vec::new();
        let mut deleted = Vec::new();
        for k in &keys {
            let id = if k.starts_with("sk-") {
                c.router
                    .key_by_hash(&auth::sha256_hex(k))
                    .map(|ks| ks.def.id.clone())
            } else {
                c.router
                    .key(k)
                    .filter(|ks| !ks.deleted)
                    .map(|ks| ks.def.id.clone())
            };
            if let Some(id) = id {
                let ev = Event::KeyDeleted(Box::new(crate::core::event::KeyDeleted {
                    at: now,
                    key_id: id.clone(),
                }));
                c.router.apply(&ev);
                evs.push(ev);
                deleted.push(id);
            }
        }
        (deleted, evs)
    });
    await_ack(ack).await;
    if deleted.is_empty() {
        return err(404, "not_found_error", "none of these keys exist");
    }
    axum::Json(json!({"deleted_keys": deleted})).into_response()
}

pub async fn config_reload(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(r) = require_admin(&app, &headers) {
        return r;
    }
    match app.reload() {
        Ok(summary) => axum::Json(json!({"status": "reloaded", "config_hash": summary.0, "warnings": summary.1})).into_response(),
        Err(diags) => (StatusCode::BAD_REQUEST, axum::Json(json!({"error": {"message": "the new config is not valid; the running config stays", "type": "invalid_request_error", "param": null, "code": "400", "diagnostics": diags}}))).into_response(),
    }
}

pub async fn not_found() -> Response {
    err(404, "not_found_error", "no such endpoint")
}

/// Events from the log, as JSON Lines (`switchyard log tail --url`, `log export --url`): the
/// `limit` events from seq `from` on. Needs the master key.
pub async fn log_events(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = require_admin(&app, &headers) {
        return r;
    }
    let from: u64 = q.get("from").and_then(|v| v.parse().ok()).unwrap_or(1);
    let limit: usize = q
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
        .min(100_000);
    let store = app.hub.store.clone();
    let body = tokio::task::spawn_blocking(move || {
        let mut out = String::new();
        for item in store.scan(from).take(limit) {
            match item {
                Ok((seq, ev)) => {
                    out.push_str(&crate::events::jsonl::to_line(seq, &ev));
                    out.push('\n');
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(out)
    })
    .await;
    match body {
        Ok(Ok(text)) => {
            ([(http::header::CONTENT_TYPE, "application/x-ndjson")], text).into_response()
        }
        Ok(Err(e)) => err(500, "api_error", format!("reading the event log: {e}")),
        Err(e) => err(500, "api_error", format!("reading the event log: {e}")),
    }
}
