//! What stands between a client and a node's routes in a real deployment, emulated in
//! front of every route (network-node §1):
//!
//! * **the version prefix** — the network node puts its chain's MLNode version in front
//!   of every path (`http://host:8080/v3.0.8/api/v1/state`) and the host's nginx strips
//!   it. [`strip_version`] does the same before routing: one leading segment that is not
//!   the first segment of a route is taken as the version (any value, as the network's
//!   test mock and its `/{version}` routes do); it travels with the request as a
//!   [`VersionPrefix`] so the journal and metrics can say which versioned path a client
//!   used. A second such segment is a 404 that says so.
//! * **the bearer token** of a managed endpoint's gateway (`--auth-token`): the MLNode
//!   itself checks none (network-node §1.5, open point 2); the provider's gateway in
//!   front of it answers 401. [`check_token`] is that gateway, for every route but the
//!   simulator's own `/sim/v1/*` (which has `--admin-token`).
//!
//! TLS is the transport's business: see [`crate::tls`].

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The version segment a request came with (`v3.0.8`), without slashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionPrefix(pub Arc<str>);

/// The path as the client sent it: `version`'s segment back in front of `path`.
pub(crate) fn path_as_sent(version: Option<&str>, path: &str) -> String {
    match version {
        Some(v) => format!("/{v}{path}"),
        None => path.to_owned(),
    }
}

/// The host name of a request's `Host` header (no port; an IPv6 literal without its
/// brackets), if it has a valid one.
pub(crate) fn host_name(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.parse::<axum::http::uri::Authority>().ok())
        .map(|a| a.host().trim_matches(['[', ']']).to_owned())
}

/// First path segments of the routes of both ports (and of the test-mock mode): a path
/// that starts with one of these is served as it is; any other first segment is a
/// version and is stripped.
const ROUTE_ROOTS: [&str; 10] = [
    "api",
    "v1",
    "health",
    "livez",
    "readyz",
    "openapi.json",
    "sim",
    "tokenize",
    "status",
    "files",
];

fn first_segment(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    match rest.find('/') {
        Some(i) => Some((&rest[..i], &rest[i..])),
        None => Some((rest, "")),
    }
}

fn is_route_root(seg: &str) -> bool {
    ROUTE_ROOTS.contains(&seg)
}

/// Strip one leading version segment from `req`'s path (keeping the query), recording
/// it as a [`VersionPrefix`]. `Err` is the 404 for a path with more than one such
/// segment. A path that starts with a route's first segment is left alone (the common
/// case: one comparison against a short list).
pub fn strip_version<B>(req: &mut axum::http::Request<B>) -> Result<(), ApiError> {
    let path = req.uri().path();
    let Some((seg, rest)) = first_segment(path) else {
        return Ok(());
    };
    if seg.is_empty() || rest.is_empty() || is_route_root(seg) {
        return Ok(());
    }
    if let Some((next, _)) = first_segment(rest) {
        if !next.is_empty() && !is_route_root(next) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "Not Found: {path} has more than one segment before the route; a node is \
                     addressed with at most one version segment, e.g. /v3.0.8/api/v1/state"
                ),
            ));
        }
    }
    let version = VersionPrefix(Arc::from(seg));
    let mut target = String::with_capacity(path.len());
    target.push_str(rest);
    if let Some(q) = req.uri().query() {
        target.push('?');
        target.push_str(q);
    }
    let Ok(uri) = target.parse::<Uri>() else {
        return Ok(());
    };
    *req.uri_mut() = uri;
    req.extensions_mut().insert(version);
    Ok(())
}

/// Route one request: strip a version segment first (`gateway`), as the host's nginx
/// does before the node sees the path.
pub(crate) async fn dispatch(
    router: axum::Router,
    mut req: axum::extract::Request,
) -> Result<axum::response::Response, std::convert::Infallible> {
    if let Err(e) = strip_version(&mut req) {
        return Ok(axum::response::IntoResponse::into_response(e));
    }
    tower::ServiceExt::oneshot(router, req).await
}

/// The gateway's token rule: `Authorization: Bearer <token>`, compared in constant time.
/// `None` when the request may pass, else the 401 answer.
pub fn check_token(expected: &str, headers: &axum::http::HeaderMap) -> Option<Response> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let detail = match given {
        Some(t) if constant_time_eq(t.trim().as_bytes(), expected.as_bytes()) => return None,
        Some(_) => "Unauthorized: the bearer token does not match this endpoint's token",
        None => "Unauthorized: this endpoint needs 'Authorization: Bearer <token>' (the node's auth token)",
    };
    let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, detail).into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Some(resp)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the inference port's compat proxy answers on a connection opened while a
/// replica was healthy, once none is (network-node §3.7): `503` with the plain bytes
/// `No vLLM backend available` and no content type.
pub fn no_backend() -> Response {
    let mut resp = (StatusCode::SERVICE_UNAVAILABLE, "No vLLM backend available").into_response();
    resp.headers_mut().remove(header::CONTENT_TYPE);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(path: &str) -> (Result<(), u16>, String, Option<String>) {
        let mut req = axum::http::Request::builder().uri(path).body(()).unwrap();
        let r = strip_version(&mut req).map_err(|r| r.status.as_u16());
        let v = req
            .extensions()
            .get::<VersionPrefix>()
            .map(|v| v.0.to_string());
        (r, req.uri().to_string(), v)
    }

    #[test]
    fn one_version_segment_is_stripped() {
        assert_eq!(
            strip("/v3.0.8/api/v1/state"),
            (Ok(()), "/api/v1/state".into(), Some("v3.0.8".into()))
        );
        assert_eq!(
            strip("/v3.0.10/v1/chat/completions?x=1"),
            (
                Ok(()),
                "/v1/chat/completions?x=1".into(),
                Some("v3.0.10".into())
            )
        );
        assert_eq!(
            strip("/v3.0.8/health"),
            (Ok(()), "/health".into(), Some("v3.0.8".into()))
        );
    }

    #[test]
    fn plain_routes_are_left_alone() {
        for p in [
            "/api/v1/state",
            "/v1/models",
            "/health",
            "/readyz",
            "/",
            "/nothing",
            "/sim/v1/node",
        ] {
            let (r, uri, v) = strip(p);
            assert_eq!((r, uri.as_str(), v), (Ok(()), p, None), "{p}");
        }
    }

    #[test]
    fn two_segments_are_a_clear_404() {
        let (r, _, _) = strip("/v3.0.8/v3.0.9/api/v1/state");
        assert_eq!(r, Err(404));
        let mut req = axum::http::Request::builder()
            .uri("/a/b/api/v1/state")
            .body(())
            .unwrap();
        let e = strip_version(&mut req).unwrap_err();
        assert_eq!(e.status, 404);
    }

    #[test]
    fn tokens() {
        let mut h = axum::http::HeaderMap::new();
        assert_eq!(
            check_token("tok", &h).map(|r| r.status().as_u16()),
            Some(401)
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer nope"),
        );
        assert_eq!(
            check_token("tok", &h).map(|r| r.status().as_u16()),
            Some(401)
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer tok"),
        );
        assert!(check_token("tok", &h).is_none());
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic tok"));
        assert!(check_token("tok", &h).is_some());
    }
}
