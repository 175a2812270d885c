//! A lane in front of the router for answers that are already made.
//!
//! The gallery's first pages are asked for far more than anything else and,
//! with the exact listing cache, are nearly always kept rendered in memory.
//! Through the router each such answer still pays for the whole tower
//! stack: cloning the boxed services, the request span, the timeout's
//! timer, CORS and the header layers, a boxed body. A profile of a cached
//! listing showed no single hot spot, just those layers, at about twice the
//! CPU per request of a bare hyper server (BENCHMARKS.md). So a service may
//! give the server a [`FastLane`]: asked first for every request, it either
//! answers at once, synchronously, from what it holds, or declines and the
//! request goes through the router as before.
//!
//! A lane answers only what it can answer exactly as the router would, the
//! same status, headers and body; `shared/tests/listing_fast_lane.rs` holds
//! the cached listings to that.

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, Response, Uri};
use axum::response::IntoResponse as _;
use futures::TryFutureExt as _;
use futures::future::{Either, MapOk, Ready, ready};
use http_body_util::Full;

use super::ApiError;

/// What a lane sees of a request: no body (a lane answers only requests
/// whose answer does not depend on one).
#[derive(Clone, Copy, Debug)]
pub struct LaneRequest<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
}

/// Answers some requests before routing. `None` sends the request on to the
/// router. It must not block or wait: it runs on the connection's task.
pub trait FastLane: Send + Sync + 'static {
    fn answer(&self, request: LaneRequest<'_>) -> Option<Response<Full<Bytes>>>;
}

/// What the server serves: the router, and a lane in front of it if the
/// service has one.
#[derive(Clone)]
pub struct App {
    pub router: Router,
    pub fast_lane: Option<Arc<dyn FastLane>>,
}

impl App {
    /// `router` with `lane` in front of it.
    pub fn with_fast_lane(router: Router, lane: Arc<dyn FastLane>) -> Self {
        Self {
            router,
            fast_lane: Some(lane),
        }
    }
}

impl From<Router> for App {
    fn from(router: Router) -> Self {
        Self {
            router,
            fast_lane: None,
        }
    }
}

/// An answer's body: made by the lane, or by the router.
pub(super) type AnswerBody = http_body_util::Either<Full<Bytes>, Body>;

type RouterAnswer = fn(Response<Body>) -> Response<AnswerBody>;

/// The hyper service of one connection: the lane first, then `routed`.
pub(super) struct LaneFirst<S> {
    pub lane: Option<Arc<dyn FastLane>>,
    pub routed: S,
    /// Called for each answer the lane gives (the connection's activity).
    pub on_lane_answer: Box<dyn Fn() + Send + Sync>,
}

impl<S> hyper::service::Service<Request<hyper::body::Incoming>> for LaneFirst<S>
where
    S: hyper::service::Service<
            Request<hyper::body::Incoming>,
            Response = Response<Body>,
            Error = Infallible,
        >,
{
    type Response = Response<AnswerBody>;
    type Error = Infallible;
    type Future =
        Either<Ready<Result<Response<AnswerBody>, Infallible>>, MapOk<S::Future, RouterAnswer>>;

    fn call(&self, request: Request<hyper::body::Incoming>) -> Self::Future {
        if let Some(lane) = &self.lane {
            let asked = LaneRequest {
                method: request.method(),
                uri: request.uri(),
                headers: request.headers(),
            };
            // A lane that panics gets the answer the router's panic layer
            // gives, not a dropped connection.
            match std::panic::catch_unwind(AssertUnwindSafe(|| lane.answer(asked))) {
                Ok(None) => {}
                Ok(Some(answer)) => {
                    (self.on_lane_answer)();
                    return Either::Left(ready(Ok(answer.map(http_body_util::Either::Left))));
                }
                Err(_) => {
                    let failed = ApiError::Internal("the server failed while answering".to_owned())
                        .into_response();
                    return Either::Left(ready(Ok(failed.map(http_body_util::Either::Right))));
                }
            }
        }
        let routed: RouterAnswer = |answer| answer.map(http_body_util::Either::Right);
        Either::Right(self.routed.call(request).map_ok(routed))
    }
}
