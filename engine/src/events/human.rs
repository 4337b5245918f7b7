//! Events as one human-readable line each (`switchyard log tail`), and UTC timestamps without a
//! date library.

use crate::core::event::*;
use crate::core::units::{DurationUs, InstantUs, PicoUsd};

/// `2026-11-26T01:02:03.123456Z` for microseconds since the Unix epoch.
pub fn format_time(t: InstantUs) -> String {
    let secs = t.0 / 1_000_000;
    let micros = t.0 % 1_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Parses `2026-11-26T01:02:03Z` (fraction optional), or plain microseconds since the epoch.
pub fn parse_time(s: &str) -> Option<InstantUs> {
    if let Ok(us) = s.parse::<u64>() {
        return Some(InstantUs(us));
    }
    let s = s.trim().trim_end_matches('Z');
    let (date, time) = s.split_once(['T', ' ']).unwrap_or((s, "00:00:00"));
    let mut dp = date.split('-');
    let y: i64 = dp.next()?.parse().ok()?;
    let m: i64 = dp.next()?.parse().ok()?;
    let d: i64 = dp.next()?.parse().ok()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut tp = hms.split(':');
    let hh: i64 = tp.next()?.parse().ok()?;
    let mm: i64 = tp.next().unwrap_or("0").parse().ok()?;
    let ss: i64 = tp.next().unwrap_or("0").parse().ok()?;
    let frac_us: i64 = if frac.is_empty() {
        0
    } else {
        format!("{:0<6}", &frac[..frac.len().min(6)]).parse().ok()?
    };
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    (secs >= 0).then(|| InstantUs(secs as u64 * 1_000_000 + frac_us as u64))
}

fn cost(p: PicoUsd) -> String {
    format!("${}", p.to_usd_string())
}

pub fn describe(seq: u64, ev: &Event) -> String {
    let t = format_time(ev.at());
    let body = match ev {
        Event::ConfigApplied(e) => format!(
            "config applied {} (seed {})",
            &e.hash_hex[..e.hash_hex.len().min(12)],
            e.seed
        ),
        Event::ProxyStarted(e) => format!(
            "proxy started, version {}, next request r{}",
            e.version, e.next_request_id
        ),
        Event::RequestReceived(e) => {
            let who = e
                .key_id
                .as_deref()
                .map(|k| format!(" key={k}"))
                .unwrap_or_default();
            let adm = match &e.admission {
                Admission::Admitted { group, reason, .. } => {
                    format!("-> {group} ({})", reason.name())
                }
                Admission::Rejected(r) => format!("rejected {} {}", r.status, r.message),
            };
            let o = &e.overrides;
            let mut asked = String::new();
            if let Some(f) = &o.fallbacks {
                asked.push_str(&format!(" fallbacks=[{}]", f.join(",")));
            }
            if let Some(n) = o.num_retries {
                asked.push_str(&format!(" num_retries={n}"));
            }
            if let Some(t) = o.timeout_us {
                asked.push_str(&format!(" timeout={}s", t as f64 / 1e6));
            }
            if o.mock_testing_fallbacks {
                asked.push_str(" mock_testing_fallbacks");
            }
            format!(
                "r{} received model={}{who} tokens_in={} max_tokens={} stream={}{asked} {adm}",
                e.id,
                e.model,
                e.tokens_in,
                e.max_tokens.map_or("-".into(), |m| m.to_string()),
                e.stream
            )
        }
        Event::AttemptDecided(e) => format!(
            "r{} attempt #{} {} {} -> {} (p={:.3}{}, {} candidate(s))",
            e.id,
            e.attempt,
            e.reason.name(),
            e.group,
            e.deployment,
            e.probability,
            if e.explored { ", explored" } else { "" },
            e.candidates.len()
        ),
        Event::AttemptFinished(e) => format!(
            "r{} attempt #{} {} {} {} in {}{} tokens {}/{} cost {}{}",
            e.id,
            e.attempt,
            e.deployment,
            e.class.name(),
            e.status,
            DurationUs(e.duration_us),
            e.ttft_us
                .map(|t| format!(" (ttft {})", DurationUs(t)))
                .unwrap_or_default(),
            e.tokens_in,
            e.tokens_out,
            cost(e.cost),
            e.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ),
        Event::RequestFinished(e) => {
            let res = match &e.result {
                RequestResult::Ok => "ok".to_string(),
                RequestResult::Err(r) => format!("error {} {}", r.status, r.kind),
            };
            format!(
                "r{} finished {res} in {} after {} attempt(s), {} fallback(s), cost {}",
                e.id,
                DurationUs(e.latency_us),
                e.n_attempts,
                e.n_fallbacks,
                cost(e.cost)
            )
        }
        Event::KeyCreated(e) => format!(
            "key {} created{}",
            e.key.id,
            e.key
                .alias
                .as_deref()
                .map(|a| format!(" ({a})"))
                .unwrap_or_default()
        ),
        Event::KeyDeleted(e) => format!("key {} deleted", e.key_id),
    };
    format!("{t} #{seq} {body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let t = InstantUs(1_764_118_923_123_456);
        let s = format_time(t);
        assert_eq!(s, "2025-11-26T01:02:03.123456Z");
        assert_eq!(parse_time(&s), Some(t));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(InstantUs(0)));
        assert_eq!(
            parse_time("2024-02-29"),
            Some(InstantUs(1_709_164_800_000_000))
        );
        assert_eq!(parse_time("nonsense"), None);
    }
}
