//! [`Session`]: one pull or push against one repository, which answers
//! Basic and Bearer challenges with the credentials `auth` finds (Bearer
//! tokens cached per registry and scope, renewed on 401, and once on 403)
//! and remembers how it authenticated, so later requests reuse it.

use std::time::Duration;

use ureq::http::Response;

use super::auth::{Challenge, Credential, FoundCredential, Secret, base64_encode, query_escape};
use super::client::RegistryClient;
use super::error::RegistryError;
use super::reference::ImageReference;
use super::transport::{
    Budget, Fetcher, MakeRequest, Sending, origin, redact_query, resolve_location, unreachable,
};

impl RegistryClient {
    pub(super) fn session<'a>(
        &'a self,
        reference: &'a ImageReference,
        actions: &'static str,
    ) -> Session<'a> {
        let scheme = if self.plain_http(reference) {
            "http"
        } else {
            "https"
        };
        let scope = format!("repository:{}:{actions}", reference.repository);
        let authorization =
            self.tokens
                .get(&reference.registry, &scope)
                .map(|token| Authorization::Bearer {
                    header: format!("Bearer {}", token.0),
                    scope: scope.clone(),
                });
        Session {
            client: self,
            reference,
            base_url: format!("{scheme}://{}", reference.registry),
            scope,
            authorization,
            credential: None,
            budget: Budget::unlimited(),
        }
    }
}

/// The `Authorization` a session sends.
#[derive(Clone)]
enum Authorization {
    Basic(String),
    /// A Bearer token, and the scope it was issued for (its cache key).
    Bearer {
        header: String,
        scope: String,
    },
}

impl Authorization {
    fn header(&self) -> &str {
        match self {
            Self::Basic(header) | Self::Bearer { header, .. } => header,
        }
    }
}

/// One operation against one repository: remembers how it authenticated
/// so later requests of the same pull or push reuse it.
pub(super) struct Session<'a> {
    pub(super) client: &'a RegistryClient,
    pub(super) reference: &'a ImageReference,
    pub(super) base_url: String,
    scope: String,
    authorization: Option<Authorization>,
    /// The credential lookup's result, once made.
    credential: Option<Option<FoundCredential>>,
    /// A pull's deadline and stop; unlimited for a push.
    pub(super) budget: Budget,
}

