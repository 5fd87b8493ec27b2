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
//!
//! A reader can also follow a log ([`FunctionLog::wait_after`]): every line
//! gets the next number of the log's sequence, a [`LogCursor`] says which
//! lines a reader has had, and a reader waits on a condition variable for
//! lines past it. Following never holds the lock while a caller writes to
//! its client, so a slow reader never slows a call.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

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

/// Where a reader following a log is: the sequence number of the next line
/// it has not had yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogCursor(u64);

/// One function's ring of recent log lines.
pub struct FunctionLog {
    limits: LogLimits,
    ring: Mutex<Ring>,
    /// Notified whenever lines are added, for readers following the log.
    grew: Condvar,
}

#[derive(Default)]
struct Ring {
    lines: VecDeque<LogLine>,
    bytes: usize,
    /// The sequence number the next line added gets; `lines` holds the
    /// ones just before it.
    next_seq: u64,
}

impl Ring {
    /// The sequence number of the oldest line kept.
    fn first_seq(&self) -> u64 {
        self.next_seq - self.lines.len() as u64
    }
}

impl FunctionLog {
    pub fn new(limits: LogLimits) -> Self {
        Self {
            limits,
            ring: Mutex::new(Ring::default()),
            grew: Condvar::new(),
        }
    }

    /// Adds what a call wrote to stderr, one line per `\n` (a last line
    /// without one counts too). Nothing is taken for empty stderr.
    pub fn append_stderr(&self, call_id: &CallId, version: &Arc<str>, stderr: &[u8]) {
        if stderr.is_empty() || self.limits.max_lines == 0 {
            return;
        }
        let text = escape_invalid_utf8(stderr);
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
        drop(ring);
        self.grew.notify_all();
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
        drop(ring);
        self.grew.notify_all();
    }

    /// The lines at or after `since` (all when `None`), oldest first, at most
    /// the last `tail` of them (all when `None`).
    pub fn query(&self, since: Option<SystemTime>, tail: Option<usize>) -> Vec<LogLine> {
        self.query_to_follow(since, tail).0
    }

    /// As [`FunctionLog::query`], with the cursor a reader that goes on
    /// following the log starts from (no line is missed or repeated between
    /// the two).
    pub fn query_to_follow(
        &self,
        since: Option<SystemTime>,
        tail: Option<usize>,
    ) -> (Vec<LogLine>, LogCursor) {
        let ring = self.lock();
        (Self::select(&ring, since, tail), LogCursor(ring.next_seq))
    }

    /// Waits at most `timeout` for lines past `cursor`; returns them (none
    /// when the wait timed out) and the cursor after them. Lines the ring
    /// dropped before the reader came back for them are skipped.
    pub fn wait_after(&self, cursor: LogCursor, timeout: Duration) -> (Vec<LogLine>, LogCursor) {
        let ring = self.lock();
        let (ring, _) = self
            .grew
            .wait_timeout_while(ring, timeout, |ring| ring.next_seq <= cursor.0)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let skip = cursor.0.saturating_sub(ring.first_seq());
        let lines = ring
            .lines
            .iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .cloned()
            .collect();
        (lines, LogCursor(ring.next_seq))
    }

    fn select(ring: &Ring, since: Option<SystemTime>, tail: Option<usize>) -> Vec<LogLine> {
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
        ring.next_seq += 1;
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

/// `bytes` as text: UTF-8 as it is, and each byte that is not part of
/// valid UTF-8 shown as `\xNN`, so a function's log never silently loses
/// or replaces what it wrote (a `\` stays itself: the escapes are for
/// reading, not for decoding back).
pub fn escape_invalid_utf8(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return text.into();
    }
    let mut text = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        for byte in chunk.invalid() {
            text.push_str(&format!("\\x{byte:02x}"));
        }
    }
    text.into()
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
        log.append_stderr(&id("c2"), &version, b"png \x89PNG\r\n\xe2\x82 \xc3\xa9\n");
        log.append_engine(&id("c3"), &version, "trapped:\nunreachable");
        let lines = log.query(None, None);
        assert_eq!(
            texts(&lines),
            [
                "first",
                "second",
                "",
                "last without newline",
                "png \\x89PNG",
                "\\xe2\\x82 \u{e9}",
                "trapped: unreachable"
            ]
        );
        assert_eq!(lines[0].call_id.as_str(), "c1");
        assert_eq!(&*lines[0].version, "sha256:aa");
        assert_eq!(lines[0].source, LogSource::Stderr);
        assert_eq!(lines[6].call_id.as_str(), "c3");
        assert_eq!(lines[6].source, LogSource::Engine);
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

    #[test]
    fn a_follower_gets_each_later_line_once_and_is_woken_by_an_append() {
        let log = Arc::new(FunctionLog::new(LogLimits::default()));
        let version: Arc<str> = "v".into();
        log.append_stderr(&id("old"), &version, b"before\n");
        let (lines, cursor) = log.query_to_follow(None, None);
        assert_eq!(texts(&lines), ["before"]);
        // Nothing new: the wait times out empty, the cursor stays.
        let (lines, same) = log.wait_after(cursor, Duration::from_millis(1));
        assert!(lines.is_empty());
        assert_eq!(same, cursor);

        let writer = {
            let (log, version) = (log.clone(), version.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                log.append_stderr(&id("new"), &version, b"one\ntwo\n");
            })
        };
        // Woken by the append, long before this bound.
        let (lines, cursor) = log.wait_after(cursor, Duration::from_secs(30));
        writer.join().unwrap();
        assert_eq!(texts(&lines), ["one", "two"]);
        log.append_engine(&id("new"), &version, "three");
        let (lines, _) = log.wait_after(cursor, Duration::from_secs(30));
        assert_eq!(texts(&lines), ["three"]);
    }

    #[test]
    fn a_follower_that_fell_behind_skips_the_lines_the_ring_dropped() {
        let log = FunctionLog::new(LogLimits {
            max_lines: 2,
            max_bytes: 1 << 20,
        });
        let version: Arc<str> = "v".into();
        let (_, cursor) = log.query_to_follow(None, None);
        log.append_stderr(&id("c"), &version, b"a\nb\nc\nd\n");
        let (lines, cursor) = log.wait_after(cursor, Duration::from_secs(30));
        assert_eq!(texts(&lines), ["c", "d"]);
        log.append_stderr(&id("c"), &version, b"e\n");
        let (lines, _) = log.wait_after(cursor, Duration::from_secs(30));
        assert_eq!(texts(&lines), ["e"]);
    }
}
