//! One self-contained HTML page (inline SVG, no scripts, no network): the latency distribution of
//! each run side by side, the cost breakdown by deployment, and the traffic share per deployment
//! over time, above the same tables as the text report.

use super::render::{markdown, Meta};
use super::{PlotData, Summary};
use std::collections::BTreeSet;
use std::fmt::Write;

const PALETTE: [&str; 10] = [
    "#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563",
    "#65a30d", "#b45309",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One labelled run on the page.
pub struct Panel<'a> {
    pub label: &'a str,
    pub meta: &'a Meta,
    pub summary: &'a Summary,
    pub plots: &'a PlotData,
}

fn latency_svg(panels: &[Panel]) -> String {
    let (w, h, l, b) = (720.0, 360.0, 60.0, 40.0);
    let max_ms = panels
        .iter()
        .flat_map(|p| p.plots.latency_cdf.iter().map(|x| x.1))
        .fold(1.0f64, f64::max);
    // x: -log10(1 - q) from 0 (p0) to 3 (p99.9); y: latency, linear.
    let x = |q: f64| l + (-(1.0 - q).max(1e-3).log10()) / 3.0 * (w - l - 20.0);
    let y = |v: f64| h - b - v / max_ms * (h - b - 20.0);
    let mut s = format!("<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"latency distribution\">");
    for (q, label) in [
        (0.0, "p0"),
        (0.5, "p50"),
        (0.9, "p90"),
        (0.99, "p99"),
        (0.999, "p99.9"),
    ] {
        let _ = write!(s, "<line x1=\"{0:.1}\" y1=\"20\" x2=\"{0:.1}\" y2=\"{1:.1}\" stroke=\"#e5e7eb\"/><text x=\"{0:.1}\" y=\"{2:.1}\" font-size=\"11\" text-anchor=\"middle\">{label}</text>", x(q), h - b, h - b + 16.0);
    }
    for i in 0..=4 {
        let v = max_ms * i as f64 / 4.0;
        let _ = write!(s, "<line x1=\"{l}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#f3f4f6\"/><text x=\"{2}\" y=\"{3:.1}\" font-size=\"11\" text-anchor=\"end\">{v:.0} ms</text>", y(v), w - 20.0, l - 6.0, y(v) + 4.0);
    }
    for (i, p) in panels.iter().enumerate() {
        let pts: Vec<String> = p
            .plots
            .latency_cdf
            .iter()
            .map(|(q, v)| format!("{:.1},{:.1}", x(*q), y(*v)))
            .collect();
        let c = PALETTE[i % PALETTE.len()];
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{}\"/>",
            pts.join(" ")
        );
        let _ = write!(s, "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{c}\"/><text x=\"{}\" y=\"{}\" font-size=\"12\">{}</text>", l + 10.0, 24.0 + 18.0 * i as f64, l + 28.0, 34.0 + 18.0 * i as f64, esc(p.label));
    }
    s.push_str("</svg>");
    s
}

fn cost_svg(panels: &[Panel]) -> String {
    let deps: BTreeSet<&String> = panels
        .iter()
        .flat_map(|p| p.plots.cost_by_deployment.iter().map(|(d, _)| d))
        .collect();
    let deps: Vec<&String> = deps.into_iter().collect();
    let max = panels
        .iter()
        .flat_map(|p| p.plots.cost_by_deployment.iter().map(|x| x.1))
        .fold(1e-12f64, f64::max);
    let row = 22.0 * panels.len() as f64 + 14.0;
    let (w, l) = (720.0, 180.0);
    let h = 30.0 + row * deps.len() as f64;
    let mut s = format!("<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"cost by deployment\">");
    for (di, d) in deps.iter().enumerate() {
        let top = 10.0 + row * di as f64;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{}</text>",
            l - 8.0,
            top + 15.0,
            esc(d)
        );
        for (pi, p) in panels.iter().enumerate() {
            let v = p
                .plots
                .cost_by_deployment
                .iter()
                .find(|(k, _)| k == *d)
                .map_or(0.0, |x| x.1);
            let bw = v / max * (w - l - 120.0);
            let yy = top + 22.0 * pi as f64;
            let c = PALETTE[pi % PALETTE.len()];
            let _ = write!(s, "<rect x=\"{l}\" y=\"{yy:.1}\" width=\"{bw:.1}\" height=\"18\" fill=\"{c}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">${v:.4} ({})</text>", l + bw + 6.0, yy + 13.0, esc(p.label));
        }
    }
    s.push_str("</svg>");
    s
}

