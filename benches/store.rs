//! Event-log throughput and rebuild time (a bench binary: `cargo bench --bench store`).
//!
//! - `batched`: 4 writer threads append 4-event batches (one request's events) without waiting;
//!   events per second until everything is written and flushed.
//! - `sync`: 64 concurrent writers each wait for their append to be flushed (group commit
//!   batches them); events per second.
//! - rebuild: time to open a log of 1 M router events, verify it, and fold it into the router's
//!   state (what the proxy does at start).
//!
//! Targets on the 2-core reference machine: >= 100k events/s batched, >= 20k events/s sync with
//! concurrent writers, rebuild of 1 M events <= 2 s.

use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard_engine::config::{load_config, LoadOptions};
use switchyard_engine::core::router::{AttemptReport, Poll, RequestInput, Router};
use switchyard_engine::core::units::{DurationUs, InstantUs};
use switchyard_engine::core::Event;
use switchyard_engine::cost::PriceTable;
use switchyard_engine::store::{Durability, Store, StoreOptions};

fn router() -> Router {
    let prices = PriceTable::builtin();
    let env = |_: &str| Some("k".to_string());
    let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/traces/current.yaml"))
        .unwrap();
    Router::new(
        Arc::new(
            load_config(
                &yaml,
                &LoadOptions {
                    file_name: "c",
                    strict: false,
                    env: &env,
                    prices: &prices,
                },
            )
            .unwrap()
            .config
            .routing,
        ),
        1,
    )
}

/// Realistic events: requests through the sample config, one attempt each.
fn events(n_requests: usize) -> Vec<Event> {
    let mut r = router();
    let mut out = Vec::with_capacity(n_requests * 4);
    let mut now = InstantUs(1_700_000_000_000_000);
    let input = RequestInput {
        model: "production-llm".into(),
        tokens_in: 900,
        max_tokens: Some(512),
        prompt_sha: "ab".repeat(16),
        ..RequestInput::default()
    };
    for _ in 0..n_requests {
        now = now.plus(DurationUs(2_000));
        let ev = r.receive(now, input.clone(), None);
        let id = ev.request_id().unwrap();
        out.push(ev);
        if let Poll::Attempt { event, .. } = r.poll(now, id) {
            out.push(event);
        }
        if let Some(ev) = r.attempt_finished(
            now.plus(DurationUs(900_000)),
            id,
            AttemptReport::success(900_000, 900, 250),
        ) {
            out.push(ev);
        }
        if let Poll::Done { event, .. } = r.poll(now.plus(DurationUs(900_000)), id) {
            out.push(event);
        }
    }
    out
}

fn batched(evs: &[Event]) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(
        dir.path(),
        StoreOptions {
            durability: Durability::Batched {
                interval: Duration::from_millis(100),
            },
            queue_capacity: usize::MAX,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let store = Arc::new(store);
    let t = Instant::now();
    std::thread::scope(|s| {
        for part in evs.chunks(evs.len().div_ceil(4)) {
            let store = store.clone();
            s.spawn(move || {
                for batch in part.chunks(4) {
                    store.append(batch, None).unwrap();
                }
            });
        }
    });
    store.flush().unwrap();
    evs.len() as f64 / t.elapsed().as_secs_f64()
}

fn sync(evs: &[Event], writers: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(
        dir.path(),
        StoreOptions {
            durability: Durability::Sync,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let store = Arc::new(store);
    let t = Instant::now();
    std::thread::scope(|s| {
        for part in evs.chunks(evs.len().div_ceil(writers)) {
            let store = store.clone();
            s.spawn(move || {
                for e in part {
                    store.append_wait(std::slice::from_ref(e)).unwrap();
                }
            });
        }
    });
    evs.len() as f64 / t.elapsed().as_secs_f64()
}

fn rebuild(evs: &[Event]) -> (Duration, usize) {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = Store::open(
            dir.path(),
            StoreOptions {
                queue_capacity: usize::MAX,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        for batch in evs.chunks(4096) {
            store.append(batch, None).unwrap();
        }
        store.close().unwrap();
    }
    let t = Instant::now();
    let (store, report) = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let mut r = router();
    let mut n = 0;
    for item in store.scan(0) {
        r.apply(&item.unwrap().1);
        n += 1;
    }
    assert_eq!(n as u64, report.n_events);
    (t.elapsed(), n)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let evs = events(250_000);
    println!(
        "events: {} (4 per request, {} bytes encoded on average)",
        evs.len(),
        evs.iter()
            .map(|e| switchyard_engine::events::encode(e).len())
            .sum::<usize>()
            / evs.len()
    );
    println!(
        "batched (100 ms), 4 writers:  {:>10.0} events/s",
        batched(&evs)
    );
    println!(
        "sync, 64 concurrent writers: {:>10.0} events/s",
        sync(&evs[..200_000], 64)
    );
    println!(
        "sync, 1 writer:              {:>10.0} events/s",
        sync(&evs[..5_000], 1)
    );
    let (t, n) = rebuild(&evs);
    println!(
        "rebuild: open + verify + fold {n} events in {:.2} s",
        t.as_secs_f64()
    );
}
