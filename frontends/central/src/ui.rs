//! The browser UI: static HTML, CSS and ES modules embedded in the binary (no build step,
//! no Node.js), served at `/` and `/ui/...`, and the cookie session the UI logs in with.
//!
//! The UI calls the same API as every other client (`/mmws/api/v2/...`); it can do nothing
//! the API cannot. Its session is a cookie (`Secure`, `HttpOnly`, `SameSite=Strict`), and
//! every API call made with that cookie must also carry `X-CSRF-Token`: a value derived from
//! the session token, which a page on another origin can neither read nor compute. Every UI
//! answer carries a Content-Security-Policy that allows no inline script or style.
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::{codes, ApiError};
use crate::App;

/// The session cookie's name. The `__Host-` prefix makes browsers refuse it unless it is
/// Secure, for `/`, and set by this host itself (no sibling domain can plant one).
pub(crate) const COOKIE: &str = "__Host-ipam_session";
/// The header that carries the CSRF token.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

/// The embedded files: name, content type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../ui/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../ui/style.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/api.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/dom.js"),
    ),
    (
        "tree.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/tree.js"),
    ),
    (
        "range.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/range.js"),
    ),
    (
        "record.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/record.js"),
    ),
    (
        "history.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/history.js"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/admin.js"),
    ),
    (
        "import.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/import.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../ui/favicon.svg"),
    ),
];

/// The routes of the UI.
pub(crate) fn routes(r: axum::Router<Arc<App>>) -> axum::Router<Arc<App>> {
    use axum::routing::get;
    r.route("/", get(index))
        .route("/ui/session", get(session_info).post(login).delete(logout))
        .route("/ui/{file}", get(asset))
        .route("/favicon.ico", get(favicon))
}

pub(crate) fn secured(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn serve_asset(name: &str, req: &HeaderMap) -> Response {
    let Some((_, ctype, body)) = ASSETS.iter().find(|a| a.0 == name) else {
        return secured(
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("no such UI file: {name}"),
            )
                .into_response(),
        );
    };
    let etag = format!("\"{:016x}\"", fnv1a(body.as_bytes()));
    if req
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return secured((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    secured(
        (
            [
                (header::CONTENT_TYPE, ctype.to_string()),
                (header::ETAG, etag),
            ],
            *body,
        )
            .into_response(),
    )
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, x| {
        (h ^ u64::from(*x)).wrapping_mul(0x0100_0000_01b3)
    })
}

async fn index(h: HeaderMap) -> Response {
    serve_asset("index.html", &h)
}

async fn favicon(h: HeaderMap) -> Response {
    serve_asset("favicon.svg", &h)
}

async fn asset(axum::extract::Path(file): axum::extract::Path<String>, h: HeaderMap) -> Response {
    serve_asset(&file, &h)
}

/// The session token in the request's cookie, if any.
pub(crate) fn session_cookie(h: &HeaderMap) -> Option<String> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The CSRF token that belongs to a session token (a keyed digest of it: other origins
/// cannot read the cookie, so they cannot compute it).
pub(crate) fn csrf_token(session: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"ipam-csrf\0");
    ctx.update(session.as_bytes());
    ctx.finish().as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Refuses a cookie-authenticated call without the session's CSRF token.
pub(crate) fn check_csrf(h: &HeaderMap, session: &str) -> Result<(), ApiError> {
    let want = csrf_token(session);
    let got = h.get(CSRF_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    // Constant time in the token's length.
    let same = got.len() == want.len()
        && got
            .iter()
            .zip(want.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::CSRF,
            "a call with the session cookie needs the X-CSRF-Token header of that session \
             (the UI sends it; API clients use an Authorization header instead)",
        ))
    }
}

fn cookie(token: &str, max_age: Option<u64>) -> String {
    let mut c = format!("{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict");
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    c
}

fn answer(status: StatusCode, v: serde_json::Value) -> Response {
    secured((status, axum::Json(v)).into_response())
}

fn who(token: &str, user: ipam_engine::Id, name: &str) -> serde_json::Value {
    json!({
        "user": name,
        "userRef": ipam_engine::ObjKey::User(user).to_ref(),
        "csrfToken": csrf_token(token),
    })
}

/// `GET /ui/session`: who the cookie belongs to, and its CSRF token (a same-origin read:
/// other origins cannot see the answer); `null` when not logged in.
async fn session_info(State(app): State<Arc<App>>, h: HeaderMap) -> Response {
    match session_cookie(&h).and_then(|t| app.auth.session(&t).map(|s| (t, s))) {
        Some((t, s)) => answer(
            StatusCode::OK,
            json!({ "result": who(&t, s.user, &s.name) }),
        ),
        // Not logged in is an answer, not an error: the UI asks this on every start.
        None => answer(StatusCode::OK, json!({ "result": null })),
    }
}

/// `POST /ui/session` with `{"loginName", "password"}`: logs in and sets the cookie. The
/// request must carry `X-Requested-With: ipam` (which a form on another site cannot send),
/// so that no other page can log a browser in to an account of its choosing. The header is
/// checked before the body is read, and the body is capped at a few KiB.
async fn login(State(app): State<Arc<App>>, req: axum::extract::Request) -> Response {
    let ip = crate::api::peer_ip(req.extensions());
    let (parts, body) = req.into_parts();
    let h = parts.headers;
    if h.get("x-requested-with").map(|v| v.as_bytes()) != Some(b"ipam") {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            codes::CSRF,
            "log in from the UI (the X-Requested-With: ipam header is missing)",
        )
        .into_ui_response();
    }
    let body = match crate::api::read_body(body, crate::api::LOGIN_MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return e.into_ui_response(),
    };
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Login {
        login_name: String,
        password: String,
    }
    let l: Login = match serde_json::from_slice(&body) {
        Ok(l) => l,
        Err(e) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::BAD_JSON,
                format!("the login body must be {{\"loginName\", \"password\"}}: {e}"),
            )
            .into_ui_response()
        }
    };
    match crate::api::check_password(&app, &l.login_name, &l.password, ip).await {
        Ok((id, canonical)) => {
            let token = app.auth.open(id, &canonical);
            tracing::info!(user = canonical, "UI session opened");
            let mut r = answer(
                StatusCode::CREATED,
                json!({ "result": who(&token, id, &canonical) }),
            );
            r.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_str(&cookie(&token, None)).expect("the cookie is ASCII"),
            );
            r
        }
        Err(e) => e.into_ui_response(),
    }
}

