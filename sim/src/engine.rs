//! The discrete-event simulator: integer virtual time, an event queue ordered by (time, tie,
//! sequence) so ties pop the same way every run, and the real routing core making every decision
//! — retries with their backoff, fallbacks, cooldowns, rpm/tpm windows, key limits, timeouts —
//! exactly as it does live. No threads, no async runtime, no clock.
//!
//! Recorded traces: while a request's simulated path matches its recorded one (same deployment
//! for the same attempt), the recorded outcome and timestamps are reused; from the first
//! divergence on, outcomes are sampled from the provider models. With the recorded config and
//! seeds this reproduces every recorded decision (parity).

use crate::model::{Ask, DeploymentSim, Fate, ProviderSet, Sampled};
use crate::queue::{Key, Queue};
use crate::report::{RunBuilder, Tag};
use crate::workload::{Arrival, Item, ItemResult};
use std::sync::Arc;
use switchyard_engine::config::RoutingConfig;
use switchyard_engine::core::event::{Admission, Event, Name, RateLimitInfo, RequestId};
use switchyard_engine::core::outcome::OutcomeClass;
use switchyard_engine::core::router::{AttemptReport, Poll, Router};
use switchyard_engine::core::slots::SeqSlots;
use switchyard_engine::core::units::{InstantUs, PicoUsd};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SimError {
    #[error("deployment(s) {0} have no provider model (the trace never saw them): pass --providers FILE with a model for each")]
    MissingModels(String),
    #[error("the workload asks for model `{model}` (first at {at_s:.3} s), which the config does not define (model groups: {available})")]
    UnknownModel {
        model: String,
        at_s: f64,
        available: String,
    },
    #[error(
        "the workload names key `{0}`, which the config does not define (switchyard_settings.keys)"
    )]
    UnknownKey(String),
    #[error("workload: {0}")]
    Workload(String),
}

pub struct SimSetup {
    pub routing: Arc<RoutingConfig>,
    pub providers: ProviderSet,
    pub seed: u64,
    /// Reuse recorded outcomes where the simulated path matches the recorded one.
    pub reuse_recorded: bool,
}

/// Queue keys: time and tie in the major part (time in the high 64 bits), the push's sequence
/// number as the minor part. Ordered by time, then tie, then sequence number.
fn at_of(k: &Key) -> u64 {
    (k.major >> 64) as u64
}

fn tie_of(k: &Key) -> u64 {
    k.major as u64
}

/// What a queue entry does: poll its request, or deliver the outcome of its attempt in flight
/// (the report waits in the request's `Req`, which the outcome touches anyway, so entries stay
/// small and the outcome costs no extra cache miss).
#[derive(Clone, Copy)]
enum What {
    Poll(RequestId),
    Done(RequestId),
}

/// What an on-record request waits for from the trace.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Follow {
    /// Off the recorded path (or never on it): outcomes are sampled.
    Off,
    /// Waiting for the recorded decision (or the recorded end).
    NextStep,
    /// The recorded decision is due: its deployment's index in the config (`None` for one the
    /// config lacks), to compare with the router's.
    Decision(Option<u32>),
    /// Attempt `k` went where the recorded one went: waiting for its recorded outcome.
    Outcome(u32),
}

/// A simulated request's own state. Kept small (two cache lines): thousands are in flight, and
/// each is touched again only when its attempt ends, long after it was last used.
struct Req {
    /// The deployment of the attempt in flight (or the last one).
    dep: u32,
    stream: bool,
    follow: Follow,
    /// What the report keeps on the request.
    tag: Tag,
    tokens_out: Option<u64>,
    tokens_in: u64,
    max_tokens: Option<u64>,
    /// The outcome of the attempt in flight, due when its `Done` entry pops (a request has at
    /// most one attempt in flight).
    report: Pending,
}

