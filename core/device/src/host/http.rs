//! HTTP(S) over ureq (blocking, rustls), behind `embedded_svc::http::client::Connection` — the
//! shape of esp-idf-svc's `EspHttpConnection`. Only GET without a body is needed by the agent.

use std::io::Read as _;

use embedded_svc::http::client::Connection;
use embedded_svc::http::{Headers, Method, Status};
use embedded_svc::io::{ErrorKind, ErrorType, Read, Write};

/// An HTTP operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// No progress within the read or connect timeout.
    #[error("timed out: {0}")]
    TimedOut(String),
    /// The transport failed (connect, TLS, connection cut).
    #[error("transport: {0}")]
    Transport(String),
    /// The call is not valid in the connection's current phase, or not supported.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

impl embedded_svc::io::Error for HttpError {
    fn kind(&self) -> ErrorKind {
        match self {
            HttpError::TimedOut(_) => ErrorKind::TimedOut,
            HttpError::Transport(_) => ErrorKind::Other,
            HttpError::Unsupported(_) => ErrorKind::Unsupported,
        }
    }
}

impl From<ureq::Error> for HttpError {
    fn from(e: ureq::Error) -> Self {
        match e {
            ureq::Error::Timeout(t) => HttpError::TimedOut(t.to_string()),
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                HttpError::TimedOut(io.to_string())
            }
            other => HttpError::Transport(other.to_string()),
        }
    }
}

/// Status and headers of a response.
#[derive(Debug, Default)]
pub struct ResponseHead {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Status for ResponseHead {
    fn status(&self) -> u16 {
        self.status
    }

    fn status_message(&self) -> Option<&'_ str> {
        None
    }
}

impl Headers for ResponseHead {
    fn header(&self, name: &str) -> Option<&'_ str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The body of a response.
#[derive(Default)]
pub struct ResponseBody {
    reader: Option<ureq::BodyReader<'static>>,
}

impl ErrorType for ResponseBody {
    type Error = HttpError;
}

impl Read for ResponseBody {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, HttpError> {
        match &mut self.reader {
            Some(reader) => reader
                .read(buf)
                .map_err(|e| HttpError::from(ureq::Error::from(e))),
            None => Err(HttpError::Unsupported("no response")),
        }
    }
}

/// No raw access to the socket on the host.
#[derive(Debug)]
pub struct NoRawConnection;

impl ErrorType for NoRawConnection {
    type Error = HttpError;
}

impl Read for NoRawConnection {
    fn read(&mut self, _: &mut [u8]) -> Result<usize, HttpError> {
        Err(HttpError::Unsupported("raw connection"))
    }
}

impl Write for NoRawConnection {
    fn write(&mut self, _: &[u8]) -> Result<usize, HttpError> {
        Err(HttpError::Unsupported("raw connection"))
    }

    fn flush(&mut self) -> Result<(), HttpError> {
        Err(HttpError::Unsupported("raw connection"))
    }
}

enum Phase {
    Initial,
    Request {
        method: Method,
        uri: String,
        headers: Vec<(String, String)>,
    },
    Response,
}

/// One HTTP exchange over a shared ureq agent (its timeouts and TLS roots).
pub struct HostHttpConnection {
    agent: ureq::Agent,
    phase: Phase,
    head: ResponseHead,
    body: ResponseBody,
    raw: NoRawConnection,
}

impl HostHttpConnection {
    /// A connection in its initial phase.
    pub fn new(agent: ureq::Agent) -> Self {
        HostHttpConnection {
            agent,
            phase: Phase::Initial,
            head: ResponseHead::default(),
            body: ResponseBody::default(),
            raw: NoRawConnection,
        }
    }
}

impl Status for HostHttpConnection {
    fn status(&self) -> u16 {
        self.head.status
    }

    fn status_message(&self) -> Option<&'_ str> {
        None
    }
}

impl Headers for HostHttpConnection {
    fn header(&self, name: &str) -> Option<&'_ str> {
        self.head.header(name)
    }
}

impl ErrorType for HostHttpConnection {
    type Error = HttpError;
}

impl Read for HostHttpConnection {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, HttpError> {
        self.body.read(buf)
    }
}

impl Write for HostHttpConnection {
    fn write(&mut self, _: &[u8]) -> Result<usize, HttpError> {
        Err(HttpError::Unsupported("request bodies"))
    }

    fn flush(&mut self) -> Result<(), HttpError> {
        Ok(())
    }
}

impl Connection for HostHttpConnection {
    type Headers = ResponseHead;
    type Read = ResponseBody;
    type RawConnectionError = HttpError;
    type RawConnection = NoRawConnection;

    fn initiate_request<'a>(
        &'a mut self,
        method: Method,
        uri: &'a str,
        headers: &'a [(&'a str, &'a str)],
    ) -> Result<(), HttpError> {
        self.phase = Phase::Request {
            method,
            uri: uri.to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        self.head = ResponseHead::default();
        self.body = ResponseBody::default();
        Ok(())
    }

    fn is_request_initiated(&self) -> bool {
        matches!(self.phase, Phase::Request { .. })
    }

    fn initiate_response(&mut self) -> Result<(), HttpError> {
        let Phase::Request {
            method,
            uri,
            headers,
        } = std::mem::replace(&mut self.phase, Phase::Initial)
        else {
            return Err(HttpError::Unsupported("no request initiated"));
        };
        if method != Method::Get {
            return Err(HttpError::Unsupported("methods other than GET"));
        }
        let mut request = self.agent.get(&uri);
        for (k, v) in &headers {
            request = request.header(k.as_str(), v.as_str());
        }
        let response = request.call()?;
        let (parts, body) = response.into_parts();
        self.head = ResponseHead {
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect(),
        };
        self.body = ResponseBody {
            reader: Some(body.into_reader()),
        };
        self.phase = Phase::Response;
        Ok(())
    }

    fn is_response_initiated(&self) -> bool {
        matches!(self.phase, Phase::Response)
    }

    fn split(&mut self) -> (&ResponseHead, &mut ResponseBody) {
        (&self.head, &mut self.body)
    }

    fn raw_connection(&mut self) -> Result<&mut NoRawConnection, HttpError> {
        Ok(&mut self.raw)
    }
}
