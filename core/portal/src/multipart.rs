//! A streaming `multipart/form-data` reader: fields are read chunk by chunk from the request
//! body, so an upload never sits in memory whole (at most one network chunk plus the length of
//! the boundary is buffered).

use axum::body::Bytes;
use futures::{Stream, StreamExt};

/// Largest part header block accepted.
const MAX_HEADERS: usize = 8 * 1024;

/// Why a multipart body could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MultipartError {
    /// The body is not well-formed multipart.
    #[error("malformed multipart body: {0}")]
    Malformed(&'static str),
    /// A text field is longer than allowed.
    #[error("form field {0:?} is too long")]
    FieldTooLong(String),
    /// Reading the request body failed (the client went away, or the connection broke).
    #[error("reading the upload: {0}")]
    Body(String),
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    let kind = parts.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        let v = v.trim().trim_matches('"');
        (k.trim().eq_ignore_ascii_case("boundary") && !v.is_empty() && v.len() <= 70)
            .then(|| v.to_string())
    })
}

/// One part's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldHeader {
    /// The form field name.
    pub name: String,
    /// The file name the browser sent, for file fields.
    pub file_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first delimiter.
    Preamble,
    /// Just after a delimiter.
    AfterDelimiter,
    /// Inside a part's data.
    InField,
    /// After the closing delimiter.
    Done,
}

/// Reads a multipart body field by field.
pub struct Multipart<S> {
    stream: S,
    buf: Vec<u8>,
    /// `\r\n--BOUNDARY`.
    delimiter: Vec<u8>,
    state: State,
}

impl<S, E> Multipart<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    /// A reader of `stream` with `boundary`.
    pub fn new(stream: S, boundary: &str) -> Self {
        Multipart {
            stream,
            // The first delimiter may open the body, without the CRLF before it.
            buf: b"\r\n".to_vec(),
            delimiter: format!("\r\n--{boundary}").into_bytes(),
            state: State::Preamble,
        }
    }

    /// Reads more of the body; `false` at its end.
    async fn fill(&mut self) -> Result<bool, MultipartError> {
        match self.stream.next().await {
            Some(Ok(bytes)) => {
                self.buf.extend_from_slice(&bytes);
                Ok(true)
            }
            Some(Err(e)) => Err(MultipartError::Body(e.to_string())),
            None => Ok(false),
        }
    }

    fn find_delimiter(&self) -> Option<usize> {
        memchr::memmem::find(&self.buf, &self.delimiter)
    }

    /// The next field's headers; `None` after the last field. The rest of the current field is
    /// skipped.
    pub async fn next_field(&mut self) -> Result<Option<FieldHeader>, MultipartError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::InField => while self.chunk().await?.is_some() {},
                State::Preamble => match self.find_delimiter() {
                    Some(pos) => {
                        self.buf.drain(..pos + self.delimiter.len());
                        self.state = State::AfterDelimiter;
                    }
                    None => {
                        let keep = self.delimiter.len();
                        if self.buf.len() > keep {
                            self.buf.drain(..self.buf.len() - keep);
                        }
                        if !self.fill().await? {
                            return Err(MultipartError::Malformed("no boundary"));
                        }
                    }
                },
                State::AfterDelimiter => {
                    while self.buf.len() < 2 {
                        if !self.fill().await? {
                            return Err(MultipartError::Malformed("truncated"));
                        }
                    }
                    if self.buf.starts_with(b"--") {
                        self.state = State::Done;
                        return Ok(None);
                    }
                    if !self.buf.starts_with(b"\r\n") {
                        return Err(MultipartError::Malformed("bad delimiter"));
                    }
                    let end = loop {
                        if let Some(end) = memchr::memmem::find(&self.buf, b"\r\n\r\n") {
                            break end;
                        }
                        if self.buf.len() > MAX_HEADERS {
                            return Err(MultipartError::Malformed("part headers too long"));
                        }
                        if !self.fill().await? {
                            return Err(MultipartError::Malformed("truncated headers"));
                        }
                    };
                    let headers = String::from_utf8_lossy(&self.buf[2..end]).into_owned();
                    self.buf.drain(..end + 4);
                    self.state = State::InField;
                    return parse_headers(&headers).map(Some);
                }
            }
        }
    }

    /// The next chunk of the current field's data; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>, MultipartError> {
        if self.state != State::InField {
            return Ok(None);
        }
        loop {
            match self.find_delimiter() {
                Some(0) => {
                    self.buf.drain(..self.delimiter.len());
                    self.state = State::AfterDelimiter;
                    return Ok(None);
                }
                Some(pos) => return Ok(Some(self.take(pos))),
                None => {
                    // A delimiter may begin in the last len-1 bytes: keep those.
                    let safe = self
                        .buf
                        .len()
                        .saturating_sub(self.delimiter.len().saturating_sub(1));
                    if safe > 0 {
                        return Ok(Some(self.take(safe)));
                    }
                    if !self.fill().await? {
                        return Err(MultipartError::Malformed("truncated field"));
                    }
                }
            }
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let rest = self.buf.split_off(n);
        std::mem::replace(&mut self.buf, rest)
    }

    /// The rest of the current field as text, at most `limit` bytes.
    pub async fn text(&mut self, name: &str, limit: usize) -> Result<String, MultipartError> {
        let mut out = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            if out.len() + chunk.len() > limit {
                return Err(MultipartError::FieldTooLong(name.to_string()));
            }
            out.extend_from_slice(&chunk);
        }
        String::from_utf8(out).map_err(|_| MultipartError::Malformed("field is not UTF-8"))
    }
}