/// An attempt's outcome while it waits in its request: the common fields inline, anything
/// rarer (rate-limit headers, a message, cached tokens) in a box.
enum Pending {
    Small(SmallReport),
    Full(Box<AttemptReport>),
}

struct SmallReport {
    class: Option<OutcomeClass>,
    committed: bool,
    status: u16,
    ttft_us: Option<u64>,
    duration_us: u64,
    tokens_in: u64,
    tokens_out: u64,
    retry_after_ms: Option<u64>,
}

impl Pending {
    const NONE: Pending = Pending::Small(SmallReport {
        class: None,
        committed: false,
        status: 0,
        ttft_us: None,
        duration_us: 0,
        tokens_in: 0,
        tokens_out: 0,
        retry_after_ms: None,
    });

    fn pack(r: AttemptReport) -> Pending {
        if r.message.is_some()
            || r.tokens_cache_read != 0
            || r.tokens_cache_creation != 0
            || !r.rate_limit.is_empty()
        {
            return Pending::Full(Box::new(r));
        }
        // Every field named: a field added to the report must be placed here (or it would be
        // lost on the way through `Small`).
        let AttemptReport {
            class,
            status,
            ttft_us,
            duration_us,
            tokens_in,
            tokens_cache_read: _,
            tokens_cache_creation: _,
            tokens_out,
            retry_after_ms,
            rate_limit: _,
            committed,
            message: _,
        } = r;
        Pending::Small(SmallReport {
            class,
            committed,
            status,
            ttft_us,
            duration_us,
            tokens_in,
            tokens_out,
            retry_after_ms,
        })
    }

    fn duration_us(&self) -> u64 {
        match self {
            Pending::Small(s) => s.duration_us,
            Pending::Full(r) => r.duration_us,
        }
    }

    fn unpack(self) -> AttemptReport {
        match self {
            Pending::Full(r) => *r,
            Pending::Small(s) => AttemptReport {
                class: s.class,
                status: s.status,
                ttft_us: s.ttft_us,
                duration_us: s.duration_us,
                tokens_in: s.tokens_in,
                tokens_out: s.tokens_out,
                retry_after_ms: s.retry_after_ms,
                committed: s.committed,
                ..AttemptReport::default()
            },
        }
    }
}

/// Ties: recorded events order by their seq; events the simulation makes order after the one
/// that caused them.
const TIE_SHIFT: u32 = 20;

/// What a run produced.
pub struct RunOutput {
    pub report: RunBuilder,
    /// Every decision (AttemptDecided) in order, when asked for (parity checks).
    pub decisions: Vec<Event>,
    pub n_requests: u64,
    pub n_reused: u64,
    pub n_sampled: u64,
}

pub struct Simulation {
    router: Router,
    cfg: Arc<RoutingConfig>,
    deps: Vec<DeploymentSim>,
    /// Request ids; whether an entry is a `Done` is the low bit of its key's minor part (so an
    /// entry is 32 bytes).
    queue: Queue<RequestId>,
    reqs: SeqSlots<Req>,
    n: u64,
    tie_base: u64,
    tie_counter: u64,
    now: u64,
    report: RunBuilder,
    keep_decisions: bool,
    decisions: Vec<Event>,
    n_requests: u64,
    n_reused: u64,
    n_sampled: u64,
    reuse: bool,
    sink: Option<Sink>,
}

/// Receives every event a run produces.
pub type Sink = Box<dyn FnMut(&Event)>;

fn class_of_status(status: u16) -> OutcomeClass {
    match status {
        429 => OutcomeClass::RateLimited,
        529 => OutcomeClass::Overloaded,
        408 => OutcomeClass::Timeout,
        401 | 403 => OutcomeClass::AuthError,
        404 => OutcomeClass::NotFound,
        400..=499 => OutcomeClass::BadRequest,
        _ => OutcomeClass::ServerError,
    }
}

