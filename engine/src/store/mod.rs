//! The event log on sled 0.34.7, behind a small type of our own.
//!
//! - Keys are big-endian `u64` sequence numbers from our own counter (sled's `generate_id` jumps
//!   on reopen). One sled value holds a batch of framed events; its key is the batch's first
//!   sequence number, so seqs in the tree are contiguous.
//! - One writer thread does group commit: it takes everything queued, writes it as one value, and
//!   in `sync` mode flushes before acknowledging; in `batched` mode it acknowledges at once and
//!   flushes every `interval`. sled's flush (`sync_file_range`) survives a killed process, not a
//!   power loss.
//! - At open the whole log is verified: the valid prefix is kept; a corrupt or truncated value and
//!   everything after it is moved to the `quarantine` tree and reported, never skipped silently.
//! - Snapshots of derived state are opaque bytes tagged by the caller with a state version.
//!
//! No async runtime here: callers pass a completion callback, so the proxy can await it and a
//! command-line tool can block on it.

use crate::core::event::Event;
use crate::events::{self, DecodeError, HEADER_LEN, TRAILER_LEN};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("event log at {path}: {source}")]
    Open { path: String, source: sled::Error },
    #[error("event log: {0}")]
    Sled(#[from] sled::Error),
    #[error("event log is closed")]
    Closed,
    #[error("event log: {0}")]
    Decode(#[from] DecodeError),
    #[error("event log: stored data is inconsistent: {0}")]
    Corrupt(String),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Durability {
    /// A batch is flushed before its events are acknowledged.
    Sync,
    /// Events are acknowledged when written and flushed every `interval`; a crash loses at most
    /// that window.
    Batched { interval: Duration },
}

impl Durability {
    pub fn parse(s: &str, interval_ms: u64) -> Option<Durability> {
        match s {
            "sync" => Some(Durability::Sync),
            "batched" => Some(Durability::Batched {
                interval: Duration::from_millis(interval_ms),
            }),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub durability: Durability,
    /// Events a batch holds at most.
    pub max_batch_events: usize,
    /// Soft bound on queued events: past it, `over_capacity` is true and producers should wait.
    pub queue_capacity: usize,
    /// sled's page cache, bytes.
    pub cache_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            durability: Durability::Batched {
                interval: Duration::from_millis(100),
            },
            max_batch_events: 4096,
            queue_capacity: 65_536,
            cache_bytes: 16 * 1024 * 1024,
        }
    }
}

/// What `open` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    pub n_events: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub n_batches: u64,
    /// Values moved to the quarantine tree this time (a corrupt or truncated tail).
    pub quarantined_values: u64,
    pub quarantine_reason: Option<String>,
    /// Values in quarantine from this and earlier opens.
    pub quarantine_total: u64,
}

/// Called once per append when its events are durable (sync) or written (batched), with the
/// last sequence number of the append.
pub type Ack = Box<dyn FnOnce(Result<u64, String>) + Send>;

enum Cmd {
    Append {
        first_seq: u64,
        frames: Vec<u8>,
        n: usize,
        ack: Option<Ack>,
    },
    Snapshot {
        seq: u64,
        state_version: u32,
        bytes: Vec<u8>,
    },
    Flush(mpsc::Sender<Result<(), String>>),
    Shutdown,
    /// Test hook: stop now, dropping everything still queued (as a crash would).
    #[cfg(test)]
    Crash,
}

struct Shared {
    db: sled::Db,
    events: sled::Tree,
    meta: sled::Tree,
    quarantine: sled::Tree,
    queued: AtomicUsize,
    written_seq: AtomicU64,
    flushed_seq: AtomicU64,
    failed: AtomicBool,
    batches: AtomicU64,
    flushes: AtomicU64,
    drained: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
}

struct Producer {
    next_seq: u64,
    tx: Option<mpsc::Sender<Cmd>>,
}

pub struct Store {
    shared: Arc<Shared>,
    producer: Mutex<Producer>,
    writer: Mutex<Option<JoinHandle<()>>>,
    opts: StoreOptions,
    path: PathBuf,
}

const META_SNAPSHOT: &[u8] = b"snapshot";
/// In batched mode the writer waits this long after the first queued event before writing.
const BATCH_LINGER: Duration = Duration::from_millis(2);
const META_EXPORTED: &[u8] = b"exported_through";

fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

fn seq_of(k: &[u8]) -> Result<u64, StoreError> {
    let arr: [u8; 8] = k
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("key of {} bytes", k.len())))?;
    Ok(u64::from_be_bytes(arr))
}

