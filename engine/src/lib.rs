//! Switchyard's engine: config, routing core, provider adapters, events, event store and proxy.
//!
//! Dependencies point one way: `core` ← `providers` ← `events` ← `store` ← `proxy`. `config`
//! and `cost` are pure and used by `core`. The store and the proxy sit behind cargo features so
//! that the simulator can use the pure parts without an async runtime.

pub mod config;
pub mod core;
pub mod cost;
pub mod events;
pub mod providers;
#[cfg(feature = "proxy")]
pub mod proxy;
#[cfg(feature = "store")]
pub mod store;
