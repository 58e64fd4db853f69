//! The AWS event-stream binary framing (`application/vnd.amazon.eventstream`) that Bedrock's
//! `invoke-with-response-stream` and `converse-stream` answer with: an encoder for the mock
//! server and an incremental, CRC-checking decoder for clients and conformance checks.
//!
//! A frame is `[total_len u32][headers_len u32][crc32 of the first 8 bytes][headers]
//! [payload][crc32 of everything before]`, big-endian. Each header is `name_len u8, name,
//! type u8, value`. The decoder treats its input as hostile: it checks the prelude CRC before
//! trusting any length, refuses frames over a configurable size before buffering them, and
//! grows its buffer only as bytes actually arrive.

/// Bytes in the prelude: total length, headers length, prelude CRC.
pub const PRELUDE_LEN: usize = 12;
/// Bytes in the trailing message CRC.
const CRC_LEN: usize = 4;
/// The smallest legal frame: a prelude and a message CRC, no headers, no payload.
pub const MIN_FRAME_LEN: usize = PRELUDE_LEN + CRC_LEN;
/// The decoder's default frame-size limit (16 MiB), the same bound the AWS SDKs use.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 * 1024 * 1024;
/// Up-front reservation for a frame being reassembled. Larger frames grow as their bytes
/// arrive, so a prelude that merely promises a big frame costs nothing.
const INITIAL_RESERVE: usize = 64 * 1024;

const TYPE_TRUE: u8 = 0;
const TYPE_FALSE: u8 = 1;
const TYPE_BYTE: u8 = 2;
const TYPE_INT16: u8 = 3;
const TYPE_INT32: u8 = 4;
const TYPE_INT64: u8 = 5;
const TYPE_BYTES: u8 = 6;
const TYPE_STRING: u8 = 7;
const TYPE_TIMESTAMP: u8 = 8;
const TYPE_UUID: u8 = 9;

/// A typed header value; one variant per wire type the format defines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValue {
    /// Types 0 (true) and 1 (false); no value bytes.
    Bool(bool),
    /// Type 2: one signed byte.
    Byte(i8),
    /// Type 3: big-endian i16.
    Int16(i16),
    /// Type 4: big-endian i32.
    Int32(i32),
    /// Type 5: big-endian i64.
    Int64(i64),
    /// Type 6: u16 length, then raw bytes.
    Bytes(Vec<u8>),
    /// Type 7: u16 length, then UTF-8. The only type Bedrock sends.
    String(String),
    /// Type 8: milliseconds since the Unix epoch, big-endian i64.
    Timestamp(i64),
    /// Type 9: 16 raw bytes.
    Uuid([u8; 16]),
}

impl HeaderValue {
    /// The value as text, if it is a string header.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::String(s) => Some(s),
            _ => None,
        }
    }
}

impl From<&str> for HeaderValue {
    fn from(s: &str) -> Self {
        HeaderValue::String(s.to_owned())
    }
}

/// One event-stream message: ordered headers (duplicates kept as sent) and a payload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Headers in wire order.
    pub headers: Vec<(String, HeaderValue)>,
    /// The payload bytes (JSON for Bedrock).
    pub payload: Vec<u8>,
}

impl Message {
    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The first header called `name`, if it is a string.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(HeaderValue::as_str)
    }

    /// `:message-type` (`event`, `exception` or `error`).
    pub fn message_type(&self) -> Option<&str> {
        self.header_str(":message-type")
    }

    /// `:event-type`, e.g. `chunk` or `contentBlockDelta`.
    pub fn event_type(&self) -> Option<&str> {
        self.header_str(":event-type")
    }

    /// `:exception-type`, e.g. `throttlingException`.
    pub fn exception_type(&self) -> Option<&str> {
        self.header_str(":exception-type")
    }
}

/// A Bedrock event message (`:message-type: event`) carrying a JSON payload, with the
/// headers in the order Bedrock sends them.
pub fn event(event_type: &str, payload_json: impl Into<Vec<u8>>) -> Message {
    Message {
        headers: vec![
            (":event-type".into(), event_type.into()),
            (":content-type".into(), "application/json".into()),
            (":message-type".into(), "event".into()),
        ],
        payload: payload_json.into(),
    }
}

