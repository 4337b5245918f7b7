//! The workload file: JSON Lines of arrivals, what `sim import` and `sim synth` write and
//! `sim replay` / `sim drive` read.
//!
//! ```text
//! {"switchyard_workload": 1, "source": "..."}
//! {"at_us": 0, "model": "production-llm", "tokens_in": 374, "tokens_out": 44, "stream": false}
//! {"at_us": 4314579, "model": "production-llm", "tokens_in": 396, "tokens_out": 109, "key": "team-a", "tags": ["x"]}
//! ```

use super::{Arrival, Item, ItemResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use switchyard_engine::core::event::{Endpoint, Name, RequestOverrides};
use switchyard_engine::core::router::RequestInput;
use switchyard_engine::core::units::InstantUs;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ArrivalLine {
    pub at_us: u64,
    pub model: Name,
    pub tokens_in: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_out: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// LiteLLM's request-level routing parameters, as a client would send them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallbacks: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_retries: Option<u32>,
    /// Per-attempt timeout, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mock_testing_fallbacks: bool,
}

impl ArrivalLine {
    fn overrides(&self) -> RequestOverrides {
        RequestOverrides {
            fallbacks: self.fallbacks.clone(),
            num_retries: self.num_retries,
            timeout_us: self
                .timeout_s
                .filter(|s| *s > 0.0)
                .map(|s| (s * 1e6).round() as u64),
            mock_testing_fallbacks: self.mock_testing_fallbacks,
        }
    }

    /// Moves the line into an arrival (no copies of its strings).
    pub fn into_arrival(self) -> Arrival {
        let overrides = self.overrides();
        Arrival {
            at: InstantUs(self.at_us),
            input: RequestInput {
                key_id: None,
                model: self.model,
                endpoint: Some(Endpoint::Chat),
                tokens_in: self.tokens_in,
                max_tokens: self.max_tokens,
                stream: self.stream,
                tags: self.tags,
                headers: if self.headers.is_empty() {
                    Vec::new()
                } else {
                    self.headers
                        .into_iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v))
                        .collect()
                },
                user: self.user,
                prompt_sha: String::new(),
                prompt: None,
                overrides,
            },
            tokens_out: self.tokens_out,
            key: self.key,
            recorded: None,
        }
    }

    pub fn to_arrival(&self) -> Arrival {
        Arrival {
            at: InstantUs(self.at_us),
            input: RequestInput {
                key_id: None,
                model: self.model.clone(),
                endpoint: Some(Endpoint::Chat),
                tokens_in: self.tokens_in,
                max_tokens: self.max_tokens,
                stream: self.stream,
                tags: self.tags.clone(),
                headers: self
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect(),
                user: self.user.clone(),
                prompt_sha: String::new(),
                prompt: None,
                overrides: self.overrides(),
            },
            tokens_out: self.tokens_out,
            key: self.key.clone(),
            recorded: None,
        }
    }
}

pub const HEADER_KEY: &str = "switchyard_workload";

pub struct WorkloadWriter<W: Write> {
    out: W,
    pub n: u64,
}

impl<W: Write> WorkloadWriter<W> {
    pub fn new(mut out: W, source: &str) -> std::io::Result<Self> {
        writeln!(
            out,
            "{}",
            serde_json::json!({HEADER_KEY: 1, "source": source})
        )?;
        Ok(WorkloadWriter { out, n: 0 })
    }

    pub fn write(&mut self, a: &ArrivalLine) -> std::io::Result<()> {
        self.n += 1;
        serde_json::to_writer(&mut self.out, a)?;
        self.out.write_all(b"\n")
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Streams the arrivals of a workload file; times must not go backwards.
pub struct WorkloadReader<R: BufRead> {
    inp: R,
    line: String,
    line_no: u64,
    last_at: u64,
}

impl<R: BufRead> WorkloadReader<R> {
    pub fn new(inp: R) -> Self {
        WorkloadReader {
            inp,
            line: String::new(),
            line_no: 0,
            last_at: 0,
        }
    }
}

impl<R: BufRead> Iterator for WorkloadReader<R> {
    type Item = ItemResult;

    fn next(&mut self) -> Option<ItemResult> {
        loop {
            self.line.clear();
            self.line_no += 1;
            match self.inp.read_line(&mut self.line) {
                Err(e) => return Some(Err(format!("line {}: {e}", self.line_no))),
                Ok(0) => return None,
                Ok(_) => {}
            }
            let l = self.line.trim();
            if l.is_empty() || l.contains(HEADER_KEY) {
                continue;
            }
            let a: ArrivalLine = match serde_json::from_str(l) {
                Ok(a) => a,
                Err(e) => return Some(Err(format!("workload line {}: {e}", self.line_no))),
            };
            if a.at_us < self.last_at {
                return Some(Err(format!(
                    "workload line {}: at_us {} goes back in time (previous {})",
                    self.line_no, a.at_us, self.last_at
                )));
            }
            self.last_at = a.at_us;
            return Some(Ok(Item::Request(Box::new(a.into_arrival()))));
        }
    }
}
