//! The Pub/Sub publisher: the official client (google-cloud-pubsub) talking
//! gRPC to a loopback server that implements `google.pubsub.v1.Publisher`
//! with the published protos. No emulator can be installed here; this is the
//! real client and the real wire protocol, and we look at what arrived.

use catdog_testing as support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use catdog::config::{Vars, parse};
use catdog::domain::{Digest, ImageId, ObjectName};
use catdog::pubsub::{
    GcpPublisher, GcpPublisherConfig, ImageMessage, PubSubSettings, PublishError, Publisher,
    SCHEMA_NAME,
};
use support::pubsub_server::PubsubServer;

/// The publisher of topic `images` in project `gallery-test`, as its
/// settings configure it, sending to `endpoint` and giving up on a publish
/// after `timeout`.
async fn publisher_to(endpoint: String, timeout: Duration) -> GcpPublisher {
    let vars = Vars::from_map([
        ("PUBSUB_TOPIC", "images"),
        ("PUBSUB_ENDPOINT", endpoint.as_str()),
    ]);
    let settings: PubSubSettings = parse(&vars).expect("settings");
    let config = GcpPublisherConfig {
        publish_timeout: timeout,
        ..settings.config(Some("gallery-test")).expect("settings")
    };
    GcpPublisher::connect(&config).await.unwrap()
}

/// Publishes one message, which must fail within 3 s (the publishers here
/// give up after 1 s), and returns why it failed.
async fn publish_failure(publisher: &GcpPublisher) -> PublishError {
    let started = Instant::now();
    let error = publisher.publish(&message()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    error
}

fn message() -> ImageMessage {
    let id = ImageId::new();
    ImageMessage::new(
        id,
        ObjectName::original(id),
        Digest::of(id.to_string().as_bytes()),
    )
}

#[tokio::test]
async fn a_message_arrives_with_its_data_and_schema() {
    let server = PubsubServer::start().await;
    let publisher = publisher_to(server.endpoint(), Duration::from_secs(5)).await;
    let sent = message();
    publisher.publish(&sent).await.unwrap();

    let received = server.received();
    assert_eq!(received.len(), 1);
    let arrived = &received[0];
    assert_eq!(arrived.topic, "projects/gallery-test/topics/images");
    assert_eq!(arrived.message.data, sent.to_json());
    assert_eq!(
        ImageMessage::from_json(&arrived.message.data).unwrap(),
        sent
    );
    assert_eq!(
        arrived.message.attributes,
        HashMap::from([("schema".to_owned(), SCHEMA_NAME.to_owned())])
    );
    // An endpoint of our own gets no Google credentials.
    assert_eq!(arrived.authorization, None);
}

#[tokio::test]
async fn concurrent_messages_each_arrive_once() {
    let server = PubsubServer::start().await;
    let publisher = Arc::new(publisher_to(server.endpoint(), Duration::from_secs(5)).await);
    let messages: Vec<ImageMessage> = (0..20).map(|_| message()).collect();
    let tasks: Vec<_> = messages
        .iter()
        .cloned()
        .map(|m| {
            let publisher = Arc::clone(&publisher);
            tokio::spawn(async move { publisher.publish(&m).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let arrived: Vec<ImageMessage> = server
        .received()
        .iter()
        .map(|r| ImageMessage::from_json(&r.message.data).unwrap())
        .collect();
    assert_eq!(arrived.len(), 20);
    let arrived_ids: HashSet<_> = arrived.iter().map(|m| m.image_id).collect();
    let sent_ids: HashSet<_> = messages.iter().map(|m| m.image_id).collect();
    assert_eq!(arrived_ids, sent_ids);
}

#[tokio::test]
async fn a_passing_outage_is_retried_by_the_client() {
    let server = PubsubServer::start().await;
    let publisher = publisher_to(server.endpoint(), Duration::from_secs(5)).await;
    server.fail_next(2);
    publisher.publish(&message()).await.unwrap();
    assert_eq!(server.calls(), 3);
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn a_lasting_outage_fails_within_the_publish_timeout() {
    let server = PubsubServer::start().await;
    let publisher = publisher_to(server.endpoint(), Duration::from_secs(1)).await;
    server.fail_next(u32::MAX);
    let error = publish_failure(&publisher).await;
    assert!(
        error
            .to_string()
            .contains("projects/gallery-test/topics/images"),
        "{error}"
    );
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_server_that_never_answers_fails_within_the_publish_timeout() {
    let server = PubsubServer::start().await;
    let publisher = publisher_to(server.endpoint(), Duration::from_secs(1)).await;
    server.hang(true);
    publish_failure(&publisher).await;
}

#[tokio::test]
async fn nothing_listening_fails_within_the_publish_timeout() {
    let port = support::service_process::free_port();
    let publisher = publisher_to(format!("http://127.0.0.1:{port}"), Duration::from_secs(1)).await;
    publish_failure(&publisher).await;
}
