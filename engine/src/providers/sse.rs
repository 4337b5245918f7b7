//! Server-sent events: reassembles lines split across reads into events. Pure.

/// One SSE event: its `event:` name (if any) and its `data:` lines joined with `\n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Feed bytes as they arrive; complete events come out. Bounded: a single line longer than
/// `max_line` is an error (a broken upstream must not make the proxy buffer without limit).
#[derive(Debug)]
pub struct SseParser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
    max_line: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        SseParser::new(16 * 1024 * 1024)
    }
}

impl SseParser {
    pub fn new(max_line: usize) -> SseParser {
        SseParser {
            buf: Vec::new(),
            event: None,
            data: Vec::new(),
            max_line,
        }
    }

    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), String> {
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos;
            let mut line = &self.buf[start..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = String::from_utf8_lossy(line).into_owned();
            start = end + 1;
            self.line(&line, out);
        }
        self.buf.drain(..start);
        if self.buf.len() > self.max_line {
            return Err(format!("SSE line longer than {} bytes", self.max_line));
        }
        Ok(())
    }

    /// End of stream: a final event without its blank line still counts.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.buf.is_empty() {
            let rest = String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
            self.line(rest.trim_end_matches('\r'), out);
        }
        self.dispatch(out);
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.find(':') {
            Some(i) => (
                &line[..i],
                line[i + 1..].strip_prefix(' ').unwrap_or(&line[i + 1..]),
            ),
            None => (line, ""),
        };
        match field {
            "data" => self.data.push(value.to_string()),
            "event" => self.event = Some(value.to_string()),
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.data.is_empty() && self.event.is_none() {
            return;
        }
        out.push(SseEvent {
            event: self.event.take(),
            data: std::mem::take(&mut self.data).join("\n"),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassembles_across_reads() {
        let text = "event: message_start\ndata: {\"a\":1}\n\n: ping\ndata: [DONE]\r\n\r\n";
        for split in 0..text.len() {
            let mut p = SseParser::default();
            let mut out = Vec::new();
            p.push(&text.as_bytes()[..split], &mut out).unwrap();
            p.push(&text.as_bytes()[split..], &mut out).unwrap();
            p.finish(&mut out);
            assert_eq!(
                out,
                vec![
                    SseEvent {
                        event: Some("message_start".into()),
                        data: "{\"a\":1}".into()
                    },
                    SseEvent {
                        event: None,
                        data: "[DONE]".into()
                    }
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn long_lines_are_bounded() {
        let mut p = SseParser::new(10);
        assert!(p.push(&[b'x'; 11], &mut Vec::new()).is_err());
    }
}
