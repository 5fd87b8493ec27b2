use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufReader, BufWriter, ErrorKind, Read};

use std::net::SocketAddr;
use std::str::FromStr;

use crate::common::{HTTPVersion, Header, Method};
use crate::util::RefinedTcpStream;
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriterBuilder};
use crate::Request;

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    remote_addr: IoResult<Option<SocketAddr>>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // true if the connection goes through SSL
    secure: bool,

    // Patched (WasmEngine): where a 408 for stalled headers is counted
    counters: Option<std::sync::Arc<crate::ConnectionCounters>>,

    // Patched (WasmEngine): the limits, the deadline and unread body this
    //  connection's reads share, and what bodies are read whole up front
    limits: crate::ConnectionLimits,
    state: std::sync::Arc<crate::util::ConnectionState>,
    body_options: crate::request::BodyOptions,
}

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    WrongRequestLine,
    WrongHeader(HTTPVersion),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    ReadIoError(IoError),
    /// Patched (WasmEngine): the request line (414) or the headers (431)
    /// passed their limits.
    HeadTooLarge(u16),
    /// Patched (WasmEngine): the connection cannot carry another request
    /// (the last body was left unread beyond what may be skipped).
    Abandoned,
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    /// Patched (WasmEngine): with the limits of every connection, and the
    /// server's counters when it keeps them.
    pub fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
        limits: crate::ConnectionLimits,
        counters: Option<std::sync::Arc<crate::ConnectionCounters>>,
    ) -> ClientConnection {
        let remote_addr = read_socket.peer_addr();
        let secure = read_socket.secure();
        let state = std::sync::Arc::new(crate::util::ConnectionState::new());
        let read_socket = read_socket.with_deadline(state.clone(), limits.read_timeout);
        let body_options = crate::request::BodyOptions {
            prefetch_body_bytes: limits.prefetch_body_bytes.unwrap_or(1024),
            budget: match (&counters, limits.max_prefetched_bytes) {
                (Some(counters), Some(max)) => Some((counters.clone(), max)),
                _ => None,
            },
            state: Some(state.clone()),
        };

        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = source.next().unwrap();

        ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            secure,
            counters,
            limits,
            state,
            body_options,
        }
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Patched (WasmEngine): skips what the last request's reader left of
    /// its body (see `EqualReader`), through a small buffer, under the body's
    /// deadline and at most `max_drain_bytes`; past either the connection
    /// cannot carry another request and is closed.
    fn skip_unread_body(&mut self) -> Result<(), ReadError> {
        let mut unread = self.state.take_unread();
        if unread == 0 {
            return Ok(());
        }
        if unread == usize::MAX || self.limits.max_drain_bytes.map_or(false, |max| unread > max) {
            return Err(ReadError::Abandoned);
        }
        let mut buf = [0; 1024];
        while unread > 0 {
            let len = unread.min(buf.len());
            match self.next_header_source.read(&mut buf[..len]) {
                Ok(0) | Err(_) => return Err(ReadError::Abandoned),
                Ok(read) => unread -= read,
            }
        }
        Ok(())
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        // Patched (WasmEngine): the last request's unread body is skipped
        // here, on the connection's thread, never on the thread that answered.
        self.next_header_source.wait_turn();
        self.skip_unread_body()?;

        // Patched (WasmEngine): no deadline while idle; the head's runs from
        // its first byte.
        self.state.set_deadline(None);
        let (method, path, version, headers) = {
            let state = &self.state;
            let head_timeout = self.limits.head_timeout;
            read_head(
                &mut self.next_header_source,
                HeadLimits::from(&self.limits),
                &mut || state.set_deadline(head_timeout),
            )?
        };

        // Patched (WasmEngine): the body's deadline runs from the end of the
        // head, whoever reads it; an upgraded connection has none.
        let upgrade = headers.iter().any(|h| {
            h.field.equiv("Connection")
                && h.value
                    .as_bytes()
                    .windows(7)
                    .any(|word| word.eq_ignore_ascii_case(b"upgrade"))
        });
        self.state
            .set_deadline(if upgrade { None } else { self.limits.body_timeout });

        // building the writer for the request
        let writer = self.sink.next().unwrap();

        // follow-up for next potential request
        let mut data_source = self.source.next().unwrap();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // building the next reader
        let request = crate::request::new_request(
            self.secure,
            method,
            path,
            version.clone(),
            headers,
            *self.remote_addr.as_ref().unwrap(),
            data_source,
            writer,
            &self.body_options,
        )
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version)
                }
            }
        })?;

        // return the request
        Ok(request)
    }
}

