//! The live driver's heart: the router behind a mutex, and the event log. Every decision the
//! router makes is appended to the log inside the same critical section that applied it, so the
//! log's order is the order the state saw.

use super::metrics::Metrics;
use crate::config::Config;
use crate::core::event::Event;
use crate::core::rng::IdMap;
use crate::core::router::Router;
use crate::core::state::STATE_VERSION;
use crate::core::units::InstantUs;
use crate::store::{Durability, Store};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// Wall-clock microseconds since the Unix epoch that never run backwards: read once at start,
/// then advanced by a monotonic clock.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    base_us: u64,
    start: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        let base_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        Clock {
            base_us,
            start: Instant::now(),
        }
    }

    pub fn now(&self) -> InstantUs {
        InstantUs(self.base_us + self.start.elapsed().as_micros() as u64)
    }

    /// The tokio instant at which this clock reads `t`.
    pub fn instant_of(&self, t: InstantUs) -> tokio::time::Instant {
        let offset = t.0.saturating_sub(self.base_us);
        tokio::time::Instant::from_std(self.start + Duration::from_micros(offset))
    }

    pub fn unix_secs(&self) -> u64 {
        self.now().0 / 1_000_000
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

pub struct Core {
    pub router: Router,
    pub config: Arc<Config>,
    pub metrics: Metrics,
    events_since_snapshot: u64,
    last_snapshot: Instant,
    /// Requests whose events are not being logged (`Overflow::Drop`, admitted while the log was
    /// over capacity); removed when they finish.
    unlogged: IdMap<()>,
    pub dropped: Dropped,
    last_drop_warning: Option<Instant>,
}

/// What the event log does when its writer falls behind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overflow {
    /// New requests wait for the writer (up to 30 s, then 503); nothing is dropped.
    #[default]
    Wait,
    /// New requests go ahead at once and none of their events are logged: whole requests are
    /// dropped from the log, never parts of one, and every drop is counted and reported.
    Drop,
}

impl Overflow {
    pub fn parse(s: &str) -> Option<Overflow> {
        match s {
            "wait" => Some(Overflow::Wait),
            "drop" => Some(Overflow::Drop),
            _ => None,
        }
    }
}

/// Counts of what `Overflow::Drop` left out of the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    pub requests: u64,
    pub events: u64,
}

/// Snapshot cadence: whichever comes first.
const SNAPSHOT_EVERY_EVENTS: u64 = 100_000;
const SNAPSHOT_EVERY: Duration = Duration::from_secs(300);

pub struct Hub {
    core: Mutex<Core>,
    pub store: Arc<Store>,
    pub clock: Clock,
    pub overflow: Overflow,
}

/// Resolves when the events handed over with it are acknowledged by the log (durable in `sync`
/// mode, written in `batched` mode).
pub type AckRx = oneshot::Receiver<Result<u64, String>>;

impl Hub {
    pub fn new(
        router: Router,
        config: Arc<Config>,
        store: Arc<Store>,
        clock: Clock,
        overflow: Overflow,
    ) -> Hub {
        Hub {
            clock,
            core: Mutex::new(Core {
                router,
                config,
                metrics: Metrics::default(),
                events_since_snapshot: 0,
                last_snapshot: Instant::now(),
                unlogged: IdMap::default(),
                dropped: Dropped::default(),
                last_drop_warning: None,
            }),
            store,
            overflow,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn sync(&self) -> bool {
        self.store.durability() == Durability::Sync
    }

    /// Runs `f` on the core and logs the events it returns, in order, under the same lock. With
    /// `want_ack`, returns a receiver for the log's acknowledgement of those events.
    ///
    /// `now` is read under the lock, so the log's order is also time order: the simulator, which
    /// replays by time, sees the events in the order the router did (parity).
    pub fn with<R>(
        &self,
        want_ack: bool,
        f: impl FnOnce(&mut Core, InstantUs) -> (R, Vec<Event>),
    ) -> (R, Option<AckRx>) {
        let mut core = self.lock();
        let now = self.clock.now();
        let (r, events) = f(&mut core, now);
        let rx = self.log(&mut core, &events, want_ack);
        (r, rx)
    }

    fn log(&self, core: &mut Core, events: &[Event], want_ack: bool) -> Option<AckRx> {
        let kept;
        let events = if self.overflow == Overflow::Drop {
            kept = self.drop_overflow(core, events);
            &kept[..]
        } else {
            events
        };
        if events.is_empty() {
            return None;
        }
        let (ack, rx) = if want_ack {
            let (tx, rx) = oneshot::channel();
            (
                Some(Box::new(move |r| drop(tx.send(r))) as crate::store::Ack),
                Some(rx),
            )
        } else {
            (None, None)
        };
        match self.store.append(events, ack) {
            Ok(seq) => {
                core.events_since_snapshot += events.len() as u64;
                if core.events_since_snapshot >= SNAPSHOT_EVERY_EVENTS
                    || core.last_snapshot.elapsed() >= SNAPSHOT_EVERY
                {
                    let snap = core.router.snapshot(&core.config.hash_hex);
                    if let Ok(bytes) = postcard::to_stdvec(&snap) {
                        let _ = self.store.save_snapshot(seq, STATE_VERSION, bytes);
                    }
                    core.events_since_snapshot = 0;
                    core.last_snapshot = Instant::now();
                }
                rx
            }
            Err(e) => {
                tracing::error!(error = %e, "event log append failed");
                None
            }
        }
    }
}

impl Hub {
    /// `Overflow::Drop`: a request received while the log is over capacity is left out of the
    /// log entirely, with all its later events. Events of no request are always kept.
    fn drop_overflow(&self, core: &mut Core, events: &[Event]) -> Vec<Event> {
        let mut kept = Vec::with_capacity(events.len());
        for ev in events {
            let Some(id) = ev.request_id() else {
                kept.push(ev.clone());
                continue;
            };
            let mut skip = core.unlogged.contains_key(&id);
            if !skip && matches!(ev, Event::RequestReceived(_)) && self.store.over_capacity() {
                core.unlogged.insert(id, ());
                core.dropped.requests += 1;
                skip = true;
                let warn = core
                    .last_drop_warning
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
                if warn {
                    core.last_drop_warning = Some(Instant::now());
                    tracing::warn!(
                        dropped_requests = core.dropped.requests,
                        dropped_events = core.dropped.events,
                        "the event log is behind: requests are served but left out of the log (--log-overflow drop)"
                    );
                }
            }
            if skip {
                core.dropped.events += 1;
                if matches!(ev, Event::RequestFinished(_)) {
                    core.unlogged.remove(&id);
                }
            } else {
                kept.push(ev.clone());
            }
        }
        kept
    }

    pub fn dropped(&self) -> Dropped {
        self.lock().dropped
    }
}

/// Waits for an acknowledgement; an error is logged (the request itself already happened).
pub async fn await_ack(rx: Option<AckRx>) {
    if let Some(rx) = rx {
        match rx.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "event log write failed"),
            Err(_) => tracing::error!("event log closed before acknowledging"),
        }
    }
}