/// Turns a sampled fate into what the proxy would have reported, under the attempt's timeout.
pub fn report_of(s: &Sampled, timeout_us: u64, stream: bool) -> AttemptReport {
    let mut r = AttemptReport {
        tokens_in: s.tokens_in,
        ..AttemptReport::default()
    };
    match &s.fate {
        Fate::Ok => {
            let timed_out = if stream {
                s.ttft_us > timeout_us || s.itl_us > timeout_us
            } else {
                s.duration_us() > timeout_us
            };
            if timed_out {
                r.class = Some(OutcomeClass::Timeout);
                r.duration_us = if stream {
                    timeout_us.min(s.ttft_us)
                } else {
                    timeout_us
                };
                r.tokens_in = 0;
            } else {
                r.class = Some(OutcomeClass::Success);
                r.status = 200;
                r.duration_us = s.duration_us();
                r.ttft_us = Some(s.ttft_us);
                r.tokens_out = s.tokens_out;
            }
        }
        Fate::HttpError { status } => {
            r.class = Some(class_of_status(*status));
            r.status = *status;
            r.duration_us = s.ttft_us.min(timeout_us);
            r.tokens_in = 0;
        }
        Fate::RateLimited {
            retry_after_ms,
            remaining_requests,
            remaining_tokens,
            limit_requests,
            limit_tokens,
        } => {
            r.class = Some(OutcomeClass::RateLimited);
            r.status = 429;
            r.duration_us = s.duration_us().min(timeout_us);
            r.retry_after_ms = Some(*retry_after_ms);
            r.rate_limit = RateLimitInfo {
                limit_requests: *limit_requests,
                remaining_requests: Some(*remaining_requests),
                limit_tokens: *limit_tokens,
                remaining_tokens: Some(*remaining_tokens),
                reset_requests_ms: Some(*retry_after_ms),
                reset_tokens_ms: None,
            };
            r.tokens_in = 0;
        }
        Fate::ContextWindow { .. } => {
            r.class = Some(OutcomeClass::ContextWindowExceeded);
            r.status = 400;
            r.duration_us = s.duration_us().min(timeout_us);
            r.tokens_in = 0;
        }
        Fate::Hang => {
            r.class = Some(OutcomeClass::Timeout);
            r.duration_us = timeout_us;
            r.tokens_in = 0;
        }
        Fate::Reset => {
            r.class = Some(OutcomeClass::ConnectionError);
            r.duration_us = s.ttft_us.min(timeout_us);
            r.tokens_in = 0;
        }
        Fate::MidStream { after_tokens } => {
            if s.ttft_us > timeout_us {
                r.class = Some(OutcomeClass::Timeout);
                r.duration_us = timeout_us;
                r.tokens_in = 0;
            } else {
                r.class = Some(OutcomeClass::StreamInterrupted);
                r.status = 200;
                r.committed = true;
                r.duration_us = s.duration_us();
                r.ttft_us = Some(s.ttft_us);
                r.tokens_out = *after_tokens;
            }
        }
    }
    r
}

fn report_of_recorded(a: &switchyard_engine::core::event::AttemptFinished) -> AttemptReport {
    AttemptReport {
        class: Some(a.class),
        status: a.status,
        ttft_us: a.ttft_us,
        duration_us: a.duration_us,
        tokens_in: a.tokens_in,
        tokens_cache_read: a.tokens_cache_read,
        tokens_cache_creation: a.tokens_cache_creation,
        tokens_out: a.tokens_out,
        retry_after_ms: a.retry_after_ms,
        rate_limit: a.rate_limit.clone(),
        committed: a.committed,
        message: a.message.clone(),
    }
}

