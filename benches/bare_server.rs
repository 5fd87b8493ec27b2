//! A bare `tiny_http` server answering a fixed body: the ceiling the engine's
//! HTTP throughput is compared against in `benches/load.sh`. Same worker
//! model as the engine (N threads looping on `recv_timeout`).
//!
//! Usage: `bare_server ADDR WORKERS` (prints the bound address).

fn main() {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let workers: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(2);
    let server = std::sync::Arc::new(tiny_http::Server::http(&address).expect("binding"));
    println!("{}", server.server_addr());
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let server = server.clone();
            std::thread::spawn(move || {
                loop {
                    if let Ok(Some(mut request)) =
                        server.recv_timeout(std::time::Duration::from_millis(250))
                    {
                        let mut body = Vec::new();
                        let _ = std::io::Read::read_to_end(request.as_reader(), &mut body);
                        let response =
                            tiny_http::Response::from_string("status code: 200, message: 21");
                        let _ = request.respond(response);
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        let _ = handle.join();
    }
}
