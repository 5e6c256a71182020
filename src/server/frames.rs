//! Reading frontend messages with the checks pgwire's decoder leaves out.
//!
//! pgwire decodes a message straight from the socket buffer. Given a
//! length field below the header's own size it panics, text that is not
//! UTF-8 is silently replaced, and bytes a decoder does not consume (after
//! an embedded NUL in a query, say) are read as the next message. Here each
//! message is cut out of the buffer by its length field first, checked, and
//! only then handed to pgwire, which must consume it exactly.
//! See <https://www.postgresql.org/docs/current/protocol-message-formats.html>.

use bytes::BytesMut;
use pgwire::api::{ClientInfo, PgWireConnectionState};
use pgwire::error::PgWireError;
use pgwire::messages::PgWireFrontendMessage;
use pgwire::tokio::server::PgWireMessageServerCodec;
use tokio::io::AsyncReadExt;
use tokio_util::codec::Decoder;

use super::Framed;
use crate::error::codes;

/// The longest startup packet accepted, as in PostgreSQL.
const MAX_STARTUP_LEN: usize = 10_000;

/// The longest message accepted after startup. PostgreSQL allows up to
/// 1 GB; nothing a client sends this server needs more than a COPY chunk
/// or a statement with its parameters, and a length field is read before
/// the bytes arrive, so a lower bound keeps a hostile length from holding
/// the connection's memory.
const MAX_MESSAGE_LEN: usize = 64 * 1024 * 1024;

/// The protocol major version of ordinary startup packets.
const PROTOCOL_MAJOR: u32 = 3;

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FrameError {
    pub code: &'static str,
    pub message: String,
    /// The message boundaries are still known, so the connection may go
    /// on after an error.
    pub recoverable: bool,
    /// The refused message belongs to the extended protocol.
    pub extended: bool,
}

impl FrameError {
    fn protocol(message: impl Into<String>) -> FrameError {
        FrameError {
            code: codes::PROTOCOL_VIOLATION,
            message: message.into(),
            recoverable: false,
            extended: false,
        }
    }

    fn encoding(what: &str, extended: bool, recoverable: bool) -> FrameError {
        FrameError {
            code: codes::CHARACTER_NOT_IN_REPERTOIRE,
            message: format!("invalid byte sequence for encoding \"UTF8\" in {what}"),
            recoverable,
            extended,
        }
    }
}

/// What a message read gives.
pub(crate) enum Read {
    Message(PgWireFrontendMessage),
    Refused(FrameError),
    Failed(PgWireError),
}

/// The size of the message at the start of `buf`, once all of it has
/// arrived; `None` while bytes are missing.
pub(crate) fn frame_size(buf: &[u8], startup: bool) -> Result<Option<usize>, FrameError> {
    let (offset, min) = if startup { (0, 8) } else { (1, 4) };
    let Some(head) = buf.get(offset..offset + 4) else {
        return Ok(None);
    };
    let declared = i32::from_be_bytes(head.try_into().expect("four bytes"));
    if declared < min {
        return Err(FrameError::protocol(format!(
            "invalid message length {declared}"
        )));
    }
    let declared = declared as usize;
    if startup && declared > MAX_STARTUP_LEN {
        return Err(FrameError::protocol("invalid length of startup packet"));
    }
    if !startup && declared > MAX_MESSAGE_LEN {
        return Err(FrameError::protocol(format!(
            "message length {declared} exceeds the limit of {MAX_MESSAGE_LEN} bytes"
        )));
    }
    let size = offset + declared;
    Ok((buf.len() >= size).then_some(size))
}

/// Checks the text parts of one whole message that pgwire would otherwise
/// decode lossily.
pub(crate) fn check_text(frame: &[u8], startup: bool) -> Result<(), FrameError> {
    if startup {
        let version = frame
            .get(4..8)
            .map(|v| u32::from_be_bytes(v.try_into().expect("four bytes")));
        if version.is_some_and(|v| v >> 16 == PROTOCOL_MAJOR)
            && std::str::from_utf8(&frame[8..]).is_err()
        {
            return Err(FrameError::encoding("startup packet", false, false));
        }
        return Ok(());
    }
    let body = &frame[5..];
    match frame[0] {
        b'Q' => {
            one_string(body).map_err(|e| e.unwrap_or_else(|| query_encoding(false)))?;
        }
        b'P' => {
            // Statement name, then the query text, then binary type oids.
            let name_end = body.iter().position(|b| *b == 0);
            let Some(name_end) = name_end else {
                return Err(FrameError::protocol("invalid string in message"));
            };
            let rest = &body[name_end + 1..];
            let Some(query_end) = rest.iter().position(|b| *b == 0) else {
                return Err(FrameError::protocol("invalid string in message"));
            };
            if std::str::from_utf8(&body[..name_end]).is_err()
                || std::str::from_utf8(&rest[..query_end]).is_err()
            {
                return Err(query_encoding(true));
            }
        }
        _ => {}
    }
    Ok(())
}

