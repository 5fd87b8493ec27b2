//! [`FunctionLog`]: each deployed function's recent log, a bounded ring of
//! [`LogLine`]s in memory (never on disk).
//!
//! A line is either a line the function wrote to its WASI stderr, or one the
//! engine writes when a call of the function fails at run time (trap,
//! timeout, spent fuel, memory or output limit, non-zero exit), saying why.
//! Each carries its time, the call id and the function's version (the image
//! digest it was deployed from). Arguments and outputs are never logged:
//! only what the function itself wrote to stderr, and the engine's reason.
//!
//! The ring keeps at most `max_lines` lines and `max_bytes` bytes of line
//! text (`--function-log-lines`, `--function-log-bytes`); the oldest lines go
//! first. A line longer than [`MAX_LINE_BYTES`] is cut. The service owns one
//! log per deployed function: it lives across updates and goes with delete.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::call::CallId;

/// Default of `--function-log-lines`: lines kept per function.
pub const DEFAULT_MAX_LINES: usize = 1000;
/// Default of `--function-log-bytes`: bytes of line text kept per function (64 KiB).
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024;
/// Longest line kept, in bytes; a longer one is cut and marked.
pub const MAX_LINE_BYTES: usize = 4096;

/// How much of a function's log is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogLimits {
    /// Most lines kept per function; 0 keeps none. Defaults to 1000.
    pub max_lines: usize,
    /// Most bytes of line text kept per function. Defaults to 64 KiB.
    pub max_bytes: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        Self {
            max_lines: DEFAULT_MAX_LINES,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// Who wrote a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogSource {
    /// The function, on its WASI stderr.
    Stderr,
    /// The engine, about a call that failed.
    Engine,
}

impl LogSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stderr => "stderr",
            Self::Engine => "engine",
        }
    }
}

/// One line of a function's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub time: SystemTime,
    pub call_id: CallId,
    /// The image digest of the function version the call ran.
    pub version: Arc<str>,
    pub source: LogSource,
    /// The line, without its newline; invalid UTF-8 replaced.
    pub text: String,
}

/// One function's ring of recent log lines.
pub struct FunctionLog {
    limits: LogLimits,
    ring: Mutex<Ring>,
}

#[derive(Default)]
struct Ring {
    lines: VecDeque<LogLine>,
    bytes: usize,
}

impl FunctionLog {
    pub fn new(limits: LogLimits) -> Self {
        Self {
            limits,
            ring: Mutex::new(Ring::default()),
        }
    }

    /// Adds what a call wrote to stderr, one line per `\n` (a last line
    /// without one counts too). Nothing is taken for empty stderr.
    pub fn append_stderr(&self, call_id: &CallId, version: &Arc<str>, stderr: &[u8]) {
        if stderr.is_empty() || self.limits.max_lines == 0 {
            return;
        }
        let text = String::from_utf8_lossy(stderr);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let pieces: Vec<&str> = text.split('\n').collect();
        // Lines that would be evicted by the later ones of the same call are
        // not even copied.
        let skip = pieces.len().saturating_sub(self.limits.max_lines);
        let time = SystemTime::now();
        let mut ring = self.lock();
        for piece in &pieces[skip..] {
            self.push(
                &mut ring,
                LogLine {
                    time,
                    call_id: call_id.clone(),
                    version: version.clone(),
                    source: LogSource::Stderr,
                    text: cut(piece.strip_suffix('\r').unwrap_or(piece)),
                },
            );
        }
    }

    /// Adds the engine's line about a failed call.
    pub fn append_engine(&self, call_id: &CallId, version: &Arc<str>, text: &str) {
        if self.limits.max_lines == 0 {
            return;
        }
        let line = LogLine {
            time: SystemTime::now(),
            call_id: call_id.clone(),
            version: version.clone(),
            source: LogSource::Engine,
            text: cut(&text.replace('\n', " ")),
        };
        let mut ring = self.lock();
        self.push(&mut ring, line);
    }

    /// The lines at or after `since` (all when `None`), oldest first, at most
    /// the last `tail` of them (all when `None`).
    pub fn query(&self, since: Option<SystemTime>, tail: Option<usize>) -> Vec<LogLine> {
        let ring = self.lock();
        // A filter rather than a binary search: the wall clock may step back.
        let matching: Vec<&LogLine> = ring
            .lines
            .iter()
            .filter(|line| since.is_none_or(|since| line.time >= since))
            .collect();
        let skip = tail.map_or(0, |tail| matching.len().saturating_sub(tail));
        matching[skip..].iter().map(|&line| line.clone()).collect()
    }

