//! The router: a sans-IO state machine that both the live proxy and the simulator drive.
//!
//! Push facts in, pull decisions out: `receive(now, request)` admits (or rejects) a request,
//! `poll(now, id)` says what to do next (attempt this deployment, wait until, or done),
//! `attempt_finished(now, id, report)` records an outcome. Each returns the events to log; those
//! events have already been applied, and `apply` is the only way state changes, so replaying a
//! log rebuilds the state exactly. No I/O, no clock, no thread RNG: time arrives as `now`,
//! randomness derives from each request's recorded seed.

use crate::config::{RoutingConfig, StickyBy};
use crate::core::event::*;
use crate::core::outcome::{OutcomeClass, RouteError};
use crate::core::rng::{mix, stable_hash, Rng};
use crate::core::select::{self, Small};
use crate::core::state::{policy_class, KeyState, LastOutcome, RequestState, State};
use crate::core::units::{DurationUs, InstantUs, PicoUsd, US_PER_MINUTE};
use std::sync::Arc;

/// Hard cap on attempts per request, whatever the config says: every loop is bounded.
pub const MAX_ATTEMPTS: u32 = 64;
/// A provider's `Retry-After` is honoured up to this long.
pub const MAX_RETRY_AFTER_MS: u64 = 60_000;

/// What the driver knows about a request when it arrives.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestInput {
    pub key_id: Option<Name>,
    pub model: Name,
    pub endpoint: Option<Endpoint>,
    pub tokens_in: u64,
    pub max_tokens: Option<u64>,
    pub stream: bool,
    pub tags: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub user: Option<String>,
    pub prompt_sha: String,
    pub prompt: Option<String>,
    pub overrides: RequestOverrides,
}

/// What the driver reports when an attempt ends.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttemptReport {
    pub class: Option<OutcomeClass>,
    pub status: u16,
    pub ttft_us: Option<u64>,
    pub duration_us: u64,
    pub tokens_in: u64,
    pub tokens_cache_read: u64,
    pub tokens_cache_creation: u64,
    pub tokens_out: u64,
    pub retry_after_ms: Option<u64>,
    pub rate_limit: RateLimitInfo,
    pub committed: bool,
    pub message: Option<String>,
}

impl AttemptReport {
    pub fn success(duration_us: u64, tokens_in: u64, tokens_out: u64) -> AttemptReport {
        AttemptReport {
            class: Some(OutcomeClass::Success),
            status: 200,
            duration_us,
            tokens_in,
            tokens_out,
            ..Default::default()
        }
    }

    pub fn failure(class: OutcomeClass, status: u16, duration_us: u64) -> AttemptReport {
        AttemptReport {
            class: Some(class),
            status,
            duration_us,
            ..Default::default()
        }
    }
}

/// One attempt to make.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptPlan {
    pub id: RequestId,
    pub attempt: u32,
    pub deployment: usize,
    /// Per-attempt timeout (`stream_timeout` for streams when set).
    pub timeout: DurationUs,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Poll {
    /// Make this attempt now; `event` (already applied) goes to the log.
    Attempt { event: Event, plan: AttemptPlan },
    /// Nothing to do before `until` (backoff, or waiting for a cooldown to end); poll again then.
    Wait { until: InstantUs },
    /// The request is over; `event` (already applied) goes to the log.
    Done { event: Event, result: RequestResult },
    /// An attempt is in flight: report it with `attempt_finished` first.
    InFlight,
    /// No such request (already finished, or never received).
    Unknown,
}

enum Step {
    Attempt {
        group: Name,
        reason: Reason,
        pick: select::Pick,
        eligible: Small<usize>,
        waited_us: u64,
    },
    Wait(InstantUs),
    Finish(RequestResult),
}

/// Where the request stands while `next_step` walks retries and fallbacks.
/// Borrows the request's lists until a fallback changes them (the common path copies nothing).
struct Cursor<'r> {
    group: Name,
    visited: std::borrow::Cow<'r, [Name]>,
    n_fallbacks: u32,
    attempts_in_group: u32,
    excluded: std::borrow::Cow<'r, [usize]>,
    reason: Reason,
    retrying: bool,
}

#[derive(Copy, Clone, PartialEq, Eq)]
enum FallbackKind {
    Generic,
    ContextWindow,
    ContentPolicy,
}

enum Availability {
    Picked {
        pick: select::Pick,
        eligible: Small<usize>,
    },
    Backoff(InstantUs),
    Unavailable {
        until: InstantUs,
    },
    TooLong {
        max: u64,
    },
    NoTagMatch,
}

pub struct Router {
    st: State,
    seed: u64,
}

