//! Serving an actix-web application with [`ConnectionLimits`]: the server's own timeouts
//! and connection cap ([`limit_server`]) and a body deadline for every route
//! ([`body_deadline`]), so that slow clients cannot hold the server.

use std::{future::Future as _, task::Poll, time::Duration};

use actix_http::{body::MessageBody, BoxedPayloadStream, Request, Response};
use actix_service::IntoServiceFactory;
use actix_web::{
    dev::{AppConfig, Payload, Service, ServiceFactory, ServiceRequest, ServiceResponse},
    error::PayloadError,
    middleware::Next,
    HttpMessage as _, HttpServer,
};
use futures_util::StreamExt as _;
use resident_auth_http::ConnectionLimits;

/// `server` within `limits`, with `workers` worker threads:
///
/// - the first request's head must arrive within [`ConnectionLimits::head_timeout`] of
///   the connection's start (`client_request_timeout`), and a kept-alive connection idle for
///   as long is closed (`keep_alive`);
/// - at most [`ConnectionLimits::max_connections`] connections are open in the process
///   (divided among the workers: actix counts per worker); further clients wait in the
///   listen backlog.
///
/// Bodies are bounded by [`body_deadline`], wrapped around the app (the API's own routes
/// stop reading a body at the deadline whatever wraps them).
///
/// ```no_run
/// use actix_web::{middleware::from_fn, App, HttpServer};
/// use resident_auth_actix::{body_deadline, limit_server, ResidentAuth};
///
/// # async fn run(auth: ResidentAuth) -> std::io::Result<()> {
/// let limits = auth.api().connection_limits();
/// let app = move || {
///     App::new()
///         .wrap(from_fn(body_deadline))
///         .configure(auth.configure("/api"))
/// };
/// limit_server(HttpServer::new(app), &limits, 2)
///     .bind("127.0.0.1:3000")?
///     .run()
///     .await
/// # }
/// ```
pub fn limit_server<F, I, S, B>(
    server: HttpServer<F, I, S, B>,
    limits: &ConnectionLimits,
    workers: usize,
) -> HttpServer<F, I, S, B>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let workers = workers.max(1);
    server
        .workers(workers)
        .client_request_timeout(limits.head_timeout())
        .keep_alive(limits.head_timeout())
        .client_disconnect_timeout(Duration::from_secs(1))
        .max_connections(limits.max_connections().div_ceil(workers))
}

/// Whether reading a body failed because its deadline passed ([`body_deadline`]).
pub(crate) fn timed_out(error: &actix_web::Error) -> bool {
    matches!(error.as_error::<PayloadError>(),
        Some(PayloadError::Io(io)) if io.kind() == std::io::ErrorKind::TimedOut)
}

/// The body timeout of the surfaces mounted in an app, in its app data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyTimeout(pub(crate) Duration);

/// Middleware, `App::wrap(from_fn(body_deadline))`, that fails a request body still
/// arriving [`ConnectionLimits::body_timeout`] after the request reached the app (a total
/// deadline: a client trickling a byte at a time is cut off too) — the timeout of the
/// surfaces the app mounts, else the default. The handler's body extractor sees an I/O
/// error of kind `TimedOut`; the API's routes answer 408 with their problem JSON.
///
/// # Errors
/// Those of the wrapped app; the middleware adds none.
pub async fn body_deadline(
    mut request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let timeout = request.app_data::<BodyTimeout>().map_or_else(
        || ConnectionLimits::default().body_timeout(),
        |timeout| timeout.0,
    );
    let mut payload = request.take_payload();
    let mut deadline = Box::pin(actix_web::rt::time::sleep(timeout));
    let timed = futures_util::stream::poll_fn(move |cx| match payload.poll_next_unpin(cx) {
        Poll::Pending => deadline.as_mut().poll(cx).map(|()| {
            let late = "the request body did not arrive within the body timeout";
            Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                late,
            ))))
        }),
        ready => ready,
    });
    let timed: BoxedPayloadStream = Box::pin(timed);
    request.set_payload(Payload::from(timed));
    next.call(request).await
}