    fn push(&self, ring: &mut Ring, line: LogLine) {
        ring.bytes += line.text.len();
        ring.lines.push_back(line);
        while ring.lines.len() > self.limits.max_lines
            || (ring.bytes > self.limits.max_bytes && ring.lines.len() > 1)
        {
            let Some(evicted) = ring.lines.pop_front() else {
                break;
            };
            ring.bytes -= evicted.text.len();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `text`, cut to [`MAX_LINE_BYTES`] at a character boundary and marked.
fn cut(text: &str) -> String {
    const MARK: &str = " [line cut]";
    if text.len() <= MAX_LINE_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_LINE_BYTES - MARK.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> CallId {
        CallId::from_client(text).unwrap()
    }

    fn texts(lines: &[LogLine]) -> Vec<&str> {
        lines.iter().map(|line| line.text.as_str()).collect()
    }

    #[test]
    fn stderr_becomes_one_line_per_newline_with_call_and_version() {
        let log = FunctionLog::new(LogLimits::default());
        let version: Arc<str> = "sha256:aa".into();
        log.append_stderr(
            &id("c1"),
            &version,
            b"first\r\nsecond\n\nlast without newline",
        );
        log.append_stderr(&id("c2"), &version, b"");
        log.append_engine(&id("c3"), &version, "trapped:\nunreachable");
        let lines = log.query(None, None);
        assert_eq!(
            texts(&lines),
            [
                "first",
                "second",
                "",
                "last without newline",
                "trapped: unreachable"
            ]
        );
        assert_eq!(lines[0].call_id.as_str(), "c1");
        assert_eq!(&*lines[0].version, "sha256:aa");
        assert_eq!(lines[0].source, LogSource::Stderr);
        assert_eq!(lines[4].call_id.as_str(), "c3");
        assert_eq!(lines[4].source, LogSource::Engine);
    }

    #[test]
    fn the_ring_keeps_the_newest_lines_within_both_bounds() {
        let version: Arc<str> = "v".into();
        let by_count = FunctionLog::new(LogLimits {
            max_lines: 3,
            max_bytes: 1 << 20,
        });
        let many: String = (0..10).map(|n| format!("line {n}\n")).collect();
        by_count.append_stderr(&id("c"), &version, many.as_bytes());
        by_count.append_stderr(&id("c"), &version, b"line 10");
        assert_eq!(
            texts(&by_count.query(None, None)),
            ["line 8", "line 9", "line 10"]
        );

        let by_bytes = FunctionLog::new(LogLimits {
            max_lines: 100,
            max_bytes: 10,
        });
        by_bytes.append_stderr(&id("c"), &version, b"aaaa\nbbbb\ncccc\n");
        assert_eq!(texts(&by_bytes.query(None, None)), ["bbbb", "cccc"]);
        // One line larger than the byte bound is still kept, alone.
        by_bytes.append_stderr(&id("c"), &version, "x".repeat(50).as_bytes());
        assert_eq!(by_bytes.query(None, None).len(), 1);

        let off = FunctionLog::new(LogLimits {
            max_lines: 0,
            max_bytes: 10,
        });
        off.append_stderr(&id("c"), &version, b"dropped\n");
        off.append_engine(&id("c"), &version, "dropped");
        assert!(off.query(None, None).is_empty());
    }

    #[test]
    fn long_lines_are_cut_at_a_character_boundary() {
        let log = FunctionLog::new(LogLimits::default());
        log.append_stderr(&id("c"), &"v".into(), "é".repeat(5000).as_bytes());
        let line = &log.query(None, None)[0].text;
        assert!(line.len() <= MAX_LINE_BYTES, "{}", line.len());
        assert!(line.ends_with(" [line cut]"));
    }

    #[test]
    fn queries_filter_by_time_then_take_the_tail() {
        let log = FunctionLog::new(LogLimits::default());
        let version: Arc<str> = "v".into();
        log.append_stderr(&id("old"), &version, b"a\nb\n");
        let between = SystemTime::now();
        std::thread::sleep(std::time::Duration::from_millis(2));
        log.append_stderr(&id("new"), &version, b"c\nd\ne\n");
        assert_eq!(texts(&log.query(None, Some(2))), ["d", "e"]);
        assert_eq!(texts(&log.query(Some(between), None)), ["c", "d", "e"]);
        assert_eq!(texts(&log.query(Some(between), Some(10))), ["c", "d", "e"]);
        assert_eq!(texts(&log.query(None, Some(0))), Vec::<&str>::new());
        assert!(log.query(Some(SystemTime::now()), None).is_empty());
    }
}
