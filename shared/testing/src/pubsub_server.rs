//! A loopback gRPC server implementing `google.pubsub.v1.Publisher/Publish`
//! with the published Pub/Sub protos (googleapis-tonic-google-pubsub-v1):
//! what the real client sends arrives here, is kept for the test to look at,
//! and is answered with message ids, an error, or silence.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use googleapis_tonic_google_pubsub_v1::google::pubsub::v1::{
    PublishRequest, PublishResponse, PubsubMessage,
};
use tonic::codegen::{BoxFuture, Context, Poll, Service, http};

/// One message as it arrived, with the topic it was published to.
#[derive(Clone, Debug)]
pub struct Received {
    pub topic: String,
    pub message: PubsubMessage,
    /// The `authorization` metadata of its request, if any.
    pub authorization: Option<String>,
}

#[derive(Default)]
struct State {
    received: Mutex<Vec<Received>>,
    calls: AtomicU32,
    /// This many calls are answered UNAVAILABLE before the others succeed.
    failures_left: AtomicU32,
    /// Calls are never answered while set.
    hanging: AtomicBool,
    next_id: AtomicU32,
}

pub struct PubsubServer {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl PubsubServer {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(State::default());
        let service = PublisherService {
            state: Arc::clone(&state),
        };
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await;
        });
        Self { addr, state, task }
    }

    /// `http://127.0.0.1:PORT`, for `PUBSUB_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Publish calls answered so far (failed ones included).
    pub fn calls(&self) -> u32 {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// The next `n` calls fail with UNAVAILABLE.
    pub fn fail_next(&self, n: u32) {
        self.state.failures_left.store(n, Ordering::SeqCst);
    }

    /// Stops answering (or starts again).
    pub fn hang(&self, hanging: bool) {
        self.state.hanging.store(hanging, Ordering::SeqCst);
    }
}

impl Drop for PubsubServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct PublisherService {
    state: Arc<State>,
}

impl tonic::server::NamedService for PublisherService {
    const NAME: &'static str = "google.pubsub.v1.Publisher";
}

impl Service<http::Request<tonic::body::Body>> for PublisherService {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let state = Arc::clone(&self.state);
        match request.uri().path() {
            "/google.pubsub.v1.Publisher/Publish" => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                Ok(grpc.unary(Publish(state), request).await)
            }),
            other => {
                let status = tonic::Status::unimplemented(format!("{other} is not served here"));
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}

struct Publish(Arc<State>);

impl tonic::server::UnaryService<PublishRequest> for Publish {
    type Response = PublishResponse;
    type Future = BoxFuture<tonic::Response<PublishResponse>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<PublishRequest>) -> Self::Future {
        let state = Arc::clone(&self.0);
        Box::pin(async move {
            state.calls.fetch_add(1, Ordering::SeqCst);
            while state.hanging.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let failing = state
                .failures_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if failing {
                return Err(tonic::Status::unavailable("the test made this call fail"));
            }
            let authorization = request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let PublishRequest { topic, messages } = request.into_inner();
            let mut ids = Vec::new();
            let mut received = state.received.lock().unwrap();
            for message in messages {
                ids.push(state.next_id.fetch_add(1, Ordering::SeqCst).to_string());
                received.push(Received {
                    topic: topic.clone(),
                    message,
                    authorization: authorization.clone(),
                });
            }
            Ok(tonic::Response::new(PublishResponse { message_ids: ids }))
        })
    }
}
