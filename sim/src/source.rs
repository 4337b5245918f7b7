//! Inputs recognised by content: a sled event-log directory, a binary or JSON Lines trace, or a
//! workload file of arrivals. Everything streams.

use crate::workload::arrivals::{WorkloadReader, HEADER_KEY};
use crate::workload::trace::TraceWorkload;
use crate::workload::ItemResult;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use switchyard_engine::core::event::Event;
use switchyard_engine::events::trace::{TraceFormat, TraceReader};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A sled directory written by the proxy.
    EventLog,
    Trace(TraceFormat),
    /// Arrivals (`sim import`, `sim synth`).
    Workload,
}

pub type Events = Box<dyn Iterator<Item = Result<(u64, Event), String>>>;
pub type Items = Box<dyn Iterator<Item = ItemResult>>;

pub fn detect(path: &Path) -> Result<Kind, String> {
    if path.is_dir() {
        if path.join("conf").exists() || path.join("db").exists() {
            return Ok(Kind::EventLog);
        }
        return Err(format!(
            "{}: a directory, but not a switchyard event log",
            path.display()
        ));
    }
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut head = vec![0u8; 4096];
    let n = f
        .read(&mut head)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    head.truncate(n);
    if let Some(TraceFormat::Binary) = TraceFormat::detect(&head) {
        return Ok(Kind::Trace(TraceFormat::Binary));
    }
    let text = String::from_utf8_lossy(&head);
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if first.contains(HEADER_KEY) || first.contains("\"at_us\"") {
        return Ok(Kind::Workload);
    }
    if first.contains("switchyard_trace")
        || (first.contains("\"kind\"") && first.contains("\"seq\""))
    {
        return Ok(Kind::Trace(TraceFormat::Jsonl));
    }
    if first.starts_with("TIMESTAMP,") || first.contains("\"input_length\"") {
        return Err(format!("{}: a public trace (arrivals and tokens); turn it into a workload first with `sim import`", path.display()));
    }
    Err(format!(
        "{}: not a switchyard trace, event log or workload file",
        path.display()
    ))
}

/// The events of a trace or event log, in order.
pub fn events(path: &Path) -> Result<Events, String> {
    match detect(path)? {
        Kind::Trace(_) => {
            let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let r = TraceReader::new(BufReader::with_capacity(1 << 20, f))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let p = path.display().to_string();
            Ok(Box::new(r.map(move |x| x.map_err(|e| format!("{p}: {e}")))))
        }
        Kind::EventLog => log_events(path),
        Kind::Workload => Err(format!(
            "{}: a workload of arrivals has no recorded events",
            path.display()
        )),
    }
}

#[cfg(feature = "sled")]
fn log_events(path: &Path) -> Result<Events, String> {
    use switchyard_engine::store::{Store, StoreOptions};
    let (store, _) = Store::open(path, StoreOptions::default()).map_err(|e| {
        format!("{e} (a running proxy holds its log: stop it or use `switchyard log export`)")
    })?;
    struct Chunks {
        store: Store,
        next: u64,
        buf: std::collections::VecDeque<Result<(u64, Event), String>>,
        done: bool,
    }
    impl Iterator for Chunks {
        type Item = Result<(u64, Event), String>;
        fn next(&mut self) -> Option<Self::Item> {
            if self.buf.is_empty() && !self.done {
                for item in self.store.scan(self.next).take(8192) {
                    match item {
                        Ok((seq, ev)) => {
                            self.next = seq + 1;
                            self.buf.push_back(Ok((seq, ev)));
                        }
                        Err(e) => {
                            self.buf.push_back(Err(e.to_string()));
                            self.done = true;
                            break;
                        }
                    }
                }
                if self.buf.is_empty() {
                    self.done = true;
                }
            }
            self.buf.pop_front()
        }
    }
    Ok(Box::new(Chunks {
        store,
        next: 0,
        buf: Default::default(),
        done: false,
    }))
}

#[cfg(not(feature = "sled"))]
fn log_events(path: &Path) -> Result<Events, String> {
    Err(format!("{}: reading an event-log directory needs the `sled` feature; export a trace with `switchyard log export`", path.display()))
}

/// The workload items of any input.
pub fn items(path: &Path) -> Result<Items, String> {
    match detect(path)? {
        Kind::Workload => {
            let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let p = path.display().to_string();
            Ok(Box::new(
                WorkloadReader::new(
                    Box::new(BufReader::with_capacity(1 << 20, f)) as Box<dyn BufRead>
                )
                .map(move |x| x.map_err(|e| format!("{p}: {e}"))),
            ))
        }
        _ => Ok(Box::new(TraceWorkload::new(events(path)?))),
    }
}
