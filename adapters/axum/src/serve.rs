//! Serving an axum application with [`ConnectionLimits`]: what `axum::serve` does, plus
//! the timeouts and the connection cap that keep slow clients from holding the server.

use std::{convert::Infallible, future::Future as _, sync::Arc, task::Poll, time::Duration};

use axum::{body::Body, extract::ConnectInfo, http::Request, Router};
use futures_util::StreamExt as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use resident_auth_http::ConnectionLimits;
use tokio::{net::TcpListener, sync::Semaphore};
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
/// use resident_auth_axum::{http::ConnectionLimits, serve, ResidentAuth};
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
                    let mut request = request.map(|body| with_deadline(body, body_timeout));
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

/// Whether reading a body failed because its deadline passed ([`with_deadline`]).
pub(crate) fn timed_out(error: &axum::Error) -> bool {
    let first: &(dyn std::error::Error + 'static) = error;
    std::iter::successors(Some(first), |error| error.source()).any(|error| {
        error
            .downcast_ref::<std::io::Error>()
            .is_some_and(|error| error.kind() == std::io::ErrorKind::TimedOut)
    })
}

/// `body`, failing with an I/O error of kind `TimedOut` once `timeout` has passed (a total
/// deadline, not an idle one: a client trickling a byte at a time is cut off too).
fn with_deadline(body: hyper::body::Incoming, timeout: Duration) -> Body {
    let mut data = Body::new(body).into_data_stream();
    let mut deadline = Box::pin(tokio::time::sleep(timeout));
    Body::from_stream(futures_util::stream::poll_fn(move |cx| {
        match data.poll_next_unpin(cx) {
            Poll::Pending => deadline.as_mut().poll(cx).map(|()| {
                let late = "the request body did not arrive within the body timeout";
                Some(Err(
                    std::io::Error::new(std::io::ErrorKind::TimedOut, late).into()
                ))
            }),
            ready => ready.map(|chunk| chunk.map(|chunk| chunk.map_err(axum::BoxError::from))),
        }
    }))
}