/// Patched (WasmEngine): the limits on a request's head; `usize::MAX`: none.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadLimits {
    request_line_bytes: usize,
    header_bytes: usize,
    headers: usize,
}

impl From<&crate::ConnectionLimits> for HeadLimits {
    fn from(limits: &crate::ConnectionLimits) -> HeadLimits {
        HeadLimits {
            request_line_bytes: limits.max_request_line_bytes.unwrap_or(usize::MAX),
            header_bytes: limits.max_header_bytes.unwrap_or(usize::MAX),
            headers: limits.max_headers.unwrap_or(usize::MAX),
        }
    }
}

/// Patched (WasmEngine): why a line could not be read.
enum LineError {
    Io(IoError),
    TooLong,
}

/// Reads one line, until `CRLF`, of at most `max_bytes` (without the
/// `CRLF`). The next read starts at the first byte of the next line.
/// `on_first_byte`, given for a request's first line, is called when its
/// first byte arrives; a timeout before it is an idle keep-alive connection.
fn read_next_line<R: Read>(
    source: &mut R,
    max_bytes: usize,
    mut on_first_byte: Option<&mut dyn FnMut()>,
) -> Result<AsciiString, LineError> {
    let mut buf = Vec::new();
    let mut prev_byte_was_cr = false;

    loop {
        let byte = source.by_ref().bytes().next();

        let byte = match byte {
            // Patched (WasmEngine): a read timeout before the first byte of a
            // request is an idle keep-alive connection: close it quietly.
            Some(Err(error)) if buf.is_empty() && is_timeout(&error) && on_first_byte.is_some() => {
                return Err(LineError::Io(IoError::new(
                    ErrorKind::ConnectionAborted,
                    "idle connection",
                )))
            }
            Some(b) => b.map_err(LineError::Io)?,
            None => {
                return Err(LineError::Io(IoError::new(
                    ErrorKind::ConnectionAborted,
                    "Unexpected EOF",
                )))
            }
        };
        if let Some(on_first_byte) = on_first_byte.take() {
            on_first_byte();
        }

        if byte == b'\n' && prev_byte_was_cr {
            buf.pop(); // removing the '\r'
            return AsciiString::from_ascii(buf).map_err(|_| {
                LineError::Io(IoError::new(ErrorKind::InvalidInput, "Header is not in ASCII"))
            });
        }

        prev_byte_was_cr = byte == b'\r';

        buf.push(byte);
        // Patched (WasmEngine): the line's length limit (its '\r' aside).
        if buf.len() > max_bytes.saturating_add(1) {
            return Err(LineError::TooLong);
        }
    }
}

/// Reads a request's head (request line and headers) from `source` under
/// `limits`. Patched (WasmEngine): a function of its own, over any reader,
/// with the limits (414 for the request line, 431 for the headers).
fn read_head<R: Read>(
    source: &mut R,
    limits: HeadLimits,
    on_first_byte: &mut dyn FnMut(),
) -> Result<(Method, String, HTTPVersion, Vec<Header>), ReadError> {
    let line_error = |status: u16| {
        move |error| match error {
            LineError::Io(error) => ReadError::ReadIoError(error),
            LineError::TooLong => ReadError::HeadTooLarge(status),
        }
    };
    // reading the request line
    let (method, path, version) = {
        let line = read_next_line(source, limits.request_line_bytes, Some(on_first_byte))
            .map_err(line_error(414))?;

        parse_request_line(
            line.as_str().trim(), // TODO: remove this conversion
        )?
    };

    // getting all headers
    let mut headers = Vec::new();
    let mut header_bytes_left = limits.header_bytes;
    loop {
        let line = read_next_line(source, header_bytes_left, None).map_err(line_error(431))?;

        if line.is_empty() {
            break;
        };
        if headers.len() >= limits.headers {
            return Err(ReadError::HeadTooLarge(431));
        }
        header_bytes_left = header_bytes_left.saturating_sub(line.len() + 2);
        headers.push(match FromStr::from_str(line.as_str().trim()) {
            // TODO: remove this conversion
            Ok(h) => h,
            _ => return Err(ReadError::WrongHeader(version)),
        });
    }

    Ok((method, path, version, headers))
}