/// Verifies every frame of a stored batch (magic, length, CRC) without decoding payloads;
/// returns the number of frames.
pub fn check_batch(mut buf: &[u8]) -> Result<u64, DecodeError> {
    if buf.is_empty() {
        return Err(DecodeError::Truncated {
            need: HEADER_LEN,
            have: 0,
        });
    }
    let mut n = 0;
    while !buf.is_empty() {
        let f = events::check_frame(buf)?;
        n += 1;
        buf = &buf[f.len..];
    }
    Ok(n)
}

/// Splits a batch into its frames (each still framed).
pub fn frames(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.len() < HEADER_LEN {
            return None;
        }
        let len = u32::from_le_bytes(rest[8..12].try_into().ok()?) as usize;
        let total = (HEADER_LEN + len + TRAILER_LEN).min(rest.len());
        let (f, r) = rest.split_at(total);
        rest = r;
        Some(f)
    })
}

impl Store {
    /// Opens (or creates) the log in `dir`, verifying it and quarantining a bad tail.
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<(Store, OpenReport), StoreError> {
        // sled releases its directory lock a moment after the last handle is dropped (its IO
        // threads let go asynchronously): an immediate reopen in the same process may see it
        // held, so retry briefly before reporting the directory as in use.
        let mut tries = 0;
        let db = loop {
            let r = sled::Config::new()
                .path(dir)
                .cache_capacity(opts.cache_bytes)
                .mode(sled::Mode::HighThroughput)
                .flush_every_ms(None)
                .open();
            match r {
                Ok(db) => break db,
                Err(e) if tries < 100 && e.to_string().contains("could not acquire lock") => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(source) => {
                    return Err(StoreError::Open {
                        path: dir.display().to_string(),
                        source,
                    })
                }
            }
        };

        let events = db.open_tree("events")?;
        let meta = db.open_tree("meta")?;
        let quarantine = db.open_tree("quarantine")?;
        let report = verify(&events, &quarantine)?;
        if report.quarantined_values > 0 {
            db.flush()?;
        }
        let next_seq = report.last_seq + 1;
        let shared = Arc::new(Shared {
            db,
            events,
            meta,
            quarantine,
            queued: AtomicUsize::new(0),
            written_seq: AtomicU64::new(report.last_seq),
            flushed_seq: AtomicU64::new(report.last_seq),
            failed: AtomicBool::new(false),
            batches: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            drained: Mutex::new(None),
        });
        let (tx, rx) = mpsc::channel();
        let w_shared = shared.clone();
        let w_opts = opts.clone();
        let writer = std::thread::Builder::new()
            .name("switchyard-log-writer".into())
            .spawn(move || writer_loop(w_shared, w_opts, rx))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the writer thread: {e}")))?;
        let store = Store {
            shared,
            producer: Mutex::new(Producer {
                next_seq,
                tx: Some(tx),
            }),
            writer: Mutex::new(Some(writer)),
            opts,
            path: dir.to_path_buf(),
        };
        Ok((store, report))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn durability(&self) -> Durability {
        self.opts.durability
    }

    /// Queues events; returns the sequence number of the last one. Never blocks: callers bound
    /// the queue by checking [`Store::over_capacity`] before admitting more work. `ack` runs on the
    /// writer thread once the events are durable (sync) or written (batched).
    pub fn append(&self, evs: &[Event], ack: Option<Ack>) -> Result<u64, StoreError> {
        let mut frames = Vec::with_capacity(evs.len() * 160);
        for e in evs {
            events::encode_into(e, &mut frames);
        }
        self.append_frames(frames, evs.len(), ack)
    }

    /// Queues already framed events (`n` frames in `frames`).
    pub fn append_frames(
        &self,
        frames: Vec<u8>,
        n: usize,
        ack: Option<Ack>,
    ) -> Result<u64, StoreError> {
        if n == 0 {
            let last = self.last_seq();
            if let Some(a) = ack {
                a(Ok(last));
            }
            return Ok(last);
        }
        let mut p = self.producer.lock().unwrap_or_else(|e| e.into_inner());
        let tx = p.tx.as_ref().ok_or(StoreError::Closed)?;
        let first_seq = p.next_seq;
        self.shared.queued.fetch_add(n, Ordering::AcqRel);
        tx.send(Cmd::Append {
            first_seq,
            frames,
            n,
            ack,
        })
        .map_err(|_| StoreError::Closed)?;
        p.next_seq += n as u64;
        Ok(first_seq + n as u64 - 1)
    }

    /// Appends and waits for the acknowledgement.
    pub fn append_wait(&self, evs: &[Event]) -> Result<u64, StoreError> {
        let (tx, rx) = mpsc::channel();
        self.append(evs, Some(Box::new(move |r| drop(tx.send(r)))))?;
        rx.recv()
            .map_err(|_| StoreError::Closed)?
            .map_err(StoreError::Corrupt)
    }

    /// Sequence number of the last event handed to `append`.
    pub fn last_seq(&self) -> u64 {
        self.producer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_seq
            - 1
    }

    pub fn written_seq(&self) -> u64 {
        self.shared.written_seq.load(Ordering::Acquire)
    }

    pub fn flushed_seq(&self) -> u64 {
        self.shared.flushed_seq.load(Ordering::Acquire)
    }

    pub fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }

