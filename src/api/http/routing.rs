//! The route machinery, the same for both APIs: a route table
//! ([`RouteTable`], declared with [`route_enum!`]) gives each route a
//! [`RouteSpec`] (the methods it takes, its [`PathPattern`], its [`Guard`],
//! where it runs ([`RunsOn`]), whether it is answered while draining, and
//! its handler), and [`parse`] matches a request's method and path against
//! a table, once, returning the route and what its pattern captured
//! ([`Captures`]: the `{name}` of `/system/function/{name}`), so that no
//! handler slices a path again. A 404 names the table's routes
//! ([`route_list`]); a 405 lists the methods its path takes.
//!
//! The tables themselves live beside their handlers (`rest`, `provider`);
//! this module knows neither.

use std::ops::Range;

use super::error::ApiError;

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
    /// What the pattern captures from `path`, or `None` when it does not
    /// match: nothing for [`PathPattern::Exact`], the `{name}` for
    /// [`PathPattern::Named`], and the first segment after the prefix
    /// (possibly empty) for [`PathPattern::Prefix`].
    pub fn capture(self, path: &str) -> Option<Captures> {
        match self {
            Self::Exact(exact) => (path == exact).then(Captures::default),
            Self::Named(prefix) => {
                let name = path.strip_prefix(prefix)?;
                (!name.is_empty() && !name.contains('/')).then_some(Captures {
                    name: Some(prefix.len()..path.len()),
                })
            }
            Self::Prefix(prefix) => {
                let rest = path.strip_prefix(prefix)?;
                let segment = rest.find('/').unwrap_or(rest.len());
                Some(Captures {
                    name: Some(prefix.len()..prefix.len() + segment),
                })
            }
        }
    }

    pub fn matches(self, path: &str) -> bool {
        self.capture(path).is_some()
    }
}

/// What a route's [`PathPattern`] captured from a path: where its `{name}`
/// is (a range, so capturing allocates nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Captures {
    name: Option<Range<usize>>,
}

impl Captures {
    /// The captured `{name}` in `path` (the path the captures were taken
    /// from), empty when the pattern captures none.
    pub fn name<'a>(&self, path: &'a str) -> &'a str {
        self.name
            .clone()
            .and_then(|range| path.get(range))
            .unwrap_or("")
    }
}

/// Who may call a route, when its listener has credentials configured (the
/// admin token on the REST API's, basic auth on the provider's); without them
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
    /// `/system/logs?follow=true` (chosen by the server's dispatch from the
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

    pub fn takes(&self, method: &str) -> bool {
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

/// A request's route in a table, and what its pattern captured.
#[derive(Clone, Debug)]
pub struct Matched<R> {
    pub route: R,
    pub captures: Captures,
}

/// The route of `method` and `path` in `R`'s table, with its captures.
///
/// # Errors
/// [`RouteTable::not_found`] (404) when no route answers the path, and
/// [`ApiError::MethodNotAllowed`] (405, with the methods the path takes)
/// when routes answer it but not with this method.
// Not inlined (nor the other generic walks of a table): one copy per table
// keeps `receive` small (see `server::Job::run`).
#[inline(never)]
pub fn parse<R: RouteTable>(method: &str, path: &str) -> Result<Matched<R>, ApiError> {
    let mut allowed: Vec<&str> = Vec::new();
    for &route in R::ALL {
        let spec = route.spec();
        let Some(captures) = spec.path.capture(path) else {
            continue;
        };
        if spec.takes(method) {
            return Ok(Matched { route, captures });
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
pub fn answered_while_draining<R: RouteTable>(path: &str) -> bool {
    R::ALL.iter().any(|route| {
        let spec = route.spec();
        spec.while_draining && spec.path.matches(path)
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_capture_the_name_and_nothing_else() {
        let named = PathPattern::Named("/system/function/");
        let path = "/system/function/gcd";
        assert_eq!(named.capture(path).unwrap().name(path), "gcd");
        assert_eq!(named.capture("/system/function/"), None);
        assert_eq!(named.capture("/system/function/a/b"), None);
        let prefix = PathPattern::Prefix("/function/");
        let path = "/function/gcd.openfaas-fn/any/path";
        assert_eq!(prefix.capture(path).unwrap().name(path), "gcd.openfaas-fn");
        assert_eq!(prefix.capture("/function/").unwrap().name("/function/"), "");
        let exact = PathPattern::Exact("/system/info");
        assert_eq!(
            exact.capture("/system/info").unwrap().name("/system/info"),
            ""
        );
        assert_eq!(exact.capture("/system/info/"), None);
    }

    #[test]
    fn guards_ask_for_credentials_as_documented() {
        assert!(!Guard::Open.asks(true));
        assert!(Guard::Always.asks(false));
        assert!(!Guard::ProtectAll.asks(false));
        assert!(Guard::ProtectAll.asks(true));
    }
}
