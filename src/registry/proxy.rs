//! Which HTTP proxy a registry request goes through: `HTTPS_PROXY` for
//! `https://` URLs, `HTTP_PROXY` for `http://` ones (either case; `cli`
//! reads the environment), none for hosts `NO_PROXY` names, and never one
//! for loopback. ureq tunnels through the proxy with `CONNECT`.

use std::net::IpAddr;

/// The proxy settings. Every field documents its default.
#[derive(Clone, Debug, Default)]
pub struct ProxySettings {
    /// Proxy for `https://` URLs (`HTTPS_PROXY`). Defaults to none.
    pub https_proxy: Option<String>,
    /// Proxy for `http://` URLs (`HTTP_PROXY`). Defaults to none.
    pub http_proxy: Option<String>,
    /// Hosts reached directly (`NO_PROXY`): `*`, a host or domain (which
    /// also matches its subdomains, with or without a leading `.`), a
    /// `host:port`, or an IP address. Defaults to none.
    pub no_proxy: Vec<String>,
}

impl ProxySettings {
    /// The proxy for `origin` (`scheme://host[:port]`), if any.
    pub fn proxy_for(&self, origin: &str) -> Option<&str> {
        let (scheme, host_port) = origin.split_once("://")?;
        let proxy = match scheme {
            "https" => self.https_proxy.as_deref(),
            _ => self.http_proxy.as_deref(),
        }?;
        let host = host_of(host_port);
        if is_loopback(host) || self.bypasses(host_port, host) {
            return None;
        }
        Some(proxy)
    }

    fn bypasses(&self, host_port: &str, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.no_proxy.iter().any(|entry| {
            let entry = entry.trim().to_ascii_lowercase();
            if entry.is_empty() {
                return false;
            }
            if entry == "*" || entry == host_port.to_ascii_lowercase() {
                return true;
            }
            let domain = entry.trim_start_matches("*.").trim_start_matches('.');
            host == domain || host.ends_with(&format!(".{domain}"))
        })
    }
}

/// The host of `host[:port]` (brackets of an IPv6 address removed).
fn host_of(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host_port.split(':').next().unwrap_or(host_port)
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_by_scheme_except_loopback_and_no_proxy() {
        let settings = ProxySettings {
            https_proxy: Some("http://proxy:3128".into()),
            http_proxy: Some("http://plain-proxy:3128".into()),
            no_proxy: vec![".corp.lan".into(), "edge:5000".into(), "10.0.0.1".into()],
        };
        assert_eq!(
            settings.proxy_for("https://ghcr.io"),
            Some("http://proxy:3128")
        );
        assert_eq!(
            settings.proxy_for("http://edge:6000"),
            Some("http://plain-proxy:3128")
        );
        assert_eq!(settings.proxy_for("https://127.0.0.1:5000"), None);
        assert_eq!(settings.proxy_for("http://localhost:5000"), None);
        assert_eq!(settings.proxy_for("https://[::1]:5000"), None);
        assert_eq!(settings.proxy_for("https://harbor.corp.lan"), None);
        assert_eq!(settings.proxy_for("https://corp.lan"), None);
        assert_eq!(settings.proxy_for("http://edge:5000"), None);
        assert_eq!(settings.proxy_for("https://10.0.0.1"), None);
        let everything = ProxySettings {
            no_proxy: vec!["*".into()],
            ..settings
        };
        assert_eq!(everything.proxy_for("https://ghcr.io"), None);
    }
}