fn parse_headers(headers: &str) -> Result<FieldHeader, MultipartError> {
    let disposition = headers
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-disposition"))
        .map(|(_, v)| v)
        .ok_or(MultipartError::Malformed(
            "part without Content-Disposition",
        ))?;
    let mut name = None;
    let mut file_name = None;
    for param in disposition.split(';').skip(1) {
        if let Some((k, v)) = param.trim().split_once('=') {
            let v = v.trim().trim_matches('"').to_string();
            match k.trim().to_ascii_lowercase().as_str() {
                "name" => name = Some(v),
                "filename" => file_name = Some(v),
                _ => {}
            }
        }
    }
    Ok(FieldHeader {
        name: name.ok_or(MultipartError::Malformed("part without a name"))?,
        file_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(chunk: usize) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Unpin {
        let text = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"fw.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n--Xy\r\n-data\r\n--XyZ--\r\n".to_vec();
        let chunks: Vec<Result<Bytes, std::convert::Infallible>> = text
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures::stream::iter(chunks)
    }

    #[tokio::test]
    async fn fields_are_read_whatever_the_chunking() {
        for size in [1, 2, 3, 7, 16, 1000] {
            let mut m = Multipart::new(body(size), "XyZ");
            let f = m.next_field().await.expect("field").expect("some");
            assert_eq!(f.name, "csrf");
            assert_eq!(m.text("csrf", 10).await.expect("text"), "abc");
            let f = m.next_field().await.expect("field").expect("some");
            assert_eq!(f.file_name.as_deref(), Some("fw.bin"));
            let mut data = Vec::new();
            while let Some(c) = m.chunk().await.expect("chunk") {
                data.extend(c);
            }
            assert_eq!(data, b"\r\n--Xy\r\n-data");
            assert!(m.next_field().await.expect("end").is_none());
        }
    }

    #[tokio::test]
    async fn truncated_bodies_fail() {
        let chunks: Vec<Result<Bytes, std::convert::Infallible>> = vec![Ok(Bytes::from_static(
            b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nhello",
        ))];
        let mut m = Multipart::new(futures::stream::iter(chunks), "b");
        assert!(m.next_field().await.expect("field").is_some());
        assert!(m.text("x", 100).await.is_err());
    }

    #[test]
    fn boundaries_are_parsed() {
        assert_eq!(
            boundary("multipart/form-data; boundary=----abc").as_deref(),
            Some("----abc")
        );
        assert_eq!(
            boundary("Multipart/Form-Data; charset=utf-8; boundary=\"q\"").as_deref(),
            Some("q")
        );
        assert_eq!(boundary("application/x-www-form-urlencoded"), None);
    }
}
