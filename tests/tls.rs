//! Registries over TLS on 127.0.0.1 (issue 18's rule: a certs entry means
//! HTTPS, loopback included): a private CA made with `openssl` for the test,
//! trusted through a certs directory or `SSL_CERT_FILE`, and mutual TLS.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::support::{Engine, Registry, assert_error, machine_host_name, run_engine};

#[track_caller]
fn openssl(directory: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(directory)
        .output()
        .expect("openssl is not installed: run `make deps`");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA (`<name>-ca.crt`/`.key`) and a certificate it signs
/// (`<name>.crt`/`.key`) with `extensions` (an extfile's lines).
fn make_pki(directory: &Path, name: &str, common_name: &str, extensions: &str) {
    let ca = format!("{name}-ca");
    openssl(
        directory,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.crt"),
            "-subj",
            &format!("/CN=wasm-engine test {ca}"),
        ],
    );
    openssl(
        directory,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={common_name}"),
        ],
    );
    std::fs::write(directory.join(format!("{name}.ext")), extensions).expect("extfile");
    openssl(
        directory,
        &[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

struct TlsRegistry {
    registry: Registry,
    pki: tempfile::TempDir,
}

/// A registry on 127.0.0.1 serving TLS with a certificate from a fresh CA;
/// with `mutual`, it also asks for a client certificate from a second CA.
fn tls_registry(mutual: bool) -> TlsRegistry {
    tls_registry_on(std::net::Ipv4Addr::LOCALHOST.into(), "localhost", mutual)
}

/// As [`tls_registry`], listening on `ip`, its certificate also naming `name`.
fn tls_registry_on(ip: std::net::IpAddr, name: &str, mutual: bool) -> TlsRegistry {
    let pki = tempfile::tempdir().expect("temporary directory");
    make_pki(
        pki.path(),
        "server",
        &ip.to_string(),
        &format!(
            "subjectAltName=IP:{ip},DNS:{name}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
        ),
    );
    make_pki(
        pki.path(),
        "client",
        "wasm-engine",
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    );
    let root = tempfile::tempdir().expect("temporary directory");
    for file in ["server.crt", "server.key", "client-ca.crt"] {
        std::fs::copy(pki.path().join(file), root.path().join(file)).expect("copying PKI");
    }
    let mut tls = "tls:\n  certificate: {root}/server.crt\n  key: {root}/server.key\n".to_owned();
    if mutual {
        tls.push_str("  clientcas:\n    - {root}/client-ca.crt\n");
    }
    let registry = Registry::prepare_on(ip, root, "", &tls);
    TlsRegistry { registry, pki }
}

/// A certs directory with an entry for `registry` holding `files`
/// (`(source in the PKI dir, name in the entry)`).
fn certs_dir(pki: &Path, registry: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let entry = dir.path().join(registry);
    std::fs::create_dir_all(&entry).expect("creating the entry");
    for (source, name) in files {
        std::fs::copy(pki.join(source), entry.join(name)).expect("copying into certs.d");
    }
    let path = dir.path().to_path_buf();
    (dir, path)
}

#[test]
fn a_registry_with_a_private_ca_is_reached_over_https_with_its_certs_entry() {
    let TlsRegistry { mut registry, pki } = tls_registry(false);
    let address = registry.address.clone();
    let (_good_dir, good) = certs_dir(pki.path(), &address, &[("server-ca.crt", "ca.crt")]);
    registry.push_certs_dir = Some(good.clone());
    let image = registry.push_fixture("numeric", "fn:v1");
    let body = json!({"function_name": "gcd", "function_image": image}).to_string();

    // No entry: loopback means plain HTTP, which a TLS registry refuses.
    let empty = tempfile::tempdir().expect("temporary directory");
    let plain = Engine::start_with(&["--registry-certs-dir", empty.path().to_str().unwrap()]);
    let reply = plain.post("/function/deploy", &body);
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert!(
        reply.message().contains(&format!("http://{address}/")),
        "{}",
        reply.body
    );

    // An entry with another CA: HTTPS, and the error names where trust was looked for.
    let (_wrong_dir, wrong) = certs_dir(pki.path(), &address, &[("client-ca.crt", "ca.crt")]);
    let untrusted = Engine::start_with(&["--registry-certs-dir", wrong.to_str().unwrap()]);
    let reply = untrusted.post("/function/deploy", &body);
    assert_error(&reply, 502, "trust looked for in");
    assert!(
        reply
            .message()
            .contains(&wrong.join(&address).display().to_string()),
        "{}",
        reply.body
    );

    let engine = Engine::start_with(&["--registry-certs-dir", good.to_str().unwrap()]);
    assert!(
        engine
            .startup_log
            .iter()
            .any(|line| line.contains(&format!("registry {address}: HTTPS with"))),
        "the startup log names the certs entry: {:#?}",
        engine.startup_log
    );
    engine.deploy("gcd", &image, false);
    engine.assert_output("gcd", json!({"a": "1071", "b": "462"}), "21");
}

#[test]
fn the_system_roots_come_from_ssl_cert_file() {
    // A registry named by this machine's host name (not loopback by its
    // spelling, so HTTPS with the system roots).
    let (name, ip) = machine_host_name();
    let TlsRegistry { mut registry, pki } = tls_registry_on(ip, &name, false);
    let (_dir, good) = certs_dir(
        pki.path(),
        &registry.address,
        &[("server-ca.crt", "ca.crt")],
    );
    registry.push_certs_dir = Some(good);
    registry.push_fixture("numeric", "fn:v1");
    let port = registry.address.rsplit(':').next().unwrap();
    let image = format!("{name}:{port}/fn:v1");
    let empty = tempfile::tempdir().expect("temporary directory");
    let ca = pki.path().join("server-ca.crt");
    let engine = Engine::start_with_env(
        &["--registry-certs-dir", empty.path().to_str().unwrap()],
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
    );
    engine.deploy("gcd", &image, false);
}

#[test]
fn mutual_tls_needs_the_client_certificate_of_the_certs_entry() {
    let TlsRegistry { mut registry, pki } = tls_registry(true);
    let address = registry.address.clone();
    let (_full_dir, full) = certs_dir(
        pki.path(),
        &address,
        &[
            ("server-ca.crt", "ca.crt"),
            ("client.crt", "client.cert"),
            ("client.key", "client.key"),
        ],
    );
    registry.push_certs_dir = Some(full.clone());
    let image = registry.push_fixture("numeric", "fn:v1");
    let body = json!({"function_name": "gcd", "function_image": image}).to_string();

    let (_ca_dir, ca_only) = certs_dir(pki.path(), &address, &[("server-ca.crt", "ca.crt")]);
    let anonymous = Engine::start_with(&["--registry-certs-dir", ca_only.to_str().unwrap()]);
    let reply = anonymous.post("/function/deploy", &body);
    assert_eq!(reply.status, 502, "{}", reply.body);

    let engine = Engine::start_with(&["--registry-certs-dir", full.to_str().unwrap()]);
    engine.deploy("gcd", &image, false);
    engine.assert_output("gcd", json!({"a": "10", "b": "4"}), "2");
}

#[test]
fn a_certs_entry_for_an_insecure_registry_stops_startup() {
    let pki = tempfile::tempdir().expect("temporary directory");
    std::fs::write(pki.path().join("ca.crt"), "not used").expect("writing");
    let (_dir, certs) = certs_dir(pki.path(), "edge.lan:5000", &[("ca.crt", "ca.crt")]);
    let data = tempfile::tempdir().expect("temporary directory");
    let output = run_engine(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--registry-certs-dir",
        certs.to_str().unwrap(),
        "--insecure-registry",
        "edge.lan:5000",
    ]);
    // A startup error.
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("edge.lan:5000") && stderr.contains("--insecure-registry"),
        "{stderr}"
    );
}