impl Router {
    pub fn new(cfg: Arc<RoutingConfig>, seed: u64) -> Router {
        Router {
            st: State::new(cfg),
            seed,
        }
    }

    pub fn config(&self) -> &Arc<RoutingConfig> {
        &self.st.cfg
    }

    pub fn state(&self) -> &State {
        &self.st
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Replaces the config (reload), keeping state for deployments and keys that remain.
    pub fn reconfigure(&mut self, cfg: Arc<RoutingConfig>) {
        self.st.reconfigure(cfg);
    }

    pub fn snapshot(&self, config_hash: &str) -> crate::core::state::Snapshot {
        self.st.snapshot(config_hash)
    }

    /// Restores state from a snapshot taken under the same config.
    pub fn restore(&mut self, s: crate::core::state::Snapshot, config_hash: &str) -> bool {
        self.st.restore(s, config_hash)
    }

    /// Folds one event into the state (restart replay, and internally for every decision).
    pub fn apply(&mut self, ev: &Event) {
        self.st.apply(ev);
    }

    pub fn next_request_id(&self) -> RequestId {
        self.st.next_request_id
    }

    /// Starts loading request `id`'s state into the cache (see `hint`); changes nothing.
    #[inline]
    pub fn prefetch(&self, id: RequestId) {
        if let Some(r) = self.st.requests.get(&id) {
            crate::core::hint::prefetch(&**r);
            crate::core::hint::prefetch(&*r.received);
        }
    }

    /// Starts loading the slot request `id`'s state would take (see `hint`); changes nothing.
    #[inline]
    pub fn prefetch_slot(&self, id: RequestId) {
        self.st.requests.prefetch_slot(id);
    }

    /// Requests currently in flight.
    pub fn requests_in_flight(&self) -> usize {
        self.st.requests.len()
    }

    /// The earliest future instant at which a cooldown ends.
    pub fn next_deadline(&self, now: InstantUs) -> Option<InstantUs> {
        self.st
            .deployments
            .iter()
            .map(|d| d.cooldown_until)
            .filter(|&t| t > now)
            .min()
    }

    /// Looks a virtual key up by the SHA-256 (hex) of the secret the client sent.
    pub fn key_by_hash(&self, hash_hex: &str) -> Option<&KeyState> {
        let id = self.st.key_by_hash.get(hash_hex)?;
        self.st.keys.get(id).filter(|k| !k.deleted)
    }

    pub fn key(&self, id: &str) -> Option<&KeyState> {
        self.st.keys.get(id)
    }

    /// Model groups and aliases a key may call (all of them without a key).
    pub fn models_for(&self, key_id: Option<&str>) -> Vec<String> {
        let cfg = &self.st.cfg;
        let mut names: Vec<String> = cfg.groups.keys().cloned().collect();
        names.extend(
            cfg.aliases
                .keys()
                .filter(|a| !cfg.hidden_aliases.contains(a))
                .cloned(),
        );
        if let Some(k) = key_id.and_then(|id| self.st.keys.get(id)) {
            names.extend(k.def.aliases.keys().cloned());
            if !k.def.models.is_empty() && !k.def.models.iter().any(|m| m == "*") {
                names.retain(|n| k.def.models.contains(n) || k.def.aliases.contains_key(n));
            }
        }
        names.sort();
        names.dedup();
        names
    }

    /// Admits or rejects a request. `recorded` replays a logged request's id and seed (the
    /// simulator); otherwise the next id is used and the seed derived from the router's seed.
    pub fn receive(
        &mut self,
        now: InstantUs,
        input: RequestInput,
        recorded: Option<(RequestId, u64)>,
    ) -> Event {
        let (id, seed) = recorded.unwrap_or_else(|| {
            let id = self.st.next_request_id;
            (id, mix(self.seed ^ mix(id)))
        });
        let admission = self.admit(now, &input);
        let ev = Event::RequestReceived(Arc::new(RequestReceived {
            at: now,
            id,
            seed,
            key_id: input.key_id,
            model: input.model,
            endpoint: input.endpoint.unwrap_or(Endpoint::Chat),
            tokens_in: input.tokens_in,
            max_tokens: input.max_tokens,
            stream: input.stream,
            tags: input.tags,
            headers: input.headers,
            user: input.user,
            prompt_sha: input.prompt_sha,
            prompt: input.prompt,
            admission,
            overrides: input.overrides,
        }));
        self.st.apply(&ev);
        ev
    }

    fn resolve_group(&self, name: &str) -> Option<(Name, Option<Name>)> {
        let cfg = &self.st.cfg;
        let name = cfg.aliases.get(name).map(String::as_str).unwrap_or(name);
        if let Some(g) = self.st.groups.get(name) {
            return Some((g.name.clone(), None));
        }
        // A deployment id: the request pins that deployment.
        let &i = self.st.index.get(name)?;
        let d = &cfg.deployments[i];
        Some((
            self.st.group_name(&d.model_group),
            Some(self.st.names[i].clone()),
        ))
    }

    fn admit(&self, now: InstantUs, input: &RequestInput) -> Admission {
        let cfg = &self.st.cfg;
        let key = match &input.key_id {
            Some(id) => match self.st.keys.get(&**id) {
                Some(k) if !k.deleted => Some(k),
                _ => {
                    return Admission::Rejected(Box::new(
                        RouteError::new(
                            401,
                            "authentication_error",
                            "Authentication Error, invalid or deleted key",
                        )
                        .with_code("401"),
                    ))
                }
            },
            None => None,
        };
        // Key alias, then escalation rules, then router aliases / groups / deployment ids.
        let mut name: &str = &input.model;
        if let Some(k) = key {
            if let Some(t) = k.def.aliases.get(name) {
                name = t;
            }
        }
        let mut reason = Reason::Primary;
        let base = self.resolve_group(name);
        let mut resolved = base.clone();
        for esc in &cfg.escalations {
            let applies = match (&esc.from, &base) {
                (None, _) => true,
                (Some(f), Some((g, _))) => **g == **f || name == f,
                (Some(f), None) => name == f,
            };
            let hit = applies
                && input
                    .headers
                    .iter()
                    .any(|(h, v)| *h == esc.header && esc.values.iter().any(|x| x == v));
            if hit {
                if let Some(r) = self.resolve_group(&esc.to) {
                    resolved = Some(r);
                    reason = Reason::Escalation;
                    break;
                }
            }
        }
        let Some((group, pinned)) = resolved else {
            let available = self.models_for(input.key_id.as_deref());
            return Admission::Rejected(Box::new(
                RouteError::new(
                    400,
                    "invalid_request_error",
                    format!(
                        "Invalid model name passed in model={}. Call `/v1/models` to view available models for your key. Available: {}",
                        input.model,
                        available.join(", ")
                    ),
                )
                .with_code("model_not_found")
                .with_param("model"),
            ));
        };
        let allowed = |asked: &str, resolved: &str, group: &str| {
            key.is_none_or(|k| {
                k.def.models.is_empty()
                    || k.def
                        .models
                        .iter()
                        .any(|m| m == "*" || m == asked || m == resolved || m == group)
            })
        };
        let denied = |asked: &str, param: &str| {
            let models = key.map(|k| k.def.models.clone()).unwrap_or_default();
            Admission::Rejected(Box::new(
                RouteError::new(
                    401,
                    "key_model_access_denied",
                    format!("key not allowed to access model. This key can only access models={models:?}. Tried to access {asked}"),
                )
                .with_code("401")
                .with_param(param),
            ))
        };
        if !allowed(&input.model, name, &group) {
            return denied(&input.model, "model");
        }
        // Request-level fallbacks name model groups the caller must be allowed to use.
        for (i, f) in input.overrides.fallbacks.iter().flatten().enumerate() {
            let target = key
                .and_then(|k| k.def.aliases.get(f.as_str()))
                .map(String::as_str)
                .unwrap_or(f);
            let Some(fg) = self
                .resolve_group(target)
                .filter(|(_, pinned)| pinned.is_none())
                .map(|(g, _)| g)
            else {
                return Admission::Rejected(Box::new(
                    RouteError::new(
                        400,
                        "invalid_request_error",
                        format!(
                            "fallbacks[{i}]: `{f}` is not a model group. Available: {}",
                            self.models_for(input.key_id.as_deref()).join(", ")
                        ),
                    )
                    .with_code("model_not_found")
                    .with_param("fallbacks"),
                ));
            };
            if !allowed(f, target, &fg) {
                return denied(f, "fallbacks");
            }
        }
        let Some(k) = key else {
            return Admission::Admitted {
                group,
                pinned,
                reason,
                reserved: PicoUsd::ZERO,
            };
        };
        let d = &k.def;
        let to_next_minute = US_PER_MINUTE - now.0 % US_PER_MINUTE;
        let limited = |what: &str, current: u64, limit: u64| {
            let mut e = RouteError::new(
                429,
                "rate_limit_error",
                format!("Rate limit exceeded for key: {what} limit {limit}, current {current}. Try again in {} seconds.", to_next_minute.div_ceil(1_000_000)),
            )
            .with_code("429");
            e.retry_after_ms = Some(to_next_minute.div_ceil(1000));
            e
        };
        if let Some(lim) = d.max_parallel_requests {
            if k.in_flight >= lim {
                let mut e = limited("max_parallel_requests", k.in_flight, lim);
                e.retry_after_ms = Some(1000);
                e.message = format!(
                    "Max parallel request limit reached for key: {lim} requests in flight."
                );
                return Admission::Rejected(Box::new(e));
            }
        }
        if let Some(lim) = d.rpm_limit {
            let cur = k.window.requests_at(now);
            if cur >= lim {
                return Admission::Rejected(Box::new(limited("rpm", cur, lim)));
            }
        }
        if let Some(lim) = d.tpm_limit {
            let cur = k.window.tokens_at(now);
            if cur >= lim {
                return Admission::Rejected(Box::new(limited("tpm", cur, lim)));
            }
        }
        let mut reserved = PicoUsd::ZERO;
        if let Some(budget) = d.max_budget {
            let estimate = self.cost_estimate(&group, input);
            let committed = k.spend.saturating_add(k.reserved);
            if committed.saturating_add(estimate) > budget || k.spend >= budget {
                return Admission::Rejected(Box::new(
                    RouteError::new(
                        400,
                        "budget_exceeded",
                        format!(
                            "Budget has been exceeded! Current cost: {}, reserved by requests in flight: {}, this request may cost up to {}, Max budget: {}",
                            k.spend.to_usd_string(),
                            k.reserved.to_usd_string(),
                            estimate.to_usd_string(),
                            budget.to_usd_string()
                        ),
                    )
                    .with_code("400"),
                ));
            }
            reserved = estimate;
        }
        Admission::Admitted {
            group,
            pinned,
            reason,
            reserved,
        }
    }

    /// Worst-case cost of a request over its group's deployments: reserved against a budget.
    fn cost_estimate(&self, group: &str, input: &RequestInput) -> PicoUsd {
        let cfg = &self.st.cfg;
        let out = input
            .max_tokens
            .unwrap_or(cfg.default_output_tokens_estimate);
        let members = self.st.members(group);
        members
            .iter()
            .map(|&i| {
                let p = &cfg.deployments[i].prices;
                p.input_per_token
                    .times(input.tokens_in)
                    .saturating_add(p.output_per_token.times(out))
            })
            .max()
            .unwrap_or_default()
    }

    /// What to do next for request `id`.
    pub fn poll(&mut self, now: InstantUs, id: RequestId) -> Poll {
        let Some(r) = self.st.requests.get(&id) else {
            return Poll::Unknown;
        };
        if r.in_flight.is_some() {
            return Poll::InFlight;
        }
        match self.next_step(now, r) {
            Step::Wait(until) => Poll::Wait { until },
            Step::Finish(result) => {
                let ev = self.finish_event(now, r, result.clone());
                self.st.apply(&ev);
                Poll::Done { event: ev, result }
            }
            Step::Attempt {
                group,
                reason,
                pick,
                eligible,
                waited_us,
            } => {
                let cfg = &self.st.cfg;
                let stream = r.received.stream;
                let timeout = match r.received.overrides.timeout_us {
                    Some(t) => DurationUs(t),
                    None => cfg.attempt_timeout(pick.deployment, stream),
                };
                let attempt = r.n_attempts;
                let ev = Event::AttemptDecided(Box::new(AttemptDecided {
                    at: now,
                    id,
                    attempt,
                    group,
                    deployment: self.st.names[pick.deployment].clone(),
                    reason,
                    explored: pick.explored,
                    candidates: eligible.iter().map(|&i| self.st.names[i].clone()).collect(),
                    probability: pick.probability,
                    waited_us,
                }));
                self.st.apply(&ev);
                Poll::Attempt {
                    event: ev,
                    plan: AttemptPlan {
                        id,
                        attempt,
                        deployment: pick.deployment,
                        timeout,
                    },
                }
            }
        }
    }

    /// Records the outcome of the attempt in flight for request `id`. The cost is computed here
    /// from the deployment's prices and the reported usage.
    pub fn attempt_finished(
        &mut self,
        now: InstantUs,
        id: RequestId,
        report: AttemptReport,
    ) -> Option<Event> {
        let r = self.st.requests.get(&id)?;
        let (attempt, d) = r.in_flight?;
        let dep = &self.st.cfg.deployments[d];
        let cost = dep.prices.cost(
            report.tokens_in,
            report.tokens_cache_read,
            report.tokens_cache_creation,
            report.tokens_out,
        );
        let ev = Event::AttemptFinished(Box::new(AttemptFinished {
            at: now,
            id,
            attempt,
            deployment: self.st.names[d].clone(),
            class: report.class.unwrap_or(OutcomeClass::Success),
            status: report.status,
            stream: r.received.stream,
            ttft_us: report.ttft_us,
            duration_us: report.duration_us,
            tokens_in: report.tokens_in,
            tokens_cache_read: report.tokens_cache_read,
            tokens_cache_creation: report.tokens_cache_creation,
            tokens_out: report.tokens_out,
            cost,
            retry_after_ms: report.retry_after_ms,
            rate_limit: report.rate_limit,
            committed: report.committed,
            message: report.message,
        }));
        self.st.apply(&ev);
        Some(ev)
    }

    fn finish_event(&self, now: InstantUs, r: &RequestState, result: RequestResult) -> Event {
        let latency_us = now.since(r.received.at).0;
        Event::RequestFinished(Box::new(RequestFinished {
            at: now,
            id: r.received.id,
            result,
            latency_us,
            ttft_us: r.ttft_us,
            cost: r.cost,
            n_attempts: r.n_attempts,
            n_fallbacks: r.n_fallbacks,
            deployment: r.last_deployment.map(|d| self.st.names[d].clone()),
            tokens_in: r.tokens_in,
            tokens_out: r.tokens_out,
        }))
    }

    fn next_step(&self, now: InstantUs, r: &RequestState) -> Step {
        let cfg = &self.st.cfg;
        if let Admission::Rejected(e) = &r.received.admission {
            return Step::Finish(RequestResult::Err((**e).clone()));
        }
        if r.succeeded {
            return Step::Finish(RequestResult::Ok);
        }
        let Some(group) = r.group.clone() else {
            return Step::Finish(RequestResult::Err(RouteError::new(
                500,
                "api_error",
                "request has no model group",
            )));
        };
        let mut cur = Cursor {
            group,
            visited: std::borrow::Cow::Borrowed(&r.visited),
            n_fallbacks: r.n_fallbacks,
            attempts_in_group: r.attempts_in_group,
            excluded: std::borrow::Cow::Borrowed(&r.excluded),
            reason: r.first_reason,
            retrying: false,
        };
        // The error the request ends with if nothing else can be tried.
        let mut last_err: Option<RouteError> = None;
        if r.received.overrides.mock_testing_fallbacks && r.n_attempts == 0 && r.n_fallbacks == 0 {
            // The requested group fails at once, without a provider call, so the fallbacks run.
            let err = RouteError::new(
                500,
                "api_error",
                format!(
                    "This is a mock exception for model={}, to trigger a fallback (mock_testing_fallbacks). Fallbacks={:?}",
                    cur.group,
                    self.fallback_list(FallbackKind::Generic, &cur.group, &r.received.model, r)
                        .collect::<Vec<_>>()
                ),
            )
            .with_code("500");
            if !self.fall_back(&mut cur, FallbackKind::Generic, r) {
                return Step::Finish(RequestResult::Err(err));
            }
            last_err = Some(err);
        }
        if let Some(last) = &r.last {
            let err = self.error_from(r, last);
            if last.committed
                || last.class == OutcomeClass::Cancelled
                || r.n_attempts >= MAX_ATTEMPTS
            {
                return Step::Finish(RequestResult::Err(err));
            }
            let orig = r.original_group.as_deref().unwrap_or("");
            // Looked up only for the classes that have a fallback list of their own.
            let has = |kind| {
                self.fallback_list(kind, orig, &r.received.model, r)
                    .next()
                    .is_some()
            };
            let kind = match last.class {
                OutcomeClass::ContextWindowExceeded if has(FallbackKind::ContextWindow) => {
                    Some(FallbackKind::ContextWindow)
                }
                OutcomeClass::ContentPolicy if has(FallbackKind::ContentPolicy) => {
                    Some(FallbackKind::ContentPolicy)
                }
                _ => {
                    let retries = self.retries_for(
                        &cur.group,
                        last.class,
                        last.deployment,
                        r.received.overrides.num_retries,
                    );
                    if self.retryable(last, &cur.group) && cur.attempts_in_group <= retries {
                        cur.reason = Reason::Retry;
                        cur.retrying = true;
                        None
                    } else {
                        Some(FallbackKind::Generic)
                    }
                }
            };
            last_err = Some(err);
            if let Some(kind) = kind {
                if !self.fall_back(&mut cur, kind, r) {
                    return Step::Finish(RequestResult::Err(last_err.expect("set above")));
                }
            }
        }
        // Bounded: each iteration either returns or moves to a group not yet visited.
        for _ in 0..=(cfg.groups.len() + 1) {
            match self.availability(now, r, &cur) {
                Availability::Picked { pick, eligible } => {
                    let waited_us = match &r.last {
                        Some(l) => now.since(l.at).0,
                        None => now.since(r.received.at).0,
                    };
                    return Step::Attempt {
                        group: cur.group,
                        reason: cur.reason,
                        pick,
                        eligible,
                        waited_us,
                    };
                }
                Availability::Backoff(until) => return Step::Wait(until),
                Availability::NoTagMatch => {
                    return Step::Finish(RequestResult::Err(
                        RouteError::new(
                            400,
                            "invalid_request_error",
                            format!(
                                "No deployment of model group `{}` matches the request's tags {:?}",
                                cur.group,
                                self.request_tags(r)
                            ),
                        )
                        .with_param("tags"),
                    ))
                }
                Availability::TooLong { max } => {
                    let err = RouteError::new(
                        400,
                        "invalid_request_error",
                        format!(
                            "This model's maximum context length is {max} tokens. However, your messages resulted in {} tokens. Received Model Group={}",
                            r.received.tokens_in, cur.group
                        ),
                    )
                    .with_code("context_length_exceeded")
                    .with_param("messages");
                    if self.fall_back(&mut cur, FallbackKind::ContextWindow, r) {
                        last_err = Some(err);
                        continue;
                    }
                    return Step::Finish(RequestResult::Err(err));
                }
                Availability::Unavailable { until } => {
                    let reference = r.last.as_ref().map_or(r.received.at, |l| l.at);
                    if cfg.wait_for_cooldown.0 > 0
                        && until.since(reference) <= cfg.wait_for_cooldown
                    {
                        return Step::Wait(until);
                    }
                    let secs = until.since(now).as_secs_ceil().max(1);
                    let mut err = RouteError::new(
                        429,
                        "rate_limit_error",
                        format!(
                            "No deployments available for selected model, Try again in {secs} seconds. Passed model={}. pre-call-checks={}",
                            cur.group, cfg.enable_pre_call_checks
                        ),
                    )
                    .with_code("429");
                    err.retry_after_ms = Some(until.since(now).as_ms_ceil().max(1));
                    if self.fall_back(&mut cur, FallbackKind::Generic, r) {
                        last_err = Some(err);
                        continue;
                    }
                    // The provider's error is more useful than "no deployments" when there was one.
                    return Step::Finish(RequestResult::Err(match (last_err, cur.retrying) {
                        (Some(e), true) => e,
                        _ => err,
                    }));
                }
            }
        }
        Step::Finish(RequestResult::Err(last_err.unwrap_or_else(|| {
            RouteError::new(500, "api_error", "routing did not converge")
        })))
    }

    fn request_tags(&self, r: &RequestState) -> Vec<String> {
        let mut tags = r.received.tags.clone();
        if let Some(k) = r
            .received
            .key_id
            .as_deref()
            .and_then(|id| self.st.keys.get(id))
        {
            tags.extend(k.def.tags.iter().cloned());
        }
        tags
    }

    /// Moves the cursor to the next fallback group; false when there is none.
    fn fall_back(&self, cur: &mut Cursor, kind: FallbackKind, r: &RequestState) -> bool {
        let cfg = &self.st.cfg;
        if cur.n_fallbacks >= cfg.max_fallbacks {
            return false;
        }
        let orig = r.original_group.as_deref().unwrap_or("");
        let from_request =
            kind == FallbackKind::Generic && r.received.overrides.fallbacks.is_some();
        let key = r
            .received
            .key_id
            .as_deref()
            .and_then(|id| self.st.keys.get(id));
        for g in self.fallback_list(kind, orig, &r.received.model, r) {
            // A client's own list may use its key's model aliases, as its `model` can.
            let g = match key.filter(|_| from_request) {
                Some(k) => k.def.aliases.get(g).map(String::as_str).unwrap_or(g),
                None => g,
            };
            let name = cfg.aliases.get(g).map(String::as_str).unwrap_or(g);
            if !self.st.has_group(name) || cur.visited.iter().any(|v| **v == *name) {
                continue;
            }
            let n = self.st.group_name(name);
            cur.visited.to_mut().push(n.clone());
            cur.group = n;
            cur.n_fallbacks += 1;
            cur.attempts_in_group = 0;
            cur.excluded = std::borrow::Cow::Borrowed(&[]);
            cur.retrying = false;
            cur.reason = match kind {
                FallbackKind::Generic => Reason::Fallback,
                FallbackKind::ContextWindow => Reason::ContextWindow,
                FallbackKind::ContentPolicy => Reason::ContentPolicy,
            };
            return true;
        }
        false
    }

    /// The fallback groups to try, in order: the request's own list or the config's list for the
    /// group (or the requested name), then — for generic fallbacks — `default_fallbacks`.
    fn fallback_list<'a>(
        &'a self,
        kind: FallbackKind,
        group: &str,
        requested: &str,
        r: &'a RequestState,
    ) -> impl Iterator<Item = &'a str> + Clone + 'a {
        let cfg = &self.st.cfg;
        let (first, then): (&[String], &[String]) = match (kind, &r.received.overrides.fallbacks) {
            (FallbackKind::Generic, Some(list)) => (list, &[]),
            _ => {
                let map = match kind {
                    FallbackKind::Generic => &cfg.fallbacks,
                    FallbackKind::ContextWindow => &cfg.context_window_fallbacks,
                    FallbackKind::ContentPolicy => &cfg.content_policy_fallbacks,
                };
                let first = map
                    .get(group)
                    .or_else(|| map.get(requested))
                    .map_or(&[][..], Vec::as_slice);
                let then = match kind {
                    FallbackKind::Generic => cfg.default_fallbacks.as_slice(),
                    _ => &[],
                };
                (first, then)
            }
        };
        first.iter().chain(then).map(String::as_str)
    }

