//! Schema version 1, frozen: the payload layouts that changed in a later version. Kinds not
//! listed here have the same layout in every version and decode into the current types.
//!
//! Never edit these structs: logs written by version-1 builds must decode forever.

use crate::core::event::{Admission, Endpoint, Name, RequestId, RequestOverrides, RequestReceived};
use crate::core::units::InstantUs;
use serde::Deserialize;

/// `RequestReceived` before version 2 (no `overrides`).
#[derive(Deserialize)]
pub struct RequestReceivedV1 {
    pub at: InstantUs,
    pub id: RequestId,
    pub seed: u64,
    pub key_id: Option<Name>,
    pub model: String,
    pub endpoint: Endpoint,
    pub tokens_in: u64,
    pub max_tokens: Option<u64>,
    pub stream: bool,
    pub tags: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub user: Option<String>,
    pub prompt_sha: String,
    pub prompt: Option<String>,
    pub admission: Admission,
}

impl From<RequestReceivedV1> for RequestReceived {
    fn from(v: RequestReceivedV1) -> Self {
        RequestReceived {
            at: v.at,
            id: v.id,
            seed: v.seed,
            key_id: v.key_id,
            model: v.model.into(),
            endpoint: v.endpoint,
            tokens_in: v.tokens_in,
            max_tokens: v.max_tokens,
            stream: v.stream,
            tags: v.tags,
            headers: v.headers,
            user: v.user,
            prompt_sha: v.prompt_sha,
            prompt: v.prompt,
            admission: v.admission,
            overrides: RequestOverrides::default(),
        }
    }
}
