//! Every error as JSON, `{"error": "..."}`: 404 for an unknown route, 405
//! (with `Allow`) for a method a route does not take, and 413, 415 or 400 for
//! a body or a path that does not parse. (The 422 for a job out of bounds is
//! [`JobRequest::out_of_bounds`](super::JobRequest::out_of_bounds)'s, in
//! `POST /jobs`.)

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, error};
use serde_json::json;

use super::job::JSON_LIMIT;

pub(super) async fn no_route(request: HttpRequest) -> HttpResponse {
    let error = format!("no route for {} {}", request.method(), request.path());
    HttpResponse::NotFound().json(json!({ "error": error }))
}

/// The 405 for a method that a resource does not take, with the methods it
/// does take (`allow`), as HTTP asks.
pub(super) async fn method_not_allowed(request: HttpRequest, allow: &'static str) -> HttpResponse {
    let error = format!(
        "{} is not allowed on {}; use {allow}",
        request.method(),
        request.path()
    );
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, allow))
        .json(json!({ "error": error }))
}

pub(super) fn json_error(err: error::JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    use error::JsonPayloadError::{ContentType, Overflow, OverflowKnownLength};
    let (status, error) = match &err {
        ContentType => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad job: send it as JSON, with content-type: application/json".to_owned(),
        ),
        OverflowKnownLength { .. } | Overflow { .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("bad job: the body is larger than {JSON_LIMIT} bytes"),
        ),
        _ => (StatusCode::BAD_REQUEST, format!("bad job: {err}")),
    };
    let response = HttpResponse::build(status).json(json!({ "error": error }));
    error::InternalError::from_response(err, response).into()
}

pub(super) fn path_error(err: error::PathError, _: &HttpRequest) -> actix_web::Error {
    let body = json!({"error": format!("bad job id: {err}")});
    error::InternalError::from_response(err, HttpResponse::BadRequest().json(body)).into()
}
