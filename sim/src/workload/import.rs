//! Public traces into workloads: the Azure LLM inference trace CSV
//! (`TIMESTAMP,ContextTokens,GeneratedTokens`) and JSON Lines with `timestamp` (ms) /
//! `input_length` / `output_length` (Mooncake). Requests are mapped onto model groups, keys and
//! tags by weighted, seeded draws; time can be sped up and the rate scaled.

use super::arrivals::ArrivalLine;
use switchyard_engine::core::rng::Rng;

/// One request of a public trace: arrival offset in microseconds, tokens in and out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raw {
    pub at_us: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
}

/// `YYYY-MM-DD HH:MM:SS.fffffff` (no time zone, read as UTC) as microseconds since the epoch.
pub fn parse_azure_time(s: &str) -> Option<u64> {
    let s = s.trim();
    if !s.contains(' ') {
        return None;
    }
    switchyard_engine::events::human::parse_time(s).map(|t| t.0)
}

/// Parses the Azure CSV layout; every bad line is an error naming its number.
pub fn parse_azure_line(line: &str, line_no: u64) -> Result<Option<Raw>, String> {
    let l = line.trim();
    if l.is_empty() || l.starts_with("TIMESTAMP") {
        return Ok(None);
    }
    let mut f = l.split(',');
    let (Some(ts), Some(ctx), Some(gen)) = (f.next(), f.next(), f.next()) else {
        return Err(format!(
            "line {line_no}: expected TIMESTAMP,ContextTokens,GeneratedTokens"
        ));
    };
    let at = parse_azure_time(ts).ok_or_else(|| {
        format!("line {line_no}: `{ts}` is not a timestamp like 2023-11-16 18:15:46.6805900")
    })?;
    let ti = ctx
        .trim()
        .parse()
        .map_err(|_| format!("line {line_no}: ContextTokens `{ctx}` is not a number"))?;
    let to = gen
        .trim()
        .parse()
        .map_err(|_| format!("line {line_no}: GeneratedTokens `{gen}` is not a number"))?;
    Ok(Some(Raw {
        at_us: at,
        tokens_in: ti,
        tokens_out: to,
    }))
}

/// Parses the Mooncake JSON Lines layout (`timestamp` in ms).
pub fn parse_jsonl_line(line: &str, line_no: u64) -> Result<Option<Raw>, String> {
    let l = line.trim();
    if l.is_empty() {
        return Ok(None);
    }
    let v: serde_json::Value =
        serde_json::from_str(l).map_err(|e| format!("line {line_no}: {e}"))?;
    let num = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_f64())
            .ok_or_else(|| format!("line {line_no}: missing number `{k}`"))
    };
    Ok(Some(Raw {
        at_us: (num("timestamp")? * 1000.0) as u64,
        tokens_in: num("input_length")? as u64,
        tokens_out: num("output_length")? as u64,
    }))
}

/// A weighted choice of model group, key and tags.
#[derive(Clone, Debug, PartialEq)]
pub struct MixEntry {
    pub weight: f64,
    pub model: String,
    pub key: Option<String>,
    pub tags: Vec<String>,
}

/// Parses `model[:weight][@key][#tag1#tag2],...`, e.g. `production-llm:0.9,production-llm:0.1@premium#vip`.
pub fn parse_mix(s: &str) -> Result<Vec<MixEntry>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut rest = part;
        let mut tags = Vec::new();
        while let Some(i) = rest.rfind('#') {
            tags.insert(0, rest[i + 1..].to_string());
            rest = &rest[..i];
        }
        let (rest, key) = match rest.split_once('@') {
            Some((a, k)) => (a, Some(k.to_string())),
            None => (rest, None),
        };
        let (model, weight) = match rest.rsplit_once(':') {
            Some((m, w)) => (
                m,
                w.parse::<f64>()
                    .map_err(|_| format!("`{part}`: weight `{w}` is not a number"))?,
            ),
            None => (rest, 1.0),
        };
        if model.is_empty() || weight.is_nan() || weight <= 0.0 {
            return Err(format!("`{part}`: expected model[:weight][@key][#tag]"));
        }
        out.push(MixEntry {
            weight,
            model: model.to_string(),
            key,
            tags,
        });
    }
    if out.is_empty() {
        return Err("the mix is empty".into());
    }
    Ok(out)
}

#[derive(Clone, Debug)]
pub struct ImportOptions {
    pub mix: Vec<MixEntry>,
    /// Divide every inter-arrival time by this (2.0: twice as fast).
    pub speed: f64,
    /// Keep this share of requests (seeded), to scale the rate down; above 1, each request is
    /// repeated (the copies spread over the gap to the next arrival).
    pub rate_scale: f64,
    pub stream_share: f64,
    pub max_tokens: Option<u64>,
    pub limit: Option<u64>,
    pub seed: u64,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            mix: vec![],
            speed: 1.0,
            rate_scale: 1.0,
            stream_share: 0.0,
            max_tokens: None,
            limit: None,
            seed: 1,
        }
    }
}

