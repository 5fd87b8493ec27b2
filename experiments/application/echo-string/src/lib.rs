//! `echo-string`, string ABI: returns its input JSON with the character `b` appended.

#[global_allocator]
static ALLOCATOR: fn_support::bump::BumpAllocator = fn_support::bump::BumpAllocator;

/// # Safety
/// Called by the engine with its input bytes at `ptr..ptr+len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn echo_string_impl(ptr: *const u8, len: usize) -> u64 {
    // SAFETY: the engine passes its own input range.
    unsafe { fn_support::string_abi(ptr, len, |input| format!("{input}b")) }
}
