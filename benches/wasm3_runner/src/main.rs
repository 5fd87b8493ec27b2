//! `wasm3_runner MODULE INPUT OUTPUT ARGV0 RUNS`: runs the WASI command
//! MODULE RUNS times under the wasm3 interpreter, each time from scratch (a
//! new runtime, the module parsed and loaded again, WASI linked, `_start`
//! called: wasm3 compiles functions lazily per runtime and shares nothing
//! between runtimes), with INPUT on stdin, stdout written to OUTPUT and
//! `argv` = `[ARGV0]`. Prints one line per run on stderr: `run WALL_NS
//! CPU_NS`, the wall-clock and the process's CPU time from the new runtime
//! to its release after `_start` returned.
//!
//! wasm3's WASI layer reads and writes the process's own file descriptors,
//! so each run points fd 0 and fd 1 at the files with `dup2`.
use std::ffi::{c_char, CStr, CString};
use std::ptr;
use std::time::Instant;

use wasm3x_sys as ffi;

/// wasm3's WASI context (`m3_api_wasi.h`), which `wasm3.h` (and so the
/// generated bindings) does not declare.
#[repr(C)]
struct WasiContext {
    exit_code: i32,
    argc: u32,
    argv: *const *const c_char,
}

extern "C" {
    fn m3_LinkWASI(module: ffi::IM3Module) -> ffi::M3Result;
    fn m3_GetWasiContext() -> *mut WasiContext;
}

/// The process's CPU time (user + system), in nanoseconds.
fn cpu_time_ns() -> u128 {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut time) };
    time.tv_sec as u128 * 1_000_000_000 + time.tv_nsec as u128
}

fn redirect(path: &str, flags: libc::c_int, target_fd: libc::c_int) {
    let c_path = CString::new(path).expect("path without NUL");
    // SAFETY: plain POSIX calls on a path we own; the descriptor is closed
    // after being duplicated.
    unsafe {
        let fd = libc::open(c_path.as_ptr(), flags, 0o644);
        assert!(fd >= 0, "cannot open {path}");
        assert!(libc::dup2(fd, target_fd) >= 0, "dup2 failed");
        libc::close(fd);
    }
}

/// Fails the process with wasm3's message unless `result` is success.
fn check(what: &str, result: ffi::M3Result) {
    if !result.is_null() {
        // SAFETY: wasm3's results are static NUL-terminated strings.
        let message = unsafe { CStr::from_ptr(result) }.to_string_lossy();
        eprintln!("error {what}: {message}");
        std::process::exit(1);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        eprintln!("usage: wasm3_runner MODULE INPUT OUTPUT ARGV0 RUNS");
        std::process::exit(2);
    }
    let bytes = std::fs::read(&args[1]).expect("cannot read the module");
    let argv0 = CString::new(args[4].as_str()).expect("ARGV0 without NUL");
    let argv = [argv0.as_ptr()];
    let runs: usize = args[5].parse().expect("RUNS is a number");
    let start_name = CString::new("_start").unwrap();
    for _ in 0..runs {
        redirect(&args[2], libc::O_RDONLY, 0);
        redirect(&args[3], libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC, 1);
        let start = Instant::now();
        let start_cpu_ns = cpu_time_ns();
        // SAFETY: the documented wasm3 C API sequence; `bytes` outlives the
        // module (wasm3 keeps pointers into it), and everything is freed
        // before the next run.
        let exit = unsafe {
            let environment = ffi::m3_NewEnvironment();
            // The value stack, in bytes: 1 MiB (wasm3's CLI defaults to
            // 64 KiB; the Rust programs recurse deeper on large inputs).
            let runtime = ffi::m3_NewRuntime(environment, 1024 * 1024, ptr::null_mut());
            let mut module: ffi::IM3Module = ptr::null_mut();
            check(
                "parse",
                ffi::m3_ParseModule(environment, &mut module, bytes.as_ptr(), bytes.len() as u32),
            );
            check("load", ffi::m3_LoadModule(runtime, module));
            check("link WASI", m3_LinkWASI(module));
            let context = m3_GetWasiContext();
            (*context).argc = 1;
            (*context).argv = argv.as_ptr();
            let mut function: ffi::IM3Function = ptr::null_mut();
            check(
                "find _start",
                ffi::m3_FindFunction(&mut function, runtime, start_name.as_ptr()),
            );
            let result = ffi::m3_CallV(function);
            // A command that calls proc_exit ends with wasm3's exit trap.
            let exit = if result.is_null() {
                0
            } else if CStr::from_ptr(result).to_string_lossy().contains("exit") {
                (*context).exit_code
            } else {
                check("_start", result);
                0
            };
            ffi::m3_FreeRuntime(runtime);
            ffi::m3_FreeEnvironment(environment);
            exit
        };
        let cpu_ns = cpu_time_ns() - start_cpu_ns;
        let elapsed = start.elapsed();
        if exit != 0 {
            eprintln!("error exit code {exit}");
            std::process::exit(1);
        }
        eprintln!("run {} {cpu_ns}", elapsed.as_nanos());
    }
}
