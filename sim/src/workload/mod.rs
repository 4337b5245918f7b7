//! Workloads: what arrives when. Three sources, one stream of [`Item`]s in time order:
//! a recorded trace (with each request's recorded attempts, so outcomes can be reused), a
//! workload file of arrivals (`sim import`, `sim synth`), and the generators behind those.
//! Everything streams: memory grows with the requests in flight, not with the trace's length.

pub mod arrivals;
pub mod import;
pub mod synth;
pub mod trace;

use switchyard_engine::core::event::{Event, RequestId};
use switchyard_engine::core::router::RequestInput;
use switchyard_engine::core::units::InstantUs;

/// Identifies a recorded request: its id and seed in the trace, and the seq of its arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub id: RequestId,
    pub seed: u64,
    pub seq: u64,
    /// The live proxy admitted it (it knew the model).
    pub admitted: bool,
}

/// One request to replay.
#[derive(Clone, Debug, PartialEq)]
pub struct Arrival {
    pub at: InstantUs,
    pub input: RequestInput,
    /// Output tokens the request generates (from the workload), if known.
    pub tokens_out: Option<u64>,
    /// Key alias or id named by a workload file (resolved against the config by the simulator).
    pub key: Option<String>,
    pub recorded: Option<Recorded>,
}

/// Items come in the trace's order (time order).
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Request(Box<Arrival>),
    /// A recorded step of a request received earlier: `AttemptDecided`, `AttemptFinished` or
    /// `RequestFinished`. The simulator follows them while its path matches the recorded one.
    Step {
        seq: u64,
        event: Box<Event>,
    },
    /// A recorded event that changes router state by itself (keys, restarts).
    Apply {
        seq: u64,
        event: Box<Event>,
    },
}

impl Item {
    pub fn at(&self) -> InstantUs {
        match self {
            Item::Request(a) => a.at,
            Item::Step { event, .. } | Item::Apply { event, .. } => event.at(),
        }
    }
}

pub type ItemResult = Result<Item, String>;
