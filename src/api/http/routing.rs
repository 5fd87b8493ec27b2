//! The route tables: a request's method and path are parsed once, by
//! [`Routed::parse`], into the route of its listener ([`Route`] for the seed
//! API, [`ProviderRoute`] for the faas-provider API), and that route's
//! [`RouteSpec`] is the one place that says what the server does with it:
//! the methods it takes (any other is a 405 whose `Allow` lists them), who
//! may call it ([`Guard`]), where it runs ([`RunsOn`]), whether it is
//! answered while draining, and its handler (for the seed, a [`Handler`],
//! whose kind says how the body parses).
//!
//! Adding a route is one variant, its arm in `spec` (the compiler asks for
//! it) and its handler. This module does not answer requests: the server
//! (`server`) sends a route where it runs, the handlers (`seed`,
//! `provider`) answer it.

use crate::api::http::error::ApiError;
use crate::api::observe::{Call, Listener};
use crate::api::provider::{self, ProviderRoute};
use crate::api::rest::{self, Handler};
use crate::api::server::Shared;

/// The methods a route takes.
#[derive(Clone, Copy, Debug)]
pub enum Methods {
    /// Only these (a request with another is a 405).
    Only(&'static [&'static str]),
    /// Any method: the handler decides what it means (the provider's
    /// invocations pass the method to nobody, but take every one).
    Any,
}

pub const GET: Methods = Methods::Only(&["GET"]);
pub const GET_HEAD: Methods = Methods::Only(&["GET", "HEAD"]);
pub const POST: Methods = Methods::Only(&["POST"]);

/// The paths a route answers.
#[derive(Clone, Copy, Debug)]
pub enum PathPattern {
    /// Exactly this path.
    Exact(&'static str),
    /// This prefix followed by one non-empty segment (`/system/function/{name}`).
    Named(&'static str),
    /// Anything under this prefix (`/function/{name}/{path...}`).
    Prefix(&'static str),
}

impl PathPattern {
    pub fn matches(self, path: &str) -> bool {
        match self {
            Self::Exact(exact) => path == exact,
            Self::Named(prefix) => path_name(path, prefix).is_some(),
            Self::Prefix(prefix) => path.starts_with(prefix),
        }
    }
}

/// The `{name}` of `prefix{name}`, when that is all the path holds.
pub fn path_name<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    path.strip_prefix(prefix)
        .filter(|name| !name.is_empty() && !name.contains('/'))
}

/// Who may call a route, when its listener has credentials configured (the
/// admin token on the seed's, basic auth on the provider's); without them
/// every route is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// Never asks: the probes, which a kubelet or systemd calls without them.
    Open,
    /// Always asks: the routes that change what is deployed (and, on the
    /// provider's listener, every `/system/*` route).
    Always,
    /// Asks only with `--protect-all`: calls, reads and `/metrics`.
    ProtectAll,
}

impl Guard {
    /// Whether a request must show the credentials, when some are configured.
    pub fn asks(self, protect_all: bool) -> bool {
        match self {
            Self::Open => false,
            Self::Always => true,
            Self::ProtectAll => protect_all,
        }
    }
}

/// Where a route runs (the thread model is in `server`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunsOn {
    /// On the worker that received it: quick answers.
    Worker,
    /// Through `Admission`: an invocation slot, or the queue, or a 503.
    Admission,
    /// On a change thread of its own (at most `MAX_CHANGES`): deploys,
    /// updates and deletes, which may pull an image.
    ChangeThread,
    /// On a thread of its own that streams the answer: the provider's
    /// `/system/logs?follow=true` (chosen by [`Routed::runs_on`] from the
    /// query, which no route spec sees).
    Stream,
}

/// Everything the server knows of one route.
#[derive(Clone, Copy, Debug)]
pub struct RouteSpec<H> {
    pub methods: Methods,
    pub path: PathPattern,
    pub guard: Guard,
    pub runs_on: RunsOn,
    /// Answered while the server drains (probes and metrics); every other
    /// route is then refused with 503.
    pub while_draining: bool,
    pub handler: H,
}

impl<H> RouteSpec<H> {
    /// A route run on the receiving worker, refused while draining.
    pub fn new(methods: Methods, path: PathPattern, guard: Guard, handler: H) -> Self {
        Self {
            methods,
            path,
            guard,
            runs_on: RunsOn::Worker,
            while_draining: false,
            handler,
        }
    }

    pub fn runs_on(self, runs_on: RunsOn) -> Self {
        Self { runs_on, ..self }
    }

    pub fn while_draining(self) -> Self {
        Self {
            while_draining: true,
            ..self
        }
    }

    fn takes(&self, method: &str) -> bool {
        match self.methods {
            Methods::Only(methods) => methods.contains(&method),
            Methods::Any => true,
        }
    }
}

