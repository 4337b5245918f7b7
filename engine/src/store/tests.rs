use super::*;
use crate::events::tests::samples;
use proptest::prelude::*;

fn opts(durability: Durability) -> StoreOptions {
    StoreOptions {
        durability,
        max_batch_events: 7,
        queue_capacity: 1000,
        cache_bytes: 1 << 20,
    }
}

fn event(i: u64) -> Event {
    let s = samples();
    let mut e = s[(i as usize) % s.len()].clone();
    if let Event::KeyDeleted(k) = &mut e {
        k.key_id = format!("k{i}");
    }
    e
}

fn read_all(store: &Store) -> Vec<(u64, Event)> {
    store.scan(0).map(Result::unwrap).collect()
}

#[test]
fn append_scan_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (s, r) = Store::open(dir.path(), opts(Durability::Sync)).unwrap();
    assert_eq!(r.n_events, 0);
    let evs: Vec<Event> = (0..20).map(event).collect();
    assert_eq!(s.append_wait(&evs[..5]).unwrap(), 5);
    assert_eq!(s.append_wait(&evs[5..]).unwrap(), 20);
    let got = read_all(&s);
    assert_eq!(got.len(), 20);
    assert_eq!(got[0].0, 1);
    assert_eq!(got.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(), evs);
    assert_eq!(s.scan(13).next().unwrap().unwrap().0, 13);
    s.close().unwrap();
    drop(s);
    let (s, r) = Store::open(dir.path(), opts(Durability::Sync)).unwrap();
    assert_eq!((r.n_events, r.first_seq, r.last_seq), (20, 1, 20));
    assert_eq!(s.append_wait(&evs[..1]).unwrap(), 21);
}

#[test]
fn corrupt_tail_is_quarantined_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = Store::open(dir.path(), opts(Durability::Sync)).unwrap();
    let evs: Vec<Event> = (0..10).map(event).collect();
    s.append_wait(&evs).unwrap();
    let mut torn = events::encode(&event(3));
    torn.truncate(torn.len() - 3);
    s.inject_raw(11, &torn);
    let mut after = events::encode(&event(4));
    after[20] ^= 1;
    s.inject_raw(12, &events::encode(&event(5)));
    drop(s);
    let (s, r) = Store::open(dir.path(), opts(Durability::Sync)).unwrap();
    assert_eq!(r.n_events, 10);
    assert_eq!(r.quarantined_values, 2);
    assert!(
        r.quarantine_reason.as_deref().unwrap().contains("seq 11"),
        "{r:?}"
    );
    assert_eq!(read_all(&s).len(), 10);
    // New appends continue after the valid prefix.
    assert_eq!(s.append_wait(&evs[..1]).unwrap(), 11);
    drop(s);
    let (_, r) = Store::open(dir.path(), opts(Durability::Sync)).unwrap();
    assert_eq!(r.quarantined_values, 0);
    assert_eq!(r.quarantine_total, 2);
    assert_eq!(r.n_events, 11);
}

#[test]
fn snapshots_are_versioned() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = Store::open(dir.path(), opts(Durability::Sync)).unwrap();
    s.append_wait(&[event(1), event(2)]).unwrap();
    s.save_snapshot(2, 3, b"state".to_vec()).unwrap();
    s.flush().unwrap();
    assert_eq!(s.load_snapshot(3).unwrap(), Some((2, b"state".to_vec())));
    assert_eq!(s.load_snapshot(4).unwrap(), None);
}

#[test]
fn prune_removes_only_exported_old_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = Store::open(dir.path(), opts(Durability::Sync)).unwrap();
    for i in 0..5 {
        s.append_wait(&[event(i)]).unwrap();
    }
    let removed = s.prune(3, u64::MAX).unwrap();
    assert_eq!(removed, 3);
    assert_eq!(read_all(&s).first().unwrap().0, 4);
    drop(s);
    let (_, r) = Store::open(dir.path(), opts(Durability::Sync)).unwrap();
    assert_eq!((r.first_seq, r.last_seq, r.n_events), (4, 5, 2));
}

