//! TLS: the configured certificate, or a self-signed one created on first start and kept in
//! `DATA_DIR/tls/`.
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

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
    let mut created = false;
    let (cert_path, key_path) = match configured {
        Some((c, k)) => (c.to_path_buf(), k.to_path_buf()),
        None => {
            let dir = data_dir.join("tls");
            let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !c.exists() || !k.exists() {
                create_self_signed(&dir, &c, &k)?;
                created = true;
            }
            (c, k)
        }
    };
    let tls_err = |p: &Path, e: String| CentralError::Tls(format!("{}: {e}", p.display()));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| tls_err(&cert_path, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| tls_err(&cert_path, e.to_string()))?;
    let leaf = certs
        .first()
        .ok_or_else(|| tls_err(&cert_path, "no certificate in the file".into()))?;
    let fingerprint = fingerprint(leaf.as_ref());
    let key =
        PrivateKeyDer::from_pem_file(&key_path).map_err(|e| tls_err(&key_path, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CentralError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls_err(&key_path, e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(config),
        fingerprint,
        created,
    })
}

/// SHA-256 of a DER certificate as `AB:CD:...`.
pub fn fingerprint(der: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    d.as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn create_self_signed(dir: &Path, cert: &Path, key: &Path) -> Result<(), CentralError> {
    let io = |e: std::io::Error| CentralError::Tls(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        let h = h.trim();
        if !h.is_empty() && !names.iter().any(|n| n == h) {
            names.push(h.to_string());
        }
    }
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| CentralError::Tls(format!("cannot create a certificate: {e}")))?;
    write_private(key, ck.key_pair.serialize_pem().as_bytes()).map_err(io)?;
    std::fs::write(cert, ck.cert.pem()).map_err(io)?;
    Ok(())
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}
