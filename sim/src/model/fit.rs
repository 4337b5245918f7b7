//! Fitting provider models from a recorded trace: per deployment, empirical TTFT and per-token
//! quantiles bucketed by input size (falling back to pooled data where a bucket is thin), the
//! two-state error process from the status sequence, observed rate limits, the context window,
//! and the output-length distribution.

use super::dist::{empirical_quantile, Dist};
use super::*;
use std::collections::BTreeMap;
use switchyard_engine::core::event::{AttemptFinished, Event};
use switchyard_engine::core::outcome::OutcomeClass;
use switchyard_engine::core::rng::IdMap;

/// Quantiles kept in fitted tables (the tail is what matters).
pub const QUANTILES: [f64; 12] = [
    0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0,
];
/// A bucket with fewer observations uses the pooled distribution.
pub const MIN_BUCKET_SAMPLES: usize = 30;
/// Width of the bins the error process is estimated on.
pub const ERROR_BIN_US: u64 = 60_000_000;

#[derive(Clone, Debug, Default)]
struct Obs {
    protocol: Option<Protocol>,
    matches: Vec<String>,
    /// (tokens_in, ttft ms) of successful streams.
    ttft: Vec<(u64, f64)>,
    /// (tokens_in, per-token ms) of successful streams.
    itl: Vec<(u64, f64)>,
    /// (tokens_out - 1, duration ms, tokens_in) of successful non-streams.
    whole: Vec<(f64, f64, u64)>,
    tokens_out: Vec<f64>,
    /// (time, is_error) of attempts that count for the error process.
    outcomes: Vec<(u64, bool)>,
    statuses: BTreeMap<u16, u64>,
    n_timeout: u64,
    n_reset: u64,
    n_midstream: u64,
    n_errors: u64,
    n_429: u64,
    limit_requests: Option<u64>,
    limit_tokens: Option<u64>,
    max_ok_tokens_in: u64,
    min_cw_tokens_in: Option<u64>,
    attempts: u64,
    successes: u64,
}

/// How a deployment's model was fitted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FitNote {
    pub deployment: String,
    pub attempts: u64,
    pub successes: u64,
    /// (bucket upper bound, samples, pooled?) for TTFT.
    pub ttft_buckets: Vec<(u64, u64, bool)>,
    pub itl_samples: u64,
    pub latency_source: &'static str,
    pub error_rate: f64,
}

impl std::fmt::Display for FitNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} attempts, {} successes, latency from {}; TTFT buckets:",
            self.deployment, self.attempts, self.successes, self.latency_source
        )?;
        for (max, n, pooled) in &self.ttft_buckets {
            let m = if *max == u64::MAX {
                "inf".to_string()
            } else {
                max.to_string()
            };
            write!(
                f,
                " <= {m}: {n} samples{}",
                if *pooled {
                    " (too few: pooled data used)"
                } else {
                    ""
                }
            )?;
        }
        write!(
            f,
            "; per-token samples: {}; error rate {:.4}",
            self.itl_samples, self.error_rate
        )
    }
}

#[derive(Default)]
pub struct Fitter {
    obs: BTreeMap<String, Obs>,
    /// Requests in flight whose client set its own timeout: their timeouts say the provider was
    /// slower than that client allowed, not that it hung, so they are left out of the fit.
    client_timeout: IdMap<()>,
}

fn table(values: &mut [f64]) -> Dist {
    values.sort_by(|a, b| a.total_cmp(b));
    let mut pts: Vec<(f64, f64)> = QUANTILES
        .iter()
        .map(|&q| (q, empirical_quantile(values, q)))
        .collect();
    // Values must be non-decreasing (they are, from sorted data); quantiles strictly ascending.
    pts.dedup_by(|b, a| b.0 == a.0);
    Dist::Quantiles(pts)
}

fn nice(v: u64) -> u64 {
    if v < 10 {
        return v.max(1);
    }
    // Two significant digits.
    let mag = 10u64.pow(((v as f64).log10().floor() as u32).saturating_sub(1));
    v.div_ceil(mag) * mag
}

