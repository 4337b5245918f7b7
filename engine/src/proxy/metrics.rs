//! Prometheus metrics. Counters that the router state already holds (attempts, failures, spend,
//! tokens, cooldowns, in-flight) are read from it at scrape time, so the hot path pays only for
//! the histograms, updated under the lock the request already takes.

use crate::core::router::Router;
use crate::core::units::InstantUs;
use std::collections::BTreeMap;
use std::fmt::Write;

const LATENCY_BUCKETS_S: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
const OVERHEAD_BUCKETS_S: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
];

#[derive(Clone, Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum_us: u64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum_us: 0,
            count: 0,
        }
    }

    pub fn observe_us(&mut self, us: u64) {
        let s = us as f64 / 1e6;
        if let Some(i) = self.bounds.iter().position(|&b| s <= b) {
            self.counts[i] += 1;
        }
        self.sum_us += us;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cum = 0;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cum += c;
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cum}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum_us as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Clone, Debug, Default)]
pub struct Metrics {
    requests: BTreeMap<(String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    ttft: BTreeMap<String, Histogram>,
    overhead: Option<Histogram>,
    retries: BTreeMap<String, u64>,
    fallbacks: BTreeMap<String, u64>,
    pub streams_cancelled: u64,
    pub rejected_auth: u64,
    pub bad_requests: u64,
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn record_request(
        &mut self,
        group: &str,
        status: u16,
        latency_us: u64,
        ttft_us: Option<u64>,
        retries: u32,
        fallbacks: u32,
    ) {
        *self
            .requests
            .entry((group.to_string(), status))
            .or_insert(0) += 1;
        self.latency
            .entry(group.to_string())
            .or_insert_with(|| Histogram::new(LATENCY_BUCKETS_S))
            .observe_us(latency_us);
        if let Some(t) = ttft_us {
            self.ttft
                .entry(group.to_string())
                .or_insert_with(|| Histogram::new(LATENCY_BUCKETS_S))
                .observe_us(t);
        }
        if retries > 0 {
            *self.retries.entry(group.to_string()).or_insert(0) += retries as u64;
        }
        if fallbacks > 0 {
            *self.fallbacks.entry(group.to_string()).or_insert(0) += fallbacks as u64;
        }
    }

    pub fn record_overhead(&mut self, us: u64) {
        self.overhead
            .get_or_insert_with(|| Histogram::new(OVERHEAD_BUCKETS_S))
            .observe_us(us);
    }

    /// Prometheus text exposition.
    pub fn render(&self, router: &Router, now: InstantUs, log: &LogGauges) -> String {
        let mut out = String::with_capacity(8192);
        out.push_str("# HELP switchyard_requests_total Requests by model group and HTTP status.\n# TYPE switchyard_requests_total counter\n");
        for ((g, s), n) in &self.requests {
            let _ = writeln!(
                out,
                "switchyard_requests_total{{model_group=\"{}\",status=\"{s}\"}} {n}",
                esc(g)
            );
        }
        out.push_str("# HELP switchyard_request_failures_total Requests that ended with an error.\n# TYPE switchyard_request_failures_total counter\n");
        let mut failures: BTreeMap<&str, u64> = BTreeMap::new();
        for ((g, s), n) in &self.requests {
            if *s >= 400 {
                *failures.entry(g).or_insert(0) += n;
            }
        }
        for (g, n) in failures {
            let _ = writeln!(
                out,
                "switchyard_request_failures_total{{model_group=\"{}\"}} {n}",
                esc(g)
            );
        }
        out.push_str("# HELP switchyard_request_latency_seconds End-to-end request latency.\n# TYPE switchyard_request_latency_seconds histogram\n");
        for (g, h) in &self.latency {
            h.render(
                &mut out,
                "switchyard_request_latency_seconds",
                &format!("model_group=\"{}\"", esc(g)),
            );
        }
        out.push_str("# HELP switchyard_ttft_seconds Time to first token of streaming requests.\n# TYPE switchyard_ttft_seconds histogram\n");
        for (g, h) in &self.ttft {
            h.render(
                &mut out,
                "switchyard_ttft_seconds",
                &format!("model_group=\"{}\"", esc(g)),
            );
        }
        out.push_str("# HELP switchyard_overhead_seconds Time the proxy itself added to a request (total minus upstream and router waits).\n# TYPE switchyard_overhead_seconds histogram\n");
        if let Some(h) = &self.overhead {
            h.render(&mut out, "switchyard_overhead_seconds", "");
        }
        out.push_str("# HELP switchyard_retries_total Retries by model group.\n# TYPE switchyard_retries_total counter\n");
        for (g, n) in &self.retries {
            let _ = writeln!(
                out,
                "switchyard_retries_total{{model_group=\"{}\"}} {n}",
                esc(g)
            );
        }
        out.push_str("# HELP switchyard_fallbacks_total Fallbacks by requested model group.\n# TYPE switchyard_fallbacks_total counter\n");
        for (g, n) in &self.fallbacks {
            let _ = writeln!(
                out,
                "switchyard_fallbacks_total{{model_group=\"{}\"}} {n}",
                esc(g)
            );
        }
        let st = router.state();
        let cfg = router.config();
        let series: [(&str, &str, &str); 9] = [
            (
                "switchyard_deployment_attempts_total",
                "counter",
                "Upstream attempts per deployment.",
            ),
            (
                "switchyard_deployment_failures_total",
                "counter",
                "Failed upstream attempts per deployment.",
            ),
            (
                "switchyard_deployment_spend_usd_total",
                "counter",
                "Spend per deployment in USD.",
            ),
            (
                "switchyard_deployment_input_tokens_total",
                "counter",
                "Prompt tokens per deployment.",
            ),
            (
                "switchyard_deployment_output_tokens_total",
                "counter",
                "Completion tokens per deployment.",
            ),
            (
                "switchyard_deployment_cooldowns_total",
                "counter",
                "Cooldowns started per deployment.",
            ),
            (
                "switchyard_deployment_cooling_down",
                "gauge",
                "1 while the deployment is cooling down.",
            ),
            (
                "switchyard_deployment_cooldown_remaining_seconds",
                "gauge",
                "Time left in the deployment's cooldown.",
            ),
            (
                "switchyard_deployment_in_flight",
                "gauge",
                "Attempts in flight per deployment.",
            ),
        ];
        for (i, (name, ty, help)) in series.iter().enumerate() {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {ty}");
            for (d, ds) in cfg.deployments.iter().zip(&st.deployments) {
                let v: f64 = match i {
                    0 => ds.totals.attempts as f64,
                    1 => ds.totals.failures as f64,
                    2 => ds.totals.spend.as_usd_f64(),
                    3 => ds.totals.tokens_in as f64,
                    4 => ds.totals.tokens_out as f64,
                    5 => ds.totals.cooldowns as f64,
                    6 => f64::from(u8::from(ds.cooling(now))),
                    7 => ds.cooldown_until.since(now).as_secs_f64(),
                    _ => ds.in_flight as f64,
                };
                let _ = writeln!(
                    out,
                    "{name}{{model_group=\"{}\",deployment=\"{}\",model=\"{}\"}} {v}",
                    esc(&d.model_group),
                    esc(&d.id),
                    esc(&d.model)
                );
            }
        }
        out.push_str("# HELP switchyard_model_group_spend_usd_total Spend per model group in USD.\n# TYPE switchyard_model_group_spend_usd_total counter\n");
        let mut by_group: BTreeMap<&str, crate::core::units::PicoUsd> = BTreeMap::new();
        for (d, ds) in cfg.deployments.iter().zip(&st.deployments) {
            let e = by_group.entry(d.model_group.as_str()).or_default();
            *e = e.saturating_add(ds.totals.spend);
        }
        for (g, v) in by_group {
            let _ = writeln!(
                out,
                "switchyard_model_group_spend_usd_total{{model_group=\"{}\"}} {}",
                esc(g),
                v.as_usd_f64()
            );
        }
        out.push_str("# HELP switchyard_key_spend_usd_total Spend per virtual key in USD.\n# TYPE switchyard_key_spend_usd_total counter\n");
        for (id, k) in &st.keys {
            let alias = k.def.alias.as_deref().unwrap_or("");
            let _ = writeln!(
                out,
                "switchyard_key_spend_usd_total{{key=\"{}\",key_alias=\"{}\"}} {}",
                esc(id),
                esc(alias),
                k.spend.as_usd_f64()
            );
        }
        let _ = writeln!(out, "# HELP switchyard_requests_in_flight Requests in flight.\n# TYPE switchyard_requests_in_flight gauge\nswitchyard_requests_in_flight {}", router.requests_in_flight());
        let _ = writeln!(out, "# HELP switchyard_stream_client_disconnects_total Streams the client left before the end.\n# TYPE switchyard_stream_client_disconnects_total counter\nswitchyard_stream_client_disconnects_total {}", self.streams_cancelled);
        let _ = writeln!(out, "# HELP switchyard_event_log_queued Events waiting for the log writer.\n# TYPE switchyard_event_log_queued gauge\nswitchyard_event_log_queued {}", log.queued);
        let _ = writeln!(out, "# HELP switchyard_event_log_last_seq Last sequence number written to the log.\n# TYPE switchyard_event_log_last_seq gauge\nswitchyard_event_log_last_seq {}", log.written_seq);
        let _ = writeln!(out, "# HELP switchyard_event_log_flushed_seq Last sequence number flushed to disk.\n# TYPE switchyard_event_log_flushed_seq gauge\nswitchyard_event_log_flushed_seq {}", log.flushed_seq);
        let _ = writeln!(out, "# HELP switchyard_event_log_failed 1 if a write to the event log failed.\n# TYPE switchyard_event_log_failed gauge\nswitchyard_event_log_failed {}", u8::from(log.failed));
        let _ = writeln!(out, "# HELP switchyard_event_log_dropped_requests_total Requests served but left out of the log (--log-overflow drop).\n# TYPE switchyard_event_log_dropped_requests_total counter\nswitchyard_event_log_dropped_requests_total {}", log.dropped.requests);
        let _ = writeln!(out, "# HELP switchyard_event_log_dropped_events_total Events left out of the log (--log-overflow drop).\n# TYPE switchyard_event_log_dropped_events_total counter\nswitchyard_event_log_dropped_events_total {}", log.dropped.events);
        out
    }
}

#[derive(Clone, Debug, Default)]
pub struct LogGauges {
    pub queued: usize,
    pub written_seq: u64,
    pub flushed_seq: u64,
    pub failed: bool,
    pub dropped: super::hub::Dropped,
}
