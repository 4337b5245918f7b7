//! Router state and the fold that builds it: `apply(&Event)` is the only way it changes.
//!
//! Per deployment: in-flight count, cooldown deadline, the current minute's counters, recent
//! latencies, totals. Per key: spend, reservations, in-flight, the current minute's counters. Per
//! request in flight: the facts its next decision depends on. No I/O, no clock: every time comes
//! from an event's `at`.

use crate::config::{RoutingConfig, VirtualKey};
use crate::core::event::*;
use crate::core::outcome::OutcomeClass;
use crate::core::rng::{FastMap, IdMap};
use crate::core::slots::SeqSlots;
use crate::core::units::{DurationUs, InstantUs, PicoUsd};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Counters for one calendar minute (LiteLLM counts rpm/tpm and failures per minute).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteWindow {
    pub minute: u64,
    pub requests: u64,
    pub tokens: u64,
    pub successes: u64,
    pub failures: u64,
    /// Failures per `AllowedFailsPolicy` class (bad request, auth, timeout, rate limit, content
    /// policy, internal server).
    pub fails_by_class: [u32; 6],
}

impl MinuteWindow {
    /// The window as of `now`: counters of an older minute read as zero.
    pub fn at(&mut self, now: InstantUs) -> &mut MinuteWindow {
        let m = now.minute();
        if self.minute != m {
            *self = MinuteWindow {
                minute: m,
                ..MinuteWindow::default()
            };
        }
        self
    }

    pub fn requests_at(&self, now: InstantUs) -> u64 {
        if self.minute == now.minute() {
            self.requests
        } else {
            0
        }
    }

