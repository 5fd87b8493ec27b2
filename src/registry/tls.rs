//! Which scheme and which trust a registry gets (issue 18, docker's
//! `certs.d` rule), and the TLS settings of its agent.
//!
//! - A registry with an entry in a certs directory (a CA `*.crt`, or
//!   `client.cert` + `client.key`, under `<certs dir>/<host[:port]>/`) is
//!   reached over HTTPS with that trust, loopback included.
//! - A registry named with `--insecure-registry` is reached over plain HTTP
//!   (a certs entry for it is a startup error).
//! - Otherwise loopback registries over plain HTTP, every other one over
//!   HTTPS with the system's roots. Never a fallback between the two.
//!
//! The system's roots are read from `SSL_CERT_FILE`/`SSL_CERT_DIR` when set,
//! else from the distribution's bundle (Debian `/etc/ssl/certs`, openEuler
//! `/etc/pki/tls/certs/ca-bundle.crt`); no roots are compiled in. This
//! module reads certificate files; it writes nothing.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

/// The certs directories docker, podman and the engine itself use.
pub const DEFAULT_CERTS_DIRS: &[&str] = &[
    "/etc/wasmengine/certs.d",
    "/etc/docker/certs.d",
    "/etc/containers/certs.d",
];

/// Bundles of the system's roots, in the order they are tried.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Where trust comes from. Every field documents its default.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// Directories holding `<host[:port]>/` entries. Defaults to
    /// [`DEFAULT_CERTS_DIRS`]; `--registry-certs-dir` replaces them.
    pub certs_dirs: Vec<PathBuf>,
    /// `SSL_CERT_FILE`, when set: the system roots come from it alone.
    pub ssl_cert_file: Option<PathBuf>,
    /// `SSL_CERT_DIR`, when set: every `*.pem`/`*.crt` in it is a root too.
    pub ssl_cert_dir: Option<PathBuf>,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            certs_dirs: DEFAULT_CERTS_DIRS.iter().map(PathBuf::from).collect(),
            ssl_cert_file: None,
            ssl_cert_dir: None,
        }
    }
}

/// A registry's entry in a certs directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertsEntry {
    /// `<certs dir>/<host[:port]>`.
    pub directory: PathBuf,
    /// The CA certificates (`*.crt`), sorted.
    pub ca_files: Vec<PathBuf>,
    /// `client.cert` and `client.key`, when both are there.
    pub client: Option<(PathBuf, PathBuf)>,
}

impl TlsSettings {
    /// The entry for `registry` (`host` or `host:port`): the first certs
    /// directory that has one wins.
    pub fn entry(&self, registry: &str) -> Option<CertsEntry> {
        self.certs_dirs
            .iter()
            .filter_map(|dir| read_entry(&dir.join(registry)))
            .next()
    }

    /// Every registry with an entry, for the startup log.
    pub fn entries(&self) -> Vec<(String, CertsEntry)> {
        let mut found: Vec<(String, CertsEntry)> = Vec::new();
        for dir in &self.certs_dirs {
            let Ok(listing) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<String> = listing
                .filter_map(Result::ok)
                .filter_map(|entry| entry.file_name().into_string().ok())
                .collect();
            names.sort();
            for name in names {
                if found.iter().any(|(registry, _)| *registry == name) {
                    continue;
                }
                if let Some(entry) = read_entry(&dir.join(&name)) {
                    found.push((name, entry));
                }
            }
        }
        found
    }

