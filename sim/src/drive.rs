//! `sim drive`: replays a workload's arrivals in real time against a live proxy (open loop: a
//! request is sent at its arrival time whether or not earlier ones have finished). Used for
//! staging tests and to record sample traces.

use crate::workload::{Item, ItemResult};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct DriveOptions {
    /// Base URL of the proxy, e.g. `http://127.0.0.1:4000`.
    pub target: String,
    pub speed: f64,
    pub key: Option<String>,
    /// Requests in flight at most (beyond it, arrivals wait: the driver is no longer open-loop).
    pub max_in_flight: usize,
    pub limit: Option<u64>,
}

#[derive(Debug, Default)]
pub struct DriveStats {
    pub sent: AtomicU64,
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    pub transport_errors: AtomicU64,
    pub total_latency_us: AtomicU64,
}

/// A prompt whose size the proxy estimates as about `tokens` tokens (4 bytes a token).
pub fn prompt_of(tokens: u64) -> String {
    "abc ".repeat(tokens.saturating_sub(7) as usize)
}

pub async fn drive<I: Iterator<Item = ItemResult>>(
    workload: I,
    opts: DriveOptions,
    mut progress: impl FnMut(u64),
) -> Result<Arc<DriveStats>, String> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build_http();
    let stats = Arc::new(DriveStats::default());
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.max_in_flight.max(1)));
    let start = Instant::now();
    let url = format!("{}/v1/chat/completions", opts.target.trim_end_matches('/'));
    let mut first_at: Option<u64> = None;
    let mut handles = Vec::new();
    let mut n = 0u64;
    for item in workload {
        let item = item?;
        let Item::Request(a) = item else { continue };
        if opts.limit.is_some_and(|l| n >= l) {
            break;
        }
        n += 1;
        let t0 = *first_at.get_or_insert(a.at.0);
        let due =
            start + Duration::from_micros(((a.at.0 - t0) as f64 / opts.speed.max(1e-9)) as u64);
        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
        let permit = sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let mut body = json!({
            "model": a.input.model,
            "messages": [{"role": "user", "content": prompt_of(a.input.tokens_in)}],
            "stream": a.input.stream,
        });
        if let Some(m) = a.input.max_tokens {
            body["max_tokens"] = json!(m);
        }
        if a.input.stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        if let Some(u) = &a.input.user {
            body["user"] = json!(u);
        }
        if !a.input.tags.is_empty() {
            body["tags"] = json!(a.input.tags);
        }
        let o = &a.input.overrides;
        if let Some(f) = &o.fallbacks {
            body["fallbacks"] = json!(f);
        }
        if let Some(n) = o.num_retries {
            body["num_retries"] = json!(n);
        }
        if let Some(t) = o.timeout_us {
            body["timeout"] = json!(t as f64 / 1e6);
        }
        if o.mock_testing_fallbacks {
            body["mock_testing_fallbacks"] = json!(true);
        }
        let mut req = hyper::Request::post(&url)
            .header("content-type", "application/json")
            .header("x-switchyard-tokens-in", a.input.tokens_in.to_string());
        if let Some(out) = a.tokens_out {
            req = req.header("x-switchyard-output-tokens", out.to_string());
        }
        for (k, v) in &a.input.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let key = a.key.clone().or_else(|| opts.key.clone());
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let req = match req.body(Full::new(Bytes::from(body.to_string()))) {
            Ok(r) => r,
            Err(e) => return Err(format!("building a request: {e}")),
        };
        let client = client.clone();
        let stats = stats.clone();
        stats.sent.fetch_add(1, Ordering::Relaxed);
        handles.push(tokio::spawn(async move {
            let t = Instant::now();
            match client.request(req).await {
                Ok(resp) => {
                    let ok = resp.status().is_success();
                    // Read the whole body (streams included) so the request runs to its end.
                    let _ = resp.into_body().collect().await;
                    if ok {
                        stats.ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(_) => {
                    stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            stats
                .total_latency_us
                .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
            drop(permit);
        }));
        if n.is_multiple_of(500) {
            progress(n);
            handles.retain(|h| !h.is_finished());
        }
    }
    for h in handles {
        let _ = h.await;
    }
    progress(n);
    Ok(stats)
}