/// Applies a provider model's prices to deployments whose config has none (a self-hosted
/// deployment with a configured cost, or a model missing from the price table).
pub fn with_model_prices(cfg: &RoutingConfig, providers: &ProviderSet) -> RoutingConfig {
    let mut cfg = cfg.clone();
    for d in cfg.deployments.iter_mut() {
        if d.prices.source != "litellm_params" && d.prices.source != "price_table" {
            if let Some(p) = providers
                .find(&d.id, &d.model, &d.upstream_model)
                .and_then(|m| m.prices.as_ref())
            {
                let parse = |s: &str| PicoUsd::parse_usd(s).unwrap_or_default();
                d.prices.input_per_token = parse(&p.input_per_token);
                d.prices.output_per_token = parse(&p.output_per_token);
                d.prices.cache_read_per_token = p
                    .cached_input_per_token
                    .as_deref()
                    .map(parse)
                    .unwrap_or(d.prices.input_per_token);
                d.prices.cache_creation_per_token = d.prices.input_per_token;
                d.prices.source = "provider_model".into();
            }
        }
    }
    cfg
}

impl Simulation {
    pub fn new(setup: &SimSetup) -> Result<Simulation, SimError> {
        let cfg = Arc::new(with_model_prices(&setup.routing, &setup.providers));
        let mut deps = Vec::new();
        let mut missing = Vec::new();
        for d in &cfg.deployments {
            match setup.providers.find(&d.id, &d.model, &d.upstream_model) {
                Some(m) => deps.push(DeploymentSim::new(m.clone(), setup.seed, &d.id)),
                None => missing.push(format!("{} ({})", d.id, d.model)),
            }
        }
        if !missing.is_empty() {
            return Err(SimError::MissingModels(missing.join(", ")));
        }
        Ok(Simulation {
            router: Router::new(cfg.clone(), setup.seed),
            cfg,
            deps,
            queue: Queue::default(),
            reqs: SeqSlots::default(),
            n: 0,
            tie_base: 0,
            tie_counter: 0,
            now: 0,
            report: RunBuilder::new(),
            keep_decisions: false,
            decisions: Vec::new(),
            n_requests: 0,
            n_reused: 0,
            n_sampled: 0,
            reuse: setup.reuse_recorded,
            sink: None,
        })
    }

    pub fn keep_decisions(mut self) -> Self {
        self.keep_decisions = true;
        self
    }

    /// Every event the router produces also goes to `sink` (to write a simulated trace).
    pub fn with_sink(mut self, sink: Sink) -> Self {
        self.sink = Some(sink);
        self
    }

    fn key(&mut self, at: u64, tie: Option<u64>) -> Key {
        let tie = tie.map(|s| s << TIE_SHIFT).unwrap_or_else(|| {
            self.tie_counter = (self.tie_counter + 1) & ((1 << TIE_SHIFT) - 1);
            (self.tie_base << TIE_SHIFT) | self.tie_counter
        });
        self.n += 1;
        Key {
            major: ((at.max(self.now) as u128) << 64) | tie as u128,
            // The sequence number, with its low bit free for `What` (the order is the same).
            minor: self.n << 1,
        }
    }

    fn push(&mut self, at: u64, tie: Option<u64>, what: What) {
        let mut key = self.key(at, tie);
        let id = match what {
            What::Poll(id) => id,
            What::Done(id) => {
                key.minor |= 1;
                id
            }
        };
        self.queue.push(key, id);
    }

    /// An event the router made, for the report (`tag`: the request's, when the event is about
    /// a request the report already knows), the sink and the kept decisions.
    fn log(&mut self, ev: &Event, tag: Option<Tag>) {
        self.report.on_event_tagged(ev, tag);
        self.also_log(ev);
    }

    fn also_log(&mut self, ev: &Event) {
        if let Some(sink) = self.sink.as_mut() {
            sink(ev);
        }
        if self.keep_decisions && matches!(ev, Event::AttemptDecided(_)) {
            self.decisions.push(ev.clone());
        }
    }