    /// The files the system roots were (or would be) read from.
    pub fn system_root_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        match &self.ssl_cert_file {
            Some(file) => files.push(file.clone()),
            None => {
                if let Some(bundle) = SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.is_file()) {
                    files.push(bundle.to_path_buf());
                }
            }
        }
        if let Some(dir) = &self.ssl_cert_dir {
            files.push(dir.clone());
        }
        files
    }

    /// The TLS settings of the agent for a registry with `entry` (or none).
    ///
    /// # Errors
    /// A message naming the file that cannot be read or holds no
    /// certificate or key.
    pub fn tls_config(&self, entry: Option<&CertsEntry>) -> Result<TlsConfig, String> {
        let mut roots: Vec<Certificate<'static>> = self.system_roots().to_vec();
        let mut client_cert = None;
        if let Some(entry) = entry {
            for ca in &entry.ca_files {
                let certs = read_certificates(ca)?;
                if certs.is_empty() {
                    return Err(format!("{} holds no PEM certificate", ca.display()));
                }
                roots.extend(certs);
            }
            if let Some((cert_file, key_file)) = &entry.client {
                let chain = read_certificates(cert_file)?;
                if chain.is_empty() {
                    return Err(format!("{} holds no PEM certificate", cert_file.display()));
                }
                let key = read_key(key_file)?;
                client_cert = Some(ClientCert::new_with_certs(&chain, key));
            }
        }
        Ok(TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(roots)))
            .client_cert(client_cert)
            .build())
    }

    /// The system's roots, read once.
    fn system_roots(&self) -> &'static [Certificate<'static>] {
        static ROOTS: OnceLock<Vec<Certificate<'static>>> = OnceLock::new();
        ROOTS.get_or_init(|| {
            let mut roots = Vec::new();
            for file in self.system_root_files() {
                if file.is_dir() {
                    let Ok(listing) = std::fs::read_dir(&file) else {
                        continue;
                    };
                    for entry in listing.filter_map(Result::ok) {
                        let path = entry.path();
                        let is_cert = path
                            .extension()
                            .is_some_and(|ext| ext == "pem" || ext == "crt");
                        if is_cert {
                            roots.extend(read_certificates(&path).unwrap_or_default());
                        }
                    }
                } else {
                    match read_certificates(&file) {
                        Ok(certs) => roots.extend(certs),
                        Err(error) => log::warn!("system roots: {error}"),
                    }
                }
            }
            log::debug!("{} system root certificates", roots.len());
            roots
        })
    }
}

/// `directory`'s entry, if it holds a CA or a client certificate and key.
fn read_entry(directory: &Path) -> Option<CertsEntry> {
    let listing = std::fs::read_dir(directory).ok()?;
    let mut ca_files: Vec<PathBuf> = listing
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "crt"))
        .collect();
    ca_files.sort();
    let (cert, key) = (directory.join("client.cert"), directory.join("client.key"));
    let client = (cert.is_file() && key.is_file()).then_some((cert, key));
    (!ca_files.is_empty() || client.is_some()).then(|| CertsEntry {
        directory: directory.to_path_buf(),
        ca_files,
        client,
    })
}

fn read_certificates(path: &Path) -> Result<Vec<Certificate<'static>>, String> {
    let bytes =
        std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    Ok(ureq::tls::parse_pem(&bytes)
        .filter_map(Result::ok)
        .filter_map(|item| match item {
            PemItem::Certificate(cert) => Some(cert),
            _ => None,
        })
        .collect())
}

fn read_key(path: &Path) -> Result<PrivateKey<'static>, String> {
    let bytes =
        std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    ureq::tls::parse_pem(&bytes)
        .filter_map(Result::ok)
        .find_map(|item| match item {
            PemItem::PrivateKey(key) => Some(key),
            _ => None,
        })
        .ok_or_else(|| format!("{} holds no PEM private key", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_needs_a_ca_or_a_client_pair_and_the_first_directory_wins() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(first.path().join("reg:5000")).unwrap();
        std::fs::write(first.path().join("reg:5000/client.cert"), "x").unwrap();
        std::fs::create_dir_all(second.path().join("reg:5000")).unwrap();
        std::fs::write(second.path().join("reg:5000/ca.crt"), "x").unwrap();
        std::fs::create_dir_all(second.path().join("empty")).unwrap();
        let settings = TlsSettings {
            certs_dirs: vec![first.path().into(), second.path().into()],
            ..TlsSettings::default()
        };
        // The first directory's entry lacks client.key: not an entry.
        let entry = settings.entry("reg:5000").unwrap();
        assert_eq!(entry.directory, second.path().join("reg:5000"));
        assert_eq!(entry.ca_files.len(), 1);
        assert_eq!(settings.entry("empty"), None);
        assert_eq!(settings.entry("other"), None);
        let names: Vec<String> = settings
            .entries()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(names, vec!["reg:5000".to_string()]);
    }
}
