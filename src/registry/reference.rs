//! Image references as docker writes them: `host[:port]/repo/path[:tag]` or
//! `...@sha256:<digest>`, with Docker Hub and the `latest` tag as defaults.

use std::fmt;
use std::net::IpAddr;

use super::digest::Digest;
use super::error::RegistryError;

/// Docker Hub's registry host, used when a reference names no registry.
const DOCKER_HUB: &str = "registry-1.docker.io";

/// A parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageReference {
    /// `host` or `host:port` (IPv6 hosts in brackets).
    pub registry: String,
    /// The repository path, e.g. `library/hello` or `team/fn/auth`.
    pub repository: String,
    /// The tag, when the reference has one (or none and no digest: `latest`).
    pub tag: Option<String>,
    /// The digest, when the reference pins one.
    pub digest: Option<Digest>,
    original: String,
}

impl ImageReference {
    /// Parses a reference the way docker does.
    ///
    /// # Errors
    /// [`RegistryError::InvalidReference`] naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let invalid = |reason: String| RegistryError::InvalidReference {
            reference: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(invalid("it is empty".into()));
        }
        if text.len() > 512 || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "it is longer than 512 characters or holds whitespace or control characters".into(),
            ));
        }
        // `http://127.0.0.1:5000/fn:v1`: a URL, not a reference. Said
        // plainly, rather than as a repository that is not lowercase.
        if let Some((scheme, _)) = text.split_once("://")
            && !scheme.is_empty()
            && scheme.chars().all(|c| c.is_ascii_alphabetic())
        {
            let how = if scheme.eq_ignore_ascii_case("http") {
                "use --insecure-registry for plain HTTP"
            } else {
                "the scheme is chosen by the engine (HTTPS, or HTTP for loopback and --insecure-registry)"
            };
            return Err(invalid(format!("drop {scheme}://; {how}")));
        }
        let (name_and_tag, digest) = match text.split_once('@') {
            Some((name, digest)) => {
                let digest = Digest::parse(digest).ok_or_else(|| {
                    invalid(format!(
                        "digest {digest:?} is not sha256:<64 lowercase hex digits>"
                    ))
                })?;
                (name, Some(digest))
            }
            None => (text, None),
        };
        let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(colon) => {
                let split = last_slash + colon;
                (
                    &name_and_tag[..split],
                    Some(name_and_tag[split + 1..].to_owned()),
                )
            }
            None => (name_and_tag, None),
        };
        if let Some(tag) = &tag {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !valid {
                return Err(invalid(format!(
                    "tag {tag:?} must be 1-128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'"
                )));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            // Docker Hub's names: `docker.io/ubuntu` is `library/ubuntu` at
            // registry-1.docker.io, as docker resolves it.
            Some((first, rest))
                if first.eq_ignore_ascii_case("docker.io")
                    || first.eq_ignore_ascii_case("index.docker.io") =>
            {
                let repository = if rest.contains('/') {
                    rest.to_owned()
                } else {
                    format!("library/{rest}")
                };
                (DOCKER_HUB.to_owned(), repository)
            }
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), rest.to_owned())
            }
            Some(_) => (DOCKER_HUB.to_owned(), name.to_owned()),
            None => (DOCKER_HUB.to_owned(), format!("library/{name}")),
        };
        if registry.is_empty() || registry.contains(['?', '#', '@', '\\']) {
            return Err(invalid(format!(
                "registry {registry:?} is not a host[:port]"
            )));
        }
        for component in repository.split('/') {
            let valid = !component.is_empty()
                && component
                    .bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
                && component.as_bytes()[0].is_ascii_alphanumeric()
                && component.as_bytes()[component.len() - 1].is_ascii_alphanumeric();
            if !valid {
                return Err(invalid(format!(
                    "repository {repository:?} must be '/'-separated lowercase components of [a-z0-9._-] that start and end with a letter or digit"
                )));
            }
        }
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
            original: text.to_owned(),
        })
    }

    /// What to ask the registry for: the digest if pinned, else the tag, else `latest`.
    pub fn manifest_reference(&self) -> &str {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.as_str(),
            (None, Some(tag)) => tag,
            (None, None) => "latest",
        }
    }

    /// The same repository and tag or digest at another registry (a mirror).
    pub fn at_registry(&self, registry: &str) -> Self {
        let reference = match (&self.digest, &self.tag) {
            (Some(digest), _) => format!("@{digest}"),
            (None, Some(tag)) => format!(":{tag}"),
            (None, None) => String::new(),
        };
        Self {
            registry: registry.to_owned(),
            repository: self.repository.clone(),
            tag: self.tag.clone(),
            digest: self.digest.clone(),
            original: format!("{registry}/{}{reference}", self.repository),
        }
    }

    /// The registry host without its port (brackets of an IPv6 host removed).
    pub fn host(&self) -> &str {
        let registry = self.registry.as_str();
        if let Some(rest) = registry.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        registry.split(':').next().unwrap_or(registry)
    }

    /// Whether the registry is on this machine (`localhost`, `127.0.0.0/8`, `::1`).
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

