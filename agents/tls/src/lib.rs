//! `ipam-tls`: TLS shared by every ipam program: a server identity (the configured
//! certificate, or a self-signed one created on first start), SHA-256 fingerprints, and a
//! client configuration that pins a peer's certificate by fingerprint (or accepts any on first
//! use, remembering what it saw, as SSH does). Central's HTTPS, `ipam-client` (ipamctl), the
//! agent and Central's side of the agent link use it; it sits below all of them, so no agent
//! crate depends on a front-end. rustls with the ring provider.
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{ring as provider, WebPkiSupportedAlgorithms};
use tokio_rustls::rustls::{
    self, ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme,
};

/// Why a TLS identity or configuration could not be made.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {message}")]
pub struct TlsError {
    /// The file or step.
    pub context: String,
    /// What went wrong.
    pub message: String,
}

fn err(context: impl std::fmt::Display, message: impl std::fmt::Display) -> TlsError {
    TlsError {
        context: context.to_string(),
        message: message.to_string(),
    }
}

/// A server's TLS setup.
pub struct Identity {
    /// rustls configuration.
    pub config: Arc<ServerConfig>,
    /// SHA-256 fingerprint of the leaf certificate, as colon-separated hex.
    pub fingerprint: String,
    /// True when the self-signed certificate was created now.
    pub created: bool,
}

/// The names a self-signed certificate holds (its subject alternative names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfSignedNames {
    /// `localhost`, `127.0.0.1`, `::1` and the host name (`/etc/hostname`): Central's HTTPS.
    Host,
    /// None: for a server its peers pin by fingerprint (an agent), so that a peer without
    /// the shared key does not learn the host's name from the certificate.
    Unnamed,
}

/// Loads `configured` (certificate chain, key), or the self-signed pair in `dir` (`cert.pem`,
/// `key.pem`, the key mode 0600), creating it with `names` when absent (a pair already there
/// is used as it is). `alpn`: the protocols to offer.
pub fn load_or_create(
    dir: &Path,
    configured: Option<(&Path, &Path)>,
    alpn: &[&[u8]],
    names: SelfSignedNames,
) -> Result<Identity, TlsError> {
    let mut created = false;
    let (cert_path, key_path) = match configured {
        Some((c, k)) => (c.to_path_buf(), k.to_path_buf()),
        None => {
            let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !c.exists() || !k.exists() {
                create_self_signed(dir, &c, &k, names)?;
                created = true;
            }
            (c, k)
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| err(cert_path.display(), e))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(cert_path.display(), e))?;
    let leaf = certs
        .first()
        .ok_or_else(|| err(cert_path.display(), "no certificate in the file"))?;
    let fingerprint = fingerprint(leaf.as_ref());
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| err(key_path.display(), e))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| err("TLS versions", e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| err(key_path.display(), e))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Identity {
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

/// A fingerprint reduced to its 64 upper-case hex digits (colons and case ignored), or
/// `None` when it is not a SHA-256 fingerprint.
pub fn normalize_pin(f: &str) -> Option<String> {
    let p: String = f
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (p.len() == 64 && p.chars().all(|c| c.is_ascii_hexdigit())).then_some(p)
}

/// The fingerprint the peer presented, once a handshake has run.
pub type Seen = Arc<Mutex<Option<String>>>;

/// A client configuration that accepts only the certificate whose fingerprint is `pin`
/// (normalized, see [`normalize_pin`]), or any certificate when `pin` is `None` (first use:
/// read what was seen from the returned [`Seen`] and pin it from then on). Handshake
/// signatures are still verified.
pub fn pinned_client(pin: Option<String>, alpn: &[&[u8]]) -> (Arc<ClientConfig>, Seen) {
    let seen: Seen = Arc::default();
    let p = Arc::new(provider::default_provider());
    let verifier = Arc::new(Pinned {
        pin: pin.unwrap_or_default(),
        algs: p.signature_verification_algorithms,
        seen: seen.clone(),
    });
    let mut cfg = ClientConfig::builder_with_provider(p)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    (Arc::new(cfg), seen)
}

fn create_self_signed(
    dir: &Path,
    cert: &Path,
    key: &Path,
    names: SelfSignedNames,
) -> Result<(), TlsError> {
    let io = |e: std::io::Error| err(dir.display(), e);
    std::fs::create_dir_all(dir).map_err(io)?;
    let names = match names {
        SelfSignedNames::Host => {
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
            names
        }
        SelfSignedNames::Unnamed => Vec::new(),
    };
    let ck =
        rcgen::generate_simple_self_signed(names).map_err(|e| err("creating a certificate", e))?;
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

/// Accepts the certificate whose SHA-256 matches the pin (any, when the pin is empty), and
/// still verifies the handshake signatures.
#[derive(Debug)]
struct Pinned {
    pin: String,
    algs: WebPkiSupportedAlgorithms,
    seen: Seen,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let f = fingerprint(end_entity.as_ref());
        let got: String = f.chars().filter(|c| *c != ':').collect();
        *self.seen.lock().expect("fingerprint lock") = Some(f);
        if self.pin.is_empty() || got == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "certificate fingerprint {got} does not match the pinned {}",
                self.pin
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_normalize() {
        let f = "3a:be:F4:26:19:99:19:5D:5A:8D:59:A1:D8:0A:4B:F2:7E:EB:7F:A3:CE:48:B2:38:D1:45:F1:63:FC:62:C4:CC";
        assert_eq!(normalize_pin(f).unwrap().len(), 64);
        assert!(normalize_pin("").is_none());
        assert!(normalize_pin("zz").is_none());
    }
}