    pub fn tokens_at(&self, now: InstantUs) -> u64 {
        if self.minute == now.minute() {
            self.tokens
        } else {
            0
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeploymentTotals {
    pub attempts: u64,
    pub successes: u64,
    pub failures: u64,
    pub spend: PicoUsd,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cooldowns: u64,
    pub last_class: Option<OutcomeClass>,
    pub last_at: InstantUs,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeploymentState {
    pub in_flight: u32,
    /// Invariant: only ever moved later by a new cooldown, never earlier.
    pub cooldown_until: InstantUs,
    pub cooldown_class: Option<OutcomeClass>,
    pub window: MinuteWindow,
    /// Recent latency per output token (non-streaming), microseconds.
    pub latency_per_token: Samples,
    /// Recent time to first token (streaming), microseconds.
    pub ttft: Samples,
    pub totals: DeploymentTotals,
}

impl DeploymentState {
    pub fn cooling(&self, now: InstantUs) -> bool {
        self.cooldown_until > now
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyState {
    pub def: VirtualKey,
    pub spend: PicoUsd,
    /// Cost reserved by requests in flight (released when they finish).
    pub reserved: PicoUsd,
    pub in_flight: u64,
    pub window: MinuteWindow,
    pub requests: u64,
    pub deleted: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastOutcome {
    pub class: OutcomeClass,
    pub status: u16,
    pub retry_after_ms: Option<u64>,
    pub deployment: usize,
    pub committed: bool,
    pub message: Option<String>,
    pub at: InstantUs,
}

/// What the router knows about a request in flight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestState {
    pub received: Arc<RequestReceived>,
    pub original_group: Option<Name>,
    pub group: Option<Name>,
    pub pinned: Option<usize>,
    pub first_reason: Reason,
    pub visited: smallvec::SmallVec<[Name; 2]>,
    pub n_fallbacks: u32,
    pub attempts_in_group: u32,
    pub n_attempts: u32,
    /// Deployments that failed in the current group (a retry avoids them when it can).
    pub excluded: smallvec::SmallVec<[usize; 2]>,
    pub in_flight: Option<(u32, usize)>,
    pub last: Option<LastOutcome>,
    pub succeeded: bool,
    pub cost: PicoUsd,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub ttft_us: Option<u64>,
    pub last_deployment: Option<usize>,
    pub reserved: PicoUsd,
    /// When the attempt in flight (or the last one) was decided.
    pub attempt_decided_at: InstantUs,
}

fn name_addr(n: &Name) -> u64 {
    Arc::as_ptr(n) as *const u8 as usize as u64
}

/// A model group as the router looks it up.
#[derive(Clone, Debug)]
pub struct GroupInfo {
    pub name: Name,
    pub members: Vec<usize>,
}

/// Everything `apply` folds.
#[derive(Clone, Debug)]
pub struct State {
    pub cfg: Arc<RoutingConfig>,
    /// Deployment id -> index into `cfg.deployments` (lookups only; never iterated).
    pub index: FastMap<Name, usize>,
    pub names: Vec<Name>,
    /// Address of each `names` entry -> its index. Events the router makes share these `Arc`s,
    /// so most lookups need no string hashing; a hit is exact, since `names` keeps every
    /// address in it alive (no other live string can have it).
    by_ptr: IdMap<usize>,
    /// Model groups by name (lookups only): the shared name and the member deployments.
    pub groups: FastMap<Name, GroupInfo>,
    /// Deployments in each deployment's group (indexed like `names`).
    pub group_size: Vec<usize>,
    pub deployments: Vec<DeploymentState>,
    pub keys: BTreeMap<String, KeyState>,
    /// Key SHA-256 (hex) -> key id (lookups only).
    pub key_by_hash: FastMap<String, String>,
    /// By id, in slots found without hashing (ids are handed out in sequence). Boxed: the ring
    /// moves its entries when it grows, and stays small. Never iterated in its own order (the few
    /// walks over it sort by id first).
    pub requests: SeqSlots<Box<RequestState>>,
    pub next_request_id: RequestId,
    pub n_events: u64,
    pub last_at: InstantUs,
}

/// A latency sample recorded for a timed-out attempt (LiteLLM records 1000 s): a deployment that
/// times out looks slow to the latency-based strategy.
pub const TIMEOUT_PENALTY_US: u64 = 1_000_000_000;

/// Index of a failure class in `AllowedFailsPolicy` / `RetryPolicy` order.
pub fn policy_class(c: OutcomeClass) -> Option<usize> {
    Some(match c {
        OutcomeClass::BadRequest | OutcomeClass::ContextWindowExceeded | OutcomeClass::NotFound => {
            0
        }
        OutcomeClass::AuthError => 1,
        OutcomeClass::Timeout => 2,
        OutcomeClass::RateLimited => 3,
        OutcomeClass::ContentPolicy => 4,
        OutcomeClass::ServerError
        | OutcomeClass::Overloaded
        | OutcomeClass::ConnectionError
        | OutcomeClass::StreamInterrupted => 5,
        OutcomeClass::Success | OutcomeClass::Cancelled => return None,
    })
}

impl State {
    pub fn new(cfg: Arc<RoutingConfig>) -> State {
        let names: Vec<Name> = cfg
            .deployments
            .iter()
            .map(|d| Name::from(d.id.as_str()))
            .collect();
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        let groups = cfg
            .groups
            .iter()
            .map(|(g, members)| {
                let name = Name::from(g.as_str());
                let info = GroupInfo {
                    name: name.clone(),
                    members: members.clone(),
                };
                (name, info)
            })
            .collect();
        let group_size = cfg
            .deployments
            .iter()
            .map(|d| cfg.groups.get(&d.model_group).map_or(1, Vec::len))
            .collect();
        let mut st = State {
            group_size,
            deployments: vec![DeploymentState::default(); cfg.deployments.len()],
            cfg: cfg.clone(),
            index,
            by_ptr: names
                .iter()
                .enumerate()
                .map(|(i, n)| (name_addr(n), i))
                .collect(),
            names,
            groups,
            keys: BTreeMap::new(),
            key_by_hash: FastMap::default(),
            requests: SeqSlots::default(),
            next_request_id: 1,
            n_events: 0,
            last_at: InstantUs::ZERO,
        };
        for k in &cfg.keys {
            st.upsert_key(k.clone());
        }
        st
    }

    /// Swaps the config (reload), keeping the state of deployments and keys that still exist.
    pub fn reconfigure(&mut self, cfg: Arc<RoutingConfig>) {
        let mut fresh = State::new(cfg.clone());
        for (i, name) in fresh.names.clone().iter().enumerate() {
            if let Some(&old) = self.index.get(name) {
                fresh.deployments[i] = self.deployments[old].clone();
            }
        }
        // Keys created through the API survive a reload; config keys take their new settings.
        for (id, ks) in std::mem::take(&mut self.keys) {
            match fresh.keys.get_mut(&id) {
                Some(k) => {
                    k.spend = ks.spend;
                    k.reserved = ks.reserved;
                    k.in_flight = ks.in_flight;
                    k.window = ks.window;
                    k.requests = ks.requests;
                }
                None => {
                    fresh
                        .key_by_hash
                        .insert(ks.def.hash_hex.clone(), id.clone());
                    fresh.keys.insert(id, ks);
                }
            }
        }
        // Requests in flight keep going; their deployment indices are remapped by id.
        let remap = |i: usize| -> Option<usize> {
            self.names.get(i).and_then(|n| fresh.index.get(n).copied())
        };
        for (id, mut r) in std::mem::take(&mut self.requests) {
            r.excluded = r.excluded.iter().filter_map(|&i| remap(i)).collect();
            r.pinned = r.pinned.and_then(remap);
            r.in_flight = r.in_flight.and_then(|(a, i)| remap(i).map(|j| (a, j)));
            r.last_deployment = r.last_deployment.and_then(remap);
            if let Some(l) = &mut r.last {
                match remap(l.deployment) {
                    Some(j) => l.deployment = j,
                    None => r.last = None,
                }
            }
            fresh.requests.insert(id, r);
        }
        fresh.next_request_id = self.next_request_id;
        fresh.n_events = self.n_events;
        fresh.last_at = self.last_at;
        *self = fresh;
    }

    pub fn upsert_key(&mut self, def: VirtualKey) {
        self.key_by_hash
            .insert(def.hash_hex.clone(), def.id.clone());
        match self.keys.get_mut(&def.id) {
            Some(k) => {
                k.def = def;
                k.deleted = false;
            }
            None => {
                self.keys.insert(
                    def.id.clone(),
                    KeyState {
                        def,
                        spend: PicoUsd::ZERO,
                        reserved: PicoUsd::ZERO,
                        in_flight: 0,
                        window: MinuteWindow::default(),
                        requests: 0,
                        deleted: false,
                    },
                );
            }
        }
    }

    pub fn group_name(&self, g: &str) -> Name {
        self.groups
            .get(g)
            .map(|i| i.name.clone())
            .unwrap_or_else(|| Name::from(g))
    }

    /// The index of deployment `name`.
    pub fn deployment_index(&self, name: &Name) -> Option<usize> {
        match self.by_ptr.get(&name_addr(name)) {
            Some(&i) => Some(i),
            None => self.index.get(&**name).copied(),
        }
    }

    /// The deployments of model group `g` (none for an unknown group).
    pub fn members(&self, g: &str) -> &[usize] {
        self.groups.get(g).map_or(&[], |i| i.members.as_slice())
    }

    pub fn has_group(&self, g: &str) -> bool {
        self.groups.contains_key(g)
    }

    /// The fold. Events that name deployments or requests this state does not know (a log written
    /// under another config) are counted and otherwise ignored.
    pub fn apply(&mut self, ev: &Event) {
        self.n_events += 1;
        let at = ev.at();
        if at > self.last_at {
            self.last_at = at;
        }
        match ev {
            Event::ConfigApplied(_) => {}
            Event::ProxyStarted(e) => self.abandon_all(e.next_request_id),
            Event::RequestReceived(e) => self.on_received(e),
            Event::AttemptDecided(e) => self.on_decided(e),
            Event::AttemptFinished(e) => self.on_attempt_finished(e),
            Event::RequestFinished(e) => self.on_request_finished(e),
            Event::KeyCreated(e) => self.upsert_key(e.key.clone()),
            Event::KeyDeleted(e) => {
                if let Some(k) = self.keys.get_mut(&e.key_id) {
                    k.deleted = true;
                }
            }
        }
    }

    fn abandon_all(&mut self, next_id: RequestId) {
        let mut reqs: Vec<_> = std::mem::take(&mut self.requests).into_iter().collect();
        reqs.sort_unstable_by_key(|(id, _)| *id);
        for (_, r) in reqs {
            if let Some((_, d)) = r.in_flight {
                if let Some(ds) = self.deployments.get_mut(d) {
                    ds.in_flight = ds.in_flight.saturating_sub(1);
                }
            }
            self.release_key(&r);
        }
        self.next_request_id = self.next_request_id.max(next_id);
    }

    fn release_key(&mut self, r: &RequestState) {
        if !matches!(r.received.admission, Admission::Admitted { .. }) {
            return;
        }
        if let Some(kid) = &r.received.key_id {
            if let Some(k) = self.keys.get_mut(&**kid) {
                k.in_flight = k.in_flight.saturating_sub(1);
                k.reserved = k.reserved.saturating_sub(r.reserved);
            }
        }
    }

    fn on_received(&mut self, e: &Arc<RequestReceived>) {
        self.next_request_id = self.next_request_id.max(e.id + 1);
        let (group, pinned, reason, reserved) = match &e.admission {
            Admission::Admitted {
                group,
                pinned,
                reason,
                reserved,
            } => (
                Some(group.clone()),
                pinned.as_ref().and_then(|p| self.deployment_index(p)),
                *reason,
                *reserved,
            ),
            Admission::Rejected(_) => (None, None, Reason::Primary, PicoUsd::ZERO),
        };
        if group.is_some() {
            if let Some(kid) = &e.key_id {
                if let Some(k) = self.keys.get_mut(&**kid) {
                    k.in_flight += 1;
                    k.window.at(e.at).requests += 1;
                    k.requests += 1;
                    k.reserved = k.reserved.saturating_add(reserved);
                }
            }
        }
        let r = RequestState {
            received: e.clone(),
            original_group: group.clone(),
            visited: group.iter().cloned().collect(),
            group,
            pinned,
            first_reason: reason,
            n_fallbacks: 0,
            attempts_in_group: 0,
            n_attempts: 0,
            excluded: smallvec::SmallVec::new(),
            in_flight: None,
            last: None,
            succeeded: false,
            cost: PicoUsd::ZERO,
            tokens_in: 0,
            tokens_out: 0,
            ttft_us: None,
            last_deployment: None,
            reserved,
            attempt_decided_at: e.at,
        };
        self.requests.insert(e.id, Box::new(r));
    }

    fn on_decided(&mut self, e: &AttemptDecided) {
        let Some(d) = self.deployment_index(&e.deployment) else {
            return;
        };
        let ds = &mut self.deployments[d];
        ds.in_flight += 1;
        ds.window.at(e.at).requests += 1;
        ds.totals.attempts += 1;
        let Some(r) = self.requests.get_mut(&e.id) else {
            return;
        };
        match e.reason {
            Reason::Fallback | Reason::ContextWindow | Reason::ContentPolicy => {
                r.n_fallbacks += 1;
                r.attempts_in_group = 1;
                r.excluded.clear();
                if !r.visited.contains(&e.group) {
                    r.visited.push(e.group.clone());
                }
            }
            Reason::Retry => r.attempts_in_group += 1,
            Reason::Primary | Reason::Escalation => r.attempts_in_group = 1,
        }
        // Usually the same group (and the same shared name): no reference-count traffic then.
        if !r.group.as_ref().is_some_and(|g| Arc::ptr_eq(g, &e.group)) {
            r.group = Some(e.group.clone());
        }
        r.n_attempts += 1;
        r.in_flight = Some((e.attempt, d));
        r.last_deployment = Some(d);
        r.attempt_decided_at = e.at;
    }

    fn on_attempt_finished(&mut self, e: &AttemptFinished) {
        let Some(d) = self.deployment_index(&e.deployment) else {
            return;
        };
        let cfg = &*self.cfg;
        let group_size = self.group_size[d];
        // A timeout the client set shorter than the configured one is not the deployment's
        // failure: it neither cools the deployment nor counts against it (else one client
        // could cool a shared deployment for everyone with tiny timeouts).
        let clients_timeout = e.class == OutcomeClass::Timeout
            && self
                .requests
                .get(&e.id)
                .and_then(|r| r.received.overrides.timeout_us)
                .is_some_and(|t| t < cfg.attempt_timeout(d, e.stream).0);
        let ds = &mut self.deployments[d];
        ds.in_flight = ds.in_flight.saturating_sub(1);
        let w = ds.window.at(e.at);
        w.tokens += e.tokens_in + e.tokens_out;
        ds.totals.spend = ds.totals.spend.saturating_add(e.cost);
        ds.totals.tokens_in += e.tokens_in;
        ds.totals.tokens_out += e.tokens_out;
        ds.totals.last_class = Some(e.class);
        ds.totals.last_at = e.at;
        let max_samples = cfg.strategy_args.max_latency_list_size.max(1);
        match e.class {
            OutcomeClass::Success => {
                w.successes += 1;
                ds.totals.successes += 1;
                if e.stream {
                    if let Some(t) = e.ttft_us {
                        push_bounded(&mut ds.ttft, (e.at, t), max_samples);
                    }
                } else {
                    let per_token = e.duration_us / e.tokens_out.max(1);
                    push_bounded(&mut ds.latency_per_token, (e.at, per_token), max_samples);
                }
            }
            OutcomeClass::Cancelled => {}
            _ if clients_timeout => {}
            class => {
                w.failures += 1;
                if let Some(pc) = policy_class(class) {
                    w.fails_by_class[pc] += 1;
                }
                ds.totals.failures += 1;
                if class == OutcomeClass::Timeout {
                    push_bounded(&mut ds.ttft, (e.at, TIMEOUT_PENALTY_US), max_samples);
                    push_bounded(
                        &mut ds.latency_per_token,
                        (e.at, TIMEOUT_PENALTY_US),
                        max_samples,
                    );
                }
                if let Some(until) = cooldown_for(cfg, d, group_size, ds, e) {
                    if until > ds.cooldown_until {
                        ds.cooldown_until = until;
                        ds.cooldown_class = Some(class);
                        ds.totals.cooldowns += 1;
                    }
                }
            }
        }
        let r = self.requests.get_mut(&e.id);
        let key_id = r.as_ref().and_then(|r| r.received.key_id.clone());
        if let Some(r) = r {
            r.in_flight = None;
            r.cost = r.cost.saturating_add(e.cost);
            r.tokens_in = r.tokens_in.max(e.tokens_in);
            r.tokens_out += e.tokens_out;
            if e.class.is_success() {
                r.succeeded = true;
                // Time to first token of the request: from its arrival, across earlier attempts.
                r.ttft_us = e
                    .ttft_us
                    .map(|t| r.attempt_decided_at.since(r.received.at).0 + t);
            } else {
                if !r.excluded.contains(&d) {
                    r.excluded.push(d);
                }
                r.last = Some(LastOutcome {
                    class: e.class,
                    status: e.status,
                    retry_after_ms: e.retry_after_ms,
                    deployment: d,
                    committed: e.committed,
                    message: e.message.clone(),
                    at: e.at,
                });
            }
        }
        if let Some(kid) = key_id {
            if let Some(k) = self.keys.get_mut(&*kid) {
                k.spend = k.spend.saturating_add(e.cost);
                k.window.at(e.at).tokens += e.tokens_in + e.tokens_out;
            }
        }
    }

    fn on_request_finished(&mut self, e: &RequestFinished) {
        if let Some(r) = self.requests.remove(&e.id) {
            if let Some((_, d)) = r.in_flight {
                if let Some(ds) = self.deployments.get_mut(d) {
                    ds.in_flight = ds.in_flight.saturating_sub(1);
                }
            }
            self.release_key(&r);
        }
    }
}

fn push_bounded(q: &mut Samples, v: (InstantUs, u64), max: usize) {
    q.push(v, max);
}

/// The last few latency samples of a deployment, oldest first, with their running sum.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Samples {
    q: VecDeque<(InstantUs, u64)>,
    /// Invariant: the sum of the values in `q`.
    sum: u64,
}

impl Samples {
    pub fn push(&mut self, v: (InstantUs, u64), max: usize) {
        self.q.push_back(v);
        self.sum = self.sum.saturating_add(v.1);
        while self.q.len() > max.max(1) {
            if let Some((_, old)) = self.q.pop_front() {
                self.sum = self.sum.saturating_sub(old);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.q.len()
    }

    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// Mean of the samples no older than `ttl` at `now`; `None` without any.
    pub fn mean(&self, now: InstantUs, ttl: DurationUs) -> Option<u64> {
        let oldest = self.q.front()?;
        if now.since(oldest.0) <= ttl {
            // Samples arrive in time order: all are recent.
            return Some(self.sum / self.q.len() as u64);
        }
        let (mut sum, mut cnt) = (0u64, 0u64);
        for (at, v) in self.q.iter().rev() {
            if now.since(*at) > ttl {
                break;
            }
            sum = sum.saturating_add(*v);
            cnt += 1;
        }
        (cnt > 0).then(|| sum / cnt)
    }
}

/// LiteLLM's cooldown rules; returns the new deadline, if this failure cools the deployment.
fn cooldown_for(
    cfg: &RoutingConfig,
    d: usize,
    group_size: usize,
    ds: &DeploymentState,
    e: &AttemptFinished,
) -> Option<InstantUs> {
    if cfg.disable_cooldowns {
        return None;
    }
    let dep = &cfg.deployments[d];
    let w = &ds.window;
    let immediate = match e.class {
        // A 429 cools at once when another deployment can take the traffic.
        OutcomeClass::RateLimited => group_size > 1,
        OutcomeClass::AuthError => e.status == 401 || e.status == 0,
        OutcomeClass::NotFound => true,
        // Other 4xx never cool a deployment: the request was at fault, not the deployment.
        OutcomeClass::BadRequest
        | OutcomeClass::ContextWindowExceeded
        | OutcomeClass::ContentPolicy => return None,
        _ => false,
    };
    let by_rate = {
        let total = w.successes + w.failures;
        total >= 5 && w.failures * 2 > total
    };
    let by_allowed = {
        let pc = policy_class(e.class);
        let policy_limit = pc.and_then(|i| {
            let p = &cfg.allowed_fails_policy;
            [
                p.bad_request,
                p.authentication,
                p.timeout,
                p.rate_limit,
                p.content_policy,
                p.internal_server,
            ][i]
        });
        match policy_limit.or(cfg.allowed_fails) {
            Some(limit) => {
                let fails = match (policy_limit, pc) {
                    (Some(_), Some(i)) => w.fails_by_class[i] as u64,
                    _ => w.failures,
                };
                fails > limit as u64
            }
            None => false,
        }
    };
    if !(immediate || by_rate || by_allowed) {
        return None;
    }
    let duration = dep
        .cooldown_time
        .or_else(|| e.retry_after_ms.map(DurationUs::from_ms))
        .unwrap_or(cfg.cooldown_time);
    Some(e.at.plus(duration))
}

impl State {
    /// The requests in flight, by id.
    pub fn requests_in_order(&self) -> Vec<(RequestId, &RequestState)> {
        let mut v: Vec<_> = self.requests.iter().map(|(k, r)| (*k, &**r)).collect();
        v.sort_unstable_by_key(|(k, _)| *k);
        v
    }

    /// A canonical text form of everything `apply` folds (for tests and snapshot checks): two
    /// states with the same fingerprint make the same decisions.
    pub fn fingerprint(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "next_request_id={}", self.next_request_id);
        for (i, d) in self.deployments.iter().enumerate() {
            let _ = writeln!(s, "dep {} {:?}", self.names[i], d);
        }
        for (id, k) in &self.keys {
            let _ = writeln!(s, "key {id} {k:?}");
        }
        for (id, r) in self.requests_in_order() {
            let _ = writeln!(s, "req {id} {r:?}");
        }
        s
    }
}

/// Version of the snapshot layout below: a snapshot with another version is ignored and the
/// state is rebuilt from events.
pub const STATE_VERSION: u32 = 2;

/// Derived state at one point of the log (a cache: the events are the truth).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    /// The config the state was built under; deployment indices in `requests` refer to it.
    pub config_hash: String,
    pub deployments: Vec<(String, DeploymentState)>,
    pub keys: Vec<KeyState>,
    pub requests: Vec<(RequestId, RequestState)>,
    pub next_request_id: RequestId,
    pub n_events: u64,
    pub last_at: InstantUs,
}

impl State {
    pub fn snapshot(&self, config_hash: &str) -> Snapshot {
        Snapshot {
            config_hash: config_hash.to_string(),
            deployments: self
                .names
                .iter()
                .map(|n| n.to_string())
                .zip(self.deployments.iter().cloned())
                .collect(),
            keys: self.keys.values().cloned().collect(),
            requests: self
                .requests_in_order()
                .into_iter()
                .map(|(k, v)| (k, v.clone()))
                .collect(),
            next_request_id: self.next_request_id,
            n_events: self.n_events,
            last_at: self.last_at,
        }
    }

    /// Restores a snapshot taken under the same config; false (and no change) otherwise.
    pub fn restore(&mut self, s: Snapshot, config_hash: &str) -> bool {
        if s.config_hash != config_hash || s.deployments.len() != self.names.len() {
            return false;
        }
        if s.deployments
            .iter()
            .zip(self.names.iter())
            .any(|((a, _), b)| a.as_str() != &**b)
        {
            return false;
        }
        self.deployments = s.deployments.into_iter().map(|(_, d)| d).collect();
        for k in s.keys {
            self.key_by_hash
                .insert(k.def.hash_hex.clone(), k.def.id.clone());
            self.keys.insert(k.def.id.clone(), k);
        }
        self.requests = s
            .requests
            .into_iter()
            .map(|(k, v)| (k, Box::new(v)))
            .collect();
        self.next_request_id = s.next_request_id;
        self.n_events = s.n_events;
        self.last_at = s.last_at;
        true
    }
}
