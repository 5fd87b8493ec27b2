//! The differential test with real third-party programs, none written here:
//! three WASI commands from crates.io and one C program, each built for
//! `wasm32-wasip1` and natively from the same pinned source by
//! `experiments/thirdparty/build.sh` (`make apps`). Each is deployed from a
//! real registry and invoked with several inputs; its output must be the
//! native build's stdout for the same stdin, byte for byte.
//!
//! What the native build is given is what the engine gives the wasm (see
//! `docs/abi.md`): the args as compact JSON in request order, as stdin and as
//! `argv[0]`, no other arguments and no environment. The engine's answer is
//! stdout with one trailing newline removed; so is the native one here.
//!
//! Every input goes to a freshly deployed function, so each invocation is a
//! first call: the interpreter translates the functions the program reaches
//! during that call (lazily, at whatever point of the call's fuel it gets
//! there), unless the engine's background translation (`runtime::warm`)
//! finished first. A second invocation of the same function checks the
//! warm path.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::support::{Engine, Registry};

/// The built programs: `experiments/thirdparty/build/<name>.wasm` and the
/// native `experiments/thirdparty/build/<name>`.
fn program_path(file_name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("experiments/thirdparty/build")
        .join(file_name)
}

#[track_caller]
fn read_wasm(program: &str) -> Vec<u8> {
    let path = program_path(&format!("{program}.wasm"));
    std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "{}: {error}; build the third-party programs first with `make apps`",
            path.display()
        )
    })
}

/// The args JSON exactly as the engine writes it: a compact object of
/// strings, keys in request order.
fn args_json(args: &[(String, String)]) -> String {
    let members: Vec<String> = args
        .iter()
        .map(|(key, value)| {
            format!(
                "{}:{}",
                serde_json::to_string(key).unwrap(),
                serde_json::to_string(value).unwrap()
            )
        })
        .collect();
    format!("{{{}}}", members.join(","))
}

/// Runs the native build as the engine runs the wasm: `stdin` on stdin and
/// as `argv[0]`, no environment. Returns stdout with one trailing newline
/// removed, as the engine's answer.
#[track_caller]
fn run_native(program: &str, stdin: &str) -> String {
    let path = program_path(program);
    let mut child = Command::new(&path)
        .arg0(stdin)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "{}: {error}; build the third-party programs first with `make apps`",
                path.display()
            )
        });
    let mut child_stdin = child.stdin.take().unwrap();
    let input = stdin.as_bytes().to_vec();
    // Written from a thread: the program may fill its stdout pipe first.
    let writer = std::thread::spawn(move || child_stdin.write_all(&input));
    let output = child
        .wait_with_output()
        .expect("waiting for the native build");
    writer
        .join()
        .unwrap()
        .expect("writing the native build's stdin");
    assert!(
        output.status.success(),
        "native {program} failed with {} on {stdin:.200}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let mut stdout = output.stdout;
    if stdout.last() == Some(&b'\n') {
        stdout.pop();
    }
    String::from_utf8_lossy(&stdout).into_owned()
}

