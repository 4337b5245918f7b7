//! The provider-model file: YAML in (with file:line:column errors), YAML out (what `sim fit`
//! writes). See `traces/providers.yaml` for a commented example.

use super::dist::Dist;
use super::*;
use std::fmt::Write;
use switchyard_engine::config::yaml::{self, Node, Pos, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct ModelError {
    pub file: String,
    pub pos: Pos,
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}: {}",
            self.file, self.pos.line, self.pos.col, self.path, self.message
        )
    }
}

struct P<'a> {
    file: &'a str,
    errors: Vec<ModelError>,
}

fn get<'n>(m: &'n [(Node, Node)], k: &str) -> Option<&'n Node> {
    m.iter()
        .find(|(key, _)| key.as_str() == Some(k))
        .map(|(_, v)| v)
}

impl P<'_> {
    fn err(&mut self, pos: Pos, path: &str, msg: impl Into<String>) {
        self.errors.push(ModelError {
            file: self.file.to_string(),
            pos,
            path: path.to_string(),
            message: msg.into(),
        });
    }

    fn map<'n>(&mut self, n: &'n Node, path: &str) -> Option<&'n [(Node, Node)]> {
        match n.as_map() {
            Some(m) => Some(m),
            None => {
                self.err(
                    n.pos,
                    path,
                    format!("expected a mapping, got {}", n.kind_name()),
                );
                None
            }
        }
    }

    fn keys(&mut self, m: &[(Node, Node)], path: &str, known: &[&str]) {
        for (k, _) in m {
            let name = k.as_str().unwrap_or("");
            if !known.contains(&name) {
                let hint = switchyard_engine::config::load::closest(name, known)
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_default();
                self.err(
                    k.pos,
                    &format!("{path}.{name}"),
                    format!("unknown key{hint}"),
                );
            }
        }
    }

    fn f64(&mut self, n: &Node, path: &str) -> Option<f64> {
        match n
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|v| v.is_finite())
        {
            Some(v) => Some(v),
            None => {
                self.err(
                    n.pos,
                    path,
                    format!("expected a number, got {}", n.kind_name()),
                );
                None
            }
        }
    }

    fn u64(&mut self, n: &Node, path: &str) -> Option<u64> {
        match n
            .as_str()
            .and_then(|s| s.replace('_', "").parse::<u64>().ok())
        {
            Some(v) => Some(v),
            None => {
                self.err(
                    n.pos,
                    path,
                    format!("expected a whole number, got {}", n.kind_name()),
                );
                None
            }
        }
    }

    fn opt_f64(&mut self, m: &[(Node, Node)], k: &str, path: &str, default: f64) -> f64 {
        get(m, k)
            .and_then(|n| self.f64(n, &format!("{path}.{k}")))
            .unwrap_or(default)
    }

    fn dist(&mut self, n: &Node, path: &str, default_median: f64) -> Option<Dist> {
        if let Some(v) = n.as_str().and_then(|s| s.parse::<f64>().ok()) {
            return Some(Dist::Constant(v));
        }
        let m = self.map(n, path)?;
        if m.len() != 1 && get(m, "weight").is_none() {
            self.err(
                n.pos,
                path,
                "a distribution is one of `constant`, `lognormal`, `quantiles`, `mixture`",
            );
            return None;
        }
        let (k, v) = m
            .iter()
            .find(|(k, _)| k.as_str() != Some("weight") && k.as_str() != Some("scale"))?;
        let name = k.as_str().unwrap_or("");
        let p = format!("{path}.{name}");
        let d = match name {
            "constant" => Dist::Constant(self.f64(v, &p)?),
            "lognormal" => {
                let lm = self.map(v, &p)?;
                self.keys(lm, &p, &["median", "sigma"]);
                Dist::LogNormal {
                    median: self.opt_f64(lm, "median", &p, default_median),
                    sigma: self.opt_f64(lm, "sigma", &p, 0.0),
                }
            }
            "quantiles" => {
                let Some(items) = v.as_seq() else {
                    self.err(v.pos, &p, "expected a list of [quantile, value] pairs");
                    return None;
                };
                let mut pts = Vec::new();
                for (i, it) in items.iter().enumerate() {
                    let ip = format!("{p}[{i}]");
                    match it.as_seq() {
                        Some([q, val]) => {
                            let (Some(q), Some(val)) = (self.f64(q, &ip), self.f64(val, &ip))
                            else {
                                continue;
                            };
                            pts.push((q, val));
                        }
                        _ => self.err(it.pos, &ip, "expected [quantile, value]"),
                    }
                }
                Dist::Quantiles(pts)
            }
            "mixture" => {
                let Some(items) = v.as_seq() else {
                    self.err(v.pos, &p, "expected a list of weighted components");
                    return None;
                };
                let mut parts = Vec::new();
                for (i, it) in items.iter().enumerate() {
                    let ip = format!("{p}[{i}]");
                    let Some(cm) = self.map(it, &ip) else {
                        continue;
                    };
                    let w = get(cm, "weight")
                        .and_then(|x| self.f64(x, &format!("{ip}.weight")))
                        .unwrap_or(1.0);
                    let scale = get(cm, "scale")
                        .and_then(|x| self.f64(x, &format!("{ip}.scale")))
                        .unwrap_or(1.0);
                    if let Some(d) = self.dist(it, &ip, default_median) {
                        let d = if scale == 1.0 { d } else { scaled(d, scale) };
                        parts.push((w, d));
                    }
                }
                Dist::Mixture(parts)
            }
            other => {
                self.err(
                    k.pos,
                    &p,
                    format!(
                        "unknown distribution `{other}` (constant, lognormal, quantiles, mixture)"
                    ),
                );
                return None;
            }
        };
        if let Err(e) = d.validate() {
            self.err(n.pos, path, e);
            return None;
        }
        Some(d)
    }

    fn latency(&mut self, n: &Node, path: &str) -> Option<Latency> {
        let m = self.map(n, path)?;
        if let Some(b) = get(m, "buckets") {
            self.keys(m, path, &["buckets"]);
            let bp = format!("{path}.buckets");
            let items = b.as_seq().unwrap_or(&[]);
            let mut out = Vec::new();
            for (i, it) in items.iter().enumerate() {
                let ip = format!("{bp}[{i}]");
                let Some(bm) = self.map(it, &ip) else {
                    continue;
                };
                self.keys(bm, &ip, &["max_input_tokens", "dist", "samples"]);
                let max = match get(bm, "max_input_tokens") {
                    Some(x) if x.as_str() == Some("inf") => u64::MAX,
                    Some(x) => self
                        .u64(x, &format!("{ip}.max_input_tokens"))
                        .unwrap_or(u64::MAX),
                    None => u64::MAX,
                };
                let Some(dn) = get(bm, "dist") else {
                    self.err(it.pos, &ip, "a bucket needs `dist`");
                    continue;
                };
                if let Some(d) = self.dist(dn, &format!("{ip}.dist"), 1.0) {
                    let samples = get(bm, "samples")
                        .and_then(|x| self.u64(x, &format!("{ip}.samples")))
                        .unwrap_or(0);
                    out.push(Bucket {
                        max_input_tokens: max,
                        dist: d,
                        samples,
                    });
                }
            }
            if out.is_empty() {
                self.err(b.pos, &bp, "at least one bucket is needed");
                return None;
            }
            if out
                .windows(2)
                .any(|w| w[1].max_input_tokens <= w[0].max_input_tokens)
            {
                self.err(b.pos, &bp, "buckets must be ascending by max_input_tokens");
            }
            return Some(Latency::Buckets(out));
        }
        self.keys(m, path, &["base", "per_input_token", "noise"]);
        let base_ms = self.opt_f64(m, "base", path, 0.0);
        let per_input_token_ms = self.opt_f64(m, "per_input_token", path, 0.0);
        let noise = match get(m, "noise") {
            Some(x) => self.dist(x, &format!("{path}.noise"), 1.0)?,
            None => Dist::Constant(1.0),
        };
        if base_ms < 0.0 || per_input_token_ms < 0.0 {
            self.err(n.pos, path, "latencies must not be negative");
        }
        Some(Latency::Parametric {
            base_ms,
            per_input_token_ms,
            noise,
        })
    }
}