/// A Bedrock modeled exception (`:message-type: exception`), e.g. `throttlingException`
/// with `{"message": "..."}`, as sent when a stream fails after it started.
pub fn exception(exception_type: &str, message_json: impl Into<Vec<u8>>) -> Message {
    Message {
        headers: vec![
            (":exception-type".into(), exception_type.into()),
            (":content-type".into(), "application/json".into()),
            (":message-type".into(), "exception".into()),
        ],
        payload: message_json.into(),
    }
}

/// Why a message cannot be framed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// Header names are limited to 255 bytes by their one-byte length prefix.
    #[error("header name of {len} bytes exceeds the 255-byte limit")]
    HeaderNameTooLong {
        /// Length of the offending name in bytes.
        len: usize,
    },
    /// String and byte-array values are limited to 65535 bytes by their length prefix.
    #[error("value of header {name:?} is {len} bytes, over the 65535-byte limit")]
    HeaderValueTooLong {
        /// The header whose value is too long.
        name: String,
        /// Length of the value in bytes.
        len: usize,
    },
    /// The frame length must fit the u32 prelude field.
    #[error("frame of {len} bytes does not fit the 32-bit length field")]
    FrameTooLong {
        /// The length the frame would have had.
        len: usize,
    },
}

/// Frames `msg` into a new buffer.
pub fn encode(msg: &Message) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode_into(msg, &mut out)?;
    Ok(out)
}

/// Appends the frame for `msg` to `out` (so a server can reuse one buffer). On error `out`
/// is left as it was.
pub fn encode_into(msg: &Message, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    let result = write_frame(msg, out, start);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn write_frame(msg: &Message, out: &mut Vec<u8>, start: usize) -> Result<(), EncodeError> {
    // The prelude is written last, once the lengths are known; the headers are written
    // once, straight into `out`.
    out.extend_from_slice(&[0; PRELUDE_LEN]);
    for (name, value) in &msg.headers {
        write_header(name, value, out)?;
    }
    let headers_len = out.len() - start - PRELUDE_LEN;
    out.extend_from_slice(&msg.payload);
    let len = out.len() - start + CRC_LEN;
    let total = u32::try_from(len).map_err(|_| EncodeError::FrameTooLong { len })?;
    // headers_len < total, so it fits too.
    let headers_len = u32::try_from(headers_len).map_err(|_| EncodeError::FrameTooLong { len })?;
    out[start..start + 4].copy_from_slice(&total.to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&headers_len.to_be_bytes());
    let prelude_crc = crc32fast::hash(&out[start..start + 8]);
    out[start + 8..start + PRELUDE_LEN].copy_from_slice(&prelude_crc.to_be_bytes());
    let message_crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&message_crc.to_be_bytes());
    Ok(())
}

fn write_header(name: &str, value: &HeaderValue, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let name_len = u8::try_from(name.len()).map_err(|_| EncodeError::HeaderNameTooLong { len: name.len() })?;
    out.push(name_len);
    out.extend_from_slice(name.as_bytes());
    match value {
        HeaderValue::Bool(true) => out.push(TYPE_TRUE),
        HeaderValue::Bool(false) => out.push(TYPE_FALSE),
        HeaderValue::Byte(v) => {
            out.push(TYPE_BYTE);
            out.extend_from_slice(&v.to_be_bytes());
        }
        HeaderValue::Int16(v) => {
            out.push(TYPE_INT16);
            out.extend_from_slice(&v.to_be_bytes());
        }
        HeaderValue::Int32(v) => {
            out.push(TYPE_INT32);
            out.extend_from_slice(&v.to_be_bytes());
        }
        HeaderValue::Int64(v) => {
            out.push(TYPE_INT64);
            out.extend_from_slice(&v.to_be_bytes());
        }
        HeaderValue::Bytes(v) => write_sized(TYPE_BYTES, name, v, out)?,
        HeaderValue::String(v) => write_sized(TYPE_STRING, name, v.as_bytes(), out)?,
        HeaderValue::Timestamp(v) => {
            out.push(TYPE_TIMESTAMP);
            out.extend_from_slice(&v.to_be_bytes());
        }
        HeaderValue::Uuid(v) => {
            out.push(TYPE_UUID);
            out.extend_from_slice(v);
        }
    }
    Ok(())
}

