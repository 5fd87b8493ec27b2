//! Request heads: any bytes, through the vendored tiny_http's own head
//! reader under the engine's limits (8 KiB request line, 16 KiB of header
//! lines, 100 headers), give a head within the limits or the status the
//! server would answer (400, 414, 417, 431), or end the connection; never a
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = tiny_http::ConnectionLimits {
        max_request_line_bytes: Some(8 << 10),
        max_header_bytes: Some(16 << 10),
        max_headers: Some(100),
        ..Default::default()
    };
    match tiny_http::parse_request_head(data, &limits) {
        Ok(headers) => assert!(headers <= 100, "{headers} headers passed the limit"),
        Err(status) => assert!(
            matches!(status, 0 | 400 | 414 | 417 | 431),
            "unexpected status {status}"
        ),
    }
});
