//! A recorded trace (our event log, exported or live) as a workload: each event becomes an item,
//! in the trace's order. Nothing is buffered — the simulator joins a request's recorded steps
//! as they stream by, so memory grows with the requests in flight, not with the trace.

use super::{Arrival, Item, ItemResult, Recorded};
use switchyard_engine::core::event::{Admission, Event};
use switchyard_engine::core::router::RequestInput;

pub struct TraceWorkload<I: Iterator<Item = Result<(u64, Event), String>>> {
    events: I,
    /// Configs the trace applied (normalized JSON), in order.
    pub configs: Vec<String>,
    pub n_events: u64,
}

impl<I: Iterator<Item = Result<(u64, Event), String>>> TraceWorkload<I> {
    pub fn new(events: I) -> Self {
        TraceWorkload {
            events,
            configs: Vec::new(),
            n_events: 0,
        }
    }
}

impl<I: Iterator<Item = Result<(u64, Event), String>>> Iterator for TraceWorkload<I> {
    type Item = ItemResult;

    fn next(&mut self) -> Option<ItemResult> {
        // Bounded by the trace: each turn consumes one event.
        loop {
            let (seq, ev) = match self.events.next()? {
                Ok(x) => x,
                Err(e) => return Some(Err(e)),
            };
            self.n_events += 1;
            return Some(Ok(match ev {
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
                        overrides: r.overrides.clone(),
                    };
                    Item::Request(Box::new(Arrival {
                        at: r.at,
                        input,
                        tokens_out: None,
                        key: None,
                        recorded: Some(Recorded {
                            id: r.id,
                            seed: r.seed,
                            seq,
                            admitted: matches!(r.admission, Admission::Admitted { .. }),
                        }),
                    }))
                }
                Event::AttemptDecided(_)
                | Event::AttemptFinished(_)
                | Event::RequestFinished(_) => Item::Step {
                    seq,
                    event: Box::new(ev),
                },
                Event::ProxyStarted(_) | Event::KeyCreated(_) | Event::KeyDeleted(_) => {
                    Item::Apply {
                        seq,
                        event: Box::new(ev),
                    }
                }
                Event::ConfigApplied(c) => {
                    self.configs.push(c.content);
                    continue;
                }
            }));
        }
    }
}