impl Session<'_> {
    /// `<scheme>://<registry>/v2/<repository>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.base_url, self.reference.repository)
    }

    /// Turns a `Location` header (absolute, or relative to the registry) into a URL.
    pub fn absolute(&self, location: &str) -> String {
        resolve_location(&self.base_url, location)
    }

    /// Sends the request `make` builds, answering an authentication
    /// challenge (401) and renewing an expired token (401, or 403 after a
    /// Bearer token: ECR and GHCR answer 403 on expiry) once each.
    pub fn send(
        &mut self,
        url: &str,
        make: impl Fn(&ureq::Agent, &str, &Sending<'_>) -> Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response<ureq::Body>, RegistryError> {
        let mut renewed = false;
        loop {
            let response = self.execute(url, &make)?;
            let status = response.status().as_u16();
            let sent_bearer = match &self.authorization {
                Some(Authorization::Bearer { scope, .. }) => Some(scope.clone()),
                _ => None,
            };
            match (status, sent_bearer) {
                (401 | 403, Some(scope)) if !renewed => {
                    // Expired or revoked: a fresh token, once.
                    renewed = true;
                    self.client.tokens.forget(&self.reference.registry, &scope);
                    self.authorization = None;
                    if status == 403 {
                        // The next attempt's 401 carries the challenge.
                        continue;
                    }
                }
                (401, _) if self.authorization.is_some() => {
                    return Err(self.refused());
                }
                (401, None) => {}
                _ => return Ok(response),
            }
            let Some(challenge) = response
                .headers()
                .get("www-authenticate")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
            else {
                return Err(RegistryError::AccessDenied {
                    reference: self.reference.to_string(),
                    detail: "401 without a WWW-Authenticate challenge".into(),
                });
            };
            self.authenticate(&challenge)?;
        }
    }

    /// The error for credentials the registry refused (or their absence).
    fn refused(&self) -> RegistryError {
        match self.credential.clone().flatten() {
            Some(found) => RegistryError::AccessDenied {
                reference: self.reference.to_string(),
                detail: format!("it refused the credentials from {}", found.source),
            },
            None => self.credentials_required("it asks for credentials"),
        }
    }

    fn credentials_required(&self, detail: &str) -> RegistryError {
        RegistryError::CredentialsRequired {
            reference: self.reference.to_string(),
            detail: detail.to_owned(),
            looked_in: self
                .client
                .options
                .credentials
                .candidates
                .iter()
                .map(|path| path.display().to_string())
                .collect(),
        }
    }

    /// The credential for this registry, looked up once per session.
    fn credential(&mut self) -> Result<Option<FoundCredential>, RegistryError> {
        if self.credential.is_none() {
            let found = self
                .client
                .options
                .credentials
                .lookup(self.reference)
                .map_err(|detail| RegistryError::CredentialStore {
                    registry: self.reference.registry.clone(),
                    detail,
                })?;
            if let Some(found) = &found {
                log::debug!(
                    "{}: credentials from {}",
                    self.reference.registry,
                    found.source
                );
            }
            self.credential = Some(found);
        }
        Ok(self.credential.clone().flatten())
    }

    /// Answers a `WWW-Authenticate` challenge: sets the `Authorization`
    /// the next request sends.
    fn authenticate(&mut self, challenge_header: &str) -> Result<(), RegistryError> {
        let credential = self.credential()?;
        match Challenge::parse(challenge_header) {
            Some(Challenge::Basic) => match credential.map(|found| found.credential) {
                Some(Credential::Basic { username, password }) => {
                    let pair = format!("{username}:{}", password.0);
                    self.authorization =
                        Some(Authorization::Basic(format!("Basic {}", base64_encode(pair.as_bytes()))));
                    Ok(())
                }
                Some(_) => Err(RegistryError::AccessDenied {
                    reference: self.reference.to_string(),
                    detail: "it asks for a user name and password (Basic), and the credential found is a token".into(),
                }),
                None => Err(self.credentials_required("it asks for a user name and password")),
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                // The challenge's scope, except that for this repository the
                // token asks for every action the operation needs (a push's
                // first request, a HEAD, is challenged for `pull` only).
                let own_repository = format!("repository:{}:", self.reference.repository);
                let scope = match scope {
                    Some(scope) if !scope.starts_with(&own_repository) => scope,
                    _ => self.scope.clone(),
                };
                if let Some(Credential::RegistryToken(token)) =
                    credential.as_ref().map(|found| &found.credential)
                {
                    self.authorization = Some(Authorization::Bearer {
                        header: format!("Bearer {}", token.0),
                        scope,
                    });
                    return Ok(());
                }
                let token = match self.client.tokens.get(&self.reference.registry, &scope) {
                    Some(token) => token,
                    None => {
                        let (token, lifetime) =
                            self.fetch_token(&realm, service.as_deref(), &scope, credential.as_ref())?;
                        self.client
                            .tokens
                            .put(&self.reference.registry, &scope, token.clone(), lifetime);
                        token
                    }
                };
                self.authorization = Some(Authorization::Bearer {
                    header: format!("Bearer {}", token.0),
                    scope,
                });
                Ok(())
            }
            None => Err(RegistryError::AccessDenied {
                reference: self.reference.to_string(),
                detail: format!(
                    "it asks for {}, which the engine does not speak",
                    challenge_header.split(' ').next().unwrap_or("")
                ),
            }),
        }
    }

    /// Gets a token from the token service: a GET with Basic credentials (or
    /// none), or the OAuth2 POST for an identity token.
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        credential: Option<&FoundCredential>,
    ) -> Result<(Secret, Duration), RegistryError> {
        self.budget.check()?;
        let shown_realm = redact_query(realm);
        if !realm.starts_with("https://") && !realm.starts_with("http://") {
            return Err(RegistryError::AccessDenied {
                reference: self.reference.to_string(),
                detail: format!("its token service realm {shown_realm:?} is not an http(s) URL"),
            });
        }
        // The token service gets the registry's credentials: only where a
        // redirect could go (HTTPS, or plain HTTP to a host allowed it), or
        // they would cross the network in the clear to any host the
        // registry, or whoever answers for it, names.
        if !self.client.may_reach(realm) {
            return Err(RegistryError::TokenRealmRefused {
                reference: self.reference.to_string(),
                realm: shown_realm.to_owned(),
            });
        }
        let agent = &self.client.agent_for(realm)?;
        let result = match credential.map(|found| &found.credential) {
            Some(Credential::IdentityToken(refresh_token)) => {
                let mut form = format!(
                    "grant_type=refresh_token&client_id=wasm_engine&scope={}&refresh_token={}",
                    query_escape(scope),
                    query_escape(&refresh_token.0)
                );
                if let Some(service) = service {
                    form.push_str(&format!("&service={}", query_escape(service)));
                }
                agent
                    .post(realm)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .config()
                    .timeout_global(self.budget.time_left())
                    .build()
                    .send(form.as_bytes())
            }
            other => {
                let separator = if realm.contains('?') { '&' } else { '?' };
                let mut url = format!("{realm}{separator}scope={}", query_escape(scope));
                if let Some(service) = service {
                    url.push_str(&format!("&service={}", query_escape(service)));
                }
                let request = agent
                    .get(&url)
                    .config()
                    .timeout_global(self.budget.time_left())
                    .build();
                match other {
                    Some(Credential::Basic { username, password }) => {
                        let pair = format!("{username}:{}", password.0);
                        request
                            .header(
                                "Authorization",
                                format!("Basic {}", base64_encode(pair.as_bytes())),
                            )
                            .call()
                    }
                    _ => request.call(),
                }
            }
        };
        let mut response = result.map_err(|error| self.budget.or(unreachable(realm, &error)))?;
        match response.status().as_u16() {
            200 => {}
            401 | 403 => {
                return Err(match credential {
                    Some(found) => RegistryError::AccessDenied {
                        reference: self.reference.to_string(),
                        detail: format!(
                            "the token service at {shown_realm} refused the credentials from {} ({})",
                            found.source,
                            response.status().as_u16()
                        ),
                    },
                    None => self.credentials_required(&format!(
                        "its token service at {shown_realm} refused anonymous access ({})",
                        response.status().as_u16()
                    )),
                });
            }
            status => {
                return Err(RegistryError::AccessDenied {
                    reference: self.reference.to_string(),
                    detail: format!("the token service at {shown_realm} answered {status}"),
                });
            }
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let body: TokenResponse = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|error| error.to_string())
            .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|error| error.to_string()))
            .map_err(|error| RegistryError::AccessDenied {
                reference: self.reference.to_string(),
                detail: format!("the token service at {shown_realm} sent no token ({error})"),
            })?;
        let token = body
            .token
            .filter(|token| !token.is_empty())
            .or(body.access_token)
            .ok_or_else(|| RegistryError::AccessDenied {
                reference: self.reference.to_string(),
                detail: format!("the token service at {shown_realm} sent no token"),
            })?;
        // The spec's default lifetime is 60 s; honour shorter ones too.
        let lifetime = Duration::from_secs(body.expires_in.unwrap_or(60));
        Ok((Secret(token), lifetime))
    }

    /// Sends one request through redirects and retries, with the
    /// session's current `Authorization`.
    fn execute(
        &self,
        url: &str,
        make: &MakeRequest<'_>,
    ) -> Result<Response<ureq::Body>, RegistryError> {
        self.fetcher().execute(url, make)
    }

    /// What a blob stream needs to fetch the rest of a blob on its own.
    pub(super) fn fetcher(&self) -> Fetcher {
        Fetcher {
            client: self.client.clone(),
            registry_origin: origin(&self.base_url).to_owned(),
            authorization: self
                .authorization
                .as_ref()
                .map(|authorization| authorization.header().to_owned()),
            budget: self.budget.clone(),
        }
    }
}