/// A reference serializes as the text it was parsed from.
impl serde::Serialize for ImageReference {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.original)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, registry: &str, repository: &str, reference: &str) {
        let parsed = ImageReference::parse(text).unwrap();
        assert_eq!(
            (
                parsed.registry.as_str(),
                parsed.repository.as_str(),
                parsed.manifest_reference()
            ),
            (registry, repository, reference)
        );
    }

    #[test]
    fn parses_references_the_way_docker_does() {
        check(
            "127.0.0.1:5000/hello-wasm:v2",
            "127.0.0.1:5000",
            "hello-wasm",
            "v2",
        );
        check("localhost/a/b/c", "localhost", "a/b/c", "latest");
        check("ghcr.io/org/fn:1.0", "ghcr.io", "org/fn", "1.0");
        check("hello", "registry-1.docker.io", "library/hello", "latest");
        check("team/hello:x", "registry-1.docker.io", "team/hello", "x");
        check(
            "docker.io/ubuntu",
            "registry-1.docker.io",
            "library/ubuntu",
            "latest",
        );
        check(
            "docker.io/team/fn:1",
            "registry-1.docker.io",
            "team/fn",
            "1",
        );
        check(
            "index.docker.io/library/busybox",
            "registry-1.docker.io",
            "library/busybox",
            "latest",
        );
        let digest = Digest::of(b"m");
        check(
            &format!("reg:5000/fn@{digest}"),
            "reg:5000",
            "fn",
            digest.as_str(),
        );
        check(
            &format!("reg:5000/fn:v1@{digest}"),
            "reg:5000",
            "fn",
            digest.as_str(),
        );
    }

    #[test]
    fn refuses_malformed_references_with_a_reason() {
        for bad in [
            "",
            "reg:5000/Fn:v1",
            "reg:5000/fn:",
            "reg:5000/fn:-x",
            "reg:5000//fn",
            "reg:5000/fn@sha256:xyz",
            "reg:5000/fn:v 1",
            "reg:5000/../fn",
        ] {
            let error = ImageReference::parse(bad).unwrap_err();
            assert!(
                matches!(error, RegistryError::InvalidReference { .. }),
                "{bad:?}: {error}"
            );
        }
    }

    #[test]
    fn a_reference_with_a_scheme_says_to_drop_it() {
        let error = ImageReference::parse("http://127.0.0.1:5000/hello-wasm:v2").unwrap_err();
        assert!(
            error
                .to_string()
                .contains(": drop http://; use --insecure-registry for plain HTTP;"),
            "{error}"
        );
        let error = ImageReference::parse("https://ghcr.io/a/b:v1").unwrap_err();
        assert!(error.to_string().contains("drop https://;"), "{error}");
    }

    #[test]
    fn loopback_registries_are_recognised() {
        for loopback in [
            "127.0.0.1:5000/a",
            "127.1.2.3/a",
            "localhost:5000/a",
            "[::1]:5000/a",
        ] {
            assert!(
                ImageReference::parse(loopback).unwrap().is_loopback(),
                "{loopback}"
            );
        }
        for remote in ["10.0.0.1:5000/a", "ghcr.io/a", "localhost.evil.com/a"] {
            assert!(
                !ImageReference::parse(remote).unwrap().is_loopback(),
                "{remote}"
            );
        }
    }
}