    fn retries_for(
        &self,
        group: &str,
        class: OutcomeClass,
        deployment: usize,
        requested: Option<u32>,
    ) -> u32 {
        let cfg = &self.st.cfg;
        let by_class = |p: &crate::config::RetryPolicy| -> Option<u32> {
            match policy_class(class)? {
                0 => p.bad_request,
                1 => p.authentication,
                2 => p.timeout,
                3 => p.rate_limit,
                4 => p.content_policy,
                _ => p.internal_server,
            }
        };
        cfg.model_group_retry_policy
            .get(group)
            .and_then(by_class)
            .or_else(|| by_class(&cfg.retry_policy))
            .or(requested)
            .or(cfg.deployments[deployment].num_retries)
            .unwrap_or(cfg.num_retries)
    }

    fn retryable(&self, last: &LastOutcome, group: &str) -> bool {
        let cfg = &self.st.cfg;
        let explicit = |f: fn(&crate::config::RetryPolicy) -> Option<u32>| {
            cfg.model_group_retry_policy
                .get(group)
                .and_then(f)
                .or_else(|| f(&cfg.retry_policy))
                .unwrap_or(0)
                > 0
        };
        match last.class {
            OutcomeClass::RateLimited
            | OutcomeClass::Timeout
            | OutcomeClass::ConnectionError
            | OutcomeClass::ServerError
            | OutcomeClass::Overloaded
            | OutcomeClass::StreamInterrupted => true,
            // A 401 on the only deployment will not change on retry.
            OutcomeClass::AuthError => {
                self.st.members(group).len() > 1 || explicit(|p| p.authentication)
            }
            OutcomeClass::BadRequest | OutcomeClass::ContextWindowExceeded => {
                explicit(|p| p.bad_request)
            }
            OutcomeClass::ContentPolicy => explicit(|p| p.content_policy),
            OutcomeClass::NotFound | OutcomeClass::Success | OutcomeClass::Cancelled => false,
        }
    }

