//! End-to-end tests: one test binary with modules (ripgrep style). Everything runs on loopback.

mod support;

mod anthropic_e2e;
mod cli;
mod log_e2e;
mod proxy_e2e;
mod sim_e2e;
