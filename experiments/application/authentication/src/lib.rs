//! `authentication`, string ABI: `authentication(ptr, len) -> (ptr, len)`.
//! A missing argument is answered as `{"status":"400","body":"missing argument: <key>"}`.

mod logic;

#[global_allocator]
static ALLOCATOR: fn_support::bump::BumpAllocator = fn_support::bump::BumpAllocator;

/// # Safety
/// Called by the engine with its input bytes at `ptr..ptr+len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn authentication_impl(ptr: *const u8, len: usize) -> u64 {
    // SAFETY: the engine passes its own input range.
    unsafe {
        fn_support::string_abi(ptr, len, |input| {
            match fn_support::parse_args(input).and_then(|args| logic::authenticate(&args)) {
                Ok(output) => output,
                Err(message) => {
                    let mut output = String::from("{\"status\":\"400\",\"body\":");
                    fn_support::push_json_string(&mut output, &message);
                    output.push('}');
                    output
                }
            }
        })
    }
}
