//! The routing core: a pure state machine (quinn-proto style). No `async`, no sockets, no files,
//! no environment, no clock, no thread RNG. Time arrives as an argument; randomness is seeded
//! state; state changes only through `apply(&Event)`.

pub mod event;
pub mod hint;
pub mod outcome;
pub mod rng;
pub mod router;
pub mod select;
pub mod slots;
pub mod state;
pub mod units;

pub use event::*;
pub use outcome::{OutcomeClass, RouteError};
pub use router::{AttemptPlan, AttemptReport, Poll, RequestInput, Router};
pub use units::{DurationUs, InstantUs, PicoUsd};

#[cfg(test)]
pub(crate) mod tests;
