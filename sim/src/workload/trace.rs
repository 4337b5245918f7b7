//! A recorded trace (our event log, exported or live) as a workload. A reorder buffer keeps
//! requests in arrival order and hands each one over once all its events have been read.

use super::{Arrival, Item, ItemResult, Recorded, RecordedAttempt};
use std::collections::{BTreeMap, VecDeque};
use switchyard_engine::core::event::{Event, RequestId};
use switchyard_engine::core::router::RequestInput;

enum Slot {
    Req(RequestId),
    Apply(u64, Event),
}

struct Pending {
    arrival: Arrival,
    complete: bool,
}

/// Turns `(seq, event)` pairs into workload items.
pub struct TraceWorkload<I: Iterator<Item = Result<(u64, Event), String>>> {
    events: I,
    order: VecDeque<Slot>,
    pending: BTreeMap<RequestId, Pending>,
    done: bool,
    /// The last config the trace applied (normalized JSON), for `sim report` and fitting.
    pub configs: Vec<String>,
    pub n_events: u64,
}

impl<I: Iterator<Item = Result<(u64, Event), String>>> TraceWorkload<I> {
    pub fn new(events: I) -> Self {
        TraceWorkload {
            events,
            order: VecDeque::new(),
            pending: BTreeMap::new(),
            done: false,
            configs: Vec::new(),
            n_events: 0,
        }
    }

    fn ready(&self) -> bool {
        match self.order.front() {
            None => false,
            Some(Slot::Apply(..)) => true,
            Some(Slot::Req(id)) => self.pending.get(id).is_none_or(|p| p.complete),
        }
    }

    fn feed(&mut self, seq: u64, ev: Event) {
        self.n_events += 1;
        match ev {
            Event::RequestReceived(r) => {
                let input = RequestInput {
                    key_id: r.key_id.clone(),
                    model: r.model.clone(),
                    endpoint: Some(r.endpoint),
                    tokens_in: r.tokens_in,
                    max_tokens: r.max_tokens,
                    stream: r.stream,
                    tags: r.tags.clone(),
                    headers: r.headers.clone(),
                    user: r.user.clone(),
                    prompt_sha: r.prompt_sha.clone(),
                    prompt: None,
                };
                let arrival = Arrival {
                    at: r.at,
                    input,
                    tokens_out: None,
                    key: None,
                    recorded: Some(Recorded {
                        id: r.id,
                        seed: r.seed,
                        seq,
                        attempts: Vec::new(),
                        finished: None,
                    }),
                };
                self.pending.insert(
                    r.id,
                    Pending {
                        arrival,
                        complete: false,
                    },
                );
                self.order.push_back(Slot::Req(r.id));
            }
            Event::AttemptDecided(d) => {
                if let Some(p) = self.pending.get_mut(&d.id) {
                    if let Some(rec) = p.arrival.recorded.as_mut() {
                        rec.attempts.push(RecordedAttempt {
                            decided_seq: seq,
                            decided: d,
                            finished: None,
                        });
                    }
                }
            }
            Event::AttemptFinished(f) => {
                if let Some(p) = self.pending.get_mut(&f.id) {
                    // The output length the request produced, for counterfactual sampling.
                    if f.class.is_success() || p.arrival.tokens_out.is_none() && f.tokens_out > 0 {
                        p.arrival.tokens_out = Some(f.tokens_out);
                    }
                    if let Some(rec) = p.arrival.recorded.as_mut() {
                        if let Some(a) = rec
                            .attempts
                            .iter_mut()
                            .rev()
                            .find(|a| a.decided.attempt == f.attempt)
                        {
                            a.finished = Some((seq, f));
                        }
                    }
                }
            }
            Event::RequestFinished(f) => {
                if let Some(p) = self.pending.get_mut(&f.id) {
                    if let Some(rec) = p.arrival.recorded.as_mut() {
                        rec.finished = Some((seq, f));
                    }
                    p.complete = true;
                }
            }
            Event::ProxyStarted(_) => {
                // Requests in flight at a restart were abandoned: they are complete as they are.
                for p in self.pending.values_mut() {
                    p.complete = true;
                }
                self.order.push_back(Slot::Apply(seq, ev));
            }
            Event::KeyCreated(_) | Event::KeyDeleted(_) => {
                self.order.push_back(Slot::Apply(seq, ev))
            }
            Event::ConfigApplied(c) => self.configs.push(c.content),
        }
    }
}

impl<I: Iterator<Item = Result<(u64, Event), String>>> Iterator for TraceWorkload<I> {
    type Item = ItemResult;

    fn next(&mut self) -> Option<ItemResult> {
        // Bounded by the trace: each turn consumes one event or emits one item.
        loop {
            if self.ready() || (self.done && !self.order.is_empty()) {
                return match self.order.pop_front().expect("checked non-empty") {
                    Slot::Apply(seq, event) => Some(Ok(Item::Apply { seq, event })),
                    Slot::Req(id) => match self.pending.remove(&id) {
                        Some(p) => Some(Ok(Item::Request(Box::new(p.arrival)))),
                        None => continue,
                    },
                };
            }
            if self.done {
                return None;
            }
            match self.events.next() {
                None => self.done = true,
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Some(Ok((seq, ev))) => self.feed(seq, ev),
            }
        }
    }
}