    pub fn over_capacity(&self) -> bool {
        self.queued() >= self.opts.queue_capacity
    }

    pub fn failed(&self) -> bool {
        self.shared.failed.load(Ordering::Acquire)
    }

    /// (batches written, flushes) since open.
    pub fn counters(&self) -> (u64, u64) {
        (
            self.shared.batches.load(Ordering::Relaxed),
            self.shared.flushes.load(Ordering::Relaxed),
        )
    }

    /// Called on the writer thread after every batch (so producers waiting for capacity wake).
    pub fn set_drained_hook(&self, f: Arc<dyn Fn() + Send + Sync>) {
        *self
            .shared
            .drained
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(f);
    }

    /// Waits until everything queued so far is written and flushed.
    pub fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = mpsc::channel();
        {
            let p = self.producer.lock().unwrap_or_else(|e| e.into_inner());
            p.tx.as_ref()
                .ok_or(StoreError::Closed)?
                .send(Cmd::Flush(tx))
                .map_err(|_| StoreError::Closed)?;
        }
        rx.recv()
            .map_err(|_| StoreError::Closed)?
            .map_err(StoreError::Corrupt)
    }

    /// Queues a snapshot of derived state as of `seq` (written after the events up to `seq`).
    pub fn save_snapshot(
        &self,
        seq: u64,
        state_version: u32,
        bytes: Vec<u8>,
    ) -> Result<(), StoreError> {
        let p = self.producer.lock().unwrap_or_else(|e| e.into_inner());
        p.tx.as_ref()
            .ok_or(StoreError::Closed)?
            .send(Cmd::Snapshot {
                seq,
                state_version,
                bytes,
            })
            .map_err(|_| StoreError::Closed)
    }

    /// The latest snapshot, if it was written with `state_version`.
    pub fn load_snapshot(&self, state_version: u32) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let Some(v) = self.shared.meta.get(META_SNAPSHOT)? else {
            return Ok(None);
        };
        if v.len() < 12 {
            return Ok(None);
        }
        let version = u32::from_le_bytes(v[0..4].try_into().expect("length checked"));
        let seq = u64::from_le_bytes(v[4..12].try_into().expect("length checked"));
        if version != state_version || seq > self.written_seq() {
            return Ok(None);
        }
        Ok(Some((seq, v[12..].to_vec())))
    }

    pub fn snapshot_seq(&self) -> Result<Option<u64>, StoreError> {
        let Some(v) = self.shared.meta.get(META_SNAPSHOT)? else {
            return Ok(None);
        };
        Ok((v.len() >= 12)
            .then(|| u64::from_le_bytes(v[4..12].try_into().expect("length checked"))))
    }

    /// Iterates stored events with `seq >= from` in order (only what the writer has written).
    pub fn scan(&self, from: u64) -> impl Iterator<Item = Result<(u64, Event), StoreError>> + '_ {
        self.scan_frames(from).map(|r| {
            let (seq, frame) = r?;
            let (ev, _) = events::decode_frame(&frame)?;
            Ok((seq, ev))
        })
    }

    /// Iterates stored frames with `seq >= from`, undecoded.
    pub fn scan_frames(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<(u64, Vec<u8>), StoreError>> + '_ {
        // Start at the batch containing `from`.
        let start = match self.shared.events.range(..=key(from)).next_back() {
            Some(Ok((k, _))) => seq_of(&k).unwrap_or(0),
            _ => 0,
        };
        let iter = self.shared.events.range(key(start)..);
        iter.flat_map(move |item| -> Vec<Result<(u64, Vec<u8>), StoreError>> {
            match item {
                Err(e) => vec![Err(e.into())],
                Ok((k, v)) => match seq_of(&k) {
                    Err(e) => vec![Err(e)],
                    Ok(first) => frames(&v)
                        .enumerate()
                        .map(|(i, f)| (first + i as u64, f))
                        .filter(|(s, _)| *s >= from)
                        .map(|(s, f)| Ok((s, f.to_vec())))
                        .collect(),
                },
            }
        })
    }

    /// Records that events up to `seq` were exported (retention may then prune them).
    pub fn mark_exported(&self, seq: u64) -> Result<(), StoreError> {
        let cur = self.exported_through()?;
        if seq > cur {
            self.shared.meta.insert(META_EXPORTED, &seq.to_le_bytes())?;
            self.shared.meta.flush()?;
        }
        Ok(())
    }

    pub fn exported_through(&self) -> Result<u64, StoreError> {
        Ok(match self.shared.meta.get(META_EXPORTED)? {
            Some(v) if v.len() == 8 => {
                u64::from_le_bytes(v[..].try_into().expect("length checked"))
            }
            _ => 0,
        })
    }

    /// Deletes whole batches whose events are all at or before `max_seq` and older than
    /// `before_us` (event time). Returns the number of events removed.
    pub fn prune(&self, max_seq: u64, before_us: u64) -> Result<u64, StoreError> {
        let mut removed = 0;
        let mut batch = sled::Batch::default();
        for item in self.shared.events.iter() {
            let (k, v) = item?;
            let first = seq_of(&k)?;
            let n = check_batch(&v)?;
            let last = first + n - 1;
            if last > max_seq {
                break;
            }
            let newest = frames(&v)
                .filter_map(|f| events::decode_frame(f).ok())
                .map(|(e, _)| e.at().0)
                .max()
                .unwrap_or(u64::MAX);
            if newest >= before_us {
                break;
            }
            batch.remove(k);
            removed += n;
        }
        self.shared.events.apply_batch(batch)?;
        self.shared.db.flush()?;
        Ok(removed)
    }

    /// Values held in quarantine (corrupt tails found at earlier opens).
    pub fn quarantined(&self) -> u64 {
        self.shared.quarantine.len() as u64
    }

    pub fn size_on_disk(&self) -> u64 {
        self.shared.db.size_on_disk().unwrap_or(0)
    }

    /// Drains the queue, flushes, and stops the writer.
    pub fn close(&self) -> Result<(), StoreError> {
        let tx = self
            .producer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tx
            .take();
        if let Some(tx) = tx {
            let _ = tx.send(Cmd::Shutdown);
        }
        if let Some(h) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = h.join();
        }
        self.shared.db.flush()?;
        Ok(())
    }

    /// Test hook: the writer stops at once and drops whatever is still queued.
    #[cfg(test)]
    pub(crate) fn crash(&self) {
        let tx = self.producer.lock().unwrap().tx.take();
        if let Some(tx) = tx {
            let _ = tx.send(Cmd::Crash);
        }
        if let Some(h) = self.writer.lock().unwrap().take() {
            let _ = h.join();
        }
    }

    /// Test hook: writes raw bytes as a batch (to simulate a torn or corrupt write).
    #[cfg(test)]
    pub(crate) fn inject_raw(&self, seq: u64, bytes: &[u8]) {
        self.shared.events.insert(key(seq), bytes).unwrap();
        self.shared.db.flush().unwrap();
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

fn verify(events: &sled::Tree, quarantine: &sled::Tree) -> Result<OpenReport, StoreError> {
    let mut report = OpenReport {
        quarantine_total: quarantine.len() as u64,
        ..OpenReport::default()
    };
    let mut expected: Option<u64> = None;
    let mut bad_from: Option<(Vec<u8>, String)> = None;
    for item in events.iter() {
        let (k, v) = item?;
        let first = seq_of(&k)?;
        if let Some(e) = expected {
            if first != e {
                bad_from = Some((
                    k.to_vec(),
                    format!("gap: expected seq {e}, found a batch starting at {first}"),
                ));
                break;
            }
        }
        match check_batch(&v) {
            Ok(n) => {
                if report.n_batches == 0 {
                    report.first_seq = first;
                }
                report.n_batches += 1;
                report.n_events += n;
                report.last_seq = first + n - 1;
                expected = Some(first + n);
            }
            Err(e) => {
                bad_from = Some((k.to_vec(), format!("batch at seq {first}: {e}")));
                break;
            }
        }
    }
    if let Some((from, reason)) = bad_from {
        let mut moved = 0;
        let tail: Vec<(sled::IVec, sled::IVec)> = events.range(from..).collect::<Result<_, _>>()?;
        for (k, v) in tail {
            quarantine.insert(&k, v)?;
            events.remove(&k)?;
            moved += 1;
        }
        report.quarantined_values = moved;
        report.quarantine_reason = Some(reason);
        report.quarantine_total = quarantine.len() as u64;
    }
    Ok(report)
}

fn writer_loop(shared: Arc<Shared>, opts: StoreOptions, rx: mpsc::Receiver<Cmd>) {
    let interval = match opts.durability {
        Durability::Sync => None,
        Durability::Batched { interval } => Some(interval),
    };
    let mut last_flush = Instant::now();
    let mut dirty = false;
    let mut pending: Option<Cmd> = None;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut acks: Vec<(u64, Ack)> = Vec::new();
    let mut snapshot: Option<(u64, u32, Vec<u8>)> = None;
    loop {
        let cmd = match pending.take() {
            Some(c) => c,
            None => {
                let wait = match interval {
                    Some(iv) if dirty => iv.saturating_sub(last_flush.elapsed()),
                    _ => Duration::from_secs(3600),
                };
                match rx.recv_timeout(wait) {
                    Ok(c) => c,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if dirty {
                            flush(&shared, &mut dirty, &mut last_flush);
                        }
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => Cmd::Shutdown,
                }
            }
        };
        match cmd {
            #[cfg(test)]
            Cmd::Crash => return,
            Cmd::Shutdown => {
                flush(&shared, &mut dirty, &mut last_flush);
                return;
            }
            Cmd::Flush(done) => {
                flush(&shared, &mut dirty, &mut last_flush);
                let _ = done.send(if shared.failed.load(Ordering::Acquire) {
                    Err("writes failed".into())
                } else {
                    Ok(())
                });
            }
            Cmd::Snapshot {
                seq,
                state_version,
                bytes,
            } => {
                let mut v = Vec::with_capacity(12 + bytes.len());
                v.extend_from_slice(&state_version.to_le_bytes());
                v.extend_from_slice(&seq.to_le_bytes());
                v.extend_from_slice(&bytes);
                if shared.meta.insert(META_SNAPSHOT, v).is_ok() {
                    dirty = true;
                }
            }
            Cmd::Append {
                first_seq,
                frames,
                n,
                ack,
            } => {
                // Group commit: everything queued right now goes into one value. In batched mode
                // nobody waits on the write, so linger a moment to gather more: far fewer wakeups
                // (and context switches on a busy core) at a cost the durability window allows.
                if let Some(iv) = interval {
                    let queued = shared.queued.load(Ordering::Acquire);
                    if queued < opts.max_batch_events {
                        std::thread::sleep(BATCH_LINGER.min(iv));
                    }
                }
                buf.clear();
                buf.extend_from_slice(&frames);
                let mut count = n;
                let mut last = first_seq + n as u64 - 1;
                if let Some(a) = ack {
                    acks.push((last, a));
                }
                while count < opts.max_batch_events {
                    match rx.try_recv() {
                        Ok(Cmd::Append {
                            first_seq: f,
                            frames,
                            n,
                            ack,
                        }) => {
                            debug_assert_eq!(f, last + 1);
                            buf.extend_from_slice(&frames);
                            count += n;
                            last = f + n as u64 - 1;
                            if let Some(a) = ack {
                                acks.push((last, a));
                            }
                        }
                        Ok(Cmd::Snapshot {
                            seq,
                            state_version,
                            bytes,
                        }) => snapshot = Some((seq, state_version, bytes)),
                        Ok(other) => {
                            pending = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let result = shared.events.insert(key(first_seq), buf.as_slice());
                let result = match result {
                    Ok(_) => {
                        shared.written_seq.store(last, Ordering::Release);
                        shared.batches.fetch_add(1, Ordering::Relaxed);
                        dirty = true;
                        match interval {
                            None => flush(&shared, &mut dirty, &mut last_flush),
                            Some(iv) => {
                                if last_flush.elapsed() >= iv {
                                    flush(&shared, &mut dirty, &mut last_flush);
                                }
                            }
                        }
                        if shared.failed.load(Ordering::Acquire) {
                            Err("flush failed".to_string())
                        } else {
                            Ok(())
                        }
                    }
                    Err(e) => {
                        shared.failed.store(true, Ordering::Release);
                        Err(e.to_string())
                    }
                };
                if let Some((seq, version, bytes)) = snapshot.take() {
                    let mut v = Vec::with_capacity(12 + bytes.len());
                    v.extend_from_slice(&version.to_le_bytes());
                    v.extend_from_slice(&seq.to_le_bytes());
                    v.extend_from_slice(&bytes);
                    let _ = shared.meta.insert(META_SNAPSHOT, v);
                }
                shared.queued.fetch_sub(count, Ordering::AcqRel);
                for (seq, a) in acks.drain(..) {
                    a(result.clone().map(|_| seq));
                }
                let hook = shared
                    .drained
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                if let Some(h) = hook {
                    h();
                }
            }
        }
    }
}

fn flush(shared: &Shared, dirty: &mut bool, last_flush: &mut Instant) {
    if !*dirty {
        return;
    }
    match shared.db.flush() {
        Ok(_) => {
            shared.flushed_seq.store(
                shared.written_seq.load(Ordering::Acquire),
                Ordering::Release,
            );
            shared.flushes.fetch_add(1, Ordering::Relaxed);
        }
        Err(_) => shared.failed.store(true, Ordering::Release),
    }
    *dirty = false;
    *last_flush = Instant::now();
}

#[cfg(test)]
mod tests;
