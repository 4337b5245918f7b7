//! Test support: scriptable fake upstreams on 127.0.0.1:0, a proxy started in-process on
//! 127.0.0.1:0, and a small HTTP client. No test reaches beyond loopback.

#![allow(dead_code)]

pub mod fake;
pub mod http;
pub mod proxy;