/// Buckets by input size with at least `MIN_BUCKET_SAMPLES` each where possible.
fn bucketed(samples: &[(u64, f64)]) -> (Vec<Bucket>, Vec<(u64, u64, bool)>) {
    let mut pooled: Vec<f64> = samples.iter().map(|s| s.1).collect();
    let pooled_dist = table(&mut pooled);
    let mut sizes: Vec<u64> = samples.iter().map(|s| s.0).collect();
    sizes.sort_unstable();
    let mut edges: Vec<u64> = Vec::new();
    // Up to 8 buckets, each with several times the minimum of samples.
    let n_buckets = (sizes.len() / (4 * MIN_BUCKET_SAMPLES)).clamp(1, 8);
    if n_buckets > 1 {
        for k in 1..n_buckets {
            let q = k as f64 / n_buckets as f64;
            let e = nice(sizes[((sizes.len() - 1) as f64 * q) as usize]);
            if edges.last().is_none_or(|l| e > *l) {
                edges.push(e);
            }
        }
    }
    edges.push(u64::MAX);
    let mut buckets = Vec::new();
    let mut notes = Vec::new();
    let mut lo = 0u64;
    for &hi in &edges {
        let mut vals: Vec<f64> = samples
            .iter()
            .filter(|s| s.0 >= lo && s.0 <= hi)
            .map(|s| s.1)
            .collect();
        let n = vals.len() as u64;
        let pooled = vals.len() < MIN_BUCKET_SAMPLES;
        let dist = if pooled {
            pooled_dist.clone()
        } else {
            table(&mut vals)
        };
        buckets.push(Bucket {
            max_input_tokens: hi,
            dist,
            samples: n,
        });
        notes.push((hi, n, pooled));
        lo = hi.saturating_add(1);
    }
    (buckets, notes)
}

impl Fitter {
    pub fn new() -> Fitter {
        Fitter::default()
    }