/// Patched (WasmEngine): parses `bytes` as a request's head, as a
/// connection does, under the limits given; for fuzzing. Returns the number
/// of headers, or the status the server would answer.
#[doc(hidden)]
pub fn parse_request_head(bytes: &[u8], limits: &crate::ConnectionLimits) -> Result<usize, u16> {
    let mut source = std::io::Cursor::new(bytes);
    match read_head(&mut source, HeadLimits::from(limits), &mut || ()) {
        Ok((_, _, _, headers)) => Ok(headers.len()),
        Err(ReadError::HeadTooLarge(status)) => Err(status),
        Err(ReadError::ExpectationFailed(_)) => Err(417),
        Err(ReadError::ReadIoError(_)) | Err(ReadError::Abandoned) => Err(0),
        Err(ReadError::WrongRequestLine) | Err(ReadError::WrongHeader(_)) => Err(400),
    }
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        use crate::{Response, StatusCode};

        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        if self.no_more_requests {
            return None;
        }

        loop {
            let rq = match self.read() {
                Err(ReadError::WrongRequestLine) => {
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(400));
                    response
                        .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                        .ok();
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }

                Err(ReadError::WrongHeader(ver)) => {
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(400));
                    response.raw_print(writer, ver, &[], false, None).ok();
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }

                Err(ReadError::ReadIoError(ref err)) if is_timeout(err) => {
                    // request timeout
                    if let Some(counters) = &self.counters {
                        counters
                            .header_timeouts
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(408));
                    response
                        .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                        .ok();
                    return None; // closing the connection
                }

                Err(ReadError::ExpectationFailed(ver)) => {
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(417));
                    response.raw_print(writer, ver, &[], true, None).ok();
                    return None; // TODO: should be recoverable, but needs handling in case of body
                }

                Err(ReadError::ReadIoError(_)) => return None,

                // Patched (WasmEngine): the head is too large to read on.
                Err(ReadError::HeadTooLarge(status)) => {
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(status));
                    response
                        .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                        .ok();
                    return None;
                }

                Err(ReadError::Abandoned) => return None,

                Ok(rq) => rq,
            };

            // checking HTTP version
            if *rq.http_version() > (1, 1) {
                let writer = self.sink.next().unwrap();
                let response = Response::from_string(
                    "This server only supports HTTP versions 1.0 and 1.1".to_owned(),
                )
                .with_status_code(StatusCode(505));
                response
                    .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                    .ok();
                continue;
            }

            // updating the status of the connection
            let connection_header = rq
                .headers()
                .iter()
                .find(|h| h.field.equiv("Connection"))
                .map(|h| h.value.as_str());

            let lowercase = connection_header.map(|h| h.to_ascii_lowercase());

            match lowercase {
                Some(ref val) if val.contains("close") => self.no_more_requests = true,
                Some(ref val) if val.contains("upgrade") => self.no_more_requests = true,
                Some(ref val)
                    if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
                {
                    self.no_more_requests = true
                }
                None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
                _ => (),
            };

            // returning the request
            return Some(rq);
        }
    }
}

/// Patched (WasmEngine): a socket read timeout shows as `WouldBlock` on Unix
/// and `TimedOut` on Windows (and a passed deadline as `TimedOut`).
pub(crate) fn is_timeout(error: &IoError) -> bool {
    matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Parses a "HTTP/1.1" string.
fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    let (major, minor) = match version {
        "HTTP/0.9" => (0, 9),
        "HTTP/1.0" => (1, 0),
        "HTTP/1.1" => (1, 1),
        "HTTP/2.0" => (2, 0),
        "HTTP/3.0" => (3, 0),
        _ => return Err(ReadError::WrongRequestLine),
    };

    Ok(HTTPVersion(major, minor))
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Result<(Method, String, HTTPVersion), ReadError> {
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts.next().map(ToOwned::to_owned);
    let version = parts.next().and_then(|w| parse_http_version(w).ok());

    method
        .and_then(|method| Some((method, path?, version?)))
        .ok_or(ReadError::WrongRequestLine)
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
    }
}
