//! Events as JSON: one object per line, `{"seq": N, "kind": "...", "event": {...}}`, for people
//! and other tools. Field names are the structs' field names; money is integer picodollars,
//! times integer microseconds.

use super::DecodeError;
use crate::core::event::*;
use serde_json::{json, Value};

pub fn to_json(seq: u64, ev: &Event) -> Value {
    let body = match ev {
        Event::ConfigApplied(e) => serde_json::to_value(e),
        Event::ProxyStarted(e) => serde_json::to_value(e),
        Event::RequestReceived(e) => serde_json::to_value(e),
        Event::AttemptDecided(e) => serde_json::to_value(e),
        Event::AttemptFinished(e) => serde_json::to_value(e),
        Event::RequestFinished(e) => serde_json::to_value(e),
        Event::KeyCreated(e) => serde_json::to_value(e),
        Event::KeyDeleted(e) => serde_json::to_value(e),
    }
    .expect("events serialize to JSON");
    json!({"seq": seq, "kind": ev.kind().name(), "event": body})
}

pub fn to_line(seq: u64, ev: &Event) -> String {
    to_json(seq, ev).to_string()
}

fn parse<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, DecodeError> {
    serde_json::from_value(v).map_err(|e| DecodeError::Payload(e.to_string()))
}

/// Parses one line; `Ok(None)` for a header or blank line.
pub fn from_line(line: &str) -> Result<Option<(u64, Event)>, DecodeError> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    let v: Value = serde_json::from_str(line).map_err(|e| DecodeError::Payload(e.to_string()))?;
    if v.get("switchyard_trace").is_some() {
        return Ok(None);
    }
    let seq = v
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or_else(|| DecodeError::Payload("missing `seq`".into()))?;
    let kind = v
        .get("kind")
        .and_then(Value::as_str)
        .ok_or_else(|| DecodeError::Payload("missing `kind`".into()))?;
    let body = v
        .get("event")
        .cloned()
        .ok_or_else(|| DecodeError::Payload("missing `event`".into()))?;
    let kind = EventKind::ALL
        .iter()
        .copied()
        .find(|k| k.name() == kind)
        .ok_or_else(|| DecodeError::Payload(format!("unknown kind `{kind}`")))?;
    let ev = match kind {
        EventKind::ConfigApplied => Event::ConfigApplied(parse(body)?),
        EventKind::ProxyStarted => Event::ProxyStarted(parse(body)?),
        EventKind::RequestReceived => Event::RequestReceived(parse(body)?),
        EventKind::AttemptDecided => Event::AttemptDecided(Box::new(parse(body)?)),
        EventKind::AttemptFinished => Event::AttemptFinished(Box::new(parse(body)?)),
        EventKind::RequestFinished => Event::RequestFinished(Box::new(parse(body)?)),
        EventKind::KeyCreated => Event::KeyCreated(parse(body)?),
        EventKind::KeyDeleted => Event::KeyDeleted(parse(body)?),
    };
    Ok(Some((seq, ev)))
}