#[derive(Debug, Clone)]
enum Op {
    Append(u8),
    AppendWait(u8),
    Reopen,
    Crash,
    Scan(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..12).prop_map(Op::Append),
        3 => (1u8..12).prop_map(Op::AppendWait),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
        1 => any::<u8>().prop_map(Op::Scan),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// The store against an in-memory model: after any sequence of appends, reopens and crashes,
    /// the log is a prefix of what was appended that holds everything acknowledged, and seqs are
    /// contiguous from 1.
    #[test]
    fn store_matches_model(ops in prop::collection::vec(op(), 1..30), sync in any::<bool>()) {
        let durability = if sync { Durability::Sync } else { Durability::Batched { interval: Duration::from_millis(5) } };
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = Store::open(dir.path(), opts(durability)).unwrap();
        let mut model: Vec<Event> = Vec::new();
        let mut acked = 0usize;
        let mut counter = 0u64;
        for op in ops {
            match op {
                Op::Append(n) | Op::AppendWait(n) => {
                    let evs: Vec<Event> = (0..n).map(|_| { counter += 1; event(counter) }).collect();
                    model.extend(evs.iter().cloned());
                    if matches!(op, Op::AppendWait(_)) {
                        let last = store.append_wait(&evs).unwrap();
                        prop_assert_eq!(last as usize, model.len());
                        acked = model.len();
                    } else {
                        store.append(&evs, None).unwrap();
                    }
                }
                Op::Reopen => {
                    store.close().unwrap();
                    drop(store);
                    store = Store::open(dir.path(), opts(durability)).unwrap().0;
                    acked = model.len();
                    prop_assert_eq!(store.last_seq() as usize, model.len());
                }
                Op::Crash => {
                    store.crash();
                    drop(store);
                    let (s, r) = Store::open(dir.path(), opts(durability)).unwrap();
                    store = s;
                    let kept = r.n_events as usize;
                    prop_assert!(kept >= acked && kept <= model.len(), "kept {} acked {} appended {}", kept, acked, model.len());
                    prop_assert_eq!(r.quarantined_values, 0);
                    model.truncate(kept);
                    acked = kept;
                }
                Op::Scan(from) => {
                    store.flush().unwrap();
                    acked = model.len();
                    let from = from as u64 % (model.len() as u64 + 2);
                    let got: Vec<(u64, Event)> = store.scan(from).map(Result::unwrap).collect();
                    let want: Vec<(u64, Event)> = model.iter().cloned().enumerate().map(|(i, e)| (i as u64 + 1, e)).filter(|(s, _)| *s >= from).collect();
                    prop_assert_eq!(got, want);
                }
            }
        }
        store.flush().unwrap();
        let got: Vec<Event> = store.scan(0).map(|r| r.unwrap().1).collect();
        prop_assert_eq!(got, model);
    }
}

mod replay {
    use super::*;
    use crate::core::router::Router;
    use crate::core::state::{Snapshot, STATE_VERSION};
    use crate::core::tests::{fail, ok, rate_limited, req, Driver};
    use crate::core::OutcomeClass;

    const CFG: &str = r#"
model_list:
  - {model_name: g, litellm_params: {model: hosted_vllm/a, api_base: "http://a/v1", rpm: 20, input_cost_per_token: 0.000001}, model_info: {id: a}}
  - {model_name: g, litellm_params: {model: hosted_vllm/b, api_base: "http://b/v1", input_cost_per_token: 0.000002}, model_info: {id: b}}
  - {model_name: f, litellm_params: {model: hosted_vllm/c, api_base: "http://c/v1"}, model_info: {id: c}}
router_settings:
  num_retries: 1
  fallbacks: [{g: [f]}]
  cooldown_time: 30
switchyard_settings:
  keys: [{key: sk-k, key_alias: k, max_budget: 100, rpm_limit: 50}]
"#;