fn write_sized(kind: u8, name: &str, value: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let len = u16::try_from(value.len()).map_err(|_| EncodeError::HeaderValueTooLong {
        name: name.to_owned(),
        len: value.len(),
    })?;
    out.push(kind);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
    Ok(())
}

/// Why a byte stream is not a valid sequence of frames. After any of these the stream has
/// lost its framing, so the decoder stays failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The prelude CRC does not match its first 8 bytes, so no length can be trusted.
    #[error("prelude CRC mismatch: frame says {stated:#010x}, bytes give {computed:#010x}")]
    PreludeCrc {
        /// The CRC carried in the frame.
        stated: u32,
        /// The CRC of the bytes received.
        computed: u32,
    },
    /// The message CRC does not match the frame's bytes.
    #[error("message CRC mismatch: frame says {stated:#010x}, bytes give {computed:#010x}")]
    MessageCrc {
        /// The CRC carried in the frame.
        stated: u32,
        /// The CRC of the bytes received.
        computed: u32,
    },
    /// The prelude announces a frame over the decoder's limit; nothing was buffered for it.
    #[error("frame of {total_len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// The announced frame length.
        total_len: u32,
        /// The decoder's limit.
        max: usize,
    },
    /// The prelude's lengths contradict each other (frame shorter than 16 bytes, or headers
    /// longer than the frame).
    #[error("impossible frame lengths: total {total_len}, headers {headers_len}")]
    BadLength {
        /// The announced frame length.
        total_len: u32,
        /// The announced header-block length.
        headers_len: u32,
    },
    /// The header block does not parse.
    #[error("bad header at byte {offset} of the header block: {reason}")]
    BadHeader {
        /// Where the offending header starts within the header block.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame ({buffered} bytes of it received)")]
    Truncated {
        /// Bytes of the unfinished frame that had arrived.
        buffered: usize,
    },
}

/// Incremental decoder: feed chunks as they arrive, get complete messages out.
#[derive(Debug)]
pub struct Decoder {
    /// The frame being reassembled, prelude included.
    buf: Vec<u8>,
    /// How many bytes `buf` must hold before the next step: the prelude, then the frame.
    need: usize,
    max_frame: usize,
    failed: Option<DecodeError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder with the default 16 MiB frame limit.
    pub fn new() -> Self {
        Decoder::with_max_frame_size(DEFAULT_MAX_FRAME_SIZE)
    }

    /// A decoder that rejects frames longer than `max` bytes (prelude and CRCs included).
    pub fn with_max_frame_size(max: usize) -> Self {
        Decoder {
            buf: Vec::new(),
            need: PRELUDE_LEN,
            max_frame: max,
            failed: None,
        }
    }

