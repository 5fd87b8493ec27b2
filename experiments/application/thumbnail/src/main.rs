//! `thumbnail`: a WASI command that answers with bytes. It reads a PNG and
//! writes a PNG thumbnail of it (at most 64 pixels on its longer side,
//! aspect kept) to stdout.
//!
//! The image comes on stdin: as it is on the provider's route
//! (`/function/thumbnail`, the request's body), or as base64 in the
//! argument `png_base64` on the REST API, whose arguments are text
//! (`{"png_base64": "iVBORw0..."}`), with an optional `size` in pixels and
//! an optional `cgi` (`"true"`: a CGI `Content-Type: image/png` header
//! comes first, for the REST API's `"http": true`).
//! Built for `wasm32-wasip1` and natively by `make apps`; the tests compare
//! the two builds' output byte for byte.

use std::io::{Cursor, Read, Write};

fn main() {
    let mut input = Vec::new();
    if let Err(error) = std::io::stdin().read_to_end(&mut input) {
        fail(&format!("cannot read stdin: {error}"));
    }
    let (png, size, cgi) = if input.first() == Some(&b'{') {
        from_arguments(&input)
    } else {
        (input, 64, false)
    };
    let image = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
        .unwrap_or_else(|error| fail(&format!("the input is not a PNG image: {error}")));
    let thumbnail = image.thumbnail(size, size);
    let mut output = Cursor::new(Vec::new());
    thumbnail
        .write_to(&mut output, image::ImageFormat::Png)
        .unwrap_or_else(|error| fail(&format!("cannot encode the thumbnail: {error}")));
    let mut stdout = std::io::stdout().lock();
    let header: &[u8] = if cgi {
        b"Content-Type: image/png\r\n\r\n"
    } else {
        b""
    };
    let written = stdout
        .write_all(header)
        .and_then(|()| stdout.write_all(output.get_ref()))
        .and_then(|()| stdout.flush());
    if let Err(error) = written {
        fail(&format!("cannot write stdout: {error}"));
    }
}

/// The image, size and CGI choice from the REST API's arguments, the flat
/// JSON object of strings the engine sends: `png_base64`, optional `size`
/// and `cgi`.
fn from_arguments(input: &[u8]) -> (Vec<u8>, u32, bool) {
    let text = std::str::from_utf8(input).unwrap_or_else(|_| fail("the arguments are not UTF-8"));
    let encoded = string_field(text, "png_base64")
        .unwrap_or_else(|| fail("give the image as the argument png_base64"));
    let png = decode_base64(encoded).unwrap_or_else(|| fail("png_base64 is not base64"));
    let size = match string_field(text, "size") {
        Some(size) => size
            .parse()
            .ok()
            .filter(|size| (1..=1024).contains(size))
            .unwrap_or_else(|| fail("size is a number of pixels from 1 to 1024")),
        None => 64,
    };
    (png, size, string_field(text, "cgi") == Some("true"))
}

/// The value of `"key":"value"` in the engine's arguments (base64 and
/// digits need no JSON escapes, so none are decoded).
fn string_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let start = json.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let length = json[start..].find('"')?;
    Some(&json[start..start + length])
}

/// Standard base64 (padding optional).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(text.len() / 4 * 3);
    let (mut buffer, mut bits) = (0u32, 0);
    for byte in text.bytes().filter(|byte| *byte != b'=') {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buffer = buffer << 6 | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((buffer >> bits) as u8);
        }
    }
    Some(bytes)
}

fn fail(message: &str) -> ! {
    eprintln!("thumbnail: {message}");
    std::process::exit(2);
}