    fn error_from(&self, r: &RequestState, last: &LastOutcome) -> RouteError {
        let status = if last.status >= 400 {
            last.status
        } else {
            last.class.default_status()
        };
        let dep = &self.st.cfg.deployments[last.deployment];
        let detail = last
            .message
            .clone()
            .unwrap_or_else(|| last.class.name().replace('_', " "));
        let group = r.group.as_deref().unwrap_or("");
        let mut e = RouteError::new(
            status,
            last.class.error_type(),
            format!(
                "{detail}. Received Model Group={group} (deployment {}, after {} attempt(s))",
                dep.id, r.n_attempts
            ),
        );
        if last.class == OutcomeClass::ContextWindowExceeded {
            e.code = Some("context_length_exceeded".into());
        }
        if last.class == OutcomeClass::ContentPolicy {
            e.code = Some("content_policy_violation".into());
        }
        e.retry_after_ms = last.retry_after_ms;
        e
    }

    fn sticky_hash(&self, r: &RequestState, group: &str) -> Option<u64> {
        let attr: Option<&str> = match self.st.cfg.sticky.as_ref()? {
            StickyBy::User => r.received.user.as_deref(),
            StickyBy::Key => r.received.key_id.as_deref(),
            StickyBy::Header(h) => r
                .received
                .headers
                .iter()
                .find(|(k, _)| k == h)
                .map(|(_, v)| v.as_str()),
        };
        let attr = attr?;
        let mut bytes = Vec::with_capacity(attr.len() + group.len() + 1);
        bytes.extend_from_slice(attr.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(group.as_bytes());
        Some(stable_hash(&bytes))
    }

    fn availability(&self, now: InstantUs, r: &RequestState, cur: &Cursor) -> Availability {
        let cfg = &self.st.cfg;
        let members_all: &[usize] = match r.pinned {
            Some(ref p) => std::slice::from_ref(p),
            None => self.st.members(&cur.group),
        };
        // Tag filtering (LiteLLM): deployments sharing a tag with the request; else those tagged
        // `default`; untagged requests go to `default` deployments when there are any.
        let tagged: Small<usize>;
        let members: &[usize] = if cfg.enable_tag_filtering {
            let has = |i: usize, t: &str| cfg.deployments[i].tags.iter().any(|x| x == t);
            let key_tags: &[String] = r
                .received
                .key_id
                .as_deref()
                .and_then(|id| self.st.keys.get(id))
                .map_or(&[], |k| k.def.tags.as_slice());
            let tags = r.received.tags.iter().chain(key_tags);
            let defaults = || -> Small<usize> {
                members_all
                    .iter()
                    .copied()
                    .filter(|&i| has(i, "default"))
                    .collect()
            };
            tagged = if r.received.tags.is_empty() && key_tags.is_empty() {
                let d = defaults();
                if d.is_empty() {
                    members_all.iter().copied().collect()
                } else {
                    d
                }
            } else {
                let m: Small<usize> = members_all
                    .iter()
                    .copied()
                    .filter(|&i| tags.clone().any(|t| has(i, t)))
                    .collect();
                if m.is_empty() {
                    defaults()
                } else {
                    m
                }
            };
            if tagged.is_empty() {
                return Availability::NoTagMatch;
            }
            &tagged
        } else {
            members_all
        };
        let tokens_in = r.received.tokens_in;
        let next_minute = InstantUs((now.minute() + 1) * US_PER_MINUTE);
        let mut eligible: Small<usize> = Small::new();
        let mut until: Option<InstantUs> = None;
        let mut too_long: Option<u64> = None;
        for &i in members {
            let d = &cfg.deployments[i];
            let ds = &self.st.deployments[i];
            if ds.cooling(now) {
                until = Some(until.map_or(ds.cooldown_until, |u| u.min(ds.cooldown_until)));
                continue;
            }
            if let Some(max) = d.max_input_tokens {
                if tokens_in > max {
                    too_long = Some(too_long.map_or(max, |m| m.max(max)));
                    continue;
                }
            }
            let over_rpm = d
                .rpm
                .is_some_and(|lim| ds.window.requests_at(now) + 1 > lim);
            let over_tpm = d
                .tpm
                .is_some_and(|lim| ds.window.tokens_at(now) + tokens_in > lim);
            if over_rpm || over_tpm {
                until = Some(until.map_or(next_minute, |u| u.min(next_minute)));
                continue;
            }
            eligible.push(i);
        }
        if eligible.is_empty() {
            if let Some(u) = until {
                return Availability::Unavailable { until: u };
            }
            if let Some(max) = too_long {
                return Availability::TooLong { max };
            }
            return Availability::Unavailable { until: now };
        }
        let attempt = r.n_attempts as u64;
        let any_preferred =
            cur.excluded.is_empty() || eligible.iter().any(|i| !cur.excluded.contains(i));
        let candidates = if any_preferred {
            if !cur.excluded.is_empty() {
                eligible.retain(|i| !cur.excluded.contains(i));
            }
            eligible
        } else {
            // Only deployments that already failed remain: wait before trying one again.
            if cur.retrying {
                if let Some(last) = &r.last {
                    let deadline = last.at.plus(self.backoff(r, last, cur.attempts_in_group));
                    if now < deadline {
                        return Availability::Backoff(deadline);
                    }
                }
            }
            eligible
        };
        let mut rng = Rng::derive(r.received.seed, attempt);
        let mut explore = Rng::derive(r.received.seed, 0xE000_0000 + attempt);
        let sticky = self.sticky_hash(r, &cur.group);
        let pick = select::pick(
            cfg,
            &self.st,
            now,
            &candidates,
            r.received.stream,
            &mut rng,
            &mut explore,
            sticky,
        );
        Availability::Picked {
            pick,
            eligible: candidates,
        }
    }

    /// LiteLLM's wait before retrying on a deployment that just failed: the provider's
    /// `Retry-After` (up to 60 s), else `min(0.5 * 2^n, 8)` s plus up to 25 % jitter; never less
    /// than the router's `retry_after`.
    fn backoff(&self, r: &RequestState, last: &LastOutcome, attempts_in_group: u32) -> DurationUs {
        let cfg = &self.st.cfg;
        let base = match last.retry_after_ms {
            Some(ms) => DurationUs::from_ms(ms.min(MAX_RETRY_AFTER_MS)),
            None => {
                let n = attempts_in_group.saturating_sub(1).min(10);
                let ms = (500u64 << n).min(8_000);
                let mut rng = Rng::derive(r.received.seed, 0xB000_0000 + r.n_attempts as u64);
                let jitter = rng.below(ms * 1000 / 4 + 1);
                DurationUs(ms * 1000 + jitter)
            }
        };
        base.max(cfg.retry_after)
    }
}
