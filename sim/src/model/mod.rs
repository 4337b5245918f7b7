//! Provider models: one description of how a deployment behaves (latency with real tails, output
//! length, bursty errors, rate limits, context window, prices), used three ways: to sample
//! outcomes in the simulator (virtual time), to serve fake providers over HTTP (`sim mock`, real
//! time), and as the output of fitting a recorded trace (`sim fit`). The same types and the same
//! sampling code serve all three, so the simulator and the fake server cannot drift apart.
//!
//! Pure and seeded: the error state's timeline depends only on the seed and the deployment; each
//! attempt's draws depend only on the seed, the deployment and the attempt's key — so a baseline
//! and a candidate config see the same random numbers for the same request on the same
//! deployment (common random numbers).

pub mod dist;
pub mod fit;
pub mod parse;

use dist::{exponential, Dist};
use serde::{Deserialize, Serialize};
use switchyard_engine::config::Protocol;
use switchyard_engine::core::rng::{stable_hash, Rng};

/// A latency in milliseconds as a function of the prompt length.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Latency {
    /// `(base + per_input_token * tokens_in) * noise`, noise a median-1 distribution.
    Parametric {
        base_ms: f64,
        per_input_token_ms: f64,
        noise: Dist,
    },
    /// Absolute distributions per input-size bucket (what `sim fit` writes). Buckets ascending by
    /// `max_input_tokens`; the last one takes everything larger.
    Buckets(Vec<Bucket>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub max_input_tokens: u64,
    pub dist: Dist,
    /// How many observations the bucket was fitted from (informational).
    pub samples: u64,
}

impl Latency {
    pub fn sample_ms(&self, tokens_in: u64, rng: &mut Rng) -> f64 {
        match self {
            Latency::Parametric {
                base_ms,
                per_input_token_ms,
                noise,
            } => (base_ms + per_input_token_ms * tokens_in as f64) * noise.sample(rng),
            Latency::Buckets(b) => {
                let bucket = b
                    .iter()
                    .find(|x| tokens_in <= x.max_input_tokens)
                    .or(b.last());
                bucket.map_or(0.0, |x| x.dist.sample(rng))
            }
        }
        .max(0.0)
    }

