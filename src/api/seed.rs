//! The seed's REST API handlers (`docs/api.md`): [`handle`] answers one
//! request of a parsed [`Route`] (the token check, the body, the handler,
//! the unknown fields, a caught panic), and one function per route turns a
//! typed request into a [`FunctionService`](crate::service::FunctionService)
//! call and its [`Reply`]. The routes and their properties are in `route`.

use std::sync::Arc;

use serde_json::json;

use super::answer::{Answer, Context, failed, finish, panicked, run_caught};
use super::error::ApiError;
use super::http_answer;
use super::observe::{self, Call, LogsRequest};
use super::provider;
use super::request::{
    DeployRequest, IgnoredFields, InvokeRequest, JsonBody, NameRequest, SecretRequest,
};
use super::response::{RenderedList, Reply, limits_json, query_item};
use super::route::{Route, RouteTable};
use super::server::Shared;
use crate::function::Input;
use crate::store::SecretChange;

/// A seed route's handler; its kind says how the body is read and parsed.
#[derive(Clone, Copy, Debug)]
pub enum Handler {
    /// The body is not read.
    NoBody(fn(&mut Context<'_>) -> Result<Answer, ApiError>),
    /// A [`DeployRequest`]: deploy and update.
    Deploy(fn(&mut Context<'_>, DeployRequest) -> Result<Answer, ApiError>),
    /// A [`NameRequest`]: delete and query.
    Name(fn(&mut Context<'_>, NameRequest) -> Result<Answer, ApiError>),
    Invoke(fn(&mut Context<'_>, InvokeRequest) -> Result<Answer, ApiError>),
    Logs(fn(&mut Context<'_>, LogsRequest) -> Result<Answer, ApiError>),
    /// A [`SecretRequest`], which names no function.
    Secret(fn(&mut Context<'_>, SecretRequest) -> Result<Answer, ApiError>),
}

impl Handler {
    /// Reads and parses the body its kind calls for and runs the handler.
    /// Fields of the body that the route does not know are left in
    /// `ignored_fields`, for the answer to name whatever the outcome.
    fn run(
        self,
        context: &mut Context<'_>,
        ignored_fields: &mut IgnoredFields,
    ) -> Result<Answer, ApiError> {
        match self {
            Self::NoBody(handler) => handler(context),
            Self::Deploy(handler) => with_body(context, ignored_fields, handler),
            Self::Name(handler) => with_body(context, ignored_fields, handler),
            Self::Invoke(handler) => with_body(context, ignored_fields, handler),
            Self::Logs(handler) => with_body(context, ignored_fields, handler),
            Self::Secret(handler) => {
                let body = context.read_body()?;
                let (request, ignored) = SecretRequest::parse(&body)?;
                *ignored_fields = ignored;
                handler(context, request)
            }
        }
    }

    /// Parses `body` as the handler would, without running it (for the
    /// fuzz targets and tests, which check that no body makes it panic).
    #[cfg(any(test, fuzzing))]
    fn check_body(self, body: &[u8]) -> Result<(), ApiError> {
        match self {
            Self::NoBody(_) => Ok(()),
            Self::Deploy(_) => DeployRequest::parse(body).map(drop),
            Self::Name(_) => <NameRequest as JsonBody>::parse(body).map(drop),
            Self::Invoke(_) => <InvokeRequest as JsonBody>::parse(body).map(|request| {
                // What the ABIs do with arguments: render them back to JSON.
                let _ = request.args.to_json();
            }),
            Self::Logs(_) => <LogsRequest as JsonBody>::parse(body).map(drop),
            Self::Secret(_) => SecretRequest::parse(body).map(drop),
        }
    }
}

fn with_body<B: JsonBody>(
    context: &mut Context<'_>,
    ignored_fields: &mut IgnoredFields,
    handler: fn(&mut Context<'_>, B) -> Result<Answer, ApiError>,
) -> Result<Answer, ApiError> {
    let body = context.read_body()?;
    let mut request = B::parse(&body)?;
    *ignored_fields = request.take_ignored_fields();
    context.call.function = Some(request.function_name().clone());
    handler(context, request)
}

/// Parses `body` as the request of the seed's POST route `path`, as the
/// server does.
///
/// # Errors
/// The 404 or 400 the server would answer.
#[cfg(any(test, fuzzing))]
pub fn parse_route_body(path: &str, body: &[u8]) -> Result<(), ApiError> {
    let route: Route = super::route::parse("POST", path)?;
    route.spec().handler.check_body(body)
}

/// Answers one request of `route` on this thread; a panic answers 500 and
/// the worker lives on.
pub fn handle(route: Route, mut request: tiny_http::Request, mut call: Call, shared: &Shared) {
    // Engine log lines written from here to the answer carry the call id.
    let _scope = crate::call::enter(&call.id);
    let mut ignored_fields = IgnoredFields::default();
    let outcome = run_caught(&mut request, &mut call, shared, |context| {
        let spec = route.spec();
        shared
            .access
            .check(spec.guard, context.header("Authorization").as_deref())?;
        spec.handler.run(context, &mut ignored_fields)
    });
    let mut answer = match outcome {
        Ok(Ok(answer)) => answer,
        Ok(Err(error)) => {
            if matches!(error, ApiError::RequestTimeout { .. }) {
                shared
                    .rejections
                    .count(crate::metrics::Rejection::RequestTimeout);
            }
            // Failed deploys and updates are logged at warn (deletes not).
            failed(
                &call,
                &error,
                matches!(route, Route::Deploy | Route::Update),
            )
        }
        Err(panic) => panicked(&call, panic.as_ref()),
    };
    if !ignored_fields.0.is_empty() {
        super::ignored::warn(route, &call, &ignored_fields.0);
        if let Answer::Reply(reply) = answer {
            answer = Answer::Reply(reply.with("ignored_fields", json!(ignored_fields.0)));
        }
    }
    finish(request, &call, answer, shared);
}

/// `POST /function/deploy`.
pub fn deploy(context: &mut Context<'_>, request: DeployRequest) -> Result<Answer, ApiError> {
    let entry = context
        .shared
        .service
        .deploy(&request.function_name, &request.spec)?;
    Ok(changed("deploy", &entry))
}

/// `POST /function/update`.
pub fn update(context: &mut Context<'_>, request: DeployRequest) -> Result<Answer, ApiError> {
    let entry = context
        .shared
        .service
        .update(&request.function_name, &request.spec)?;
    Ok(changed("update", &entry))
}

fn changed(verb: &str, entry: &crate::function::FunctionEntry) -> Answer {
    Answer::Reply(
        Reply::ok(format!("{verb} function {} successfully!", entry.func_name))
            .with("image_digest", json!(entry.image_digest))
            .with("function", json!(entry)),
    )
}

/// `POST /function/delete`.
pub fn delete(context: &mut Context<'_>, request: NameRequest) -> Result<Answer, ApiError> {
    let function_name = request.function_name;
    context.shared.service.delete(&function_name)?;
    Ok(Answer::Reply(
        Reply::ok(format!("delete function {function_name} successfully!"))
            .with("function_name", json!(function_name)),
    ))
}

/// `GET /function/list`.
///
/// Rendered once per generation of the deployed functions and kept (one
/// rendering at a time, made under the cache's lock so that concurrent lists
/// after a change render it once).
pub fn list(context: &mut Context<'_>) -> Result<Answer, ApiError> {
    let service = &context.shared.service;
    let generation = service.list_generation();
    let mut cache = context
        .shared
        .list_cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(rendered) = cache.as_ref().filter(|r| r.generation == generation) {
        return Ok(Answer::List(rendered.clone()));
    }
    let (generation, entries) = service.list_at_generation();
    let rendered = Arc::new(RenderedList::new(generation, &entries));
    *cache = Some(rendered.clone());
    Ok(Answer::List(rendered))
}

/// `POST /function/query`.
pub fn query(context: &mut Context<'_>, request: NameRequest) -> Result<Answer, ApiError> {
    let (entry, limits) = context.shared.service.query(&request.function_name)?;
    Ok(Answer::Reply(
        Reply::ok(format!("queried function info: {}", query_item(&entry)))
            .with("function", json!(entry))
            .with("limits_in_force", limits_json(&limits)),
    ))
}

/// `POST /function/invoke`: the output as the answer (bytes and all: see
/// `Reply::output`), or with `"http": true` the function's own HTTP answer
/// (`http_answer`).
pub fn invoke(context: &mut Context<'_>, request: InvokeRequest) -> Result<Answer, ApiError> {
    let invocation = context.shared.service.invoke(
        &request.function_name,
        &Input::Args(request.args),
        &context.call.id,
    );
    let function_name = request.function_name;
    let http = request.http;
    let configured_type = invocation.answer_settings.content_type.as_deref();
    let answer = invocation
        .output
        .map_err(ApiError::from)
        .and_then(|output| {
            let answer = if http {
                http_answer::read(invocation.output_kind, &output, true, None)
            } else {
                Ok(None)
            };
            match answer {
                Ok(Some(answer)) => {
                    let content_type = http_answer::default_content_type(
                        configured_type,
                        &answer.body,
                        "text/plain; charset=utf-8",
                    );
                    Ok(Answer::Provider(provider::Response::function_answer(
                        answer,
                        &content_type,
                    )))
                }
                // Without "http", or numbers: the answer of today.
                Ok(None) => Ok(Answer::Reply(Reply::output(output))),
                Err(reason) => Err(ApiError::BadFunctionAnswer {
                    function: function_name,
                    reason,
                }),
            }
        });
    if let Some(metrics) = &invocation.metrics {
        metrics.count_status(match &answer {
            Ok(Answer::Provider(response)) => response.status(),
            Ok(_) => 200,
            Err(error) => error.status(),
        });
    }
    answer
}

/// `POST /function/secret`: create or update, or delete, a secret.
pub fn secret(context: &mut Context<'_>, request: SecretRequest) -> Result<Answer, ApiError> {
    let service = &context.shared.service;
    let reply = match request {
        SecretRequest::Put { name, value } => {
            let verb = match service.put_secret(&name, value, None)? {
                SecretChange::Created => "create",
                SecretChange::Updated => "update",
            };
            Reply::ok(format!("{verb} secret {name} successfully!")).with("secret", json!(name))
        }
        SecretRequest::Delete { name } => {
            service.delete_secret(&name)?;
            Reply::ok(format!("delete secret {name} successfully!")).with("secret", json!(name))
        }
    };
    Ok(Answer::Reply(reply))
}

/// `POST /function/logs`.
pub fn logs(context: &mut Context<'_>, request: LogsRequest) -> Result<Answer, ApiError> {
    let accept = context.header("Accept");
    observe::logs(request, accept.as_deref(), context.shared)
}

/// `GET /metrics`.
pub fn metrics(context: &mut Context<'_>) -> Result<Answer, ApiError> {
    Ok(Answer::Raw {
        content_type: crate::metrics::CONTENT_TYPE,
        body: observe::metrics(context.shared),
    })
}

/// `GET`/`HEAD /healthz`.
pub fn healthz(_context: &mut Context<'_>) -> Result<Answer, ApiError> {
    Ok(Answer::Reply(Reply::ok("alive".into())))
}

/// `GET`/`HEAD /readyz`.
pub fn readyz(context: &mut Context<'_>) -> Result<Answer, ApiError> {
    if let Some(reason) = observe::not_ready(context.shared) {
        return Err(ApiError::NotReady { reason });
    }
    Ok(Answer::Reply(Reply::ok("ready".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_post_route_parses_its_own_body() {
        let deploy = br#"{"function_name": "gcd", "function_image": "r/gcd:v1"}"#;
        assert!(parse_route_body("/function/deploy", deploy).is_ok());
        assert!(parse_route_body("/function/update", deploy).is_ok());
        let name = br#"{"function_name": "gcd"}"#;
        for path in ["/function/delete", "/function/query", "/function/invoke"] {
            assert!(parse_route_body(path, name).is_ok(), "{path}");
        }
        // A deploy needs an image; the others do not.
        let error = parse_route_body("/function/deploy", name).unwrap_err();
        assert!(error.to_string().contains("function_image"), "{error}");
        assert!(
            parse_route_body("/function/logs", br#"{"function_name": "gcd", "tail": 3}"#).is_ok()
        );
        assert_eq!(
            parse_route_body(
                "/function/invoke",
                br#"{"function_name": "gcd", "args": {"a": 1}}"#
            )
            .unwrap_err()
            .status(),
            400
        );
        assert_eq!(
            parse_route_body("/nowhere", name).unwrap_err().status(),
            404
        );
    }
}
