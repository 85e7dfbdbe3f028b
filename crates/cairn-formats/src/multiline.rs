//! Multiline joiner: glues stack-trace continuation lines onto the line that starts the
//! event. Pure and clock-free: the caller passes its notion of "now" (any monotonic
//! millisecond counter) to [`MultilineJoiner::push`] and [`MultilineJoiner::flush_expired`].

use std::fmt;
use std::str::FromStr;

use regex::Regex;

use crate::FormatError;

/// How to tell a continuation line from the first line of a new event.
#[derive(Clone)]
pub enum MultilineRule {
    /// Java/Scala/Kotlin: indented lines (`\tat …`, `... 4 more`, `Suppressed:`),
    /// `Caused by:`, exception header lines (`java.io.IOException: …`).
    Java,
    /// Python tracebacks, chained ones included (`During handling of the above
    /// exception…`), with the final `KeyError: …` line.
    Python,
    /// Go `panic:` / `fatal error:` goroutine dumps, blank lines included.
    Go,
    /// Ruby backtraces (indented `from …` lines).
    Ruby,
    /// Node.js stacks (indented `at …` lines).
    Node,
    /// Regex rules: a line matching `start` begins an event; otherwise (when `start`
    /// is absent) a line matching `continuation` continues one. With both, a line
    /// continues when it matches `continuation` and not `start`.
    Custom {
        start: Option<Regex>,
        continuation: Option<Regex>,
    },
}

impl fmt::Debug for MultilineRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MultilineRule::Java => f.write_str("Java"),
            MultilineRule::Python => f.write_str("Python"),
            MultilineRule::Go => f.write_str("Go"),
            MultilineRule::Ruby => f.write_str("Ruby"),
            MultilineRule::Node => f.write_str("Node"),
            MultilineRule::Custom {
                start,
                continuation,
            } => f
                .debug_struct("Custom")
                .field("start", &start.as_ref().map(Regex::as_str))
                .field("continuation", &continuation.as_ref().map(Regex::as_str))
                .finish(),
        }
    }
}

impl MultilineRule {
    /// Build a custom rule from pattern strings.
    pub fn custom(start: Option<&str>, continuation: Option<&str>) -> Result<Self, FormatError> {
        if start.is_none() && continuation.is_none() {
            return Err(FormatError::Config(
                "a custom multiline rule needs a start or a continuation pattern".into(),
            ));
        }
        Ok(MultilineRule::Custom {
            start: start.map(Regex::new).transpose()?,
            continuation: continuation.map(Regex::new).transpose()?,
        })
    }
}

impl FromStr for MultilineRule {
    type Err = FormatError;

    /// Built-in rule names: `java`, `python`, `go`, `ruby`, `node`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "java" => MultilineRule::Java,
            "python" => MultilineRule::Python,
            "go" | "golang" => MultilineRule::Go,
            "ruby" => MultilineRule::Ruby,
            "node" | "nodejs" | "javascript" => MultilineRule::Node,
            _ => {
                return Err(FormatError::Config(format!(
                    "unknown multiline rule `{s}`; valid: java, python, go, ruby, node"
                )))
            }
        })
    }
}

/// Joiner settings.
#[derive(Debug, Clone)]
pub struct MultilineConfig {
    pub rule: MultilineRule,
    /// Lines per event at most; a longer event is cut and the rest starts a new one.
    pub max_lines: usize,
    /// Bytes per event at most (same cut).
    pub max_bytes: usize,
    /// An event with no new line for this long is emitted (by `push` or `flush_expired`).
    pub timeout_ms: u64,
}

