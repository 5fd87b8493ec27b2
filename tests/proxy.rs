//! Registry requests through an HTTP proxy (`HTTP_PROXY`/`HTTPS_PROXY`,
//! `NO_PROXY`), and loopback never proxied.

use crate::support::fault_proxy::ConnectProxy;
use crate::support::{Engine, Registry};

fn hosts_file_alias() -> &'static str {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    assert!(
        hosts.contains("wasmengine-registry.test"),
        "/etc/hosts lacks `127.0.0.1 wasmengine-registry.test`; `make hosts` adds it"
    );
    "wasmengine-registry.test"
}

#[test]
fn registry_requests_go_through_the_proxy_unless_no_proxy_or_loopback() {
    let registry = Registry::start();
    registry.push_fixture("numeric", "fn:v1");
    let port = registry.address.rsplit(':').next().unwrap().to_owned();
    let named = format!("{}:{port}", hosts_file_alias());
    let proxy = ConnectProxy::start();
    let proxy_url = format!("http://{}", proxy.address);

    let engine = Engine::start_with_env(
        &["--insecure-registry", &named],
        &[("http_proxy", &proxy_url), ("NO_PROXY", "")],
    );
    engine.deploy("gcd", &format!("{named}/fn:v1"), false);
    let tunnels = proxy.seen.lock().unwrap().clone();
    assert!(
        tunnels
            .iter()
            .any(|line| line.starts_with(&format!("CONNECT {named} "))),
        "the pull went through the proxy: {tunnels:?}"
    );
    // Loopback by its spelling: never proxied.
    let before = proxy.seen.lock().unwrap().len();
    engine.deploy("sub", &registry.image("fn:v1"), false);
    assert_eq!(
        proxy.seen.lock().unwrap().len(),
        before,
        "loopback went through the proxy"
    );

    let bypass = Engine::start_with_env(
        &["--insecure-registry", &named],
        &[
            ("HTTP_PROXY", &proxy_url),
            ("NO_PROXY", ".registry.test,wasmengine-registry.test"),
        ],
    );
    let before = proxy.seen.lock().unwrap().len();
    bypass.deploy("gcd", &format!("{named}/fn:v1"), false);
    assert_eq!(
        proxy.seen.lock().unwrap().len(),
        before,
        "NO_PROXY was ignored"
    );
}
