//! Publishing to Google Cloud Pub/Sub with the official client.

use std::time::Duration;

use async_trait::async_trait;
use google_cloud_auth::credentials::anonymous;
use google_cloud_gax::retry_policy::RetryPolicyExt as _;
use google_cloud_pubsub::client::Publisher as PubsubClient;
use google_cloud_pubsub::model::Message;
use google_cloud_pubsub::retry_policy::RetryableErrors;

use catdog_core::config::{ConfigError, Env};
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

impl GcpPublisherConfig {
    /// Reads `PUBSUB_TOPIC`, `GOOGLE_CLOUD_PROJECT` and `PUBSUB_ENDPOINT`;
    /// both of the first two must be set. `PUBSUB_TOPIC` may also be a full
    /// `projects/P/topics/T` name, which then names the project too.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let topic = env.required("PUBSUB_TOPIC")?;
        let (project, topic) = match parse_topic_path(&topic) {
            Some((project, topic)) => (project, topic),
            None => (env.required("GOOGLE_CLOUD_PROJECT")?, topic),
        };
        if topic.is_empty() || topic.contains('/') {
            return Err(ConfigError {
                var: "PUBSUB_TOPIC",
                reason: format!("{topic:?} is not a topic id or projects/P/topics/T"),
            });
        }
        Ok(Self {
            project,
            topic,
            endpoint: env.string("PUBSUB_ENDPOINT"),
            publish_timeout: Duration::from_secs(10),
        })
    }

    /// [`from_env`](Self::from_env) when `PUBSUB_TOPIC` is set; `None` when it
    /// is not (local mode then uses its in-process queue).
    pub fn from_env_if_set(env: &Env) -> Result<Option<Self>, ConfigError> {
        match env.string("PUBSUB_TOPIC") {
            Some(_) => Self::from_env(env).map(Some),
            None => Ok(None),
        }
    }

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

    #[test]
    fn topics_come_from_the_settings() {
        let env = Env::from_map([
            ("PUBSUB_TOPIC", "images"),
            ("GOOGLE_CLOUD_PROJECT", "gallery"),
        ]);
        let config = GcpPublisherConfig::from_env(&env).unwrap();
        assert_eq!(config.topic_path(), "projects/gallery/topics/images");
        assert_eq!(config.endpoint, None);
        let env = Env::from_map([("PUBSUB_TOPIC", "projects/p/topics/t")]);
        assert_eq!(
            GcpPublisherConfig::from_env(&env).unwrap().topic_path(),
            "projects/p/topics/t"
        );
    }

    #[test]
    fn a_missing_topic_or_project_is_named() {
        let env = Env::from_map([("GOOGLE_CLOUD_PROJECT", "gallery")]);
        assert_eq!(
            GcpPublisherConfig::from_env(&env).unwrap_err().var,
            "PUBSUB_TOPIC"
        );
        assert_eq!(GcpPublisherConfig::from_env_if_set(&env), Ok(None));
        let env = Env::from_map([("PUBSUB_TOPIC", "images")]);
        assert_eq!(
            GcpPublisherConfig::from_env(&env).unwrap_err().var,
            "GOOGLE_CLOUD_PROJECT"
        );
        let env = Env::from_map([("PUBSUB_TOPIC", "a/b"), ("GOOGLE_CLOUD_PROJECT", "p")]);
        assert_eq!(
            GcpPublisherConfig::from_env(&env).unwrap_err().var,
            "PUBSUB_TOPIC"
        );
    }
}
