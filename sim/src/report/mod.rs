//! Reports: what happened in a run (from the router's events), as figures per model group and
//! per deployment; across runs with different seeds, a mean and a 95 % confidence interval for
//! every figure. Rendered as a text table, JSON, Markdown, or a self-contained HTML page.

pub mod html;
pub mod render;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use switchyard_engine::core::event::{
    Admission, Event, Name, Reason, RequestReceived, RequestResult,
};
use switchyard_engine::core::rng::IdMap;

const UNKNOWN: &str = "(unknown)";
const REJECTED: &str = "(rejected)";
use switchyard_engine::core::units::PicoUsd;

/// Histograms hold microseconds up to one hour, three significant digits.
const HIST_MAX_US: u64 = 3_600_000_000;
/// Width of the buckets of the traffic-share time series.
pub const SERIES_BUCKET_US: u64 = 10_000_000;

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
}

fn record(h: &mut Histogram<u64>, us: u64) {
    let _ = h.record(us.clamp(1, HIST_MAX_US));
}

#[derive(Clone, Debug)]
pub struct Scope {
    pub requests: u64,
    pub ok: u64,
    pub errors_by_status: BTreeMap<u16, u64>,
    pub retries: u64,
    pub fallbacks: u64,
    pub attempts: u64,
    pub cost: PicoUsd,
    pub latency: Histogram<u64>,
    pub ttft: Histogram<u64>,
}

