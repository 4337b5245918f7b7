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