fn scaled(d: Dist, s: f64) -> Dist {
    match d {
        Dist::Constant(v) => Dist::Constant(v * s),
        Dist::LogNormal { median, sigma } => Dist::LogNormal {
            median: median * s,
            sigma,
        },
        Dist::Quantiles(p) => Dist::Quantiles(p.into_iter().map(|(q, v)| (q, v * s)).collect()),
        Dist::Mixture(parts) => {
            Dist::Mixture(parts.into_iter().map(|(w, d)| (w, scaled(d, s))).collect())
        }
    }
}

const MODEL_KEYS: &[&str] = &[
    "match",
    "protocol",
    "ttft_ms",
    "per_output_token_ms",
    "slowdown",
    "output_tokens",
    "errors",
    "rate_limits",
    "context_window",
    "prices",
];

/// Parses a provider-model file; every error at once.
pub fn parse(text: &str, file: &str) -> Result<ProviderSet, Vec<ModelError>> {
    let mut p = P {
        file,
        errors: Vec::new(),
    };
    let root = match yaml::parse(text) {
        Ok(r) => r,
        Err(e) => {
            p.err(e.pos, "", format!("invalid YAML: {}", e.message));
            return Err(p.errors);
        }
    };
    let mut set = ProviderSet::default();
    let Some(top) = p.map(&root, "") else {
        return Err(p.errors);
    };
    p.keys(top, "", &["deployments", "default"]);
    if let Some(d) = get(top, "default") {
        set.default = d.as_str().map(str::to_string);
    }
    let Some(deps) = get(top, "deployments") else {
        p.err(
            root.pos,
            "deployments",
            "missing `deployments` (a mapping from deployment id or model name to its model)",
        );
        return Err(p.errors);
    };
    let Some(entries) = p.map(deps, "deployments") else {
        return Err(p.errors);
    };
    for (k, v) in entries {
        let name = k.as_str().unwrap_or("").to_string();
        let path = format!("deployments.{name}");
        let Some(m) = p.map(v, &path) else { continue };
        p.keys(m, &path, MODEL_KEYS);
        let matches = match get(m, "match") {
            Some(x) => match &x.value {
                Value::Seq(items) => items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect(),
                _ => x.as_str().map(|s| vec![s.to_string()]).unwrap_or_default(),
            },
            None => vec![],
        };
        let protocol = match get(m, "protocol").and_then(Node::as_str) {
            None | Some("openai") | Some("vllm") => Protocol::Openai,
            Some("anthropic") => Protocol::Anthropic,
            Some(other) => {
                p.err(
                    v.pos,
                    &format!("{path}.protocol"),
                    format!("`{other}`: expected openai or anthropic"),
                );
                Protocol::Openai
            }
        };
        let ttft = match get(m, "ttft_ms") {
            Some(x) => p.latency(x, &format!("{path}.ttft_ms")),
            None => {
                p.err(v.pos, &format!("{path}.ttft_ms"), "missing `ttft_ms`");
                None
            }
        };
        let per_output_token = match get(m, "per_output_token_ms") {
            Some(x) => p.latency(x, &format!("{path}.per_output_token_ms")),
            None => {
                p.err(
                    v.pos,
                    &format!("{path}.per_output_token_ms"),
                    "missing `per_output_token_ms`",
                );
                None
            }
        };
        let (mut slow, mut max_slow) = (0.0, 1.0);
        if let Some(s) = get(m, "slowdown") {
            let sp = format!("{path}.slowdown");
            if let Some(sm) = p.map(s, &sp) {
                p.keys(sm, &sp, &["per_request_in_flight", "max"]);
                slow = p.opt_f64(sm, "per_request_in_flight", &sp, 0.0);
                max_slow = p.opt_f64(sm, "max", &sp, 1.0 + slow * 1000.0);
            }
        }
        let output_tokens = match get(m, "output_tokens") {
            Some(x) => p
                .dist(x, &format!("{path}.output_tokens"), 200.0)
                .unwrap_or(Dist::Constant(200.0)),
            None => Dist::LogNormal {
                median: 200.0,
                sigma: 0.8,
            },
        };
        let mut errors = ErrorModel::default();
        if let Some(e) = get(m, "errors") {
            let ep = format!("{path}.errors");
            if let Some(em) = p.map(e, &ep) {
                p.keys(
                    em,
                    &ep,
                    &[
                        "good",
                        "bad",
                        "rate",
                        "statuses",
                        "timeout_share",
                        "reset_share",
                        "midstream_share",
                    ],
                );
                if let Some(r) = get(em, "rate").and_then(|x| p.f64(x, &format!("{ep}.rate"))) {
                    errors.good_rate = r;
                    errors.bad_rate = r;
                }
                for (state, is_good) in [("good", true), ("bad", false)] {
                    if let Some(s) = get(em, state) {
                        let sp = format!("{ep}.{state}");
                        if let Some(sm) = p.map(s, &sp) {
                            p.keys(sm, &sp, &["rate", "mean_duration_s"]);
                            let rate = p.opt_f64(sm, "rate", &sp, 0.0);
                            let mean = p.opt_f64(
                                sm,
                                "mean_duration_s",
                                &sp,
                                if is_good { 3600.0 } else { 60.0 },
                            );
                            if !(0.0..=1.0).contains(&rate) {
                                p.err(s.pos, &sp, "rate must be between 0 and 1");
                            }
                            if mean <= 0.0 {
                                p.err(s.pos, &sp, "mean_duration_s must be positive");
                            }
                            if is_good {
                                errors.good_rate = rate;
                                errors.good_mean_s = mean;
                            } else {
                                errors.bad_rate = rate;
                                errors.bad_mean_s = mean;
                            }
                        }
                    }
                }
                if let Some(st) = get(em, "statuses") {
                    let sp = format!("{ep}.statuses");
                    if let Some(sm) = p.map(st, &sp) {
                        let mut v = Vec::new();
                        for (k, w) in sm {
                            let code = k
                                .as_str()
                                .and_then(|s| s.parse::<u16>().ok())
                                .filter(|c| (400..600).contains(c));
                            match (code, p.f64(w, &sp)) {
                                (Some(c), Some(w)) => v.push((c, w)),
                                (None, _) => p.err(k.pos, &sp, "status codes must be 400..599"),
                                _ => {}
                            }
                        }
                        if !v.is_empty() {
                            errors.statuses = v;
                        }
                    }
                }
                errors.timeout_share = p.opt_f64(em, "timeout_share", &ep, 0.0);
                errors.reset_share = p.opt_f64(em, "reset_share", &ep, 0.0);
                errors.midstream_share = p.opt_f64(em, "midstream_share", &ep, 0.0);
                if errors.timeout_share + errors.reset_share + errors.midstream_share > 1.0 + 1e-9 {
                    p.err(
                        e.pos,
                        &ep,
                        "timeout_share + reset_share + midstream_share must not exceed 1",
                    );
                }
            }
        }
        let mut rate_limits = RateLimits::default();
        if let Some(r) = get(m, "rate_limits") {
            let rp = format!("{path}.rate_limits");
            if let Some(rm) = p.map(r, &rp) {
                p.keys(rm, &rp, &["rpm", "tpm"]);
                rate_limits.rpm = get(rm, "rpm").and_then(|x| p.u64(x, &format!("{rp}.rpm")));
                rate_limits.tpm = get(rm, "tpm").and_then(|x| p.u64(x, &format!("{rp}.tpm")));
            }
        }
        let context_window =
            get(m, "context_window").and_then(|x| p.u64(x, &format!("{path}.context_window")));
        let prices = get(m, "prices").and_then(|x| {
            let pp = format!("{path}.prices");
            let pm = p.map(x, &pp)?;
            p.keys(
                pm,
                &pp,
                &[
                    "input_per_token",
                    "output_per_token",
                    "cached_input_per_token",
                ],
            );
            let s = |k: &str| get(pm, k).and_then(Node::as_str).map(str::to_string);
            for k in [
                "input_per_token",
                "output_per_token",
                "cached_input_per_token",
            ] {
                if let Some(v) = s(k) {
                    if switchyard_engine::core::units::PicoUsd::parse_usd(&v).is_err() {
                        p.err(
                            x.pos,
                            &format!("{pp}.{k}"),
                            format!("`{v}` is not a price in USD"),
                        );
                    }
                }
            }
            Some(ModelPrices {
                input_per_token: s("input_per_token").unwrap_or("0".into()),
                output_per_token: s("output_per_token").unwrap_or("0".into()),
                cached_input_per_token: s("cached_input_per_token"),
            })
        });
        if let (Some(ttft), Some(per_output_token)) = (ttft, per_output_token) {
            set.models.push(ProviderModel {
                name,
                matches,
                protocol,
                ttft,
                per_output_token,
                slowdown_per_in_flight: slow,
                max_slowdown: max_slow,
                output_tokens,
                errors,
                rate_limits,
                context_window,
                prices,
            });
        }
    }
    if let Some(d) = &set.default {
        if !set.models.iter().any(|m| &m.name == d) {
            p.err(
                root.pos,
                "default",
                format!("`{d}` is not one of the deployments"),
            );
        }
    }
    if p.errors.is_empty() {
        Ok(set)
    } else {
        Err(p.errors)
    }
}