    /// Feeds a chunk, pushing every message it completes into `out`. Messages completed
    /// before an error in the same chunk are still pushed.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<Message>) -> Result<(), DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        while !chunk.is_empty() {
            // Copy only what the current step needs, so the buffer never holds more than
            // one frame whatever the chunk size.
            let take = (self.need - self.buf.len()).min(chunk.len());
            self.buf.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.buf.len() < self.need {
                break;
            }
            let step = if self.need == PRELUDE_LEN {
                self.prelude()
            } else {
                self.frame().map(|m| out.push(m))
            };
            if let Err(e) = step {
                self.buf = Vec::new();
                self.failed = Some(e.clone());
                return Err(e);
            }
        }
        Ok(())
    }

    /// Ends the stream: an error if it stopped inside a frame or had failed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match &self.failed {
            Some(e) => Err(e.clone()),
            None if !self.buf.is_empty() => Err(DecodeError::Truncated {
                buffered: self.buf.len(),
            }),
            None => Ok(()),
        }
    }

    /// Bytes of an unfinished frame currently held.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn prelude(&mut self) -> Result<(), DecodeError> {
        let total_len = be_u32(&self.buf[0..4]);
        let headers_len = be_u32(&self.buf[4..8]);
        let stated = be_u32(&self.buf[8..12]);
        let computed = crc32fast::hash(&self.buf[0..8]);
        // The CRC first: a corrupted length must be reported as corruption, not acted on.
        if stated != computed {
            return Err(DecodeError::PreludeCrc { stated, computed });
        }
        let total = total_len as usize;
        if total < MIN_FRAME_LEN || headers_len as usize > total - MIN_FRAME_LEN {
            return Err(DecodeError::BadLength { total_len, headers_len });
        }
        if total > self.max_frame {
            return Err(DecodeError::TooLarge {
                total_len,
                max: self.max_frame,
            });
        }
        self.buf.reserve(total.min(INITIAL_RESERVE) - PRELUDE_LEN);
        self.need = total;
        Ok(())
    }

    fn frame(&mut self) -> Result<Message, DecodeError> {
        let total = self.buf.len();
        let stated = be_u32(&self.buf[total - CRC_LEN..]);
        let computed = crc32fast::hash(&self.buf[..total - CRC_LEN]);
        if stated != computed {
            return Err(DecodeError::MessageCrc { stated, computed });
        }
        let headers_end = PRELUDE_LEN + be_u32(&self.buf[4..8]) as usize;
        let headers = parse_headers(&self.buf[PRELUDE_LEN..headers_end])?;
        let payload = self.buf[headers_end..total - CRC_LEN].to_vec();
        self.buf.clear();
        self.need = PRELUDE_LEN;
        Ok(Message { headers, payload })
    }
}

/// Decodes a complete byte stream; an error if anything is left over.
pub fn decode_all(bytes: &[u8]) -> Result<Vec<Message>, DecodeError> {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    decoder.feed(bytes, &mut out)?;
    decoder.finish()?;
    Ok(out)
}

/// Callers pass exactly four bytes.
fn be_u32(b: &[u8]) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&b[..4]);
    u32::from_be_bytes(word)
}

/// Reads the header block; every read is bounds-checked because its contents are untrusted
/// even when the CRC matches.
fn parse_headers(block: &[u8]) -> Result<Vec<(String, HeaderValue)>, DecodeError> {
    let mut r = Reader { data: block, pos: 0 };
    let mut headers = Vec::new();
    while r.pos < block.len() {
        let offset = r.pos;
        let bad = |reason| DecodeError::BadHeader { offset, reason };
        let name_len = r.u8().ok_or(bad("missing name length"))?;
        let name = r.take(name_len.into()).ok_or(bad("name runs past the header block"))?;
        let name = std::str::from_utf8(name).map_err(|_| bad("name is not UTF-8"))?;
        let kind = r.u8().ok_or(bad("missing value type"))?;
        let short = || bad("value runs past the header block");
        let value = match kind {
            TYPE_TRUE => HeaderValue::Bool(true),
            TYPE_FALSE => HeaderValue::Bool(false),
            TYPE_BYTE => HeaderValue::Byte(i8::from_be_bytes(r.array().ok_or_else(short)?)),
            TYPE_INT16 => HeaderValue::Int16(i16::from_be_bytes(r.array().ok_or_else(short)?)),
            TYPE_INT32 => HeaderValue::Int32(i32::from_be_bytes(r.array().ok_or_else(short)?)),
            TYPE_INT64 => HeaderValue::Int64(i64::from_be_bytes(r.array().ok_or_else(short)?)),
            TYPE_BYTES | TYPE_STRING => {
                let len = u16::from_be_bytes(r.array().ok_or_else(short)?);
                let bytes = r.take(len.into()).ok_or_else(short)?;
                if kind == TYPE_BYTES {
                    HeaderValue::Bytes(bytes.to_vec())
                } else {
                    let s = std::str::from_utf8(bytes).map_err(|_| bad("string value is not UTF-8"))?;
                    HeaderValue::String(s.to_owned())
                }
            }
            TYPE_TIMESTAMP => HeaderValue::Timestamp(i64::from_be_bytes(r.array().ok_or_else(short)?)),
            TYPE_UUID => HeaderValue::Uuid(r.array().ok_or_else(short)?),
            _ => return Err(bad("unknown value type")),
        };
        headers.push((name.to_owned(), value));
    }
    Ok(headers)
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
}

#[cfg(test)]
mod tests;
