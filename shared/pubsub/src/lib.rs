//! Publishing to Google Cloud Pub/Sub with the official client.

use std::time::Duration;

use async_trait::async_trait;
use google_cloud_auth::credentials::anonymous;
use google_cloud_gax::retry_policy::RetryPolicyExt as _;
use google_cloud_pubsub::client::Publisher as PubsubClient;
use google_cloud_pubsub::model::Message;
use google_cloud_pubsub::retry_policy::RetryableErrors;

use catdog_core::config::ConfigError;
use catdog_core::pubsub::{ImageMessage, PublishError, Publisher, SCHEMA_ATTRIBUTE, SCHEMA_NAME};

/// Where messages go: `projects/{project}/topics/{topic}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcpPublisherConfig {
    pub project: String,
    pub topic: String,
    /// `None`: Google's endpoint with application default credentials.
    /// `Some(url)`: that endpoint without credentials (tests, emulators).
    pub endpoint: Option<String>,
    /// How long one publish may take, retries included, before it counts as
    /// failed (the picture is then republished by a later run's sweep).
    pub publish_timeout: Duration,
}

/// ingest-trigger's publisher settings, as declared; [`PubSubSettings::config`]
/// adds the project.
#[derive(Clone, Debug, clap::Args)]
pub struct PubSubSettings {
    /// topic id that ingest-trigger publishes one message per picture to
    #[arg(long, env = "PUBSUB_TOPIC")]
    pub pubsub_topic: String,
    /// Pub/Sub endpoint without credentials (tests: a loopback server)
    #[arg(long, env = "PUBSUB_ENDPOINT")]
    pub pubsub_endpoint: Option<String>,
}

impl PubSubSettings {
    /// Where to publish: `PUBSUB_TOPIC` in `project` (`GOOGLE_CLOUD_PROJECT`),
    /// which must then be set, or a full `projects/P/topics/T` name, which
    /// names the project too.
    pub fn config(&self, project: Option<&str>) -> Result<GcpPublisherConfig, ConfigError> {
        let (project, topic) = match parse_topic_path(&self.pubsub_topic) {
            Some((project, topic)) => (project, topic),
            None => (
                project
                    .ok_or(ConfigError::new("GOOGLE_CLOUD_PROJECT", "must be set"))?
                    .to_owned(),
                self.pubsub_topic.clone(),
            ),
        };
        if topic.is_empty() || topic.contains('/') {
            return Err(ConfigError::new(
                "PUBSUB_TOPIC",
                format!("{topic:?} is not a topic id or projects/P/topics/T"),
            ));
        }
        Ok(GcpPublisherConfig {
            project,
            topic,
            endpoint: self.pubsub_endpoint.clone(),
            publish_timeout: Duration::from_secs(10),
        })
    }
}

impl GcpPublisherConfig {
    pub fn topic_path(&self) -> String {
        format!("projects/{}/topics/{}", self.project, self.topic)
    }
}

fn parse_topic_path(raw: &str) -> Option<(String, String)> {
    let rest = raw.strip_prefix("projects/")?;
    let (project, topic) = rest.split_once("/topics/")?;
    (!project.is_empty()).then(|| (project.to_owned(), topic.to_owned()))
}

/// A [`Publisher`] onto a Pub/Sub topic. `Ok` means Pub/Sub answered with a
/// message id: the message is stored and will be pushed.
pub struct GcpPublisher {
    client: PubsubClient,
    topic: String,
    timeout: Duration,
}

impl GcpPublisher {
    pub async fn connect(config: &GcpPublisherConfig) -> Result<Self, PublishError> {
        let topic = config.topic_path();
        let builder = PubsubClient::builder(topic.clone())
            .with_retry_policy(RetryableErrors.with_time_limit(config.publish_timeout))
            // Our messages go out one at a time, each awaited: do not wait
            // for a batch to fill.
            .set_delay_threshold(Duration::from_millis(1));
        let builder = match &config.endpoint {
            Some(endpoint) => builder
                .with_endpoint(endpoint.clone())
                .with_credentials(anonymous::Builder::new().build()),
            None => builder,
        };
        let client = builder
            .build()
            .await
            .map_err(|e| PublishError::Failed(format!("cannot create the Pub/Sub client: {e}")))?;
        Ok(Self {
            client,
            topic,
            timeout: config.publish_timeout,
        })
    }
}

#[async_trait]
impl Publisher for GcpPublisher {
    async fn publish(&self, message: &ImageMessage) -> Result<(), PublishError> {
        let pubsub_message = Message::new()
            .set_data(message.to_json())
            .set_attributes([(SCHEMA_ATTRIBUTE, SCHEMA_NAME)]);
        // The retry policy bounds the client's own retries; this bounds the
        // whole call, connection set-up included, whatever happens inside.
        let publishing = self.client.publish(pubsub_message);
        match tokio::time::timeout(self.timeout + Duration::from_secs(1), publishing).await {
            Ok(Ok(message_id)) => {
                tracing::debug!(topic = %self.topic, %message_id, image_id = %message.image_id, "published");
                Ok(())
            }
            Ok(Err(e)) => Err(PublishError::Failed(format!("{}: {e}", self.topic))),
            Err(_) => Err(PublishError::Failed(format!(
                "{}: no answer within {:?}",
                self.topic, self.timeout
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use catdog_core::config::{Vars, parse};

    fn topic(
        vars: &[(&str, &str)],
        project: Option<&str>,
    ) -> Result<GcpPublisherConfig, ConfigError> {
        parse::<PubSubSettings>(&Vars::from_map(vars.iter().copied()))?.config(project)
    }

    #[test]
    fn topics_come_from_the_settings() {
        let config = topic(&[("PUBSUB_TOPIC", "images")], Some("gallery")).unwrap();
        assert_eq!(config.topic_path(), "projects/gallery/topics/images");
        assert_eq!(config.endpoint, None);
        assert_eq!(
            topic(&[("PUBSUB_TOPIC", "projects/p/topics/t")], None)
                .unwrap()
                .topic_path(),
            "projects/p/topics/t"
        );
    }

    #[test]
    fn a_missing_topic_or_project_is_named() {
        assert_eq!(topic(&[], Some("gallery")).unwrap_err().var, "PUBSUB_TOPIC");
        assert_eq!(
            topic(&[("PUBSUB_TOPIC", "images")], None).unwrap_err().var,
            "GOOGLE_CLOUD_PROJECT"
        );
        assert_eq!(
            topic(&[("PUBSUB_TOPIC", "a/b")], Some("p"))
                .unwrap_err()
                .var,
            "PUBSUB_TOPIC"
        );
    }
}
