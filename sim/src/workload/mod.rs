//! Workloads: what arrives when. Three sources, one stream of [`Item`]s in time order:
//! a recorded trace (with each request's recorded attempts, so outcomes can be reused), a
//! workload file of arrivals (`sim import`, `sim synth`), and the generators behind those.
//! Everything streams: memory grows with the requests in flight, not with the trace's length.

pub mod arrivals;
pub mod import;
pub mod synth;
pub mod trace;

use switchyard_engine::core::event::{
    AttemptDecided, AttemptFinished, Event, RequestFinished, RequestId,
};
use switchyard_engine::core::router::RequestInput;
use switchyard_engine::core::units::InstantUs;

/// A request's recorded path through the live proxy.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub id: RequestId,
    pub seed: u64,
    pub seq: u64,
    pub attempts: Vec<RecordedAttempt>,
    pub finished: Option<(u64, RequestFinished)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RecordedAttempt {
    pub decided_seq: u64,
    pub decided: AttemptDecided,
    pub finished: Option<(u64, AttemptFinished)>,
}

/// One request to replay.
#[derive(Clone, Debug, PartialEq)]
pub struct Arrival {
    pub at: InstantUs,
    pub input: RequestInput,
    /// Output tokens the request generates (from the trace or the workload), if known.
    pub tokens_out: Option<u64>,
    /// Key alias or id named by a workload file (resolved against the config by the simulator).
    pub key: Option<String>,
    pub recorded: Option<Recorded>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Request(Box<Arrival>),
    /// A recorded event that changes router state by itself (keys, restarts), at its seq.
    Apply {
        seq: u64,
        event: Event,
    },
}

impl Item {
    pub fn at(&self) -> InstantUs {
        match self {
            Item::Request(a) => a.at,
            Item::Apply { event, .. } => event.at(),
        }
    }
}

pub type ItemResult = Result<Item, String>;