/// Asserts that the engine answered 200 with exactly `native`; on a
/// difference, shows where it starts rather than two long outputs.
#[track_caller]
fn assert_same_output(what: &str, reply: &crate::support::Reply, native: &str) {
    assert_eq!(
        reply.status, 200,
        "{what}: the engine answered {}",
        reply.body
    );
    let wasm = reply.message();
    if wasm != native {
        let common = wasm
            .bytes()
            .zip(native.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        let context = |text: &str| {
            let bytes = &text.as_bytes()[common.saturating_sub(80)..(common + 80).min(text.len())];
            String::from_utf8_lossy(bytes).into_owned()
        };
        panic!(
            "{what}: the wasm's output ({} bytes) differs from the native build's ({} bytes) at byte {common}:\n  wasm:   {:?}\n  native: {:?}",
            wasm.len(),
            native.len(),
            context(wasm),
            context(native)
        );
    }
}

fn pairs(args: &[(&str, &str)]) -> Vec<(String, String)> {
    args.iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// The inputs every program gets: empty, Markdown, HTML, JSON escapes,
/// Unicode and control characters, and a larger document that takes a
/// program through much of its code on its first call.
fn inputs() -> Vec<(&'static str, Vec<(String, String)>)> {
    vec![
        ("no arguments", Vec::new()),
        (
            "markdown",
            pairs(&[(
                "text",
                "# Title *em* **strong** _under_ `code` [link](http://example.com \"t\") ![img](a.png) <http://auto.link> ~~strike~~ & &amp; &copy; \\* 1. item",
            )]),
        ),
        (
            "html",
            pairs(&[
                (
                    "html",
                    "<ul><li>one<li>two &amp; three</ul><table><tr><td>a<td>b</table><p>unclosed <b>bold <i>both</b> italic</i>",
                ),
                (
                    "script",
                    "<script>if (a < b && c > d) { x = \"</p>\"; }</script><!-- comment -->",
                ),
            ]),
        ),
        (
            "json escapes",
            pairs(&[
                ("quote", "say \"hi\" \\ back / slash"),
                ("lines", "one\ntwo\r\nthree\tfour\u{1}\u{1f}\u{7f}"),
                ("", "empty key"),
            ]),
        ),
        (
            "unicode",
            pairs(&[
                (
                    "ünïcödé",
                    "日本語のテキスト — emoji 🦀🚀, e\u{301} combining, שלום RTL",
                ),
                (
                    "\u{2028}",
                    "line separator \u{2028} and paragraph separator \u{2029}",
                ),
            ]),
        ),
        ("large document", large_document()),
    ]
}

/// About 60 KB of mixed Markdown, HTML and text under 300 keys (the native
/// build gets it as `argv[0]` too, which Linux caps at 128 KiB).
fn large_document() -> Vec<(String, String)> {
    let fragments = [
        "Paragraph with *emphasis*, **strong**, ***both***, `inline code`, and a [link](https://example.org/a_b?c=d&e=f).",
        "<div class=\"note\"><p>Nested <span>HTML <em>with</em></span> <a href=\"#x\">anchor</a></p></div>",
        "| a | b |\n|---|---|\n| 1 | 2 |",
        "- item one\n- item two\n  1. nested\n  2. list",
        "> quote with `code` and <b>bold</b>\n> second line",
        "```rust\nfn main() { println!(\"{}\", 1 < 2); }\n```",
        "Entities: &lt; &gt; &amp; &quot; &#39; &#x1F980; &nbsp; &copy; &unknown;",
        "Unicode: Grüße, Ελληνικά, русский, 中文, 한국어, العربية, 🦀",
        "<table><tr><th>h</th></tr><tr><td>cell <img src=\"x.png\" alt=\"x\"></td></tr></table>",
        "Autolinks <https://example.com/path> and <mailto:someone@example.com>, footnote[^1], ~~strike~~.",
        "<script>var s = '<p>not a tag</p>'; if (a < b) {}</script><style>p > a { color: red }</style>",
        "Hard  \nbreak, escaped \\*stars\\*, backslash \\\\, and trailing spaces   ",
        "<svg><circle r=\"1\"/></svg><math><mi>x</mi></math><template><p>t</p></template>",
        "Numbers 0123456789, symbols !@#$%^&*()_+-=[]{};':,./<>?",
    ];
    (0..300)
        .map(|index| {
            let fragment = fragments[index % fragments.len()];
            let repeat = 1 + index % 3;
            (
                format!("section_{index}"),
                std::iter::repeat_n(fragment, repeat)
                    .collect::<Vec<_>>()
                    .join(" "),
            )
        })
        .collect()
}

/// Deploys `program` from a real registry under a fresh name per input,
/// invokes each twice (first call, then warm) and compares with the native
/// build.
fn check_against_native_build(program: &str) {
    let registry = Registry::start();
    let engine = Engine::start();
    let image = registry.push_wasm_bytes(
        &read_wasm(program),
        &format!("{program}.wasm"),
        &format!("thirdparty/{program}:v1"),
    );
    for (index, (label, args)) in inputs().into_iter().enumerate() {
        let stdin = args_json(&args);
        let native = run_native(program, &stdin);
        let function_name = format!("{program}-{index}");
        // A generous per-function timeout: the tests may run a debug build or
        // a cross build under qemu. It bounds a hang; nothing is timed.
        engine.deploy_with(
            &function_name,
            &image,
            serde_json::json!({"wasi_cap": true, "timeout_ms": 300_000}),
        );
        let body = format!(r#"{{"function_name": "{function_name}", "args": {stdin}}}"#);
        for call in ["first call", "second call"] {
            let reply = engine.post("/function/invoke", &body);
            assert_same_output(
                &format!(
                    "{program}, {label} ({} bytes of stdin), {call}",
                    stdin.len()
                ),
                &reply,
                &native,
            );
        }
    }
}

#[test]
fn pulldown_cmark_renders_markdown_exactly_as_its_native_build() {
    check_against_native_build("pulldown-cmark");
}

#[test]
fn jsonxf_pretty_prints_json_exactly_as_its_native_build() {
    check_against_native_build("jsonxf");
}

#[test]
fn htmlq_reserializes_html_exactly_as_its_native_build() {
    check_against_native_build("htmlq");
}

#[test]
fn hoedown_in_c_renders_markdown_exactly_as_its_native_build() {
    check_against_native_build("hoedown");
}