fn num(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.6}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    }
}

fn dist_yaml(d: &Dist) -> String {
    match d {
        Dist::Constant(v) => format!("{{constant: {}}}", num(*v)),
        Dist::LogNormal { median, sigma } => format!(
            "{{lognormal: {{median: {}, sigma: {}}}}}",
            num(*median),
            num(*sigma)
        ),
        Dist::Quantiles(p) => format!(
            "{{quantiles: [{}]}}",
            p.iter()
                .map(|(q, v)| format!("[{}, {}]", num(*q), num(*v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Dist::Mixture(parts) => {
            let inner: Vec<String> = parts
                .iter()
                .map(|(w, d)| {
                    let body = dist_yaml(d);
                    format!("{{weight: {}, {}", num(*w), &body[1..])
                })
                .collect();
            format!("{{mixture: [{}]}}", inner.join(", "))
        }
    }
}

fn latency_yaml(out: &mut String, key: &str, l: &Latency) {
    match l {
        Latency::Parametric {
            base_ms,
            per_input_token_ms,
            noise,
        } => {
            let _ = writeln!(
                out,
                "    {key}: {{base: {}, per_input_token: {}, noise: {}}}",
                num(*base_ms),
                num(*per_input_token_ms),
                dist_yaml(noise)
            );
        }
        Latency::Buckets(b) => {
            let _ = writeln!(out, "    {key}:\n      buckets:");
            for x in b {
                let max = if x.max_input_tokens == u64::MAX {
                    "inf".to_string()
                } else {
                    x.max_input_tokens.to_string()
                };
                let _ = writeln!(
                    out,
                    "        - {{max_input_tokens: {max}, samples: {}, dist: {}}}",
                    x.samples,
                    dist_yaml(&x.dist)
                );
            }
        }
    }
}

/// Writes a provider-model file that `parse` reads back.
pub fn to_yaml(set: &ProviderSet, header: &str) -> String {
    let mut out = String::new();
    for l in header.lines() {
        let _ = writeln!(out, "# {l}");
    }
    if let Some(d) = &set.default {
        let _ = writeln!(out, "default: {d}");
    }
    out.push_str("deployments:\n");
    for m in &set.models {
        let _ = writeln!(out, "  {}:", yaml_key(&m.name));
        if !m.matches.is_empty() {
            let _ = writeln!(
                out,
                "    match: [{}]",
                m.matches
                    .iter()
                    .map(|s| yaml_key(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let _ = writeln!(
            out,
            "    protocol: {}",
            if m.protocol == Protocol::Anthropic {
                "anthropic"
            } else {
                "openai"
            }
        );
        latency_yaml(&mut out, "ttft_ms", &m.ttft);
        latency_yaml(&mut out, "per_output_token_ms", &m.per_output_token);
        if m.slowdown_per_in_flight > 0.0 {
            let _ = writeln!(
                out,
                "    slowdown: {{per_request_in_flight: {}, max: {}}}",
                num(m.slowdown_per_in_flight),
                num(m.max_slowdown)
            );
        }
        let _ = writeln!(out, "    output_tokens: {}", dist_yaml(&m.output_tokens));
        let e = &m.errors;
        let _ = writeln!(
            out,
            "    errors:\n      good: {{rate: {}, mean_duration_s: {}}}\n      bad: {{rate: {}, mean_duration_s: {}}}\n      statuses: {{{}}}\n      timeout_share: {}\n      reset_share: {}\n      midstream_share: {}",
            num(e.good_rate),
            num(e.good_mean_s),
            num(e.bad_rate),
            num(e.bad_mean_s),
            e.statuses.iter().map(|(s, w)| format!("{s}: {}", num(*w))).collect::<Vec<_>>().join(", "),
            num(e.timeout_share),
            num(e.reset_share),
            num(e.midstream_share)
        );
        if m.rate_limits.rpm.is_some() || m.rate_limits.tpm.is_some() {
            let mut parts = Vec::new();
            if let Some(r) = m.rate_limits.rpm {
                parts.push(format!("rpm: {r}"));
            }
            if let Some(t) = m.rate_limits.tpm {
                parts.push(format!("tpm: {t}"));
            }
            let _ = writeln!(out, "    rate_limits: {{{}}}", parts.join(", "));
        }
        if let Some(c) = m.context_window {
            let _ = writeln!(out, "    context_window: {c}");
        }
        if let Some(p) = &m.prices {
            let _ = writeln!(
                out,
                "    prices: {{input_per_token: \"{}\", output_per_token: \"{}\"{}}}",
                p.input_per_token,
                p.output_per_token,
                p.cached_input_per_token
                    .as_ref()
                    .map(|c| format!(", cached_input_per_token: \"{c}\""))
                    .unwrap_or_default()
            );
        }
    }
    out
}

fn yaml_key(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && !s.is_empty()
    {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// Parses one distribution node (used by the synthetic workload spec).
pub fn dist_from_node(
    n: &Node,
    file: &str,
    path: &str,
    default_median: f64,
) -> Result<Dist, Vec<ModelError>> {
    let mut p = P {
        file,
        errors: Vec::new(),
    };
    match p.dist(n, path, default_median) {
        Some(d) if p.errors.is_empty() => Ok(d),
        _ => Err(p.errors),
    }
}
