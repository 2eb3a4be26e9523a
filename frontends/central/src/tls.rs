//! TLS: the configured certificate, or a self-signed one created on first start and kept in
//! `DATA_DIR/tls/` ([`ipam_tls`] makes both).
use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::ServerConfig;

use crate::CentralError;

/// The server's TLS setup.
pub struct Tls {
    /// rustls configuration (HTTP/1.1 via ALPN).
    pub config: Arc<ServerConfig>,
    /// SHA-256 fingerprint of the leaf certificate, as colon-separated hex.
    pub fingerprint: String,
    /// True when the self-signed certificate was created on this start.
    pub created: bool,
}

/// Loads `cert`/`key`, or the self-signed pair in `data_dir/tls/`, creating it when absent.
pub fn load_or_create(
    data_dir: &Path,
    configured: Option<(&Path, &Path)>,
) -> Result<Tls, CentralError> {
    let id = ipam_tls::load_or_create(
        &data_dir.join("tls"),
        configured,
        &[b"http/1.1"],
        ipam_tls::SelfSignedNames::Host,
    )
    .map_err(|e| CentralError::Tls(e.to_string()))?;
    Ok(Tls {
        config: id.config,
        fingerprint: id.fingerprint,
        created: id.created,
    })
}

/// SHA-256 of a DER certificate as `AB:CD:...`.
pub fn fingerprint(der: &[u8]) -> String {
    ipam_tls::fingerprint(der)
}
