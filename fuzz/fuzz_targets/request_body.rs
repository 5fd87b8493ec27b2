//! Request bodies: any bytes, on each POST route, parse to a request or a
//! 400; never a panic. The first byte picks the route.
#![no_main]

use libfuzzer_sys::fuzz_target;

const ROUTES: [&str; 5] = [
    "/function/deploy",
    "/function/update",
    "/function/delete",
    "/function/query",
    "/function/invoke",
];

fuzz_target!(|data: &[u8]| {
    let Some((&route, body)) = data.split_first() else {
        return;
    };
    let route = ROUTES[route as usize % ROUTES.len()];
    if let Err(error) = wasm_engine::fuzzing::parse_route_body(route, body) {
        assert_eq!(error.status(), 400, "{route}: {error}");
    }
});