fn share_svg(p: &Panel, deps: &[String]) -> String {
    let (w, h, l, b) = (720.0, 220.0, 50.0, 30.0);
    let series = &p.plots.share_over_time;
    let mut s = format!("<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"traffic share over time\">");
    if series.is_empty() {
        s.push_str("</svg>");
        return s;
    }
    let t_max = series.last().map_or(1.0, |x| x.0).max(1.0);
    let x = |t: f64| l + t / t_max * (w - l - 20.0);
    let y = |f: f64| h - b - f * (h - b - 10.0);
    // Stacked shares: cumulative fraction per deployment at each bucket.
    let mut lower: Vec<f64> = vec![0.0; series.len()];
    for (di, d) in deps.iter().enumerate() {
        let upper: Vec<f64> = series
            .iter()
            .enumerate()
            .map(|(i, (_, m))| {
                let total: u64 = m.values().sum();
                let v = m.get(d).copied().unwrap_or(0);
                lower[i]
                    + if total > 0 {
                        v as f64 / total as f64
                    } else {
                        0.0
                    }
            })
            .collect();
        let mut pts: Vec<String> = series
            .iter()
            .zip(&upper)
            .map(|((t, _), u)| format!("{:.1},{:.1}", x(*t), y(*u)))
            .collect();
        pts.extend(
            series
                .iter()
                .zip(&lower)
                .rev()
                .map(|((t, _), lo)| format!("{:.1},{:.1}", x(*t), y(*lo))),
        );
        let c = PALETTE[di % PALETTE.len()];
        let _ = write!(
            s,
            "<polygon fill=\"{c}\" fill-opacity=\"0.75\" stroke=\"none\" points=\"{}\"/>",
            pts.join(" ")
        );
        lower = upper;
    }
    let _ = write!(s, "<text x=\"{l}\" y=\"{:.1}\" font-size=\"11\">0 s</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{t_max:.0} s</text>", h - 10.0, w - 20.0, h - 10.0);
    let _ = write!(s, "<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">100%</text><text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">0%</text>", l - 4.0, y(1.0) + 4.0, l - 4.0, y(0.0));
    s.push_str("</svg>");
    s
}

fn md_table_to_html(md: &str) -> String {
    let mut out = String::new();
    let mut in_table = false;
    for line in md.lines() {
        if line.starts_with('|') {
            if line.contains("---") {
                continue;
            }
            if !in_table {
                out.push_str("<table>");
                in_table = true;
            }
            out.push_str("<tr>");
            for c in line.trim_matches('|').split('|') {
                let _ = write!(out, "<td>{}</td>", esc(c.trim()));
            }
            out.push_str("</tr>");
        } else {
            if in_table {
                out.push_str("</table>");
                in_table = false;
            }
            if let Some(h) = line.strip_prefix("### ") {
                let _ = write!(out, "<h3>{}</h3>", esc(h));
            } else if !line.trim().is_empty() {
                let _ = write!(out, "<p>{}</p>", esc(line));
            }
        }
    }
    if in_table {
        out.push_str("</table>");
    }
    out
}

/// The page. `verdict` (the gate's) is shown on top when given.
pub fn page(title: &str, panels: &[Panel], verdict: Option<&str>) -> String {
    let deps: Vec<String> = panels
        .iter()
        .flat_map(|p| {
            p.plots
                .share_over_time
                .iter()
                .flat_map(|(_, m)| m.keys().cloned())
        })
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect();
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#111827}}table{{border-collapse:collapse;font-size:13px;margin:0.5em 0 1.5em}}td{{border:1px solid #e5e7eb;padding:3px 8px;text-align:right}}td:first-child{{text-align:left}}tr:first-child td{{font-weight:600;background:#f9fafb}}.legend span{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}}pre{{background:#f9fafb;padding:1em}}</style></head><body><h1>{}</h1>",
        esc(title),
        esc(title)
    );
    if let Some(v) = verdict {
        let _ = write!(s, "{}", md_table_to_html(v));
    }
    s.push_str("<h2>Latency distribution</h2><p>Request latency by percentile (x axis: p0 to p99.9 on a log scale of the tail).</p>");
    s.push_str(&latency_svg(panels));
    s.push_str("<h2>Cost by deployment</h2>");
    s.push_str(&cost_svg(panels));
    s.push_str("<h2>Traffic share over time</h2><p class=\"legend\">");
    for (i, d) in deps.iter().enumerate() {
        let _ = write!(
            s,
            "<span style=\"background:{}\"></span>{}",
            PALETTE[i % PALETTE.len()],
            esc(d)
        );
    }
    s.push_str("</p>");
    for p in panels {
        let _ = write!(s, "<h3>{}</h3>", esc(p.label));
        s.push_str(&share_svg(p, &deps));
    }
    s.push_str("<h2>Figures</h2>");
    for p in panels {
        s.push_str(&md_table_to_html(&markdown(p.meta, p.summary)));
    }
    s.push_str("</body></html>\n");
    s
}