/// Declares a route enum with `VARIANTS`, every variant in declaration
/// order, so that a new route is in its table ([`RouteTable::ALL`]) as soon
/// as it is declared.
macro_rules! route_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        $vis enum $name {
            $($variant),+
        }

        impl $name {
            /// Every route, in declaration order.
            pub const VARIANTS: &'static [Self] = &[$(Self::$variant),+];
        }
    };
}
pub(crate) use route_enum;

/// A listener's route table: its routes, each with its [`RouteSpec`].
pub trait RouteTable: Copy + 'static {
    /// What a route's handler is.
    type Handler;
    /// Every route, in the order `Allow` lists the methods of a shared path.
    const ALL: &'static [Self];
    fn spec(self) -> RouteSpec<Self::Handler>;
    /// The 404 for a path no route answers.
    fn not_found(method: &str, path: &str) -> ApiError;
}

/// The route of `method` and `path` in `R`'s table.
///
/// # Errors
/// [`RouteTable::not_found`] (404) when no route answers the path, and
/// [`ApiError::MethodNotAllowed`] (405, with the methods the path takes)
/// when routes answer it but not with this method.
// Not inlined (nor the other generic walks of a table): one copy per table
// keeps `receive` small (see `server::Job::run`).
#[inline(never)]
pub fn parse<R: RouteTable>(method: &str, path: &str) -> Result<R, ApiError> {
    let mut allowed: Vec<&str> = Vec::new();
    for &route in R::ALL {
        let spec = route.spec();
        if !spec.path.matches(path) {
            continue;
        }
        if spec.takes(method) {
            return Ok(route);
        }
        if let Methods::Only(methods) = spec.methods {
            for method in methods {
                if !allowed.contains(method) {
                    allowed.push(method);
                }
            }
        }
    }
    if allowed.is_empty() {
        return Err(R::not_found(method, path));
    }
    Err(ApiError::MethodNotAllowed {
        method: method.to_owned(),
        path: path.to_owned(),
        allowed: allowed.join(", "),
    })
}

/// Whether a request for `path` is answered while draining, whatever its method.
#[inline(never)]
fn answered_while_draining<R: RouteTable>(path: &str) -> bool {
    R::ALL.iter().any(|route| {
        let spec = route.spec();
        spec.while_draining && spec.path.matches(path)
    })
}

route_enum! {
    /// A route of the seed's REST API (`--listen`, `docs/api.md`).
    pub enum Route {
        Deploy,
        Update,
        Delete,
        List,
        Query,
        Invoke,
        Logs,
        Secret,
        Metrics,
        Healthz,
        Readyz,
    }
}

impl RouteTable for Route {
    type Handler = Handler;
    const ALL: &'static [Self] = Self::VARIANTS;

    fn spec(self) -> RouteSpec<Handler> {
        use Guard::{Always, Open, ProtectAll};
        use PathPattern::Exact;
        match self {
            Self::Deploy => RouteSpec::new(
                POST,
                Exact("/function/deploy"),
                Always,
                Handler::Deploy(rest::deploy),
            )
            .runs_on(RunsOn::ChangeThread),
            Self::Update => RouteSpec::new(
                POST,
                Exact("/function/update"),
                Always,
                Handler::Deploy(rest::update),
            )
            .runs_on(RunsOn::ChangeThread),
            Self::Delete => RouteSpec::new(
                POST,
                Exact("/function/delete"),
                Always,
                Handler::Name(rest::delete),
            )
            .runs_on(RunsOn::ChangeThread),
            Self::List => RouteSpec::new(
                GET,
                Exact("/function/list"),
                ProtectAll,
                Handler::NoBody(rest::list),
            ),
            Self::Query => RouteSpec::new(
                POST,
                Exact("/function/query"),
                ProtectAll,
                Handler::Name(rest::query),
            ),
            Self::Invoke => RouteSpec::new(
                POST,
                Exact("/function/invoke"),
                ProtectAll,
                Handler::Invoke(rest::invoke),
            )
            .runs_on(RunsOn::Admission),
            Self::Logs => RouteSpec::new(
                POST,
                Exact("/function/logs"),
                ProtectAll,
                Handler::Logs(rest::logs),
            ),
            Self::Secret => RouteSpec::new(
                POST,
                Exact("/function/secret"),
                Always,
                Handler::Secret(rest::secret),
            ),
            Self::Metrics => RouteSpec::new(
                GET,
                Exact("/metrics"),
                ProtectAll,
                Handler::NoBody(rest::metrics),
            )
            .while_draining(),
            Self::Healthz => RouteSpec::new(
                GET_HEAD,
                Exact("/healthz"),
                Open,
                Handler::NoBody(rest::healthz),
            )
            .while_draining(),
            Self::Readyz => RouteSpec::new(
                GET_HEAD,
                Exact("/readyz"),
                Open,
                Handler::NoBody(rest::readyz),
            )
            .while_draining(),
        }
    }