/// Maps raw requests (in time order) onto arrival lines.
pub struct Mapper {
    opts: ImportOptions,
    rng: Rng,
    t0: Option<u64>,
    total_weight: f64,
    pub n: u64,
}

impl Mapper {
    pub fn new(opts: ImportOptions) -> Mapper {
        let total_weight = opts.mix.iter().map(|m| m.weight).sum();
        Mapper {
            rng: Rng::new(opts.seed),
            opts,
            t0: None,
            total_weight,
            n: 0,
        }
    }

    fn pick(&mut self) -> MixEntry {
        let mut x = self.rng.unit_f64() * self.total_weight;
        for m in &self.opts.mix {
            if x < m.weight {
                return m.clone();
            }
            x -= m.weight;
        }
        self.opts.mix.last().cloned().expect("the mix is not empty")
    }

    /// The lines for one raw request (none, one, or several with `rate_scale`).
    pub fn map(&mut self, raw: Raw, next_gap_us: u64) -> Vec<ArrivalLine> {
        let t0 = *self.t0.get_or_insert(raw.at_us);
        let at = (raw.at_us.saturating_sub(t0) as f64 / self.opts.speed.max(1e-9)) as u64;
        let copies = {
            let whole = self.opts.rate_scale.floor();
            let frac = self.opts.rate_scale - whole;
            whole as u64 + u64::from(self.rng.unit_f64() < frac)
        };
        let mut out = Vec::new();
        for c in 0..copies {
            if self.opts.limit.is_some_and(|l| self.n >= l) {
                break;
            }
            let m = self.pick();
            let offset = if copies > 1 {
                (next_gap_us as f64 / self.opts.speed.max(1e-9) * c as f64 / copies as f64) as u64
            } else {
                0
            };
            let stream = self.rng.unit_f64() < self.opts.stream_share;
            out.push(ArrivalLine {
                at_us: at + offset,
                model: m.model.into(),
                tokens_in: raw.tokens_in.max(1),
                tokens_out: Some(raw.tokens_out.max(1)),
                max_tokens: self.opts.max_tokens,
                stream,
                key: m.key,
                tags: m.tags,
                ..ArrivalLine::default()
            });
            self.n += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_lines() {
        let r = parse_azure_line("2023-11-16 18:15:46.6805900,374,44", 2)
            .unwrap()
            .unwrap();
        assert_eq!(r.tokens_in, 374);
        assert_eq!(r.tokens_out, 44);
        assert_eq!(r.at_us % 1_000_000, 680_590);
        assert_eq!(
            parse_azure_line("TIMESTAMP,ContextTokens,GeneratedTokens", 1).unwrap(),
            None
        );
        assert!(parse_azure_line("2023-11-16 18:15:46.6805900,x,44", 3)
            .unwrap_err()
            .contains("line 3"));
        let r2 = parse_azure_line("2023-11-16 18:15:50.9951690,396,109", 3)
            .unwrap()
            .unwrap();
        assert_eq!(r2.at_us - r.at_us, 4_314_579);
    }

    #[test]
    fn mooncake_lines() {
        let r = parse_jsonl_line(
            r#"{"timestamp": 1500, "input_length": 10, "output_length": 3, "hash_ids": [1, 2]}"#,
            1,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            r,
            Raw {
                at_us: 1_500_000,
                tokens_in: 10,
                tokens_out: 3
            }
        );
        assert!(parse_jsonl_line("{}", 4).unwrap_err().contains("line 4"));
    }

    #[test]
    fn mixes() {
        let m = parse_mix("a:0.9,b:0.1@premium#vip#x").unwrap();
        assert_eq!(
            m[1],
            MixEntry {
                weight: 0.1,
                model: "b".into(),
                key: Some("premium".into()),
                tags: vec!["vip".into(), "x".into()]
            }
        );
        assert!(parse_mix("a:zero").is_err());
        assert!(parse_mix("").is_err());
    }

    #[test]
    fn mapper_speeds_up_and_scales() {
        let mut m = Mapper::new(ImportOptions {
            mix: parse_mix("g").unwrap(),
            speed: 2.0,
            rate_scale: 2.0,
            ..ImportOptions::default()
        });
        let a = m.map(
            Raw {
                at_us: 10_000_000,
                tokens_in: 5,
                tokens_out: 6,
            },
            1_000_000,
        );
        let b = m.map(
            Raw {
                at_us: 11_000_000,
                tokens_in: 5,
                tokens_out: 6,
            },
            1_000_000,
        );
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].at_us, 0);
        assert_eq!(a[1].at_us, 250_000);
        assert_eq!(b[0].at_us, 500_000);
    }
}
