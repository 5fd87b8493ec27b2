//! The string ABI's result: any `(ptr, len)` a function returns, over any
//! memory, is read (any bytes) only when it lies inside the memory and fits
//! the output cap; otherwise it is an error, never a panic or an over-read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_engine::fuzzing::read_string_result;

fuzz_target!(|data: &[u8]| {
    if data.len() < 10 {
        return;
    }
    let ptr = u32::from_le_bytes(data[0..4].try_into().unwrap());
    let len = u32::from_le_bytes(data[4..8].try_into().unwrap());
    let cap = u16::from_le_bytes(data[8..10].try_into().unwrap()) as usize;
    let memory = &data[10..];
    if let Ok(output) = read_string_result("fuzz", memory, ptr, len, cap) {
        assert!(output.len() == len as usize && output.len() <= cap);
        assert_eq!(
            output.as_slice(),
            &memory[ptr as usize..ptr as usize + len as usize]
        );
    }
});