impl MultilineConfig {
    pub fn new(rule: MultilineRule) -> Self {
        MultilineConfig {
            rule,
            max_lines: 500,
            max_bytes: 1 << 20,
            timeout_ms: 5_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    None,
    /// Python: inside `Traceback (most recent call last):` frames.
    PyFrames,
    /// Python: after the exception line (chained tracebacks may follow).
    PyAfterException,
    /// Go: inside a panic / goroutine dump.
    GoTrace,
}

/// Joins lines into events. See the module doc.
#[derive(Debug)]
pub struct MultilineJoiner {
    cfg: MultilineConfig,
    buf: String,
    lines: usize,
    last_ms: u64,
    state: State,
}

fn indented(line: &str) -> bool {
    line.starts_with(' ') || line.starts_with('\t')
}

/// `java.io.IOException: x`, `MergeMappingException[…]` (an uncaught `Exception in
/// thread "main" …` starts a new event).
fn java_exception_header(line: &str) -> bool {
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.'))
        .unwrap_or(line.len());
    let word = &line[..end];
    ["Exception", "Error", "Throwable"]
        .iter()
        .any(|s| word.len() > s.len() && word.ends_with(s))
}

fn go_trace_line(line: &str) -> bool {
    line.is_empty()
        || indented(line)
        || line.starts_with("goroutine ")
        || line.starts_with("[signal ")
        || line.starts_with("created by ")
        || line.starts_with("exit status ")
        || (line.ends_with(')') && line.find('(').is_some_and(|i| !line[..i].contains(' ')))
        || (line.ends_with("...") && line.contains('('))
}

impl MultilineJoiner {
    pub fn new(cfg: MultilineConfig) -> Self {
        MultilineJoiner {
            cfg,
            buf: String::new(),
            lines: 0,
            last_ms: 0,
            state: State::None,
        }
    }

    /// Does `line` continue the buffered event? Updates the rule state.
    fn continues(&mut self, line: &str) -> bool {
        let has_buf = self.lines > 0;
        match &self.cfg.rule {
            MultilineRule::Java => {
                has_buf
                    && (indented(line)
                        || line.starts_with("Caused by:")
                        || line.starts_with("Suppressed:")
                        || (line.starts_with("...") && line.ends_with("more"))
                        || java_exception_header(line))
            }
            MultilineRule::Ruby | MultilineRule::Node => has_buf && indented(line),
            MultilineRule::Python => {
                let tb = line.starts_with("Traceback (most recent call last):");
                let (cont, next) = match self.state {
                    _ if tb => (has_buf, State::PyFrames),
                    State::PyFrames if line.is_empty() || indented(line) => (true, State::PyFrames),
                    State::PyFrames => (true, State::PyAfterException),
                    State::PyAfterException
                        if line.is_empty()
                            || line.starts_with("During handling of the above exception")
                            || line.starts_with("The above exception was the direct cause") =>
                    {
                        (true, State::PyAfterException)
                    }
                    _ => (has_buf && indented(line), State::None),
                };
                self.state = next;
                cont
            }
            MultilineRule::Go => {
                if line.starts_with("panic: ")
                    || line.starts_with("fatal error: ")
                    || line.starts_with("http: panic serving")
                {
                    self.state = State::GoTrace;
                    return false;
                }
                if self.state == State::GoTrace && go_trace_line(line) {
                    return has_buf;
                }
                self.state = State::None;
                has_buf && indented(line)
            }
            MultilineRule::Custom {
                start,
                continuation,
            } => {
                if !has_buf {
                    return false;
                }
                let is_start = start.as_ref().map(|r| r.is_match(line));
                let is_cont = continuation.as_ref().map(|r| r.is_match(line));
                match (is_start, is_cont) {
                    (Some(s), None) => !s,
                    (None, Some(c)) => c,
                    (Some(s), Some(c)) => c && !s,
                    (None, None) => false,
                }
            }
        }
    }

    fn take(&mut self) -> Option<String> {
        if self.lines == 0 {
            return None;
        }
        self.lines = 0;
        let mut out = std::mem::take(&mut self.buf);
        // Blank lines that were held in case a chained trace followed.
        while out.ends_with('\n') && out.len() > 1 {
            out.pop();
        }
        Some(out)
    }

    /// Add a line (a trailing `\n`/`\r\n` is removed). Returns the events completed by
    /// it: the previous event when this line starts a new one, or when the previous
    /// one timed out or hit a size limit.
    pub fn push(&mut self, line: &str, now_ms: u64) -> Vec<String> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let mut out = Vec::new();
        if self.lines > 0 && now_ms.saturating_sub(self.last_ms) >= self.cfg.timeout_ms {
            out.extend(self.take());
            if self.state != State::GoTrace {
                self.state = State::None;
            }
        }
        let cont = self.continues(line);
        let over = self.lines >= self.cfg.max_lines
            || self.buf.len() + 1 + line.len() > self.cfg.max_bytes;
        if !cont || over {
            out.extend(self.take());
        }
        if self.lines > 0 {
            self.buf.push('\n');
        }
        self.buf.push_str(line);
        self.lines += 1;
        self.last_ms = now_ms;
        out
    }

    /// Emit the buffered event if nothing was added for `timeout_ms`.
    pub fn flush_expired(&mut self, now_ms: u64) -> Option<String> {
        if self.lines > 0 && now_ms.saturating_sub(self.last_ms) >= self.cfg.timeout_ms {
            self.state = State::None;
            return self.take();
        }
        None
    }

    /// Emit whatever is buffered (end of input).
    pub fn flush(&mut self) -> Option<String> {
        self.state = State::None;
        self.take()
    }

    /// Bytes currently buffered.
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }
}
