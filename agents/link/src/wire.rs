//! Messages on an async byte stream, with the protocol's codec and a bounded frame size, and
//! the TLS connection's binding: what both ends of the link use.
use ipam_agent_proto::{encode_with_limit, FrameDecoder, Message, ProtoError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The peer closed the connection.
    #[error("the peer closed the connection")]
    Closed,
    /// A socket error.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// A broken, oversize or undecodable frame (the connection is closed).
    #[error("protocol error: {0}")]
    Proto(#[from] ProtoError),
}

/// The connection's [`ipam_agent_proto::Binding`] (the TLS exporter, RFC 5705), the same on
/// both ends of one TLS connection.
pub fn binding<D>(
    conn: &tokio_rustls::rustls::ConnectionCommon<D>,
) -> Result<ipam_agent_proto::Binding, WireError> {
    conn.export_keying_material([0u8; 32], ipam_agent_proto::BINDING_LABEL, None)
        .map_err(|e| WireError::Io(std::io::Error::other(format!("TLS keying material: {e}"))))
}

/// Largest frame during the handshake (hello, auth, welcome), before the peer is trusted.
pub const HANDSHAKE_MAX_FRAME_LEN: u32 = 1024 * 1024;

/// Reads messages from a stream.
pub struct Reader<R> {
    inner: R,
    decoder: FrameDecoder,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    /// Reads with frames of at most `max_frame_len` bytes.
    pub fn new(inner: R, max_frame_len: u32) -> Reader<R> {
        Reader {
            inner,
            decoder: FrameDecoder::with_max_frame_len(max_frame_len),
            buf: vec![0; 64 * 1024],
        }
    }

    /// The same stream with another frame limit (the handshake reads with a small one);
    /// bytes already received carry over.
    pub fn relimit(mut self, max_frame_len: u32) -> Result<Reader<R>, WireError> {
        let rest = self.decoder.take_buffered().ok_or_else(|| {
            WireError::Io(std::io::Error::other(
                "a frame over the handshake's limit arrived with the handshake",
            ))
        })?;
        let mut r = Reader::new(self.inner, max_frame_len);
        r.decoder.push(&rest);
        Ok(r)
    }

    /// The next message; an error ends the connection.
    pub async fn next(&mut self) -> Result<Message, WireError> {
        loop {
            if let Some(m) = self.decoder.next_message()? {
                return Ok(m);
            }
            let n = self.inner.read(&mut self.buf).await?;
            if n == 0 {
                return Err(WireError::Closed);
            }
            self.decoder.push(&self.buf[..n]);
        }
    }
}

/// Writes one message as one frame.
pub async fn write<W: AsyncWrite + Unpin>(
    w: &mut W,
    m: &Message,
    max_frame_len: u32,
) -> Result<(), WireError> {
    let frame = encode_with_limit(m, max_frame_len)?;
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

/// Tells the peer why the handshake failed (best effort: the connection closes anyway) and
/// answers the reason.
pub async fn refuse<W: AsyncWrite + Unpin>(
    w: &mut W,
    reason: String,
    max_frame_len: u32,
) -> String {
    let m = Message::Refused {
        reason: reason.clone(),
    };
    let _ = write(w, &m, max_frame_len).await;
    reason
}
