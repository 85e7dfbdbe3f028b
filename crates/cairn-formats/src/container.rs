//! Container runtime log lines and their partial-line reassembly.
//!
//! * CRI (containerd, CRI-O; `/var/log/pods/…`): `<RFC 3339 time> <stream> <P|F> <message>`;
//!   `P` marks a piece of a line the runtime split (16 KiB), `F` the final piece.
//! * Docker json-file: `{"log":"…\n","stream":"stdout","time":"…"}`; a `log` value
//!   without a trailing `\n` is a piece of a longer line.

use serde_json::Value;

use crate::time;
use crate::Event;

/// One reassembled container log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerLine {
    /// RFC 3339 time of the line's first piece (`None` if the source had none).
    pub timestamp: Option<String>,
    /// `stdout` / `stderr` (`None` if the source had none).
    pub stream: Option<String>,
    /// The line, without its trailing newline.
    pub message: String,
    /// Docker `attrs` (labels/env chosen by the log driver), if any.
    pub attrs: Option<serde_json::Map<String, Value>>,
    /// Number of pieces joined (1 for an unsplit line).
    pub pieces: usize,
    /// The line was cut at the size limit.
    pub truncated: bool,
}

impl ContainerLine {
    /// The event shape: `@timestamp`, `stream`, `message` (+ `docker.attrs`).
    pub fn into_event(self) -> Event {
        let mut ev = Event::new();
        if let Some(t) = self.timestamp {
            ev.insert("@timestamp".into(), Value::String(t));
        }
        if let Some(s) = self.stream {
            ev.insert("stream".into(), Value::String(s));
        }
        ev.insert("message".into(), Value::String(self.message));
        if let Some(a) = self.attrs {
            let mut d = serde_json::Map::new();
            d.insert("attrs".into(), Value::Object(a));
            ev.insert("docker".into(), Value::Object(d));
        }
        if self.truncated {
            ev.insert(
                "tags".into(),
                Value::Array(vec!["_partial_truncated".into()]),
            );
        }
        ev
    }
}

/// One piece as read from a line.
#[derive(Debug, Clone)]
pub struct Piece {
    pub timestamp: Option<String>,
    pub stream: Option<String>,
    pub text: String,
    /// More pieces of the same line follow.
    pub partial: bool,
    pub attrs: Option<serde_json::Map<String, Value>>,
}

/// Parse a CRI line into a piece.
pub fn parse_cri_piece(line: &str) -> Result<Piece, String> {
    let (ts, rest) = line.split_once(' ').ok_or("CRI: missing stream field")?;
    let (stream, rest) = rest.split_once(' ').ok_or("CRI: missing P/F tag")?;
    let (tag, msg) = match rest.split_once(' ') {
        Some((t, m)) => (t, m),
        None => (rest, ""),
    };
    let t = time::parse_iso(ts, 0)
        .ok_or_else(|| format!("CRI: invalid time: {}", crate::util::clip(ts)))?;
    if stream.is_empty() {
        return Err("CRI: empty stream".into());
    }
    let partial = match tag.split(':').next() {
        Some("P") => true,
        Some("F") => false,
        _ => {
            return Err(format!(
                "CRI: tag must be P or F, got {}",
                crate::util::clip(tag)
            ))
        }
    };
    Ok(Piece {
        timestamp: Some(t.to_rfc3339()),
        stream: Some(stream.to_owned()),
        text: msg.to_owned(),
        partial,
        attrs: None,
    })
}

/// Parse a Docker json-file line into a piece.
pub fn parse_docker_piece(line: &str) -> Result<Piece, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("docker: invalid JSON: {e}"))?;
    let Value::Object(mut m) = v else {
        return Err("docker: line is not a JSON object".into());
    };
    let Some(Value::String(mut log)) = m.remove("log") else {
        return Err("docker: no string `log` field".into());
    };
    let partial = !log.ends_with('\n');
    if !partial {
        log.pop();
        if log.ends_with('\r') {
            log.pop();
        }
    }
    let timestamp = match m.get("time") {
        Some(Value::String(s)) => Some(
            time::parse_iso(s, 0)
                .ok_or_else(|| format!("docker: invalid time: {}", crate::util::clip(s)))?
                .to_rfc3339(),
        ),
        _ => None,
    };
    let stream = match m.remove("stream") {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let attrs = match m.remove("attrs") {
        Some(Value::Object(a)) => Some(a),
        _ => None,
    };
    Ok(Piece {
        timestamp,
        stream,
        text: log,
        partial,
        attrs,
    })
}

#[derive(Debug)]
struct Pending {
    line: ContainerLine,
}

/// Joins partial pieces into whole lines, per stream (stdout and stderr pieces may
/// interleave). Pure: feed pieces in file order, get whole lines back.
#[derive(Debug)]
pub struct PartialJoiner {
    pending: Vec<Pending>,
    max_bytes: usize,
}

impl PartialJoiner {
    /// `max_bytes` caps a joined line; past it the line is emitted as it stands,
    /// tagged `_partial_truncated`, and the rest of the pieces start a new line.
    pub fn new(max_bytes: usize) -> Self {
        PartialJoiner {
            pending: Vec::new(),
            max_bytes: max_bytes.max(1),
        }
    }

    /// Add a piece; returns a whole line when this piece completes one (or the size
    /// limit forces one out).
    pub fn push(&mut self, piece: Piece) -> Option<ContainerLine> {
        let idx = self
            .pending
            .iter()
            .position(|p| p.line.stream == piece.stream);
        match idx {
            None => {
                let line = ContainerLine {
                    timestamp: piece.timestamp,
                    stream: piece.stream,
                    message: piece.text,
                    attrs: piece.attrs,
                    pieces: 1,
                    truncated: false,
                };
                if piece.partial {
                    if line.message.len() >= self.max_bytes {
                        let mut l = line;
                        l.truncated = true;
                        return Some(l);
                    }
                    self.pending.push(Pending { line });
                    None
                } else {
                    Some(line)
                }
            }
            Some(i) => {
                let p = &mut self.pending[i];
                p.line.message.push_str(&piece.text);
                p.line.pieces += 1;
                if !piece.partial {
                    return Some(self.pending.swap_remove(i).line);
                }
                if p.line.message.len() >= self.max_bytes {
                    let mut l = self.pending.swap_remove(i).line;
                    l.truncated = true;
                    return Some(l);
                }
                None
            }
        }
    }

    /// Lines still waiting for their final piece (end of input).
    pub fn flush(&mut self) -> Vec<ContainerLine> {
        self.pending.drain(..).map(|p| p.line).collect()
    }

    /// Number of streams with an unfinished line.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}
