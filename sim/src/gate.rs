//! The CI gate: baseline and candidate run on the same workload and the same random numbers
//! (same seeds, common random numbers per request and deployment); the candidate fails when its
//! cost, p99 latency or error rate grows past a budget. With several runs, the gate looks at the
//! 95 % confidence interval of the paired difference: it fails only when the whole interval lies
//! beyond the budget, and warns when the interval straddles it.

use crate::report::{stat, RunFigures, Stat};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Relative increase allowed in total cost (0.05 = 5 %).
    pub max_cost_increase: Option<f64>,
    /// Relative increase allowed in p99 latency.
    pub max_p99_increase: Option<f64>,
    /// Increase allowed in the error rate, in percentage points (0.5 = half a point).
    pub max_error_rate_increase_pp: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    /// The interval straddles the budget: not a confident regression.
    Warn,
    Fail,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub metric: String,
    pub baseline: f64,
    pub candidate: f64,
    /// Relative change (or percentage points for the error rate), with its interval over runs.
    pub change: Stat,
    pub budget: Option<f64>,
    pub verdict: Verdict,
    pub unit: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    pub runs: usize,
    pub checks: Vec<Check>,
    pub verdict: Verdict,
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

pub fn evaluate(baseline: &[RunFigures], candidate: &[RunFigures], budget: &Budget) -> GateResult {
    let pick = |runs: &[RunFigures], k: &str| -> Vec<f64> {
        runs.iter()
            .map(|r| r.overall.get(k).copied().unwrap_or(0.0))
            .collect()
    };
    let mut checks = Vec::new();
    let specs: [(&str, &str, Option<f64>, bool); 3] = [
        ("cost_usd", "total cost", budget.max_cost_increase, false),
        (
            "latency_p99_ms",
            "p99 latency",
            budget.max_p99_increase,
            false,
        ),
        (
            "error_rate",
            "error rate",
            budget.max_error_rate_increase_pp,
            true,
        ),
    ];
    for (key, name, limit, absolute_pp) in specs {
        let b = pick(baseline, key);
        let c = pick(candidate, key);
        let diffs: Vec<f64> = b
            .iter()
            .zip(&c)
            .map(|(b, c)| {
                if absolute_pp {
                    (c - b) * 100.0
                } else if *b > 0.0 {
                    (c - b) / b
                } else if *c > 0.0 {
                    f64::INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let change = stat(&diffs);
        let verdict = match limit {
            None => Verdict::Pass,
            Some(lim) => {
                if change.ci95.0 > lim {
                    Verdict::Fail
                } else if change.ci95.1 > lim {
                    if diffs.len() > 1 {
                        Verdict::Warn
                    } else {
                        Verdict::Fail
                    }
                } else {
                    Verdict::Pass
                }
            }
        };
        checks.push(Check {
            metric: name.to_string(),
            baseline: mean(&b),
            candidate: mean(&c),
            change,
            budget: limit,
            verdict,
            unit: if absolute_pp { "pp".into() } else { "%".into() },
        });
    }
    let verdict = if checks.iter().any(|c| c.verdict == Verdict::Fail) {
        Verdict::Fail
    } else if checks.iter().any(|c| c.verdict == Verdict::Warn) {
        Verdict::Warn
    } else {
        Verdict::Pass
    };
    GateResult {
        runs: baseline.len(),
        checks,
        verdict,
    }
}

fn fmt_change(c: &Check, runs: usize) -> String {
    let scale = if c.unit == "%" { 100.0 } else { 1.0 };
    let unit = if c.unit == "%" { "%" } else { " pp" };
    let m = c.change.mean * scale;
    if !m.is_finite() {
        return "new (baseline 0)".into();
    }
    let mut s = format!("{m:+.2}{unit}");
    if runs > 1 {
        let _ = write!(
            s,
            " [{:+.2}, {:+.2}]",
            c.change.ci95.0 * scale,
            c.change.ci95.1 * scale
        );
    }
    s
}

fn fmt_value(c: &Check, v: f64) -> String {
    match c.metric.as_str() {
        "total cost" => format!("${v:.4}"),
        "p99 latency" => format!("{v:.0} ms"),
        _ => format!("{:.2}%", v * 100.0),
    }
}

/// A Markdown table fit for a pull-request comment.
pub fn markdown(r: &GateResult, baseline: &str, candidate: &str) -> String {
    let icon = |v: Verdict| match v {
        Verdict::Pass => "✅ pass",
        Verdict::Warn => "⚠️ uncertain",
        Verdict::Fail => "❌ fail",
    };
    let mut s = format!(
        "### Switchyard gate: {}\n\nbaseline `{baseline}` vs candidate `{candidate}`, {} run(s){}.\n\n| metric | baseline | candidate | change | budget | verdict |\n|---|---:|---:|---:|---:|---|\n",
        icon(r.verdict),
        r.runs,
        if r.runs > 1 { ", change shown with its 95 % interval" } else { "" }
    );
    for c in &r.checks {
        let budget = match (c.budget, c.unit.as_str()) {
            (None, _) => "-".to_string(),
            (Some(b), "%") => format!("+{:.1}%", b * 100.0),
            (Some(b), _) => format!("+{b:.2} pp"),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            c.metric,
            fmt_value(c, c.baseline),
            fmt_value(c, c.candidate),
            fmt_change(c, r.runs),
            budget,
            icon(c.verdict)
        );
    }
    s
}

/// Parses `5%`, `0.05`, `+10%`.
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    let t = s.trim().trim_start_matches('+');
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|x| x / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("`{s}` is not a percentage like 5% or a fraction like 0.05"))?;
    if !v.is_finite() {
        return Err(format!("`{s}` is not finite"));
    }
    Ok(v)
}

/// Parses an error-rate budget in percentage points: `0.5` or `0.5pp` or `0.5%`.
pub fn parse_pp(s: &str) -> Result<f64, String> {
    let t = s
        .trim()
        .trim_start_matches('+')
        .trim_end_matches("pp")
        .trim_end_matches('%')
        .trim();
    t.parse::<f64>()
        .map_err(|_| format!("`{s}` is not a number of percentage points like 0.5"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn figs(cost: f64, p99: f64, err: f64) -> RunFigures {
        let mut o = BTreeMap::new();
        o.insert("cost_usd".into(), cost);
        o.insert("latency_p99_ms".into(), p99);
        o.insert("error_rate".into(), err);
        RunFigures {
            overall: o,
            ..RunFigures::default()
        }
    }

    #[test]
    fn single_run_compares_points() {
        let b = [figs(10.0, 1000.0, 0.01)];
        let budget = Budget {
            max_cost_increase: Some(0.05),
            max_p99_increase: Some(0.10),
            max_error_rate_increase_pp: Some(0.5),
        };
        assert_eq!(
            evaluate(&b, &[figs(10.4, 1090.0, 0.014)], &budget).verdict,
            Verdict::Pass
        );
        let r = evaluate(&b, &[figs(10.6, 1000.0, 0.01)], &budget);
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.checks[0].verdict, Verdict::Fail);
        assert_eq!(
            evaluate(&b, &[figs(10.0, 1200.0, 0.01)], &budget).verdict,
            Verdict::Fail
        );
        assert_eq!(
            evaluate(&b, &[figs(10.0, 1000.0, 0.02)], &budget).verdict,
            Verdict::Fail
        );
        let md = markdown(&r, "a.yaml", "b.yaml");
        assert!(
            md.contains("| total cost | $10.0000 | $10.6000 | +6.00% | +5.0% | ❌ fail |"),
            "{md}"
        );
    }

    #[test]
    fn several_runs_use_the_interval() {
        let budget = Budget {
            max_cost_increase: Some(0.05),
            max_p99_increase: None,
            max_error_rate_increase_pp: None,
        };
        let b: Vec<RunFigures> = (0..5).map(|_| figs(10.0, 1.0, 0.0)).collect();
        // Clearly above: +10 % +- 0.1.
        let c: Vec<RunFigures> = [11.0, 11.01, 10.99, 11.0, 11.02]
            .iter()
            .map(|x| figs(*x, 1.0, 0.0))
            .collect();
        assert_eq!(evaluate(&b, &c, &budget).verdict, Verdict::Fail);
        // Straddling: mean +5.2 % with a wide interval.
        let c: Vec<RunFigures> = [10.0, 11.0, 10.2, 10.9, 10.5]
            .iter()
            .map(|x| figs(*x, 1.0, 0.0))
            .collect();
        assert_eq!(evaluate(&b, &c, &budget).verdict, Verdict::Warn);
    }

    #[test]
    fn budgets_parse() {
        assert_eq!(parse_fraction("5%").unwrap(), 0.05);
        assert_eq!(parse_fraction("+10%").unwrap(), 0.10);
        assert_eq!(parse_fraction("0.2").unwrap(), 0.2);
        assert!(parse_fraction("lots").is_err());
        assert_eq!(parse_pp("0.5pp").unwrap(), 0.5);
    }
}