/// `DELETE /ui/session`: logs out (with the CSRF token) and clears the cookie.
async fn logout(State(app): State<Arc<App>>, h: HeaderMap) -> Response {
    if let Some(t) = session_cookie(&h) {
        if let Err(e) = check_csrf(&h, &t) {
            return e.into_ui_response();
        }
        app.auth.close(&t);
    }
    let mut r = secured(StatusCode::NO_CONTENT.into_response());
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie("", Some(0))).expect("the cookie is ASCII"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_embedded_and_modules_import_only_embedded_files() {
        for (name, _, body) in ASSETS {
            assert!(!body.is_empty(), "{name} is empty");
            if name.ends_with(".js") {
                for line in body.lines().filter(|l| l.starts_with("import ")) {
                    let file = line
                        .rsplit_once("from")
                        .map(|(_, f)| f.trim().trim_matches(|c| c == '\'' || c == '"' || c == ';'))
                        .unwrap_or_default()
                        .trim_start_matches("./");
                    assert!(
                        ASSETS.iter().any(|a| a.0 == file),
                        "{name} imports {file}, which is not embedded"
                    );
                }
            }
        }
        assert!(
            !ASSETS.iter().any(|a| a.2.contains("innerHTML")),
            "no innerHTML anywhere"
        );
    }

    #[test]
    fn csrf_is_bound_to_the_session() {
        let mut h = HeaderMap::new();
        assert!(check_csrf(&h, "abc").is_err());
        h.insert(
            CSRF_HEADER,
            HeaderValue::from_str(&csrf_token("abc")).unwrap(),
        );
        assert!(check_csrf(&h, "abc").is_ok());
        assert!(check_csrf(&h, "abd").is_err());
        let mut c = HeaderMap::new();
        c.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-ipam_session=tok; b=2"),
        );
        assert_eq!(session_cookie(&c).as_deref(), Some("tok"));
    }
}
