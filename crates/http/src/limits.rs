//! How long a client may take over a request, and how many may be connected at once.

use std::time::Duration;

/// What the integrations' serving helpers (`resident_auth_axum::serve`,
/// `resident_auth_actix::limit_server` with `body_deadline`) enforce, so that slow clients
/// cannot hold connections open ("slowloris"): a connection that sends nothing, trickles
/// its headers or its body, or sits idle, is closed; and the process never holds more
/// connections than it can serve.
///
/// | limit | default | what happens |
/// |---|---|---|
/// | head timeout | 10 s | from the moment a connection can take a request (accepted, or idle after an answer) until the request's whole head (line and headers) has arrived; else the connection is closed. It is the idle timeout too. |
/// | body timeout | 10 s | from the end of the head until the whole body has arrived; else 408 (the API's problem JSON) and the connection is closed. |
/// | connections | 512 | the most open connections per process; further clients wait in the listen backlog until one closes. |
///
/// ```
/// use std::time::Duration;
/// use resident_auth_http::ConnectionLimits;
///
/// let limits = ConnectionLimits::default()
///     .with_head_timeout(Duration::from_secs(5))
///     .with_max_connections(2_000);
/// assert_eq!(limits.head_timeout(), Duration::from_secs(5));
/// assert_eq!(limits.body_timeout(), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    head_timeout: Duration,
    body_timeout: Duration,
    max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections: 512,
        }
    }
}

impl ConnectionLimits {
    /// With this head (and idle) timeout; at least a millisecond.
    #[must_use]
    pub fn with_head_timeout(mut self, timeout: Duration) -> Self {
        self.head_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// With this body timeout; at least a millisecond.
    #[must_use]
    pub fn with_body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// With at most this many open connections per process; at least one.
    #[must_use]
    pub fn with_max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// The longest wait for a request's head, counted from the moment the connection can
    /// take a request (so also the longest idle time between requests).
    #[must_use]
    pub fn head_timeout(&self) -> Duration {
        self.head_timeout
    }

    /// The longest wait for a request's body after its head.
    #[must_use]
    pub fn body_timeout(&self) -> Duration {
        self.body_timeout
    }

    /// The most open connections per process.
    #[must_use]
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }
}
