//! `GET /system/logs?...&follow=true`: the lines kept, then each new line
//! as the function logs it, streamed (chunked) on a thread of its own until
//! the client goes away, the function is deleted, or the engine stops.
//!
//! The stream is written straight to the connection (tiny_http buffers a
//! chunked body until 8 KiB). A newline (which NDJSON readers such as
//! faas-cli's JSON decoder skip) is sent after [`HEARTBEAT`]
//! without a line, so a client that went away is noticed even when the
//! function is quiet. At most [`MAX_FOLLOWERS`] streams run at
//! once (then 503); the drain waits for them, and they end within
//! [`TICK`] of the stop.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{check_access, failure, log_request, ndjson};
use crate::api::http::error::ApiError;
use crate::api::http::exchange::{CALL_ID_HEADER, Exchange};
use crate::api::http::query::Query;
use crate::api::http::routing::Guard;
use crate::api::http::send::{finish, log_access, log_failure, log_panic};
use crate::api::shared::{Shared, header};
use crate::function_log::{FunctionLog, LogCursor};

/// Most log streams at once; beyond it, 503.
pub const MAX_FOLLOWERS: usize = 8;
/// How often a stream checks the stop flag and that its function is
/// still deployed.
pub const TICK: Duration = Duration::from_millis(250);
/// Longest quiet time before a heartbeat newline.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

static FOLLOWERS: AtomicUsize = AtomicUsize::new(0);

/// Log streams under way.
pub fn count() -> usize {
    FOLLOWERS.load(Ordering::Acquire)
}

/// One of the [`MAX_FOLLOWERS`] places, given back when dropped (also
/// when a stream's thread panics or cannot be started, so the drain
/// never waits for a stream that is gone).
struct Place;

impl Drop for Place {
    fn drop(&mut self) {
        FOLLOWERS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Starts a stream on its own thread, or refuses it when
/// [`MAX_FOLLOWERS`] run already.
pub fn spawn(request: tiny_http::Request, exchange: Exchange, shared: &Arc<Shared>) {
    let taken = FOLLOWERS.fetch_add(1, Ordering::AcqRel);
    let place = Place;
    if taken >= MAX_FOLLOWERS {
        drop(place);
        let error = ApiError::TooManyLogFollowers {
            limit: MAX_FOLLOWERS,
        };
        log_failure(&exchange, &error, false);
        let response = failure(&error, &exchange.id);
        finish(request, &exchange, response, shared.access_log);
        return;
    }
    let shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("log-follow".into())
        .spawn(move || {
            let _place = place;
            run(request, exchange, &shared);
        });
    if let Err(error) = spawned {
        // The request and the place went with the closure.
        log::error!("cannot start a thread to follow a log: {error}");
    }
}

fn run(request: tiny_http::Request, mut exchange: Exchange, shared: &Arc<Shared>) {
    let _scope = crate::call::enter(&exchange.id);
    let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        start(&request, &mut exchange, shared)
    }));
    let (log, first) = match started {
        Ok(Ok(started)) => started,
        Ok(Err(error)) => {
            log_failure(&exchange, &error, false);
            let response = failure(&error, &exchange.id);
            return finish(request, &exchange, response, shared.access_log);
        }
        Err(panic) => {
            log_panic(&exchange, panic.as_ref());
            let response = failure(&ApiError::Internal, &exchange.id);
            return finish(request, &exchange, response, shared.access_log);
        }
    };
    let chunked = !matches!(request.http_version(), tiny_http::HTTPVersion(1, 0));
    let mut stream = Stream {
        writer: request.into_writer(),
        chunked,
    };
    let ended = stream
        .head(&exchange)
        .and_then(|()| follow(&mut stream, &log, first, &exchange, shared));
    match ended {
        Ok(why) => {
            log::debug!("log stream of {}: {why}", name_of(&exchange));
            let _ = stream.end();
        }
        Err(error) => log::debug!(
            "log stream of {}: the client went away: {error}",
            name_of(&exchange)
        ),
    }
    log_access(&exchange, 200, shared.access_log);
}

fn name_of(exchange: &Exchange) -> &str {
    exchange.function.as_ref().map_or("-", |name| name.as_str())
}

/// Checks the credentials and the query; the function's log and the
/// first lines (already NDJSON) with the cursor after them.
fn start(
    request: &tiny_http::Request,
    exchange: &mut Exchange,
    shared: &Shared,
) -> Result<(Arc<FunctionLog>, (String, LogCursor)), ApiError> {
    let authorization = header(request, "Authorization");
    check_access(shared, Guard::Always, authorization.as_deref())?;
    let (name, query) = log_request(&Query::parse(exchange.query()), exchange)?;
    let log = shared.service.function_log(&name)?;
    let (lines, cursor) = log.query_to_follow(query.since, query.tail);
    Ok((log, (ndjson(&name, &lines), cursor)))
}

/// Streams until the engine stops or the function is deleted (the
/// reason is returned), or a write fails (the client went away).
fn follow(
    stream: &mut Stream,
    log: &Arc<FunctionLog>,
    (first, mut cursor): (String, LogCursor),
    exchange: &Exchange,
    shared: &Shared,
) -> std::io::Result<&'static str> {
    let name = exchange.function.clone().expect("start names the function");
    stream.chunk(first.as_bytes())?;
    let mut last_write = Instant::now();
    loop {
        if shared.stopping() {
            return Ok("the engine is stopping");
        }
        let same_log = shared
            .service
            .function_log(&name)
            .is_ok_and(|current| Arc::ptr_eq(&current, log));
        if !same_log {
            return Ok("the function was deleted");
        }
        let (lines, next) = log.wait_after(cursor, TICK);
        cursor = next;
        if !lines.is_empty() {
            stream.chunk(ndjson(&name, &lines).as_bytes())?;
            last_write = Instant::now();
        } else if last_write.elapsed() >= HEARTBEAT {
            stream.chunk(b"\n")?;
            last_write = Instant::now();
        }
    }
}

/// The raw connection of a streamed answer.
struct Stream {
    writer: Box<dyn Write + Send>,
    /// HTTP/1.1: chunked; HTTP/1.0: the body until the connection closes.
    chunked: bool,
}

impl Stream {
    fn head(&mut self, exchange: &Exchange) -> std::io::Result<()> {
        let framing = if self.chunked {
            "Transfer-Encoding: chunked\r\n"
        } else {
            ""
        };
        write!(
            self.writer,
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n{CALL_ID_HEADER}: {}\r\nCache-Control: no-cache\r\nConnection: close\r\n{framing}\r\n",
            exchange.id.as_str()
        )?;
        self.writer.flush()
    }

    /// Sends `bytes` at once (nothing for none: an empty chunk would
    /// end the body).
    fn chunk(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.chunked {
            write!(self.writer, "{:x}\r\n", bytes.len())?;
            self.writer.write_all(bytes)?;
            self.writer.write_all(b"\r\n")?;
        } else {
            self.writer.write_all(bytes)?;
        }
        self.writer.flush()
    }

    /// Ends the body properly (the last chunk).
    fn end(&mut self) -> std::io::Result<()> {
        if self.chunked {
            self.writer.write_all(b"0\r\n\r\n")?;
        }
        self.writer.flush()
    }
}
