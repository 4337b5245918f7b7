//! Switchyard's simulator: provider models, workloads, a discrete-event loop that drives the real
//! routing core in virtual time, reports and the CI gate. The simulation itself never touches an
//! async runtime; the fake providers served over HTTP and the load driver sit behind the `net`
//! feature.

#[cfg(feature = "net")]
pub mod drive;
pub mod engine;
pub mod gate;
#[cfg(feature = "net")]
pub mod mock;
pub mod model;
pub mod queue;
pub mod report;
pub mod source;
#[cfg(test)]
mod tests;
pub mod workload;