    fn traffic(seed: u64, n: usize) -> Vec<Event> {
        let mut d = Driver::new(CFG);
        let mut rng = crate::core::rng::Rng::new(seed);
        let answers = [
            ok(10),
            ok(200),
            fail(OutcomeClass::ServerError, 500, 5),
            rate_limited(2000),
            fail(OutcomeClass::AuthError, 401, 3),
        ];
        for dep in ["a", "b", "c"] {
            d.scripts.insert(
                dep.into(),
                (0..400)
                    .map(|_| answers[rng.below(answers.len() as u64) as usize].clone())
                    .collect(),
            );
        }
        let key = d
            .router
            .state()
            .keys
            .keys()
            .next()
            .cloned()
            .map(|k| crate::core::event::Name::from(k.as_str()));
        for i in 0..n {
            let mut r = req("g");
            if i % 2 == 0 {
                r.key_id = key.clone();
            }
            d.run(r);
            d.advance_ms(rng.below(3000));
        }
        d.events
    }

    fn fold(events: &[Event]) -> String {
        let mut r = Router::new(Driver::new(CFG).router.config().clone(), 7);
        for e in events {
            r.apply(e);
        }
        r.state().fingerprint()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, .. ProptestConfig::default() })]

        /// Events go through the store in random batches; the writer crashes in the middle; after
        /// reopening, the state folded from what survived (from a snapshot or from scratch) equals
        /// the state the live router had after exactly those events.
        #[test]
        fn state_after_replay_equals_state_built_live(seed in 0u64..1000, n in 5usize..60, batch in 1usize..9, crash_at in 0usize..400, snap_at in 0usize..400) {
            let events = traffic(seed, n);
            let dir = tempfile::tempdir().unwrap();
            let (store, _) = Store::open(dir.path(), opts(Durability::Sync)).unwrap();
            let crash_at = crash_at % (events.len() + 1);
            let snap_at = snap_at % (events.len() + 1);
            let mut live = Router::new(Driver::new(CFG).router.config().clone(), 7);
            let mut written = 0;
            let mut snapshot_taken = false;
            for chunk in events.chunks(batch) {
                for e in chunk {
                    live.apply(e);
                }
                if written + chunk.len() > crash_at {
                    // Queued, but the writer dies before writing it.
                    store.crash();
                    store.append(chunk, None).ok();
                    break;
                }
                store.append_wait(chunk).unwrap();
                written += chunk.len();
                if !snapshot_taken && written >= snap_at {
                    let snap = live.snapshot("cfg");
                    store.save_snapshot(written as u64, STATE_VERSION, postcard::to_stdvec(&snap).unwrap()).unwrap();
                    store.flush().unwrap();
                    snapshot_taken = true;
                }
            }
            drop(store);
            let (store, report) = Store::open(dir.path(), opts(Durability::Sync)).unwrap();
            prop_assert_eq!(report.quarantined_values, 0);
            let kept = report.n_events as usize;
            prop_assert!(kept <= events.len());
            prop_assert_eq!(&store.scan(0).map(|r| r.unwrap().1).collect::<Vec<_>>()[..], &events[..kept]);
            let expected = fold(&events[..kept]);
            // From scratch.
            let from_log: Vec<Event> = store.scan(0).map(|r| r.unwrap().1).collect();
            prop_assert_eq!(fold(&from_log), expected.clone());
            // From the snapshot, then the events after it.
            if let Some((seq, bytes)) = store.load_snapshot(STATE_VERSION).unwrap() {
                let snap: Snapshot = postcard::from_bytes(&bytes).unwrap();
                let mut r = Router::new(Driver::new(CFG).router.config().clone(), 7);
                prop_assert!(r.restore(snap, "cfg"));
                for item in store.scan(seq + 1) {
                    r.apply(&item.unwrap().1);
                }
                prop_assert_eq!(r.state().fingerprint(), expected);
            }
        }
    }

    #[test]
    fn a_snapshot_of_another_config_or_version_is_ignored() {
        let events = traffic(1, 10);
        let mut live = Router::new(Driver::new(CFG).router.config().clone(), 7);
        for e in &events {
            live.apply(e);
        }
        let snap = live.snapshot("cfg-1");
        let mut other = Router::new(Driver::new(CFG).router.config().clone(), 7);
        assert!(!other.restore(snap, "cfg-2"));
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path(), opts(Durability::Sync)).unwrap();
        store.append_wait(&events).unwrap();
        store
            .save_snapshot(events.len() as u64, STATE_VERSION + 1, vec![1, 2, 3])
            .unwrap();
        store.flush().unwrap();
        assert!(store.load_snapshot(STATE_VERSION).unwrap().is_none());
    }
}