    /// Feeds one event of the trace (in order).
    pub fn observe(&mut self, ev: &Event) {
        match ev {
            Event::ConfigApplied(c) => {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&c.content) else {
                    return;
                };
                let Some(deps) = v.pointer("/routing/deployments").and_then(|d| d.as_array())
                else {
                    return;
                };
                for d in deps {
                    let Some(id) = d.get("id").and_then(|x| x.as_str()) else {
                        continue;
                    };
                    let o = self.obs.entry(id.to_string()).or_default();
                    o.protocol = match d.get("protocol").and_then(|x| x.as_str()) {
                        Some("anthropic") => Some(Protocol::Anthropic),
                        _ => Some(Protocol::Openai),
                    };
                    for k in ["model", "upstream_model"] {
                        if let Some(m) = d.get(k).and_then(|x| x.as_str()) {
                            if !o.matches.iter().any(|x| x == m) {
                                o.matches.push(m.to_string());
                            }
                        }
                    }
                }
            }
            Event::RequestReceived(r) if r.overrides.timeout_us.is_some() => {
                self.client_timeout.insert(r.id, ());
            }
            Event::RequestFinished(f) => {
                self.client_timeout.remove(&f.id);
            }
            Event::AttemptFinished(a) => {
                if a.class == OutcomeClass::Timeout && self.client_timeout.contains_key(&a.id) {
                    // Censored: the attempt counts, but as neither an error nor a latency.
                    self.obs
                        .entry(a.deployment.to_string())
                        .or_default()
                        .attempts += 1;
                } else {
                    self.attempt(a)
                }
            }
            _ => {}
        }
    }

    fn attempt(&mut self, a: &AttemptFinished) {
        let o = self.obs.entry(a.deployment.to_string()).or_default();
        o.attempts += 1;
        if let Some(l) = a.rate_limit.limit_requests {
            o.limit_requests = Some(l);
        }
        if let Some(l) = a.rate_limit.limit_tokens {
            o.limit_tokens = Some(l);
        }
        let at = a.at.0;
        match a.class {
            OutcomeClass::Success => {
                o.successes += 1;
                o.outcomes.push((at, false));
                o.max_ok_tokens_in = o.max_ok_tokens_in.max(a.tokens_in);
                o.tokens_out.push(a.tokens_out as f64);
                let dur_ms = a.duration_us as f64 / 1000.0;
                match (a.stream, a.ttft_us) {
                    (true, Some(t)) => {
                        let t_ms = t as f64 / 1000.0;
                        o.ttft.push((a.tokens_in, t_ms));
                        if a.tokens_out > 1 {
                            o.itl.push((
                                a.tokens_in,
                                ((dur_ms - t_ms) / (a.tokens_out - 1) as f64).max(0.0),
                            ));
                        }
                    }
                    _ => {
                        o.whole
                            .push(((a.tokens_out.saturating_sub(1)) as f64, dur_ms, a.tokens_in))
                    }
                }
            }
            OutcomeClass::RateLimited => o.n_429 += 1,
            OutcomeClass::ContextWindowExceeded => {
                o.min_cw_tokens_in = Some(
                    o.min_cw_tokens_in
                        .map_or(a.tokens_in, |m| m.min(a.tokens_in)),
                );
            }
            OutcomeClass::Cancelled
            | OutcomeClass::BadRequest
            | OutcomeClass::ContentPolicy
            | OutcomeClass::NotFound
            | OutcomeClass::AuthError => {}
            c => {
                o.outcomes.push((at, true));
                o.n_errors += 1;
                match c {
                    OutcomeClass::Timeout => o.n_timeout += 1,
                    OutcomeClass::ConnectionError => o.n_reset += 1,
                    OutcomeClass::StreamInterrupted => o.n_midstream += 1,
                    _ => {
                        *o.statuses
                            .entry(if a.status >= 400 { a.status } else { 500 })
                            .or_insert(0) += 1
                    }
                }
            }
        }
    }

    /// The fitted models and a note per deployment.
    pub fn finish(self) -> (ProviderSet, Vec<FitNote>) {
        let mut set = ProviderSet::default();
        let mut notes = Vec::new();
        for (id, o) in self.obs {
            if o.attempts == 0 {
                continue;
            }
            let mut note = FitNote {
                deployment: id.clone(),
                attempts: o.attempts,
                successes: o.successes,
                ..FitNote::default()
            };
            let (ttft, per_output_token) = if o.ttft.len() >= 5 {
                note.latency_source = "streams (ttft and per-token time observed)";
                let (b, n) = bucketed(&o.ttft);
                note.ttft_buckets = n;
                note.itl_samples = o.itl.len() as u64;
                let itl = if o.itl.is_empty() {
                    Latency::Parametric {
                        base_ms: 0.0,
                        per_input_token_ms: 0.0,
                        noise: Dist::Constant(0.0),
                    }
                } else {
                    Latency::Buckets(bucketed(&o.itl).0)
                };
                (Latency::Buckets(b), itl)
            } else if o.whole.len() >= 5 {
                // Non-streaming only: duration = ttft + itl * (tokens_out - 1); least squares for itl.
                note.latency_source = "non-streaming durations (regression on output length)";
                let n = o.whole.len() as f64;
                let mx = o.whole.iter().map(|w| w.0).sum::<f64>() / n;
                let my = o.whole.iter().map(|w| w.1).sum::<f64>() / n;
                let sxx: f64 = o.whole.iter().map(|w| (w.0 - mx).powi(2)).sum();
                let sxy: f64 = o.whole.iter().map(|w| (w.0 - mx) * (w.1 - my)).sum();
                let slope = if sxx > 0.0 { (sxy / sxx).max(0.0) } else { 0.0 };
                let resid: Vec<(u64, f64)> = o
                    .whole
                    .iter()
                    .map(|w| (w.2, (w.1 - slope * w.0).max(0.0)))
                    .collect();
                let (b, notes_b) = bucketed(&resid);
                note.ttft_buckets = notes_b;
                (
                    Latency::Buckets(b),
                    Latency::Parametric {
                        base_ms: slope,
                        per_input_token_ms: 0.0,
                        noise: Dist::Constant(1.0),
                    },
                )
            } else {
                note.latency_source =
                    "too few successes: a placeholder (pass --providers for this deployment)";
                (
                    Latency::Parametric {
                        base_ms: 500.0,
                        per_input_token_ms: 0.0,
                        noise: Dist::LogNormal {
                            median: 1.0,
                            sigma: 0.5,
                        },
                    },
                    Latency::Parametric {
                        base_ms: 20.0,
                        per_input_token_ms: 0.0,
                        noise: Dist::Constant(1.0),
                    },
                )
            };
            let errors = fit_errors(&o);
            note.error_rate = if o.outcomes.is_empty() {
                0.0
            } else {
                o.n_errors as f64 / o.outcomes.len() as f64
            };
            let mut outs = o.tokens_out.clone();
            let output_tokens = if outs.len() >= 5 {
                table(&mut outs)
            } else {
                Dist::LogNormal {
                    median: 200.0,
                    sigma: 0.8,
                }
            };
            let rpm = o
                .limit_requests
                .or_else(|| (o.n_429 > 0).then(|| peak_per_minute(&o.outcomes)));
            set.models.push(ProviderModel {
                name: id.clone(),
                matches: o.matches.clone(),
                protocol: o.protocol.unwrap_or(Protocol::Openai),
                ttft,
                per_output_token,
                slowdown_per_in_flight: 0.0,
                max_slowdown: 1.0,
                output_tokens,
                errors,
                rate_limits: RateLimits {
                    rpm,
                    tpm: o.limit_tokens,
                },
                context_window: o
                    .min_cw_tokens_in
                    .map(|m| o.max_ok_tokens_in.max(m.saturating_sub(1))),
                prices: None,
            });
            notes.push(note);
        }
        (set, notes)
    }
}

