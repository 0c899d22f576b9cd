//! Serving an axum application with [`ConnectionLimits`]: what `axum::serve` does, plus
//! the timeouts and the connection cap that keep slow clients from holding the server.

use std::{
    convert::Infallible,
    future::Future as _,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes, HttpBody},
    extract::ConnectInfo,
    http::Request,
    Router,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use resident_auth_http::ConnectionLimits;
use tokio::{net::TcpListener, sync::Semaphore, time::Sleep};
use tower::Service as _;

/// Serves `app` on `listener` until the listener fails, HTTP/1.1, within `limits`:
///
/// - a connection that has not sent a whole request head within
///   [`ConnectionLimits::head_timeout`] of being accepted, or of its previous answer, is
///   closed (hyper's header read timeout: slow or silent clients, idle keep-alive);
/// - a body not all arrived within [`ConnectionLimits::body_timeout`] of its head fails to
///   read (the API answers 408 with its problem JSON; hyper closes the connection);
/// - at most [`ConnectionLimits::max_connections`] connections are open; further clients
///   wait in the listen backlog.
///
/// Handlers see the client's address as `ConnectInfo<SocketAddr>`, as with
/// `into_make_service_with_connect_info::<SocketAddr>()`.
///
/// ```no_run
/// use axum::Router;
/// use resident_auth_axum::{serve, ConnectionLimits, ResidentAuth};
///
/// # async fn run(auth: ResidentAuth) -> std::io::Result<()> {
/// let app = Router::new().merge(auth.router("/api")).with_state(auth.clone());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// serve(listener, app, auth.api().connection_limits()).await
/// # }
/// ```
///
/// # Errors
/// Only when the listener itself fails; a failed accept (too many open files, a client
/// gone) is logged and the loop goes on.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections()));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return Ok(());
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, or a connection reset before it was accepted:
                // wait a little rather than spin.
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = app.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let body_timeout = limits.body_timeout();
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let mut app = app.clone();
                    let mut request =
                        request.map(|body| Body::new(DeadlineBody::new(body, body_timeout)));
                    request.extensions_mut().insert(ConnectInfo(peer));
                    async move {
                        Ok::<_, Infallible>(
                            app.call(request)
                                .await
                                .unwrap_or_else(|never| match never {}),
                        )
                    }
                });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.head_timeout())
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
            if let Err(error) = served {
                tracing::debug!(%error, %peer, "connection closed");
            }
        });
    }
}

/// The request body failed because its deadline passed.
#[derive(Debug)]
struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive within the body timeout")
    }
}

impl std::error::Error for BodyTimedOut {}

/// Whether reading a body failed because its deadline passed.
pub(crate) fn timed_out(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if error.is::<BodyTimedOut>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// A body that fails with [`BodyTimedOut`] once its deadline has passed (a total deadline,
/// not an idle one: a client trickling a byte at a time is cut off too).
struct DeadlineBody {
    inner: hyper::body::Incoming,
    deadline: Pin<Box<Sleep>>,
}

impl DeadlineBody {
    fn new(inner: hyper::body::Incoming, timeout: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
