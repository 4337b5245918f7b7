//! The events' wire form: a postcard payload inside our own envelope, versioned forever.
//!
//! Frame layout (little-endian):
//!
//! ```text
//! magic "SYEV" | version u16 | kind u8 | flags u8 | len u32 | payload (len bytes) | crc32 u32
//! ```
//!
//! The CRC32 covers everything between the magic and the CRC. Each event kind's payload is the
//! postcard encoding of that kind's struct (so adding a kind never changes another's bytes).
//! Invariant: the meaning of a stored field never changes. A change of a struct's layout bumps
//! [`SCHEMA_VERSION`], and `decode_payload` keeps decoding every older version (upcasting it to
//! the current types); frozen samples of every kind in `engine/tests/fixtures/events/` are decoded by
//! a test so that an accidental change fails loudly. Pure: bytes in, bytes out.

pub mod human;
pub mod jsonl;
pub mod trace;
mod v1;

use crate::core::event::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub const MAGIC: [u8; 4] = *b"SYEV";
/// The schema version this build writes. Version 2 added `RequestReceived::overrides`.
pub const SCHEMA_VERSION: u16 = 2;
/// Oldest version this build can read.
pub const MIN_SCHEMA_VERSION: u16 = 1;
pub const HEADER_LEN: usize = 12;
pub const TRAILER_LEN: usize = 4;
/// Upper bound on one event's payload: anything larger is corruption (a config with its full
/// content is the largest event; prompts are truncated before they get here).
pub const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("truncated frame: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("bad magic {0:02x?}")]
    BadMagic([u8; 4]),
    #[error("checksum mismatch (stored {stored:08x}, computed {computed:08x})")]
    Crc { stored: u32, computed: u32 },
    #[error("schema version {0} is newer than this build understands ({SCHEMA_VERSION}); upgrade switchyard")]
    TooNew(u16),
    #[error("schema version {0} is not readable")]
    Unsupported(u16),
    #[error("unknown event kind {0}")]
    UnknownKind(u8),
    #[error("payload of {0} bytes is larger than the limit")]
    TooLarge(usize),
    #[error("payload does not decode: {0}")]
    Payload(String),
}

fn to_vec<T: Serialize>(v: &T, out: &mut Vec<u8>) {
    // postcard into a Vec cannot fail for our types (no maps with non-string keys, no
    // unsupported serde features): a failure is a bug.
    let bytes = postcard::to_stdvec(v).expect("event payloads are postcard-encodable");
    out.extend_from_slice(&bytes);
}

/// Appends one framed event to `out`.
pub fn encode_into(ev: &Event, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&SCHEMA_VERSION.to_le_bytes());
    out.push(ev.kind() as u8);
    out.push(0);
    out.extend_from_slice(&[0; 4]);
    let payload_start = out.len();
    match ev {
        Event::ConfigApplied(e) => to_vec(e, out),
        Event::ProxyStarted(e) => to_vec(e, out),
        Event::RequestReceived(e) => to_vec(e, out),
        Event::AttemptDecided(e) => to_vec(e, out),
        Event::AttemptFinished(e) => to_vec(e, out),
        Event::RequestFinished(e) => to_vec(e, out),
        Event::KeyCreated(e) => to_vec(e, out),
        Event::KeyDeleted(e) => to_vec(e, out),
    }
    let len = (out.len() - payload_start) as u32;
    out[start + 8..start + 12].copy_from_slice(&len.to_le_bytes());
    let crc = crc32fast::hash(&out[start + 4..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

pub fn encode(ev: &Event) -> Vec<u8> {
    let mut v = Vec::with_capacity(128);
    encode_into(ev, &mut v);
    v
}

fn from_payload<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    postcard::from_bytes(bytes).map_err(|e| DecodeError::Payload(e.to_string()))
}

/// Decodes a payload of a given version and kind into the current types.
pub fn decode_payload(version: u16, kind: u8, payload: &[u8]) -> Result<Event, DecodeError> {
    if version > SCHEMA_VERSION {
        return Err(DecodeError::TooNew(version));
    }
    if version < MIN_SCHEMA_VERSION {
        return Err(DecodeError::Unsupported(version));
    }
    let kind = EventKind::from_u8(kind).ok_or(DecodeError::UnknownKind(kind))?;
    // Older versions decode through their frozen structs (module `v1`, ...) and are upcast;
    // kinds whose layout never changed decode directly.
    Ok(match kind {
        EventKind::ConfigApplied => Event::ConfigApplied(from_payload(payload)?),
        EventKind::ProxyStarted => Event::ProxyStarted(from_payload(payload)?),
        EventKind::RequestReceived if version == 1 => Event::RequestReceived(std::sync::Arc::new(
            from_payload::<v1::RequestReceivedV1>(payload)?.into(),
        )),
        EventKind::RequestReceived => Event::RequestReceived(from_payload(payload)?),
        EventKind::AttemptDecided => Event::AttemptDecided(Box::new(from_payload(payload)?)),
        EventKind::AttemptFinished => Event::AttemptFinished(Box::new(from_payload(payload)?)),
        EventKind::RequestFinished => Event::RequestFinished(Box::new(from_payload(payload)?)),
        EventKind::KeyCreated => Event::KeyCreated(from_payload(payload)?),
        EventKind::KeyDeleted => Event::KeyDeleted(from_payload(payload)?),
    })
}

/// A checked frame: its version, kind, payload and total length.
pub struct Frame<'a> {
    pub version: u16,
    pub kind: u8,
    pub payload: &'a [u8],
    pub len: usize,
}

/// Checks the frame at the start of `buf` (magic, length bound, CRC) without decoding its payload.
pub fn check_frame(buf: &[u8]) -> Result<Frame<'_>, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::Truncated {
            need: HEADER_LEN,
            have: buf.len(),
        });
    }
    let magic: [u8; 4] = buf[0..4].try_into().expect("length checked");
    if magic != MAGIC {
        return Err(DecodeError::BadMagic(magic));
    }
    let len = u32::from_le_bytes(buf[8..12].try_into().expect("length checked")) as usize;
    if len > MAX_PAYLOAD {
        return Err(DecodeError::TooLarge(len));
    }
    let total = HEADER_LEN + len + TRAILER_LEN;
    if buf.len() < total {
        return Err(DecodeError::Truncated {
            need: total,
            have: buf.len(),
        });
    }
    let stored = u32::from_le_bytes(
        buf[HEADER_LEN + len..total]
            .try_into()
            .expect("length checked"),
    );
    let computed = crc32fast::hash(&buf[4..HEADER_LEN + len]);
    if stored != computed {
        return Err(DecodeError::Crc { stored, computed });
    }
    Ok(Frame {
        version: u16::from_le_bytes([buf[4], buf[5]]),
        kind: buf[6],
        payload: &buf[HEADER_LEN..HEADER_LEN + len],
        len: total,
    })
}

/// Decodes the frame at the start of `buf`; returns the event and the frame's length.
pub fn decode_frame(buf: &[u8]) -> Result<(Event, usize), DecodeError> {
    let f = check_frame(buf)?;
    Ok((decode_payload(f.version, f.kind, f.payload)?, f.len))
}

#[cfg(test)]
pub(crate) mod tests;
