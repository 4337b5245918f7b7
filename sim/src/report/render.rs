//! Reports as a text table (default), Markdown, or JSON. Deterministic: same figures, same
//! bytes.

use super::{Stat, Summary};
use std::collections::BTreeMap;
use std::fmt::Write;

/// What a report is about, printed at its top.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Meta {
    pub title: String,
    pub config: String,
    pub workload: String,
    pub seed: u64,
    pub runs: usize,
    pub reused_outcomes: u64,
    pub sampled_outcomes: u64,
}

fn get<'a>(m: &'a BTreeMap<String, Stat>, k: &str) -> Option<&'a Stat> {
    m.get(k)
}

/// `812` or `812 ±12` (half-width of the 95 % interval).
fn fmt(s: Option<&Stat>, decimals: usize, runs: usize) -> String {
    match s {
        None => "-".into(),
        Some(s) => {
            let v = format!("{:.*}", decimals, s.mean);
            if runs > 1 {
                let half = (s.ci95.1 - s.ci95.0) / 2.0;
                format!("{v} ±{:.*}", decimals, half)
            } else {
                v
            }
        }
    }
}

fn pct(s: Option<&Stat>, runs: usize) -> String {
    match s {
        None => "-".into(),
        Some(s) => {
            let v = format!("{:.2}%", s.mean * 100.0);
            if runs > 1 {
                format!("{v} ±{:.2}", (s.ci95.1 - s.ci95.0) / 2.0 * 100.0)
            } else {
                v
            }
        }
    }
}

const SCOPE_COLS: [(&str, &str, usize); 13] = [
    ("requests", "requests", 0),
    ("ok", "ok", 0),
    ("error_rate", "errors", 2),
    ("retries", "retries", 0),
    ("fallbacks", "fallbacks", 0),
    ("cost_usd", "cost $", 4),
    ("cost_per_1k_usd", "$ / 1k req", 4),
    ("latency_p50_ms", "p50 ms", 0),
    ("latency_p90_ms", "p90 ms", 0),
    ("latency_p99_ms", "p99 ms", 0),
    ("latency_p999_ms", "p99.9 ms", 0),
    ("ttft_p50_ms", "TTFT p50", 0),
    ("ttft_p99_ms", "TTFT p99", 0),
];

const DEP_COLS: [(&str, &str, usize); 8] = [
    ("attempts", "attempts", 0),
    ("share", "share", 3),
    ("successes", "ok", 0),
    ("failures", "failed", 0),
    ("cost_usd", "cost $", 4),
    ("cooldown_s", "cooldown s", 1),
    ("attempt_p50_ms", "p50 ms", 0),
    ("attempt_p99_ms", "p99 ms", 0),
];

fn scope_row(m: &BTreeMap<String, Stat>, runs: usize) -> Vec<String> {
    SCOPE_COLS
        .iter()
        .map(|(k, _, d)| {
            if *k == "error_rate" {
                pct(get(m, k), runs)
            } else {
                fmt(get(m, k), *d, runs)
            }
        })
        .collect()
}

fn dep_row(m: &BTreeMap<String, Stat>, runs: usize) -> Vec<String> {
    DEP_COLS
        .iter()
        .map(|(k, _, d)| {
            if *k == "share" {
                pct(get(m, k), runs)
            } else {
                fmt(get(m, k), *d, runs)
            }
        })
        .collect()
}

fn table_text(out: &mut String, head: &[&str], rows: &[(String, Vec<String>)]) {
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for (name, cells) in rows {
        widths[0] = widths[0].max(name.len());
        for (i, c) in cells.iter().enumerate() {
            widths[i + 1] = widths[i + 1].max(c.len());
        }
    }
    for (i, h) in head.iter().enumerate() {
        if i == 0 {
            let _ = write!(out, "{:<w$}", h, w = widths[0]);
        } else {
            let _ = write!(out, "  {:>w$}", h, w = widths[i]);
        }
    }
    out.push('\n');
    for (name, cells) in rows {
        let _ = write!(out, "{:<w$}", name, w = widths[0]);
        for (i, c) in cells.iter().enumerate() {
            let _ = write!(out, "  {:>w$}", c, w = widths[i + 1]);
        }
        out.push('\n');
    }
}

fn table_md(out: &mut String, head: &[&str], rows: &[(String, Vec<String>)]) {
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        head.iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { "---|" } else { "---:|" })
            .collect::<String>()
    );
    for (name, cells) in rows {
        let _ = writeln!(out, "| {} | {} |", name, cells.join(" | "));
    }
}

fn header(meta: &Meta, s: &Summary) -> String {
    let reqs = s.overall.get("requests").map_or(0.0, |x| x.mean);
    format!(
        "{}\nconfig: {}  workload: {}  runs: {}  seed: {}\n{} requests over {:.1} s; outcomes reused from the trace: {}, sampled from provider models: {}\n",
        meta.title, meta.config, meta.workload, meta.runs, meta.seed, reqs as u64, s.span_s, meta.reused_outcomes, meta.sampled_outcomes
    )
}

type Rows = Vec<(String, Vec<String>)>;

fn rows(s: &Summary) -> (Rows, Rows) {
    let mut scope = vec![("overall".to_string(), scope_row(&s.overall, s.runs))];
    for (g, m) in &s.groups {
        scope.push((format!("group {g}"), scope_row(m, s.runs)));
    }
    let deps = s
        .deployments
        .iter()
        .map(|(d, m)| (d.clone(), dep_row(m, s.runs)))
        .collect();
    (scope, deps)
}

pub fn text(meta: &Meta, s: &Summary) -> String {
    let mut out = header(meta, s);
    out.push('\n');
    let (scope, deps) = rows(s);
    let mut head = vec!["scope"];
    head.extend(SCOPE_COLS.iter().map(|c| c.1));
    table_text(&mut out, &head, &scope);
    out.push('\n');
    let mut head = vec!["deployment"];
    head.extend(DEP_COLS.iter().map(|c| c.1));
    table_text(&mut out, &head, &deps);
    out
}

pub fn markdown(meta: &Meta, s: &Summary) -> String {
    let mut out = format!("### {}\n\n", meta.title);
    let _ = writeln!(
        out,
        "config `{}`, workload `{}`, {} run(s), seed {}; {} requests over {:.1} s.\n",
        meta.config,
        meta.workload,
        meta.runs,
        meta.seed,
        s.overall.get("requests").map_or(0.0, |x| x.mean) as u64,
        s.span_s
    );
    let (scope, deps) = rows(s);
    let mut head = vec!["scope"];
    head.extend(SCOPE_COLS.iter().map(|c| c.1));
    table_md(&mut out, &head, &scope);
    out.push('\n');
    let mut head = vec!["deployment"];
    head.extend(DEP_COLS.iter().map(|c| c.1));
    table_md(&mut out, &head, &deps);
    out
}

pub fn json(meta: &Meta, s: &Summary) -> String {
    let v = serde_json::json!({"meta": meta, "summary": s});
    serde_json::to_string_pretty(&v).expect("reports serialize")
}
