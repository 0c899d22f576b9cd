//! Serving an actix-web application with [`ConnectionLimits`]: the server's own timeouts
//! and connection cap ([`limit_server`]) and a body deadline for every route
//! ([`BodyDeadline`]), so that slow clients cannot hold the server.

use std::{
    future::{ready, Future as _, Ready},
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use actix_http::{body::MessageBody, Request, Response};
use actix_service::IntoServiceFactory;
use actix_web::{
    dev::{
        forward_ready, AppConfig, Payload, Service, ServiceFactory, ServiceRequest,
        ServiceResponse, Transform,
    },
    error::PayloadError,
    web::Bytes,
    HttpServer,
};
use futures_util::Stream;
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
/// Bodies are bounded by [`BodyDeadline`], wrapped around the app (the API's own routes
/// stop reading a body at the deadline whatever wraps them).
///
/// ```no_run
/// use actix_web::{App, HttpServer};
/// use resident_auth_actix::{limit_server, BodyDeadline, ResidentAuth};
///
/// # async fn run(auth: ResidentAuth) -> std::io::Result<()> {
/// let limits = auth.api().connection_limits();
/// let app = move || {
///     App::new()
///         .wrap(BodyDeadline::new(&limits))
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

/// Middleware that fails a request body still arriving [`ConnectionLimits::body_timeout`]
/// after the request reached the app (a total deadline: a client trickling a byte at a
/// time is cut off too). The handler's body extractor sees an I/O error of kind
/// `TimedOut`; the API's routes answer 408 with their problem JSON.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline {
    timeout: Duration,
}

impl BodyDeadline {
    /// The deadline of `limits`.
    #[must_use]
    pub fn new(limits: &ConnectionLimits) -> Self {
        Self {
            timeout: limits.body_timeout(),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for BodyDeadline
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = BodyDeadlineService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(BodyDeadlineService {
            service,
            timeout: self.timeout,
        }))
    }
}

/// The service [`BodyDeadline`] wraps around the app's.
#[derive(Debug)]
pub struct BodyDeadlineService<S> {
    service: S,
    timeout: Duration,
}

impl<S, B> Service<ServiceRequest> for BodyDeadlineService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = S::Future;

    forward_ready!(service);

    fn call(&self, mut request: ServiceRequest) -> Self::Future {
        let (_, payload) = request.parts_mut();
        let inner = std::mem::replace(payload, Payload::None);
        let timed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
            Box::pin(DeadlineStream {
                inner,
                deadline: Box::pin(actix_web::rt::time::sleep(self.timeout)),
            });
        request.set_payload(Payload::from(timed));
        self.service.call(request)
    }
}

/// A payload that fails with an I/O error of kind `TimedOut` once its deadline has passed.
struct DeadlineStream {
    inner: Payload,
    deadline: Pin<Box<actix_web::rt::time::Sleep>>,
}

impl Stream for DeadlineStream {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Poll::Ready(chunk) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(chunk);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body did not arrive within the body timeout",
            ))))),
            Poll::Pending => Poll::Pending,
        }
    }
}