fn query_encoding(extended: bool) -> FrameError {
    FrameError::encoding("query string", extended, true)
}

/// A body that must be exactly one NUL-terminated UTF-8 string. `Err(None)`
/// for an encoding problem, `Err(Some(..))` for a malformed body.
fn one_string(body: &[u8]) -> Result<(), Option<FrameError>> {
    match body.iter().position(|b| *b == 0) {
        Some(end) if end + 1 == body.len() => std::str::from_utf8(&body[..end])
            .map(|_| ())
            .map_err(|_| None),
        _ => Err(Some(FrameError::protocol("invalid string in message"))),
    }
}

/// Decodes one whole message, which must be consumed exactly. pgwire's
/// decoders index into bodies whose counts they trust (a Bind's parameter
/// count, say); such a panic is a malformed message like any other.
fn decode_frame<S>(codec: &mut PgWireMessageServerCodec<S>, mut frame: BytesMut) -> Read {
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let message = codec.decode(&mut frame);
        (message, frame.is_empty())
    }));
    match decoded {
        Ok((Ok(Some(message)), true)) => Read::Message(message),
        Ok((Ok(_), _)) | Err(_) => Read::Refused(FrameError::protocol("invalid message format")),
        Ok((Err(e), _)) => Read::Failed(e),
    }
}

