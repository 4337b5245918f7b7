//! Portable trace files that `sim` reads: binary (a header, then `seq` + frame per event) or JSON
//! Lines. Streaming in both directions: a reader never holds more than one event.
//!
//! ```text
//! binary: "SYTRACE1" | schema version u16 | flags u16 | reserved u32 | { seq u64 | frame }*
//! jsonl:  {"switchyard_trace": 1, "schema_version": 1}\n { "seq": .., "kind": .., "event": .. }\n*
//! ```

use super::{
    decode_frame, encode_into, jsonl, DecodeError, HEADER_LEN, MAX_PAYLOAD, SCHEMA_VERSION,
    TRAILER_LEN,
};
use crate::core::event::Event;
use std::io::{self, BufRead, Read, Write};

pub const TRACE_MAGIC: [u8; 8] = *b"SYTRACE1";
pub const TRACE_HEADER_LEN: usize = 16;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TraceFormat {
    Binary,
    Jsonl,
}

impl TraceFormat {
    /// Recognises a trace from its first bytes.
    pub fn detect(head: &[u8]) -> Option<TraceFormat> {
        if head.starts_with(&TRACE_MAGIC) {
            return Some(TraceFormat::Binary);
        }
        let first = head.iter().find(|b| !b.is_ascii_whitespace())?;
        (*first == b'{').then_some(TraceFormat::Jsonl)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    #[error(
        "not a switchyard trace (expected a binary trace starting with SYTRACE1 or JSON Lines)"
    )]
    NotATrace,
    #[error("event #{index}: {source}")]
    Decode { index: u64, source: DecodeError },
    #[error("line {line}: {source}")]
    Line { line: u64, source: DecodeError },
}

pub struct TraceWriter<W: Write> {
    out: W,
    format: TraceFormat,
    buf: Vec<u8>,
    pub n_events: u64,
}

impl<W: Write> TraceWriter<W> {
    pub fn new(mut out: W, format: TraceFormat) -> io::Result<TraceWriter<W>> {
        match format {
            TraceFormat::Binary => {
                let mut h = Vec::with_capacity(TRACE_HEADER_LEN);
                h.extend_from_slice(&TRACE_MAGIC);
                h.extend_from_slice(&SCHEMA_VERSION.to_le_bytes());
                h.extend_from_slice(&[0; 6]);
                out.write_all(&h)?;
            }
            TraceFormat::Jsonl => {
                writeln!(
                    out,
                    "{{\"switchyard_trace\": 1, \"schema_version\": {SCHEMA_VERSION}}}"
                )?;
            }
        }
        Ok(TraceWriter {
            out,
            format,
            buf: Vec::with_capacity(256),
            n_events: 0,
        })
    }

    pub fn write(&mut self, seq: u64, ev: &Event) -> io::Result<()> {
        self.n_events += 1;
        match self.format {
            TraceFormat::Binary => {
                self.buf.clear();
                self.buf.extend_from_slice(&seq.to_le_bytes());
                encode_into(ev, &mut self.buf);
                self.out.write_all(&self.buf)
            }
            TraceFormat::Jsonl => {
                self.out.write_all(jsonl::to_line(seq, ev).as_bytes())?;
                self.out.write_all(b"\n")
            }
        }
    }

    /// Writes an already framed event (as stored) without decoding it.
    pub fn write_frame(&mut self, seq: u64, frame: &[u8]) -> io::Result<()> {
        match self.format {
            TraceFormat::Binary => {
                self.n_events += 1;
                self.out.write_all(&seq.to_le_bytes())?;
                self.out.write_all(frame)
            }
            TraceFormat::Jsonl => {
                let (ev, _) = decode_frame(frame)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                self.write(seq, &ev)
            }
        }
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Streams `(seq, event)` pairs out of a trace.
pub struct TraceReader<R: BufRead> {
    inp: R,
    format: TraceFormat,
    buf: Vec<u8>,
    line: String,
    index: u64,
    line_no: u64,
}

impl<R: BufRead> TraceReader<R> {
    /// Detects the format from the first bytes and checks the header.
    pub fn new(mut inp: R) -> Result<TraceReader<R>, TraceError> {
        let head = inp.fill_buf()?;
        let format = TraceFormat::detect(head).ok_or(TraceError::NotATrace)?;
        if format == TraceFormat::Binary {
            let mut h = [0u8; TRACE_HEADER_LEN];
            inp.read_exact(&mut h).map_err(|_| TraceError::NotATrace)?;
            let version = u16::from_le_bytes([h[8], h[9]]);
            if version > SCHEMA_VERSION {
                return Err(TraceError::Decode {
                    index: 0,
                    source: DecodeError::TooNew(version),
                });
            }
        }
        Ok(TraceReader {
            inp,
            format,
            buf: Vec::with_capacity(512),
            line: String::new(),
            index: 0,
            line_no: 0,
        })
    }

    pub fn format(&self) -> TraceFormat {
        self.format
    }

    pub fn next_event(&mut self) -> Result<Option<(u64, Event)>, TraceError> {
        match self.format {
            TraceFormat::Binary => self.next_binary(),
            TraceFormat::Jsonl => loop {
                self.line.clear();
                self.line_no += 1;
                if self.inp.read_line(&mut self.line)? == 0 {
                    return Ok(None);
                }
                match jsonl::from_line(&self.line) {
                    Ok(Some(x)) => return Ok(Some(x)),
                    Ok(None) => continue,
                    Err(source) => {
                        return Err(TraceError::Line {
                            line: self.line_no,
                            source,
                        })
                    }
                }
            },
        }
    }

    fn next_binary(&mut self) -> Result<Option<(u64, Event)>, TraceError> {
        let mut seq = [0u8; 8];
        if !read_exact_or_eof(&mut self.inp, &mut seq)? {
            return Ok(None);
        }
        self.index += 1;
        let index = self.index;
        self.buf.clear();
        self.buf.resize(HEADER_LEN, 0);
        self.inp
            .read_exact(&mut self.buf)
            .map_err(|_| TraceError::Decode {
                index,
                source: DecodeError::Truncated {
                    need: HEADER_LEN,
                    have: 0,
                },
            })?;
        let len = u32::from_le_bytes(self.buf[8..12].try_into().expect("header length")) as usize;
        if len > MAX_PAYLOAD {
            return Err(TraceError::Decode {
                index,
                source: DecodeError::TooLarge(len),
            });
        }
        self.buf.resize(HEADER_LEN + len + TRAILER_LEN, 0);
        self.inp
            .read_exact(&mut self.buf[HEADER_LEN..])
            .map_err(|_| TraceError::Decode {
                index,
                source: DecodeError::Truncated {
                    need: HEADER_LEN + len + TRAILER_LEN,
                    have: HEADER_LEN,
                },
            })?;
        let (ev, _) =
            decode_frame(&self.buf).map_err(|source| TraceError::Decode { index, source })?;
        Ok(Some((u64::from_le_bytes(seq), ev)))
    }
}

impl<R: BufRead> Iterator for TraceReader<R> {
    type Item = Result<(u64, Event), TraceError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_event().transpose()
    }
}

fn read_exact_or_eof<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated trace record",
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