impl Default for Scope {
    fn default() -> Self {
        Scope {
            requests: 0,
            ok: 0,
            errors_by_status: BTreeMap::new(),
            retries: 0,
            fallbacks: 0,
            attempts: 0,
            cost: PicoUsd::ZERO,
            latency: hist(),
            ttft: hist(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct DepScope {
    pub attempts: u64,
    pub successes: u64,
    pub failures_by_class: BTreeMap<&'static str, u64>,
    pub cost: PicoUsd,
    pub cooldown_us: u64,
    pub duration: Histogram<u64>,
}

impl Default for DepScope {
    fn default() -> Self {
        DepScope {
            attempts: 0,
            successes: 0,
            failures_by_class: BTreeMap::new(),
            cost: PicoUsd::ZERO,
            cooldown_us: 0,
            duration: hist(),
        }
    }
}

/// Entries by name, kept in first-seen order and iterated in name order. Lookups on the hot path
/// compare pointers: the simulator's events share the router's `Arc`s for deployment and group
/// names, so a short list of recently seen `Arc`s (held, so their addresses cannot be reused)
/// finds most entries without comparing strings.
#[derive(Clone, Debug)]
pub struct Named<T> {
    entries: Vec<(Name, T)>,
    by_name: BTreeMap<Name, usize>,
    recent: Vec<(Name, usize)>,
}

impl<T> Default for Named<T> {
    fn default() -> Self {
        Named {
            entries: Vec::new(),
            by_name: BTreeMap::new(),
            recent: Vec::new(),
        }
    }
}

/// How many names a `Named` remembers by pointer.
const RECENT_NAMES: usize = 16;

impl<T: Default> Named<T> {
    /// The index of `name`'s entry, created on first use.
    fn index(&mut self, name: &Name) -> usize {
        if let Some(&(_, i)) = self.recent.iter().find(|(n, _)| Arc::ptr_eq(n, name)) {
            return i;
        }
        let i = self.index_str(name);
        if self.recent.len() < RECENT_NAMES {
            self.recent.push((name.clone(), i));
        }
        i
    }

    fn index_str(&mut self, name: &str) -> usize {
        if let Some(&i) = self.by_name.get(name) {
            return i;
        }
        let i = self.entries.len();
        let name = Name::from(name);
        self.by_name.insert(name.clone(), i);
        self.entries.push((name, T::default()));
        i
    }

    fn get_mut(&mut self, name: &Name) -> &mut T {
        let i = self.index(name);
        &mut self.entries[i].1
    }

    fn get_mut_str(&mut self, name: &str) -> &mut T {
        let i = self.index_str(name);
        &mut self.entries[i].1
    }
}

impl<T> Named<T> {
    /// Entries in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&Name, &T)> {
        self.by_name.iter().map(|(n, &i)| (n, &self.entries[i].1))
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().map(|(_, v)| v)
    }
}

/// Accumulates one run from its events.
#[derive(Clone, Debug, Default)]
pub struct RunBuilder {
    /// Per model group. The whole run's figures are their sum (`overall`): every request and
    /// attempt counts in exactly one group.
    pub groups: Named<Scope>,
    pub deployments: Named<DepScope>,
    /// Series bucket -> attempts per deployment (indexed like `deployments`' entries).
    series: BTreeMap<u64, Vec<u64>>,
    /// Requests in flight, for `on_event` (the simulator keeps each request's tag itself).
    in_flight: IdMap<Tag>,
    pub first_us: Option<u64>,
    pub last_us: u64,
}

/// What the report keeps on a request in flight: its group's entry in `groups` and whether it
/// streams (TTFT counts for streams only).
#[derive(Clone, Copy, Debug)]
pub struct Tag {
    group: u32,
    stream: bool,
}

impl RunBuilder {
    pub fn new() -> RunBuilder {
        RunBuilder::default()
    }

    /// Takes in one event, keeping track of the requests in flight itself.
    pub fn on_event(&mut self, ev: &Event) {
        let tag = match ev {
            Event::RequestReceived(r) => {
                let tag = self.on_received(r);
                self.in_flight.insert(r.id, tag);
                return;
            }
            Event::AttemptDecided(d) => self.in_flight.get(&d.id).copied(),
            Event::RequestFinished(f) => self.in_flight.remove(&f.id),
            _ => None,
        };
        self.on_event_tagged(ev, tag);
    }

    fn saw(&mut self, at: u64) {
        self.first_us.get_or_insert(at);
        self.last_us = self.last_us.max(at);
    }

    /// A request arrived: the tag that its later events come with (`on_event_tagged`).
    pub fn on_received(&mut self, r: &RequestReceived) -> Tag {
        self.saw(r.at.0);
        let g = match &r.admission {
            Admission::Admitted { group, .. } => self.groups.index(group),
            Admission::Rejected(_) => self.groups.index_str(REJECTED),
        };
        Tag {
            group: g as u32,
            stream: r.stream,
        }
    }

    /// Takes in an event other than a request's arrival, with the tag `on_received` gave its
    /// request (`None` when unknown: the request arrived before the log began).
    pub fn on_event_tagged(&mut self, ev: &Event, tag: Option<Tag>) {
        let at = ev.at().0;
        self.saw(at);
        match ev {
            Event::RequestReceived(r) => {
                self.on_received(r);
            }
            Event::AttemptDecided(d) => {
                let g = match tag {
                    Some(t) => t.group as usize,
                    None => self.groups.index_str(UNKNOWN),
                };
                let s = &mut self.groups.entries[g].1;
                s.attempts += 1;
                match d.reason {
                    Reason::Retry => s.retries += 1,
                    Reason::Fallback | Reason::ContextWindow | Reason::ContentPolicy => {
                        s.fallbacks += 1
                    }
                    _ => {}
                }
                let dep = self.deployments.index(&d.deployment);
                self.deployments.entries[dep].1.attempts += 1;
                let counts = self.series.entry(at / SERIES_BUCKET_US).or_default();
                if counts.len() <= dep {
                    counts.resize(dep + 1, 0);
                }
                counts[dep] += 1;
            }
            Event::AttemptFinished(a) => {
                let dep = self.deployments.get_mut(&a.deployment);
                dep.cost = dep.cost.saturating_add(a.cost);
                record(&mut dep.duration, a.duration_us);
                if a.class.is_success() {
                    dep.successes += 1;
                } else {
                    *dep.failures_by_class.entry(a.class.name()).or_insert(0) += 1;
                }
            }
            Event::RequestFinished(f) => {
                let (g, stream) = match tag {
                    Some(t) => (t.group as usize, t.stream),
                    None => (self.groups.index_str(UNKNOWN), false),
                };
                let s = &mut self.groups.entries[g].1;
                s.requests += 1;
                s.cost = s.cost.saturating_add(f.cost);
                match &f.result {
                    RequestResult::Ok => {
                        s.ok += 1;
                        record(&mut s.latency, f.latency_us);
                        if let (true, Some(t)) = (stream, f.ttft_us) {
                            record(&mut s.ttft, t);
                        }
                    }
                    RequestResult::Err(e) => *s.errors_by_status.entry(e.status).or_insert(0) += 1,
                }
            }
            _ => {}
        }
    }

    /// The whole run: the sum of the groups.
    pub fn overall(&self) -> Scope {
        let mut o = Scope::default();
        for s in self.groups.values() {
            o.requests += s.requests;
            o.ok += s.ok;
            for (status, n) in &s.errors_by_status {
                *o.errors_by_status.entry(*status).or_insert(0) += n;
            }
            o.retries += s.retries;
            o.fallbacks += s.fallbacks;
            o.attempts += s.attempts;
            o.cost = o.cost.saturating_add(s.cost);
            // Same bounds and precision: adding is exact.
            let _ = o.latency.add(&s.latency);
            let _ = o.ttft.add(&s.ttft);
        }
        o
    }

    pub fn on_cooldown(&mut self, deployment: &str, added_us: u64) {
        self.deployments.get_mut_str(deployment).cooldown_us += added_us;
    }

    /// The run's figures.
    pub fn figures(&self) -> RunFigures {
        let total_attempts: u64 = self.deployments.values().map(|d| d.attempts).sum();
        let mut deployments = BTreeMap::new();
        for (id, d) in self.deployments.iter() {
            let mut f = BTreeMap::new();
            f.insert("attempts".into(), d.attempts as f64);
            f.insert("successes".into(), d.successes as f64);
            f.insert(
                "failures".into(),
                d.failures_by_class.values().sum::<u64>() as f64,
            );
            f.insert(
                "share".into(),
                if total_attempts > 0 {
                    d.attempts as f64 / total_attempts as f64
                } else {
                    0.0
                },
            );
            f.insert("cost_usd".into(), d.cost.as_usd_f64());
            f.insert("cooldown_s".into(), d.cooldown_us as f64 / 1e6);
            if !d.duration.is_empty() {
                f.insert(
                    "attempt_p50_ms".into(),
                    d.duration.value_at_quantile(0.5) as f64 / 1000.0,
                );
                f.insert(
                    "attempt_p99_ms".into(),
                    d.duration.value_at_quantile(0.99) as f64 / 1000.0,
                );
            }
            for (c, n) in &d.failures_by_class {
                f.insert(format!("failed_{c}"), *n as f64);
            }
            deployments.insert(id.to_string(), f);
        }
        RunFigures {
            overall: scope_figures(&self.overall()),
            groups: self
                .groups
                .iter()
                .map(|(k, v)| (k.to_string(), scope_figures(v)))
                .collect(),
            deployments,
            span_s: (self.last_us - self.first_us.unwrap_or(self.last_us)) as f64 / 1e6,
        }
    }
}

fn scope_figures(s: &Scope) -> BTreeMap<String, f64> {
    let mut f = BTreeMap::new();
    let errors: u64 = s.errors_by_status.values().sum();
    f.insert("requests".into(), s.requests as f64);
    f.insert("ok".into(), s.ok as f64);
    f.insert("errors".into(), errors as f64);
    f.insert(
        "error_rate".into(),
        if s.requests > 0 {
            errors as f64 / s.requests as f64
        } else {
            0.0
        },
    );
    f.insert("retries".into(), s.retries as f64);
    f.insert("fallbacks".into(), s.fallbacks as f64);
    f.insert("attempts".into(), s.attempts as f64);
    f.insert("cost_usd".into(), s.cost.as_usd_f64());
    f.insert(
        "cost_per_1k_usd".into(),
        if s.requests > 0 {
            s.cost.as_usd_f64() * 1000.0 / s.requests as f64
        } else {
            0.0
        },
    );
    for (name, h) in [("latency", &s.latency), ("ttft", &s.ttft)] {
        if h.is_empty() {
            continue;
        }
        for (q, label) in [(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p999")] {
            f.insert(
                format!("{name}_{label}_ms"),
                h.value_at_quantile(q) as f64 / 1000.0,
            );
        }
    }
    for (status, n) in &s.errors_by_status {
        f.insert(format!("status_{status}"), *n as f64);
    }
    f
}

/// Figures of one run: scope -> figure -> value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunFigures {
    pub overall: BTreeMap<String, f64>,
    pub groups: BTreeMap<String, BTreeMap<String, f64>>,
    pub deployments: BTreeMap<String, BTreeMap<String, f64>>,
    pub span_s: f64,
}

/// A figure across runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub mean: f64,
    /// 95 % confidence interval of the mean over runs (Student's t); equal to the mean for one
    /// run.
    pub ci95: (f64, f64),
}

/// Two-sided 95 % Student t quantiles for 1..=30 degrees of freedom.
const T95: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

pub fn t95(df: usize) -> f64 {
    if df == 0 {
        0.0
    } else if df <= 30 {
        T95[df - 1]
    } else {
        1.96
    }
}

pub fn stat(values: &[f64]) -> Stat {
    let n = values.len();
    if n == 0 {
        return Stat {
            mean: 0.0,
            ci95: (0.0, 0.0),
        };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Stat {
            mean,
            ci95: (mean, mean),
        };
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = t95(n - 1) * (var / n as f64).sqrt();
    Stat {
        mean,
        ci95: (mean - half, mean + half),
    }
}

/// Figures across runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub runs: usize,
    pub overall: BTreeMap<String, Stat>,
    pub groups: BTreeMap<String, BTreeMap<String, Stat>>,
    pub deployments: BTreeMap<String, BTreeMap<String, Stat>>,
    pub span_s: f64,
}

fn summarize_map(maps: &[&BTreeMap<String, f64>]) -> BTreeMap<String, Stat> {
    let mut keys: Vec<&String> = maps.iter().flat_map(|m| m.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|k| {
            let v: Vec<f64> = maps
                .iter()
                .map(|m| m.get(k).copied().unwrap_or(0.0))
                .collect();
            (k.clone(), stat(&v))
        })
        .collect()
}

pub fn summarize(runs: &[RunFigures]) -> Summary {
    let overall = summarize_map(&runs.iter().map(|r| &r.overall).collect::<Vec<_>>());
    let mut gnames: Vec<&String> = runs.iter().flat_map(|r| r.groups.keys()).collect();
    gnames.sort();
    gnames.dedup();
    let empty = BTreeMap::new();
    let groups = gnames
        .iter()
        .map(|g| {
            (
                (*g).clone(),
                summarize_map(
                    &runs
                        .iter()
                        .map(|r| r.groups.get(*g).unwrap_or(&empty))
                        .collect::<Vec<_>>(),
                ),
            )
        })
        .collect();
    let mut dnames: Vec<&String> = runs.iter().flat_map(|r| r.deployments.keys()).collect();
    dnames.sort();
    dnames.dedup();
    let deployments = dnames
        .iter()
        .map(|d| {
            (
                (*d).clone(),
                summarize_map(
                    &runs
                        .iter()
                        .map(|r| r.deployments.get(*d).unwrap_or(&empty))
                        .collect::<Vec<_>>(),
                ),
            )
        })
        .collect();
    Summary {
        runs: runs.len(),
        overall,
        groups,
        deployments,
        span_s: runs.first().map_or(0.0, |r| r.span_s),
    }
}

/// Data the HTML page plots, from the first run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PlotData {
    /// (quantile, latency ms) points of the latency distribution.
    pub latency_cdf: Vec<(f64, f64)>,
    pub cost_by_deployment: Vec<(String, f64)>,
    /// (bucket start s, deployment -> attempts).
    pub share_over_time: Vec<(f64, BTreeMap<String, u64>)>,
}

impl RunBuilder {
    pub fn plot_data(&self) -> PlotData {
        let mut latency_cdf = Vec::new();
        let latency = self.overall().latency;
        if !latency.is_empty() {
            for i in 0..=200 {
                let q = 1.0 - 10f64.powf(-(i as f64) / 200.0 * 3.0);
                latency_cdf.push((q, latency.value_at_quantile(q) as f64 / 1000.0));
            }
        }
        let first = self.first_us.unwrap_or(0) / SERIES_BUCKET_US;
        PlotData {
            latency_cdf,
            cost_by_deployment: self
                .deployments
                .iter()
                .map(|(k, d)| (k.to_string(), d.cost.as_usd_f64()))
                .collect(),
            share_over_time: self
                .series
                .iter()
                .map(|(b, m)| {
                    (
                        ((b - first) * SERIES_BUCKET_US) as f64 / 1e6,
                        m.iter()
                            .enumerate()
                            .filter(|(_, n)| **n > 0)
                            .map(|(i, n)| (self.deployments.entries[i].0.to_string(), *n))
                            .collect(),
                    )
                })
                .collect(),
        }
    }
}
