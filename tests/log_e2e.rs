//! The event log under a real crash: a child process appends under load and is killed with
//! SIGKILL; on reopen, everything the durability mode promised is there and the log is a clean
//! prefix. Plus the `switchyard log` tools.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use switchyard_engine::store::{Store, StoreOptions};

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// Runs the stress appender until `n_acks` acknowledgements, kills it, returns the acks
/// (seq, time acknowledged) and the kill time.
fn stress_then_kill(
    dir: &std::path::Path,
    durability: &str,
    n_acks: usize,
) -> (Vec<(u64, u64)>, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["log", "stress", "--data"])
        .arg(dir)
        .args([
            "--durability",
            durability,
            "--flush-ms",
            "50",
            "--count",
            "100000000",
            "--writers",
            "4",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut acks = Vec::new();
    let mut lines = BufReader::new(out).lines();
    while acks.len() < n_acks {
        let Some(Ok(line)) = lines.next() else { break };
        let mut parts = line.split_whitespace();
        if parts.next() != Some("ack") {
            continue;
        }
        let seq: u64 = parts.next().unwrap().parse().unwrap();
        let t: u64 = parts.next().unwrap().parse().unwrap();
        acks.push((seq, t));
    }
    // SIGKILL: no chance to flush.
    child.kill().unwrap();
    let killed = now_us();
    let _ = child.wait();
    // Drain what was printed before the kill (those were acknowledged too).
    for line in lines.map_while(Result::ok) {
        let mut parts = line.split_whitespace();
        if parts.next() == Some("ack") {
            acks.push((
                parts.next().unwrap().parse().unwrap(),
                parts.next().unwrap().parse().unwrap(),
            ));
        }
    }
    assert!(acks.len() >= n_acks, "the child stopped early");
    (acks, killed)
}

fn reopen(dir: &std::path::Path) -> (u64, u64) {
    let (store, report) = Store::open(dir, StoreOptions::default()).unwrap();
    assert_eq!(
        report.quarantined_values, 0,
        "a SIGKILL must leave a clean log: {report:?}"
    );
    // A clean prefix: every event decodes, seqs are contiguous from 1.
    for (expect, item) in (1..).zip(store.scan(0)) {
        let (seq, _) = item.unwrap();
        assert_eq!(seq, expect);
    }
    store.close().unwrap();
    (report.n_events, report.last_seq)
}

#[test]
fn sigkill_loses_nothing_acknowledged_in_sync_mode() {
    let dir = tempfile::tempdir().unwrap();
    let (acks, _) = stress_then_kill(dir.path(), "sync", 3000);
    let max_acked = acks.iter().map(|a| a.0).max().unwrap();
    let (n, last) = reopen(dir.path());
    assert_eq!(n, last);
    assert!(
        last >= max_acked,
        "acknowledged up to {max_acked}, only {last} survived"
    );
}

#[test]
fn sigkill_loses_at_most_the_window_in_batched_mode() {
    let dir = tempfile::tempdir().unwrap();
    let (acks, killed) = stress_then_kill(dir.path(), "batched", 20_000);
    let (_, last) = reopen(dir.path());
    // Anything acknowledged more than a window (50 ms) plus scheduling slack before the kill was
    // flushed and must have survived.
    let slack_us = 250_000;
    let must_have = acks
        .iter()
        .filter(|(_, t)| *t + 50_000 + slack_us < killed)
        .map(|a| a.0)
        .max()
        .unwrap_or(0);
    assert!(
        last >= must_have,
        "events acknowledged up to seq {must_have} well before the kill were lost (kept {last})"
    );
}

#[test]
fn export_stats_and_tail() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_acks, _) = stress_then_kill(&data, "sync", 200);
    let out = dir.path().join("trace.jsonl");
    let st = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["log", "export", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .args(["--format", "jsonl"])
        .status()
        .unwrap();
    assert!(st.success());
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.lines().next().unwrap().contains("switchyard_trace"));
    assert!(text.lines().count() > 200);
    let stats = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["log", "stats"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(stats.status.success());
    let s = String::from_utf8_lossy(&stats.stdout);
    assert!(s.contains("key_deleted"), "{s}");
    let tail = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["log", "tail", "-n", "3"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(tail.status.success());
    assert_eq!(String::from_utf8_lossy(&tail.stdout).lines().count(), 3);
    // Retention refuses before a snapshot covers the events.
    let prune = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["log", "prune", "--data"])
        .arg(&data)
        .args(["--older-than", "0d"])
        .output()
        .unwrap();
    assert!(!prune.status.success());
    assert!(String::from_utf8_lossy(&prune.stderr).contains("snapshot"));
    let _ = Duration::ZERO;
}