    fn not_found(method: &str, path: &str) -> ApiError {
        ApiError::RouteNotFound {
            method: method.to_owned(),
            path: path.to_owned(),
            routes: route_list::<Self>(),
        }
    }
}

/// The routes of a table for a 404's message: `POST /function/deploy, …`,
/// each path once with every method it takes (none for a route that takes any).
#[inline(never)]
pub fn route_list<R: RouteTable>() -> String {
    let mut routes: Vec<(String, Vec<&str>)> = Vec::new();
    for route in R::ALL {
        let spec = route.spec();
        let methods = match spec.methods {
            Methods::Only(methods) => methods,
            Methods::Any => &[],
        };
        let path = match spec.path {
            PathPattern::Exact(path) => path.to_owned(),
            PathPattern::Named(prefix) | PathPattern::Prefix(prefix) => format!("{prefix}NAME"),
        };
        match routes.iter_mut().find(|(known, _)| *known == path) {
            Some((_, known_methods)) => known_methods.extend(methods),
            None => routes.push((path, methods.to_vec())),
        }
    }
    routes
        .iter()
        .map(|(path, methods)| match methods.as_slice() {
            [] => path.clone(),
            methods => format!("{} {path}", methods.join("/")),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A request's route, on whichever listener it came in.
#[derive(Clone, Copy, Debug)]
pub enum Routed {
    Seed(Route),
    Provider(ProviderRoute),
}

impl Routed {
    /// Parses a request's method and path with its listener's table.
    ///
    /// # Errors
    /// The listener's 404, or a 405.
    pub fn parse(listener: Listener, method: &str, path: &str) -> Result<Self, ApiError> {
        match listener {
            Listener::Seed => parse(method, path).map(Self::Seed),
            Listener::Provider => parse(method, path).map(Self::Provider),
        }
    }

    /// Where the request runs: its route's [`RunsOn`], except that a
    /// provider log request that follows (`?follow=true`) streams.
    pub fn runs_on(self, url: &str) -> RunsOn {
        match self {
            Self::Provider(ProviderRoute::Logs) if provider::follows(url) => RunsOn::Stream,
            Self::Seed(route) => route.spec().runs_on,
            Self::Provider(route) => route.spec().runs_on,
        }
    }

    /// Answers the request with its listener's handler, on this thread.
    pub fn handle(self, request: tiny_http::Request, call: Call, shared: &Shared) {
        match self {
            Self::Seed(route) => rest::handle(route, request, call, shared),
            Self::Provider(route) => provider::handle(route, request, call, shared),
        }
    }
}

/// Whether a request for `path` on `listener` is answered while draining.
pub fn served_while_draining(listener: Listener, path: &str) -> bool {
    match listener {
        Listener::Seed => answered_while_draining::<Route>(path),
        Listener::Provider => answered_while_draining::<ProviderRoute>(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::rest::reply::Reply;

    const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

    /// A path `spec` answers.
    fn example_path<H>(spec: &RouteSpec<H>) -> String {
        match spec.path {
            PathPattern::Exact(path) => path.to_owned(),
            PathPattern::Named(prefix) | PathPattern::Prefix(prefix) => format!("{prefix}gcd"),
        }
    }

    /// Every route of `R` takes the methods its spec names and answers any
    /// other with a 405 whose `Allow` lists every method its path takes.
    #[track_caller]
    fn check_methods<R: RouteTable + std::fmt::Debug + PartialEq>(expected_allow: &[(&str, &str)]) {
        for &route in R::ALL {
            let spec = route.spec();
            let path = example_path(&spec);
            let allow = expected_allow
                .iter()
                .find(|(known, _)| *known == path)
                .map(|(_, allow)| *allow);
            for method in METHODS {
                let parsed = parse::<R>(method, &path);
                if spec.takes(method) {
                    assert_eq!(parsed.ok(), Some(route), "{method} {path}");
                    continue;
                }
                match parsed {
                    // Another route of the same path takes it.
                    Ok(other) => assert!(other != route && other.spec().takes(method)),
                    Err(error) => {
                        let reply = Reply::error(&error);
                        assert_eq!(reply.status, 405, "{method} {path}: {error}");
                        let Some(allow) = allow else {
                            panic!("{method} {path}: {error}; no Allow expected");
                        };
                        assert_eq!(reply.allow.as_deref(), Some(allow), "{method} {path}");
                        assert!(
                            allow
                                .split(", ")
                                .all(|allowed| parse::<R>(allowed, &path).is_ok()),
                            "{path}: every method in Allow is taken"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_seed_route_answers_a_wrong_method_with_405_and_its_allow_header() {
        check_methods::<Route>(&[
            ("/function/deploy", "POST"),
            ("/function/update", "POST"),
            ("/function/delete", "POST"),
            ("/function/list", "GET"),
            ("/function/query", "POST"),
            ("/function/invoke", "POST"),
            ("/function/logs", "POST"),
            ("/function/secret", "POST"),
            ("/metrics", "GET"),
            ("/healthz", "GET, HEAD"),
            ("/readyz", "GET, HEAD"),
        ]);
        for &route in Route::ALL {
            let spec = route.spec();
            assert!(matches!(spec.methods, Methods::Only(_)), "{route:?}");
        }
    }

    #[test]
    fn every_provider_route_answers_a_wrong_method_with_405_and_its_allow_header() {
        check_methods::<ProviderRoute>(&[
            ("/system/functions", "GET, POST, PUT, DELETE"),
            ("/system/function/gcd", "GET"),
            ("/system/scale-function/gcd", "POST"),
            ("/system/info", "GET"),
            ("/system/namespaces", "GET"),
            ("/system/logs", "GET"),
            ("/system/secrets", "GET, POST, PUT, DELETE"),
            ("/metrics", "GET"),
            ("/healthz", "GET, HEAD"),
            ("/readyz", "GET, HEAD"),
        ]);
        // Invocations take any method.
        for method in METHODS {
            assert!(matches!(
                parse::<ProviderRoute>(method, "/function/gcd/any/path"),
                Ok(ProviderRoute::Invoke)
            ));
        }
    }

    #[test]
    fn unknown_paths_are_404_naming_the_routes() {
        let error = parse::<Route>("GET", "/nowhere").unwrap_err();
        assert_eq!(error.status(), 404);
        assert_eq!(
            error.to_string(),
            "no route for GET /nowhere; the routes are POST /function/deploy, POST /function/update, POST /function/delete, GET /function/list, POST /function/query, POST /function/invoke, POST /function/logs, POST /function/secret, GET /metrics, GET/HEAD /healthz, GET/HEAD /readyz"
        );
        for path in [
            "/system/function/",
            "/system/function/a/b",
            "/system/nope",
            "/",
        ] {
            let error = parse::<ProviderRoute>("GET", path).unwrap_err();
            assert_eq!(error.status(), 404, "{path}");
            assert!(
                error.to_string().contains("/system/function/NAME"),
                "{error}"
            );
        }
    }

    #[test]
    fn the_admin_token_guards_the_routes_docs_api_md_says() {
        // The "admin token" column of the routes table in docs/api.md.
        let doc = include_str!("../../../docs/api.md");
        let table: Vec<(String, String)> = doc
            .lines()
            .skip_while(|line| !line.starts_with("## Routes"))
            .skip(1)
            .take_while(|line| !line.starts_with("## "))
            .filter(|line| line.starts_with("| `"))
            .map(|line| {
                let cells: Vec<&str> = line.split(" | ").collect();
                let route = cells[0]
                    .trim_start_matches("| ")
                    .trim_matches('`')
                    .to_owned();
                let token = cells[cells.len() - 1].trim_end_matches(" |").to_owned();
                (route, token)
            })
            .collect();
        assert_eq!(
            table.len(),
            Route::ALL.len(),
            "one row per route: {table:?}"
        );
        for &route in Route::ALL {
            let spec = route.spec();
            let (PathPattern::Exact(path), Methods::Only(methods)) = (spec.path, spec.methods)
            else {
                panic!("{route:?}: the seed's routes are exact paths");
            };
            let documented = format!("{} {path}", methods.join("`/`"));
            let Some((_, token)) = table.iter().find(|(row, _)| *row == documented) else {
                panic!("docs/api.md has no row for `{documented}`: {table:?}");
            };
            let expected = match spec.guard {
                Guard::Open => "never",
                Guard::Always => "yes",
                Guard::ProtectAll => "with `--protect-all`",
            };
            assert_eq!(token, expected, "{route:?}");
        }
    }

    #[test]
    fn probes_and_metrics_are_answered_while_draining_on_both_listeners() {
        for listener in [Listener::Seed, Listener::Provider] {
            for path in ["/healthz", "/readyz", "/metrics"] {
                assert!(served_while_draining(listener, path), "{path}");
            }
            for path in [
                "/function/invoke",
                "/system/functions",
                "/function/gcd",
                "/x",
            ] {
                assert!(!served_while_draining(listener, path), "{path}");
            }
        }
    }

    #[test]
    fn guards_ask_for_credentials_as_documented() {
        assert!(!Guard::Open.asks(true));
        assert!(Guard::Always.asks(false));
        assert!(!Guard::ProtectAll.asks(false));
        assert!(Guard::ProtectAll.asks(true));
    }
}