    /// The q-quantile for a prompt of `tokens_in` tokens, where it has a closed form.
    pub fn quantile_ms(&self, tokens_in: u64, q: f64) -> Option<f64> {
        match self {
            Latency::Parametric {
                base_ms,
                per_input_token_ms,
                noise,
            } => noise
                .quantile(q)
                .map(|n| (base_ms + per_input_token_ms * tokens_in as f64) * n),
            Latency::Buckets(b) => b
                .iter()
                .find(|x| tokens_in <= x.max_input_tokens)
                .or(b.last())
                .and_then(|x| x.dist.quantile(q)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorModel {
    /// Error probability per attempt in the good and the bad state.
    pub good_rate: f64,
    pub bad_rate: f64,
    /// Mean time spent in each state before switching (exponential), seconds.
    pub good_mean_s: f64,
    pub bad_mean_s: f64,
    /// HTTP statuses of errors, with weights (500, 502, 503, 529 ...).
    pub statuses: Vec<(u16, f64)>,
    /// Shares of errors that are hangs (no answer until the client's timeout), connection resets,
    /// and (for streams) disconnects in the middle of the stream.
    pub timeout_share: f64,
    pub reset_share: f64,
    pub midstream_share: f64,
}

impl Default for ErrorModel {
    fn default() -> Self {
        ErrorModel {
            good_rate: 0.0,
            bad_rate: 0.0,
            good_mean_s: 3600.0,
            bad_mean_s: 60.0,
            statuses: vec![(500, 1.0)],
            timeout_share: 0.0,
            reset_share: 0.0,
            midstream_share: 0.0,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RateLimits {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelPrices {
    /// USD per token (as in LiteLLM's price table).
    pub input_per_token: String,
    pub output_per_token: String,
    pub cached_input_per_token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProviderModel {
    /// The key in the file: a deployment id, or a model name.
    pub name: String,
    /// Other names this model answers to (deployment ids, `litellm_params.model`, upstream names).
    pub matches: Vec<String>,
    pub protocol: Protocol,
    pub ttft: Latency,
    /// Time per output token after the first.
    pub per_output_token: Latency,
    /// Latency grows by this fraction per request in flight, up to `max_slowdown`.
    pub slowdown_per_in_flight: f64,
    pub max_slowdown: f64,
    /// Output length when the workload does not say (capped by `max_tokens`).
    pub output_tokens: Dist,
    pub errors: ErrorModel,
    pub rate_limits: RateLimits,
    pub context_window: Option<u64>,
    pub prices: Option<ModelPrices>,
}

/// A provider-model file: models by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderSet {
    pub models: Vec<ProviderModel>,
    /// The model for deployments no entry matches.
    pub default: Option<String>,
}

impl ProviderSet {
    /// The model for a deployment: by id, then `litellm_params.model`, then the upstream model
    /// name, then the file's `default`.
    pub fn find(&self, id: &str, model: &str, upstream: &str) -> Option<&ProviderModel> {
        for key in [id, model, upstream] {
            if let Some(m) = self
                .models
                .iter()
                .find(|m| m.name == key || m.matches.iter().any(|x| x == key))
            {
                return Some(m);
            }
        }
        self.default
            .as_deref()
            .and_then(|d| self.models.iter().find(|m| m.name == d))
    }
}

/// What happens to one attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum Fate {
    Ok,
    /// An HTTP error status after `ttft`.
    HttpError {
        status: u16,
    },
    /// 429 from the deployment's token buckets.
    RateLimited {
        retry_after_ms: u64,
        remaining_requests: u64,
        remaining_tokens: u64,
        limit_requests: Option<u64>,
        limit_tokens: Option<u64>,
    },
    /// The prompt is larger than the context window.
    ContextWindow {
        limit: u64,
    },
    /// No answer until the client gives up.
    Hang,
    /// The connection is reset after `ttft`.
    Reset,
    /// A stream breaks after this many tokens.
    MidStream {
        after_tokens: u64,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sampled {
    pub fate: Fate,
    pub ttft_us: u64,
    /// Time between output tokens.
    pub itl_us: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
}

impl Sampled {
    /// Time to a complete answer (or to the error), without timeouts.
    pub fn duration_us(&self) -> u64 {
        match self.fate {
            Fate::Ok => self.ttft_us + self.itl_us * self.tokens_out.saturating_sub(1),
            Fate::MidStream { after_tokens } => {
                self.ttft_us + self.itl_us * after_tokens.saturating_sub(1)
            }
            Fate::Hang => u64::MAX,
            Fate::RateLimited { .. } | Fate::ContextWindow { .. } => self.ttft_us.min(20_000),
            _ => self.ttft_us,
        }
    }
}

/// One attempt as the model sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Ask {
    pub now_us: u64,
    /// Identifies the attempt for its random draws (request id and attempt number).
    pub key: u64,
    pub tokens_in: u64,
    /// Output tokens wanted (from the workload), before the `max_tokens` cap; `None`: sample.
    pub tokens_out: Option<u64>,
    pub max_tokens: Option<u64>,
    pub stream: bool,
}

/// A deployment's model with its state: the error process, the rate-limit buckets, requests in
/// flight.
#[derive(Clone, Debug)]
pub struct DeploymentSim {
    pub model: std::sync::Arc<ProviderModel>,
    seed: u64,
    errors: ErrorTimeline,
    buckets: Buckets,
    pub in_flight: u32,
}

/// The two-state error process: which state it is in and when it next switches.
#[derive(Clone, Debug)]
struct ErrorTimeline {
    rng: Rng,
    bad: bool,
    next_switch_us: u64,
}

impl ErrorTimeline {
    /// Whether the process is in its bad state at `now_us` (advances the timeline).
    fn bad_at(&mut self, e: &ErrorModel, now_us: u64) -> bool {
        // Bounded: each step moves the switch time forward by a positive amount.
        let mut steps = 0;
        while now_us >= self.next_switch_us && steps < 1_000_000 {
            self.bad = !self.bad;
            let mean = if self.bad {
                e.bad_mean_s
            } else {
                e.good_mean_s
            };
            let d = (exponential(&mut self.rng, mean.max(1e-3)) * 1e6).max(1.0);
            self.next_switch_us = self.next_switch_us.saturating_add(d as u64);
            steps += 1;
        }
        self.bad
    }
}

/// The provider's rate-limit buckets (requests and tokens per minute), refilled continuously.
#[derive(Clone, Debug)]
struct Buckets {
    rpm_level: f64,
    tpm_level: f64,
    refilled_us: Option<u64>,
}

impl Buckets {
    fn refill(&mut self, rl: &RateLimits, now_us: u64) {
        let last = self.refilled_us.unwrap_or(now_us);
        let dt_min = now_us.saturating_sub(last) as f64 / 60e6;
        if let Some(rpm) = rl.rpm {
            self.rpm_level = (self.rpm_level + dt_min * rpm as f64).min(rpm as f64);
        }
        if let Some(tpm) = rl.tpm {
            self.tpm_level = (self.tpm_level + dt_min * tpm as f64).min(tpm as f64);
        }
        self.refilled_us = Some(now_us.max(last));
    }
}

impl DeploymentSim {
    pub fn new(model: ProviderModel, seed: u64, deployment: &str) -> DeploymentSim {
        let seed = seed ^ stable_hash(deployment.as_bytes());
        let mut err_rng = Rng::derive(seed, 0xE770_0000);
        let first = exponential(&mut err_rng, model.errors.good_mean_s.max(1e-3)) * 1e6;
        DeploymentSim {
            buckets: Buckets {
                rpm_level: model.rate_limits.rpm.unwrap_or(0) as f64,
                tpm_level: model.rate_limits.tpm.unwrap_or(0) as f64,
                refilled_us: None,
            },
            model: std::sync::Arc::new(model),
            seed,
            errors: ErrorTimeline {
                rng: err_rng,
                bad: false,
                next_switch_us: first as u64,
            },
            in_flight: 0,
        }
    }

    /// Whether the error process is in its bad state at `now_us` (advances the timeline).
    pub fn bad_at(&mut self, now_us: u64) -> bool {
        self.errors.bad_at(&self.model.errors, now_us)
    }

    /// Draws the fate and timing of one attempt. Call `finish` when it ends.
    pub fn sample(&mut self, ask: &Ask) -> Sampled {
        let m = &*self.model;
        let mut rng = Rng::derive(self.seed, ask.key);
        let wanted = match ask.tokens_out {
            Some(t) => t,
            None => dist::count_at_least_one(m.output_tokens.sample(&mut rng)),
        };
        let tokens_out = match ask.max_tokens {
            Some(cap) => wanted.min(cap.max(1)),
            None => wanted,
        }
        .max(1);
        let slowdown =
            (1.0 + m.slowdown_per_in_flight * self.in_flight as f64).min(m.max_slowdown.max(1.0));
        let ttft_us = (m.ttft.sample_ms(ask.tokens_in, &mut rng) * slowdown * 1000.0) as u64;
        let itl_us =
            (m.per_output_token.sample_ms(ask.tokens_in, &mut rng) * slowdown * 1000.0) as u64;
        let error_draw = rng.unit_f64();
        let kind_draw = rng.unit_f64();
        let status_draw = rng.unit_f64();
        let cut_draw = rng.unit_f64();
        let base = Sampled {
            fate: Fate::Ok,
            ttft_us,
            itl_us,
            tokens_in: ask.tokens_in,
            tokens_out,
        };
        if let Some(limit) = m.context_window {
            if ask.tokens_in > limit {
                return Sampled {
                    fate: Fate::ContextWindow { limit },
                    ..base
                };
            }
        }
        if m.rate_limits.rpm.is_some() || m.rate_limits.tpm.is_some() {
            let b = &mut self.buckets;
            let rl = &m.rate_limits;
            b.refill(rl, ask.now_us);
            let need_tokens = (ask.tokens_in + tokens_out) as f64;
            let short_req = rl.rpm.is_some() && b.rpm_level < 1.0;
            let short_tok =
                rl.tpm.is_some_and(|t| need_tokens <= t as f64) && b.tpm_level < need_tokens;
            if short_req || short_tok {
                let wait_req = rl.rpm.map_or(0.0, |r| {
                    if short_req {
                        (1.0 - b.rpm_level) / r as f64 * 60e3
                    } else {
                        0.0
                    }
                });
                let wait_tok = rl.tpm.map_or(0.0, |t| {
                    if short_tok {
                        (need_tokens - b.tpm_level) / t as f64 * 60e3
                    } else {
                        0.0
                    }
                });
                return Sampled {
                    fate: Fate::RateLimited {
                        retry_after_ms: wait_req.max(wait_tok).ceil().max(1.0) as u64,
                        remaining_requests: b.rpm_level.max(0.0) as u64,
                        remaining_tokens: b.tpm_level.max(0.0) as u64,
                        limit_requests: rl.rpm,
                        limit_tokens: rl.tpm,
                    },
                    ..base
                };
            }
            if rl.rpm.is_some() {
                b.rpm_level -= 1.0;
            }
            if rl.tpm.is_some() {
                b.tpm_level -= need_tokens;
            }
        }
        let e = &m.errors;
        let bad = self.errors.bad_at(e, ask.now_us);
        let rate = if bad { e.bad_rate } else { e.good_rate };
        if error_draw < rate {
            let mut k = kind_draw;
            let fate = if k < e.timeout_share {
                Fate::Hang
            } else {
                k -= e.timeout_share;
                if k < e.reset_share {
                    Fate::Reset
                } else {
                    k -= e.reset_share;
                    if k < e.midstream_share && ask.stream && tokens_out > 1 {
                        Fate::MidStream {
                            after_tokens: 1 + (cut_draw * (tokens_out - 1) as f64) as u64,
                        }
                    } else {
                        let total: f64 = e.statuses.iter().map(|(_, w)| w).sum();
                        let mut x = status_draw * total;
                        let mut status = e.statuses.first().map_or(500, |s| s.0);
                        for (s, w) in &e.statuses {
                            if x < *w {
                                status = *s;
                                break;
                            }
                            x -= w;
                        }
                        Fate::HttpError { status }
                    }
                }
            };
            return Sampled { fate, ..base };
        }
        base
    }

    pub fn start(&mut self) {
        self.in_flight += 1;
    }

    pub fn finish(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }
}

/// The error message a provider sends when the prompt does not fit, in its own words (so the
/// proxy's classifier is tested against the real text).
pub fn context_window_message(
    protocol: Protocol,
    limit: u64,
    tokens_in: u64,
    tokens_out: u64,
) -> String {
    match protocol {
        Protocol::Anthropic => format!("prompt is too long: {tokens_in} tokens > {limit} maximum"),
        Protocol::Openai => format!(
            "This model's maximum context length is {limit} tokens. However, you requested {} tokens ({tokens_in} in the messages, {tokens_out} in the completion). Please reduce the length of the messages or completion.",
            tokens_in + tokens_out
        ),
    }
}

#[cfg(test)]
mod tests;
