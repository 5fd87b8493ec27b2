//! Registry requests through an HTTP proxy (`HTTP_PROXY`/`HTTPS_PROXY`,
//! `NO_PROXY`), and loopback never proxied.

use crate::support::fault_proxy::ConnectProxy;
use crate::support::{Engine, Registry, machine_host_name};

#[test]
fn registry_requests_go_through_the_proxy_unless_no_proxy_or_loopback() {
    // A registry named by this machine's host name: not loopback by its
    // spelling, so proxied.
    let (name, ip) = machine_host_name();
    let registry = Registry::start_real_on(ip);
    registry.push_fixture("numeric", "fn:v1");
    let port = registry.address.rsplit(':').next().unwrap().to_owned();
    let named = format!("{name}:{port}");
    let loopback = Registry::start_real();
    loopback.push_fixture("numeric", "fn:v1");
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
    engine.deploy("sub", &loopback.image("fn:v1"), false);
    assert_eq!(
        proxy.seen.lock().unwrap().len(),
        before,
        "loopback went through the proxy"
    );

    let bypass = Engine::start_with_env(
        &["--insecure-registry", &named],
        &[
            ("HTTP_PROXY", &proxy_url),
            ("NO_PROXY", &format!(".example.test,{name}")),
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
