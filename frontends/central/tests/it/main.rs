//! Central's tests: handler tests against the axum service (no socket), and end-to-end tests
//! that start the real `ipam-central` binary and talk HTTPS to it. The client-shape flows
//! (Terraform, Ansible, legacy) are written once against [`Api`] and run both ways.
#![allow(missing_docs)]

mod budget;
mod dhcp;
// The DHCP drivers' test harness (namespaces, Kea, udhcpc).
#[allow(dead_code)]
#[path = "../../../../agents/dhcp/tests/it/harness.rs"]
mod dhcp_harness;
mod dns;
// The DNS drivers' test harness (named and pdns_server on loopback high ports).
#[allow(dead_code)]
#[path = "../../../../agents/dns/tests/it/harness.rs"]
mod dns_harness;
mod e2e;
mod flows;
mod ha;
mod handlers;
mod leaks;
mod security;
mod ui;

use serde_json::Value;

/// Administrator password the test instances are started with.
pub const ADMIN_PW: &str = "admin-password";

/// An HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub content_type: String,
    pub text: String,
    pub json: Value,
}

impl Resp {
    /// `result` of a 2xx answer, or a panic naming the request.
    #[track_caller]
    pub fn ok(&self, what: &str) -> &Value {
        assert!(
            (200..300).contains(&self.status),
            "{what}: HTTP {} {}",
            self.status,
            self.text
        );
        &self.json["result"]
    }

    /// The Micetro error code of a non-2xx answer.
    #[track_caller]
    pub fn err(&self, what: &str, status: u16) -> u64 {
        assert_eq!(self.status, status, "{what}: {}", self.text);
        assert!(
            self.content_type.starts_with("application/json"),
            "{what}: error bodies are JSON, got {:?}",
            self.content_type
        );
        self.json["error"]["code"]
            .as_u64()
            .unwrap_or_else(|| panic!("{what}: no error code in {}", self.text))
    }
}

/// Something that answers API calls: the service in-process, or a real server over TLS.
#[allow(async_fn_in_trait)] // test-only trait; the futures never cross threads
pub trait Api {
    /// Sends a request; `auth` is the whole Authorization header value.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Resp;

    /// The Authorization header value used by [`Api::call`].
    fn auth(&mut self) -> &mut Option<String>;

    /// Sends a JSON request with the current credentials.
    async fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.call_h(method, path, body, &[]).await
    }

    /// Same, with extra headers.
    async fn call_h(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Resp {
        let auth = self.auth().clone();
        let mut h: Vec<(&str, &str)> = extra.to_vec();
        if let Some(a) = auth.as_deref() {
            h.push(("authorization", a));
        }
        let body = body.map(|b| serde_json::to_vec(&b).unwrap());
        self.send(method, path, body, &h).await
    }
}

/// `Basic base64(user:pw)`.
pub fn basic(user: &str, pw: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = format!("{user}:{pw}").into_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out.insert_str(0, "Basic ");
    out
}

/// Logs in and switches the API to the session.
pub async fn login<A: Api>(a: &mut A, user: &str, pw: &str) {
    *a.auth() = None;
    let r = a
        .call(
            "POST",
            "/mmws/api/v2/micetro/sessions",
            Some(serde_json::json!({"loginName": user, "password": pw})),
        )
        .await;
    assert_eq!(r.status, 201, "login: {}", r.text);
    let token = r.json["result"]["session"].as_str().unwrap().to_string();
    *a.auth() = Some(format!("Bearer {token}"));
}

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "ipam-central-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