    /// Runs the whole workload.
    pub fn run<I: Iterator<Item = ItemResult>>(
        mut self,
        mut workload: I,
        progress: &mut dyn FnMut(u64),
    ) -> Result<RunOutput, SimError> {
        // The workload streams: one item waits beside the queue at a time (keyed as if it were in
        // it), the next is read when it is taken.
        let mut pending = match workload.next() {
            Some(first) => {
                let item = first.map_err(SimError::Workload)?;
                Some(self.keyed(item))
            }
            None => return Ok(self.output()),
        };
        loop {
            let from_workload = match (&pending, self.queue.peek_key()) {
                (Some((k, _)), Some(q)) => *k < q,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if from_workload {
                let Some((key, item)) = pending.take() else {
                    break;
                };
                self.now = at_of(&key);
                self.tie_base = tie_of(&key) >> TIE_SHIFT;
                if let Some(next) = workload.next() {
                    let next = next.map_err(SimError::Workload)?;
                    pending = Some(self.keyed(next));
                }
                self.on_item(item)?;
                if self.n_requests.is_multiple_of(65_536) {
                    progress(self.n_requests);
                }
                continue;
            }
            let Some((key, id)) = self.queue.pop() else {
                break;
            };
            self.now = at_of(&key);
            self.tie_base = tie_of(&key) >> TIE_SHIFT;
            if let Some((_, &next)) = self.queue.peek() {
                self.prefetch(next);
            }
            let what = if key.minor & 1 == 1 {
                What::Done(id)
            } else {
                What::Poll(id)
            };
            match what {
                What::Poll(id) => self.on_poll(id),
                What::Done(id) => {
                    let report = self
                        .reqs
                        .get_mut(&id)
                        .map(|r| std::mem::replace(&mut r.report, Pending::NONE).unpack())
                        .unwrap_or_default();
                    self.on_done(id, report)
                }
            }
        }
        progress(self.n_requests);
        Ok(self.output())
    }

    /// Starts loading the state of request `id` (due next) while this event is handled.
    fn prefetch(&self, id: RequestId) {
        self.reqs.prefetch_slot(id);
        self.router.prefetch(id);
    }

    fn output(self) -> RunOutput {
        RunOutput {
            report: self.report,
            decisions: self.decisions,
            n_requests: self.n_requests,
            n_reused: self.n_reused,
            n_sampled: self.n_sampled,
        }
    }

    /// The key the item would have in the queue.
    fn keyed(&mut self, item: Item) -> (Key, Item) {
        let at = item.at().0;
        let tie = match &item {
            Item::Apply { seq, .. } | Item::Step { seq, .. } => Some(*seq),
            Item::Request(a) => a.recorded.as_ref().map(|r| r.seq),
        };
        (self.key(at, tie), item)
    }

    fn on_item(&mut self, item: Item) -> Result<(), SimError> {
        match item {
            Item::Apply { event, .. } => {
                self.router.apply(&event);
                if matches!(*event, Event::ProxyStarted(_)) {
                    // The restart abandoned every request in flight.
                    let st = self.router.state();
                    self.reqs.retain(|id, _| st.requests.contains_key(id));
                }
                Ok(())
            }
            Item::Step { seq, event } => {
                self.on_step(seq, &event);
                Ok(())
            }
            Item::Request(a) => self.on_arrival(*a),
        }
    }

    fn resolve_key(&self, key: &str) -> Result<Name, SimError> {
        self.cfg
            .keys
            .iter()
            .find(|k| k.id == key || k.alias.as_deref() == Some(key))
            .map(|k| Name::from(k.id.as_str()))
            .ok_or_else(|| SimError::UnknownKey(key.to_string()))
    }

    fn on_arrival(&mut self, a: Arrival) -> Result<(), SimError> {
        let Arrival {
            at,
            mut input,
            tokens_out,
            key,
            recorded,
        } = a;
        if let Some(k) = &key {
            input.key_id = Some(self.resolve_key(k)?);
        }
        let ids = recorded.as_ref().map(|r| (r.id, r.seed));
        let (tokens_in, max_tokens, stream) = (input.tokens_in, input.max_tokens, input.stream);
        let ev = self.router.receive(at, input, ids);
        self.n_requests += 1;
        if let Event::RequestReceived(r) = &ev {
            if let Admission::Rejected(e) = &r.admission {
                // A model the config lacks is bad input, unless the trace shows the live proxy
                // rejected it too (a client's typo).
                if e.code.as_deref() == Some("model_not_found")
                    && recorded.is_none_or(|r| r.admitted)
                {
                    return Err(SimError::UnknownModel {
                        model: r.model.to_string(),
                        at_s: at.0 as f64 / 1e6,
                        available: self
                            .cfg
                            .groups
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
        }
        let Event::RequestReceived(received) = &ev else {
            unreachable!("receive returns RequestReceived")
        };
        let id = received.id;
        let rejected_here = matches!(received.admission, Admission::Rejected(_));
        let tag = self.report.on_received(received);
        self.also_log(&ev);
        let follow = if self.reuse && recorded.is_some() && !rejected_here {
            Follow::NextStep
        } else {
            Follow::Off
        };
        let waits = follow == Follow::NextStep;
        self.reqs.insert(
            id,
            Req {
                dep: 0,
                stream,
                follow,
                tag,
                tokens_out,
                tokens_in,
                max_tokens,
                report: Pending::NONE,
            },
        );
        if !waits {
            // The first decision happens at arrival: no need to go through the queue.
            self.on_poll(id);
        }
        // The next request to arrive takes the next id: have its slots ready.
        let next = self.router.next_request_id();
        self.reqs.prefetch_slot(next);
        self.router.prefetch_slot(next);
        Ok(())
    }

    /// A recorded step of a request: advance the request while it is still on the recorded path.
    fn on_step(&mut self, seq: u64, ev: &Event) {
        let Some(id) = ev.request_id() else { return };
        let Some(r) = self.reqs.get_mut(&id) else {
            return;
        };
        if let Event::AttemptFinished(f) = ev {
            if r.tokens_out.is_none() && f.class.is_success() {
                r.tokens_out = Some(f.tokens_out);
            }
        }
        match (&r.follow, ev) {
            (Follow::NextStep, Event::AttemptDecided(d)) => {
                let dep = self.router.state().deployment_index(&d.deployment);
                r.follow = Follow::Decision(dep.map(|i| i as u32));
                self.push(d.at.0, Some(seq), What::Poll(id));
            }
            (Follow::NextStep, Event::RequestFinished(f)) => {
                self.push(f.at.0, Some(seq), What::Poll(id));
            }
            (Follow::Outcome(k), Event::AttemptFinished(f)) if f.attempt == *k => {
                r.report = Pending::pack(report_of_recorded(f));
                r.follow = Follow::NextStep;
                self.n_reused += 1;
                self.push(f.at.0, Some(seq), What::Done(id));
            }
            _ => {}
        }
    }

    fn on_poll(&mut self, id: RequestId) {
        let now = InstantUs(self.now);
        match self.router.poll(now, id) {
            Poll::Attempt { event, plan } => {
                let tag = self.reqs.get(&id).map(|r| r.tag);
                self.log(&event, tag);
                let Some(r) = self.reqs.get_mut(&id) else {
                    return;
                };
                r.dep = plan.deployment as u32;
                match std::mem::replace(&mut r.follow, Follow::Off) {
                    Follow::Decision(Some(dep)) if dep as usize == plan.deployment => {
                        r.follow = Follow::Outcome(plan.attempt);
                        self.deps[plan.deployment].start();
                    }
                    _ => {
                        let ask = Ask {
                            now_us: self.now,
                            key: id.wrapping_mul(64).wrapping_add(plan.attempt as u64),
                            tokens_in: r.tokens_in,
                            tokens_out: r.tokens_out,
                            max_tokens: r.max_tokens,
                            stream: r.stream,
                        };
                        let dep = &mut self.deps[plan.deployment];
                        let sampled = dep.sample(&ask);
                        dep.start();
                        r.report = Pending::pack(report_of(&sampled, plan.timeout.0, ask.stream));
                        let t = self.now.saturating_add(r.report.duration_us());
                        self.n_sampled += 1;
                        self.push(t, None, What::Done(id));
                    }
                }
            }
            Poll::Wait { until } => {
                // Waiting takes the request off its recorded path.
                if let Some(r) = self.reqs.get_mut(&id) {
                    r.follow = Follow::Off;
                }
                self.push(until.0, None, What::Poll(id))
            }
            Poll::Done { event, .. } => {
                let tag = self.reqs.remove(&id).map(|r| r.tag);
                self.log(&event, tag);
            }
            Poll::InFlight | Poll::Unknown => {
                self.reqs.remove(&id);
            }
        }
    }

    fn on_done(&mut self, id: RequestId, report: AttemptReport) {
        let now = InstantUs(self.now);
        // The attempt's deployment, and whether the trace says when the next step happens.
        let (dep, on_record) = match self.reqs.get(&id) {
            Some(r) => (Some(r.dep as usize), r.follow == Follow::NextStep),
            None => (None, false),
        };
        let before = dep.map(|d| self.router.state().deployments[d].cooldown_until);
        if let Some(d) = dep {
            self.deps[d].finish();
        }
        if let Some(ev) = self.router.attempt_finished(now, id, report) {
            self.log(&ev, None);
        }
        if let (Some(d), Some(before)) = (dep, before) {
            let after = self.router.state().deployments[d].cooldown_until;
            if after > before {
                let added = after.0 - before.0.max(self.now);
                self.report.on_cooldown(&self.cfg.deployments[d].id, added);
            }
        }
        if !on_record {
            self.on_poll(id);
        }
    }
}

/// Runs `runs` simulations with seeds `seed, seed+1, ...` on a workload made fresh for each run.
pub fn run_many<W, I>(
    setup: &SimSetup,
    runs: usize,
    mut make_workload: W,
    progress: &mut dyn FnMut(usize, u64),
) -> Result<Vec<RunOutput>, SimError>
where
    W: FnMut() -> Result<I, SimError>,
    I: Iterator<Item = ItemResult>,
{
    let mut out = Vec::with_capacity(runs);
    for r in 0..runs.max(1) {
        let s = SimSetup {
            routing: setup.routing.clone(),
            providers: setup.providers.clone(),
            seed: setup.seed.wrapping_add(r as u64),
            reuse_recorded: setup.reuse_recorded,
        };
        let sim = Simulation::new(&s)?;
        let wl = make_workload()?;
        out.push(sim.run(wl, &mut |n| progress(r, n))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_outcomes_unpack_to_what_was_packed() {
        let mut limited = AttemptReport::failure(OutcomeClass::RateLimited, 429, 1_200);
        limited.retry_after_ms = Some(3_000);
        limited.rate_limit.remaining_requests = Some(0);
        let mut cached = AttemptReport::success(90_000, 1_000, 20);
        cached.tokens_cache_read = 800;
        let mut messaged = AttemptReport::failure(OutcomeClass::BadRequest, 400, 5);
        messaged.message = Some("bad".into());
        let mut streamed = AttemptReport::success(4_000_000, 900, 200);
        streamed.ttft_us = Some(35_000);
        streamed.committed = true;
        let mut retry = AttemptReport::failure(OutcomeClass::Overloaded, 529, 77);
        retry.retry_after_ms = Some(1);
        for r in [
            AttemptReport::default(),
            AttemptReport::success(1, 2, 3),
            limited,
            cached,
            messaged,
            streamed,
            retry,
        ] {
            let p = Pending::pack(r.clone());
            assert_eq!(p.duration_us(), r.duration_us);
            assert_eq!(p.unpack(), r);
        }
        assert_eq!(Pending::NONE.unpack(), AttemptReport::default());
    }
}
