//! Synthetic workloads: Poisson, bursty (two-state) and diurnal arrival processes, token-length
//! distributions, and a mix of model groups, keys, tags and users. Seeded and streaming.
//!
//! ```yaml
//! duration_s: 3600
//! seed: 7
//! arrivals: {process: bursty, rate_per_s: 4, burst_rate_per_s: 40, burst_mean_s: 15, calm_mean_s: 240}
//! tokens_in: {lognormal: {median: 900, sigma: 1.1}}
//! tokens_out: {lognormal: {median: 220, sigma: 0.8}}
//! max_tokens: 1024
//! stream_share: 0.6
//! users: 500
//! mix:
//!   - {model: production-llm, weight: 0.9}
//!   - {model: production-llm, weight: 0.1, key: premium, tags: [vip]}
//! ```

use super::arrivals::ArrivalLine;
use crate::model::dist::{count_at_least_one, exponential, Dist};
use crate::model::parse::{dist_from_node, ModelError};
use switchyard_engine::config::yaml::{self, Node};
use switchyard_engine::core::event::Name;
use switchyard_engine::core::rng::Rng;

#[derive(Clone, Debug, PartialEq)]
pub enum Process {
    Poisson {
        rate: f64,
    },
    Bursty {
        calm_rate: f64,
        burst_rate: f64,
        calm_mean_s: f64,
        burst_mean_s: f64,
    },
    Diurnal {
        peak: f64,
        trough: f64,
        period_s: f64,
        phase_s: f64,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct MixSpec {
    pub weight: f64,
    pub model: Name,
    pub key: Option<String>,
    pub tags: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SynthSpec {
    pub duration_s: f64,
    pub seed: u64,
    pub process: Process,
    pub tokens_in: Dist,
    pub tokens_out: Dist,
    pub max_tokens: Option<u64>,
    pub stream_share: f64,
    pub users: u64,
    pub mix: Vec<MixSpec>,
}

fn get<'n>(m: &'n [(Node, Node)], k: &str) -> Option<&'n Node> {
    m.iter()
        .find(|(key, _)| key.as_str() == Some(k))
        .map(|(_, v)| v)
}

pub fn parse_spec(text: &str, file: &str) -> Result<SynthSpec, Vec<String>> {
    let root = yaml::parse(text).map_err(|e| {
        vec![format!(
            "{file}:{}:{}: invalid YAML: {}",
            e.pos.line, e.pos.col, e.message
        )]
    })?;
    let mut errs: Vec<String> = Vec::new();
    let Some(m) = root.as_map() else {
        return Err(vec![format!("{file}:1:1: expected a mapping")]);
    };
    let known = [
        "duration_s",
        "seed",
        "arrivals",
        "tokens_in",
        "tokens_out",
        "max_tokens",
        "stream_share",
        "users",
        "mix",
    ];
    for (k, _) in m {
        if !known.contains(&k.as_str().unwrap_or("")) {
            errs.push(format!(
                "{file}:{}:{}: unknown key `{}`",
                k.pos.line,
                k.pos.col,
                k.as_str().unwrap_or("")
            ));
        }
    }
    let num = |n: Option<&Node>, key: &str, dflt: f64, errs: &mut Vec<String>| -> f64 {
        match n {
            None => dflt,
            Some(n) => match n.as_str().and_then(|s| s.parse::<f64>().ok()) {
                Some(v) if v.is_finite() && v >= 0.0 => v,
                _ => {
                    errs.push(format!(
                        "{file}:{}:{}: {key}: expected a non-negative number",
                        n.pos.line, n.pos.col
                    ));
                    dflt
                }
            },
        }
    };
    let duration_s = num(get(m, "duration_s"), "duration_s", 3600.0, &mut errs);
    let seed = num(get(m, "seed"), "seed", 1.0, &mut errs) as u64;
    let process = match get(m, "arrivals").and_then(Node::as_map) {
        None => {
            errs.push(format!("{file}:1:1: arrivals: missing (e.g. `arrivals: {{process: poisson, rate_per_s: 5}}`)"));
            Process::Poisson { rate: 1.0 }
        }
        Some(a) => {
            let rate = num(get(a, "rate_per_s"), "arrivals.rate_per_s", 1.0, &mut errs);
            match get(a, "process")
                .and_then(Node::as_str)
                .unwrap_or("poisson")
            {
                "poisson" => Process::Poisson { rate },
                "bursty" => Process::Bursty {
                    calm_rate: rate,
                    burst_rate: num(
                        get(a, "burst_rate_per_s"),
                        "arrivals.burst_rate_per_s",
                        rate * 10.0,
                        &mut errs,
                    ),
                    calm_mean_s: num(
                        get(a, "calm_mean_s"),
                        "arrivals.calm_mean_s",
                        300.0,
                        &mut errs,
                    )
                    .max(1e-3),
                    burst_mean_s: num(
                        get(a, "burst_mean_s"),
                        "arrivals.burst_mean_s",
                        30.0,
                        &mut errs,
                    )
                    .max(1e-3),
                },
                "diurnal" => Process::Diurnal {
                    peak: num(
                        get(a, "peak_rate_per_s"),
                        "arrivals.peak_rate_per_s",
                        rate * 2.0,
                        &mut errs,
                    ),
                    trough: num(
                        get(a, "trough_rate_per_s"),
                        "arrivals.trough_rate_per_s",
                        rate / 4.0,
                        &mut errs,
                    ),
                    period_s: num(get(a, "period_s"), "arrivals.period_s", 86_400.0, &mut errs)
                        .max(1.0),
                    phase_s: num(get(a, "phase_s"), "arrivals.phase_s", 0.0, &mut errs),
                },
                other => {
                    errs.push(format!("{file}: arrivals.process: `{other}` is not one of poisson, bursty, diurnal"));
                    Process::Poisson { rate }
                }
            }
        }
    };
    let mut dist = |key: &str, dflt: Dist, median: f64| -> Dist {
        match get(m, key) {
            None => dflt,
            Some(n) => dist_from_node(n, file, key, median).unwrap_or_else(|e: Vec<ModelError>| {
                errs.extend(e.iter().map(|x| x.to_string()));
                dflt
            }),
        }
    };
    let tokens_in = dist(
        "tokens_in",
        Dist::LogNormal {
            median: 800.0,
            sigma: 1.0,
        },
        800.0,
    );
    let tokens_out = dist(
        "tokens_out",
        Dist::LogNormal {
            median: 200.0,
            sigma: 0.8,
        },
        200.0,
    );
    let max_tokens = get(m, "max_tokens")
        .and_then(Node::as_str)
        .and_then(|s| s.parse().ok());
    let stream_share = num(get(m, "stream_share"), "stream_share", 0.0, &mut errs).min(1.0);
    let users = num(get(m, "users"), "users", 0.0, &mut errs) as u64;
    let mut mix = Vec::new();
    match get(m, "mix").and_then(Node::as_seq) {
        None => errs.push(format!(
            "{file}:1:1: mix: missing (a list of {{model, weight, key, tags}})"
        )),
        Some(items) => {
            for it in items {
                let Some(im) = it.as_map() else {
                    errs.push(format!(
                        "{file}:{}:{}: mix entries are mappings",
                        it.pos.line, it.pos.col
                    ));
                    continue;
                };
                let Some(model) = get(im, "model").and_then(Node::as_str) else {
                    errs.push(format!(
                        "{file}:{}:{}: mix entry needs `model`",
                        it.pos.line, it.pos.col
                    ));
                    continue;
                };
                let weight = num(get(im, "weight"), "mix.weight", 1.0, &mut errs);
                let tags = get(im, "tags")
                    .and_then(Node::as_seq)
                    .map(|t| {
                        t.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                mix.push(MixSpec {
                    weight,
                    model: model.into(),
                    key: get(im, "key").and_then(Node::as_str).map(str::to_string),
                    tags,
                });
            }
        }
    }
    if errs.is_empty() {
        Ok(SynthSpec {
            duration_s,
            seed,
            process,
            tokens_in,
            tokens_out,
            max_tokens,
            stream_share,
            users,
            mix,
        })
    } else {
        Err(errs)
    }
}

/// Streams the arrivals of a spec.
pub struct Synth {
    spec: SynthSpec,
    rng: Rng,
    t_s: f64,
    burst: bool,
    switch_at_s: f64,
    total_weight: f64,
}

impl Synth {
    pub fn new(spec: SynthSpec) -> Synth {
        let mut rng = Rng::new(spec.seed);
        let switch_at_s = match spec.process {
            Process::Bursty { calm_mean_s, .. } => exponential(&mut rng, calm_mean_s),
            _ => f64::INFINITY,
        };
        let total_weight = spec.mix.iter().map(|m| m.weight).sum::<f64>().max(1e-12);
        Synth {
            spec,
            rng,
            t_s: 0.0,
            burst: false,
            switch_at_s,
            total_weight,
        }
    }

    fn next_time(&mut self) -> f64 {
        // Bounded: each step advances time by a positive amount or ends past the duration.
        for _ in 0..10_000_000 {
            match self.spec.process.clone() {
                Process::Poisson { rate } => {
                    self.t_s += exponential(&mut self.rng, 1.0 / rate.max(1e-12));
                    return self.t_s;
                }
                Process::Bursty {
                    calm_rate,
                    burst_rate,
                    calm_mean_s,
                    burst_mean_s,
                } => {
                    let rate = if self.burst { burst_rate } else { calm_rate };
                    let cand = self.t_s + exponential(&mut self.rng, 1.0 / rate.max(1e-12));
                    if cand < self.switch_at_s {
                        self.t_s = cand;
                        return cand;
                    }
                    // Memoryless: restart the draw at the switch.
                    self.t_s = self.switch_at_s;
                    self.burst = !self.burst;
                    self.switch_at_s += exponential(
                        &mut self.rng,
                        if self.burst {
                            burst_mean_s
                        } else {
                            calm_mean_s
                        },
                    );
                }
                Process::Diurnal {
                    peak,
                    trough,
                    period_s,
                    phase_s,
                } => {
                    // Thinning (Lewis-Shedler) against the peak rate.
                    self.t_s += exponential(&mut self.rng, 1.0 / peak.max(1e-12));
                    let phase = 2.0 * std::f64::consts::PI * (self.t_s + phase_s) / period_s;
                    let rate = trough + (peak - trough) * (1.0 - libm::cos(phase)) / 2.0;
                    if self.rng.unit_f64() * peak <= rate {
                        return self.t_s;
                    }
                }
            }
            if self.t_s > self.spec.duration_s {
                return self.t_s;
            }
        }
        f64::INFINITY
    }
}

impl Iterator for Synth {
    type Item = ArrivalLine;

    fn next(&mut self) -> Option<ArrivalLine> {
        let t = self.next_time();
        if t > self.spec.duration_s {
            return None;
        }
        let mut x = self.rng.unit_f64() * self.total_weight;
        let mut pick = self.spec.mix.len().checked_sub(1)?;
        for (i, m) in self.spec.mix.iter().enumerate() {
            if x < m.weight {
                pick = i;
                break;
            }
            x -= m.weight;
        }
        let m = &self.spec.mix[pick];
        let (model, key, tags) = (m.model.clone(), m.key.clone(), m.tags.clone());
        let tokens_in = count_at_least_one(self.spec.tokens_in.sample(&mut self.rng));
        let tokens_out = count_at_least_one(self.spec.tokens_out.sample(&mut self.rng));
        let stream = self.rng.unit_f64() < self.spec.stream_share;
        let user =
            (self.spec.users > 0).then(|| format!("user-{}", self.rng.below(self.spec.users)));
        Some(ArrivalLine {
            at_us: (t * 1e6) as u64,
            model,
            tokens_in,
            tokens_out: Some(tokens_out),
            max_tokens: self.spec.max_tokens,
            stream,
            key,
            tags,
            user,
            ..ArrivalLine::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(arrivals: &str) -> SynthSpec {
        parse_spec(
            &format!("duration_s: 20000\nseed: 3\narrivals: {arrivals}\nmix: [{{model: g}}]\n"),
            "s.yaml",
        )
        .unwrap()
    }

    #[test]
    fn poisson_rate_and_determinism() {
        let s = spec("{process: poisson, rate_per_s: 5}");
        let a: Vec<ArrivalLine> = Synth::new(s.clone()).collect();
        let rate = a.len() as f64 / 20000.0;
        assert!((rate - 5.0).abs() < 0.1, "{rate}");
        let b: Vec<ArrivalLine> = Synth::new(s).collect();
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0].at_us <= w[1].at_us));
    }

    #[test]
    fn bursty_average_rate() {
        let s = spec("{process: bursty, rate_per_s: 1, burst_rate_per_s: 21, calm_mean_s: 100, burst_mean_s: 10}");
        let n = Synth::new(s).count() as f64;
        // Expected: (1*100 + 21*10) / 110 per second.
        let want = (100.0 + 210.0) / 110.0 * 20000.0;
        assert!((n / want - 1.0).abs() < 0.1, "{n} vs {want}");
    }

    #[test]
    fn diurnal_follows_the_cycle() {
        let s =
            spec("{process: diurnal, peak_rate_per_s: 10, trough_rate_per_s: 0, period_s: 10000}");
        let a: Vec<ArrivalLine> = Synth::new(s).collect();
        let first_tenth = a.iter().filter(|x| x.at_us < 1_000_000_000).count();
        let middle = a
            .iter()
            .filter(|x| x.at_us >= 4_500_000_000 && x.at_us < 5_500_000_000)
            .count();
        assert!(middle > 5 * first_tenth, "{middle} vs {first_tenth}");
    }

    #[test]
    fn bad_specs_are_reported() {
        let e =
            parse_spec("arrivals: {process: lumpy}\nmix: []\nbogus: 1\n", "s.yaml").unwrap_err();
        assert!(e.iter().any(|x| x.contains("lumpy")), "{e:?}");
        assert!(e.iter().any(|x| x.contains("bogus")), "{e:?}");
    }
}