fn peak_per_minute(outcomes: &[(u64, bool)]) -> u64 {
    let mut per: BTreeMap<u64, u64> = BTreeMap::new();
    for (t, _) in outcomes {
        *per.entry(t / 60_000_000).or_insert(0) += 1;
    }
    per.values().copied().max().unwrap_or(1).max(1)
}

/// The two-state error process from the status sequence: bins whose error rate is well above
/// the overall rate are "bad"; rates per state and mean sojourn times follow.
fn fit_errors(o: &Obs) -> ErrorModel {
    let total = o.outcomes.len() as f64;
    let mut e = ErrorModel::default();
    if o.n_errors > 0 {
        let n = o.n_errors as f64;
        e.timeout_share = o.n_timeout as f64 / n;
        e.reset_share = o.n_reset as f64 / n;
        e.midstream_share = o.n_midstream as f64 / n;
        let st: f64 = o.statuses.values().sum::<u64>() as f64;
        if st > 0.0 {
            e.statuses = o
                .statuses
                .iter()
                .map(|(s, c)| (*s, *c as f64 / st))
                .collect();
        }
    }
    if total == 0.0 || o.n_errors == 0 {
        return e;
    }
    let overall = o.n_errors as f64 / total;
    let mut bins: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for (t, err) in &o.outcomes {
        let b = bins.entry(t / ERROR_BIN_US).or_insert((0, 0));
        b.0 += 1;
        b.1 += u64::from(*err);
    }
    let threshold = (2.0 * overall).max(0.05);
    let mut good = (0u64, 0u64);
    let mut bad = (0u64, 0u64);
    let mut runs_good: Vec<u64> = Vec::new();
    let mut runs_bad: Vec<u64> = Vec::new();
    let mut cur: Option<(bool, u64)> = None;
    let mut prev_bin: Option<u64> = None;
    for (bin, (n, k)) in &bins {
        let is_bad = (*k as f64 / *n as f64) > threshold && *k >= 2;
        let acc = if is_bad { &mut bad } else { &mut good };
        acc.0 += n;
        acc.1 += k;
        // Bins without traffic between two observed bins count for the state they sit in.
        let gap = prev_bin.map_or(1, |p| bin - p);
        cur = match cur {
            Some((s, len)) if s == is_bad => Some((s, len + gap)),
            Some((s, len)) => {
                if s {
                    runs_bad.push(len);
                } else {
                    runs_good.push(len);
                }
                Some((is_bad, 1))
            }
            None => Some((is_bad, 1)),
        };
        prev_bin = Some(*bin);
    }
    if let Some((s, len)) = cur {
        if s {
            runs_bad.push(len);
        } else {
            runs_good.push(len);
        }
    }
    let bin_s = ERROR_BIN_US as f64 / 1e6;
    let mean = |r: &[u64], dflt: f64| {
        if r.is_empty() {
            dflt
        } else {
            r.iter().sum::<u64>() as f64 / r.len() as f64 * bin_s
        }
    };
    if bad.0 == 0 {
        // No burst seen: one state with the overall rate.
        e.good_rate = overall;
        e.bad_rate = overall;
        e.good_mean_s = mean(&runs_good, 3600.0);
        e.bad_mean_s = 60.0;
    } else {
        e.good_rate = if good.0 > 0 {
            good.1 as f64 / good.0 as f64
        } else {
            0.0
        };
        e.bad_rate = bad.1 as f64 / bad.0 as f64;
        e.good_mean_s = mean(&runs_good, 3600.0);
        e.bad_mean_s = mean(&runs_bad, bin_s);
    }
    e
}