/// Reads the next message; `None` at end of input.
pub(crate) async fn next_message(socket: &mut Framed) -> Option<Read> {
    let mut chunk = vec![0u8; 8192];
    loop {
        let startup = matches!(socket.state(), PgWireConnectionState::AwaitingStartup);
        match frame_size(socket.read_buffer(), startup) {
            Err(e) => return Some(Read::Refused(e)),
            Ok(Some(size)) => {
                let frame = socket.read_buffer_mut().split_to(size);
                if let Err(e) = check_text(&frame, startup) {
                    return Some(Read::Refused(e));
                }
                return Some(decode_frame(socket.codec_mut(), frame));
            }
            Ok(None) => {
                // Let pgwire judge the declared length of the message type
                // before waiting for all of it.
                let head_len = if startup { 4 } else { 5 };
                if socket.read_buffer().len() >= head_len && !startup {
                    let mut head = BytesMut::from(&socket.read_buffer()[..head_len]);
                    if let Err(e) = socket.codec_mut().decode(&mut head) {
                        return Some(Read::Failed(e));
                    }
                }
                match socket.get_mut().read(&mut chunk).await {
                    Ok(0) => return None,
                    Ok(n) => socket.read_buffer_mut().extend_from_slice(&chunk[..n]),
                    Err(e) => return Some(Read::Failed(PgWireError::IoError(e))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn ready_codec() -> PgWireMessageServerCodec<()> {
        use pgwire::api::DefaultClient;
        let mut client = DefaultClient::new("127.0.0.1:5432".parse().expect("addr"), false);
        client.set_state(PgWireConnectionState::ReadyForQuery);
        PgWireMessageServerCodec::new(client)
    }

    fn outcome(frame: &[u8]) -> Result<String, String> {
        let mut codec = ready_codec();
        match decode_frame(&mut codec, BytesMut::from(frame)) {
            Read::Message(m) => Ok(format!("{m:?}")),
            Read::Refused(e) => Err(e.code.to_owned()),
            Read::Failed(e) => Err(format!("failed: {e}")),
        }
    }

    #[test]
    fn bodies_the_decoder_cannot_read_are_refused() {
        // Each of these makes pgwire's own decoder panic.
        for (tag, body) in [
            (b'P', &b""[..]),
            (b'P', b"a\0b\0\0\x02\0\0"),
            (b'B', b"\0\0\0\x05"),
            (b'B', b"\0\0\0\x01\0\0\0\x01\xff\xff\xff\xf0"),
            (b'E', b"\0\0\x05"),
            (b'D', b""),
            (b'C', b""),
        ] {
            assert_eq!(
                outcome(&tagged(tag, body)),
                Err("08P01".to_owned()),
                "{} {body:?}",
                tag as char
            );
        }
        // Well-formed ones still decode.
        assert!(outcome(&tagged(b'P', b"s1\0SELECT $1\0\0\x01\0\0\0\x17")).is_ok());
        assert!(outcome(&tagged(b'B', b"\0s1\0\0\0\0\x01\0\0\0\x01\x37\0\0")).is_ok());
        assert!(outcome(&tagged(b'E', b"\0\0\0\0\0")).is_ok());
        assert!(outcome(&tagged(b'D', b"S\0")).is_ok());
        // A message with bytes its decoder leaves over is refused.
        assert_eq!(
            outcome(&tagged(b'E', b"\0\0\0\0\0extra")),
            Err("08P01".to_owned())
        );
    }

    #[test]
    fn lengths_below_the_header_are_refused() {
        for len in [-1i32, 0, 3, i32::MIN] {
            let mut buf = vec![b'Q'];
            buf.extend_from_slice(&len.to_be_bytes());
            assert_eq!(
                frame_size(&buf, false).unwrap_err().code,
                "08P01",
                "length {len}"
            );
        }
        assert_eq!(frame_size(&[0, 0, 0, 7], true).unwrap_err().code, "08P01");
        let huge = 0x7fff_ffffi32.to_be_bytes();
        assert_eq!(frame_size(&huge, true).unwrap_err().code, "08P01");
    }

    #[test]
    fn lengths_beyond_the_limit_are_refused_before_the_bytes_arrive() {
        let mut buf = vec![b'd'];
        buf.extend_from_slice(&(MAX_MESSAGE_LEN as i32 + 1).to_be_bytes());
        assert_eq!(frame_size(&buf, false).unwrap_err().code, "08P01");
        let mut buf = vec![b'd'];
        buf.extend_from_slice(&(MAX_MESSAGE_LEN as i32).to_be_bytes());
        assert_eq!(frame_size(&buf, false), Ok(None));
    }

    #[test]
    fn a_frame_is_complete_only_with_all_its_bytes() {
        let q = tagged(b'Q', b"SELECT 1\0");
        assert_eq!(frame_size(&q[..3], false), Ok(None));
        assert_eq!(frame_size(&q[..q.len() - 1], false), Ok(None));
        assert_eq!(frame_size(&q, false), Ok(Some(q.len())));
        let mut two = q.clone();
        two.extend_from_slice(&q);
        assert_eq!(frame_size(&two, false), Ok(Some(q.len())));
    }

    #[test]
    fn query_text_must_be_one_utf8_string() {
        assert_eq!(check_text(&tagged(b'Q', b"SELECT 'ok'\0"), false), Ok(()));
        let bad = check_text(&tagged(b'Q', b"SELECT '\xff'\0"), false).unwrap_err();
        assert_eq!((bad.code, bad.recoverable), ("22021", true));
        let smuggled = check_text(&tagged(b'Q', b"SELECT 1\0X\0\0\0\x05\0"), false);
        assert_eq!(smuggled.unwrap_err().code, "08P01");
        assert_eq!(
            check_text(&tagged(b'Q', b"no end"), false)
                .unwrap_err()
                .code,
            "08P01"
        );
        let parse = check_text(&tagged(b'P', b"s\0SELECT '\xc3\x28'\0\0\0"), false);
        let parse = parse.unwrap_err();
        assert_eq!((parse.code, parse.extended), ("22021", true));
        // Binary parts of other messages are not text.
        assert_eq!(check_text(&tagged(b'B', b"\0\0\xff\xff"), false), Ok(()));
    }

    #[test]
    fn startup_parameters_must_be_utf8() {
        let mut packet = 196_608u32.to_be_bytes().to_vec();
        packet.extend_from_slice(b"user\0\xff\0\0");
        let mut frame = ((packet.len() + 4) as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&packet);
        let err = check_text(&frame, true).unwrap_err();
        assert_eq!((err.code, err.recoverable), ("22021", false));
        // A cancel request carries binary numbers, not text.
        let mut cancel = 16i32.to_be_bytes().to_vec();
        cancel.extend_from_slice(&80_877_102u32.to_be_bytes());
        cancel.extend_from_slice(&[0xff; 8]);
        assert_eq!(check_text(&cancel, true), Ok(()));
    }
}
