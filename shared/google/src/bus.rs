//! Pub/Sub over its REST API: publishing the services' messages, and (for the local stack and
//! tests; Terraform does it in production) creating topics and push subscriptions.

use std::time::Duration;

use base64::Engine;
use serde::Serialize;

use baton_core::messages::{ExecutorTask, ImporterTask, PlannerEvent};
use baton_core::ports::{BusError, Publish};

use crate::config::Gcp;
use crate::gcp::{RestError, Tokens};

impl From<RestError> for BusError {
    fn from(e: RestError) -> Self {
        match e {
            RestError::Unavailable(m) => BusError::Unavailable(m),
            refused => BusError::Permanent(refused.to_string()),
        }
    }
}

/// Publishes JSON messages to the project's topics.
#[derive(Debug, Clone)]
pub struct Bus {
    http: reqwest::Client,
    base: String,
    project: String,
    tokens: Tokens,
}

/// A push subscription as the local stack wires it.
#[derive(Debug, Clone)]
pub struct PushSubscription<'a> {
    pub name: &'a str,
    pub topic: &'a str,
    pub endpoint: &'a str,
    pub ack_deadline_seconds: u32,
    /// After this many failed deliveries a message goes to the dead-letter topic.
    pub dead_letter: Option<(&'a str, u32)>,
}

impl Bus {
    pub fn new(gcp: &Gcp) -> Result<Self, crate::gcp::CredentialsError> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("a reqwest client builds"),
            base: gcp.pubsub_url.clone(),
            project: gcp.project.clone(),
            tokens: Tokens::for_endpoint(gcp.pubsub_emulated)?,
        })
    }

    /// A topic of the project by its name, or any topic by its whole path
    /// (`projects/P/topics/T`: Cloud Storage's notifications may publish to another's).
    fn topic_path(&self, topic: &str) -> String {
        if topic.starts_with("projects/") {
            topic.to_string()
        } else {
            format!("projects/{}/topics/{topic}", self.project)
        }
    }

    /// Publishes one message and returns its id.
    pub async fn publish<T: Serialize>(
        &self,
        topic: &str,
        message: &T,
    ) -> Result<String, BusError> {
        let data = serde_json::to_vec(message)
            .map_err(|e| BusError::Permanent(format!("message does not serialize: {e}")))?;
        let data = base64::engine::general_purpose::STANDARD.encode(data);
        self.publish_raw(topic, &data, &std::collections::BTreeMap::new())
            .await
    }

    /// Publishes bytes (base64 already) with attributes to a topic (a dead letter's replay:
    /// as they were first published); returns the new message's id.
    pub async fn publish_raw(
        &self,
        topic: &str,
        data_base64: &str,
        attributes: &std::collections::BTreeMap<String, String>,
    ) -> Result<String, BusError> {
        let mut message = serde_json::json!({"data": data_base64});
        if !attributes.is_empty() {
            message["attributes"] = serde_json::json!(attributes);
        }
        let body = serde_json::json!({"messages": [message]});
        let url = format!("{}/v1/{}:publish", self.base, self.topic_path(topic));
        let response: serde_json::Value = self.send(self.http.post(url).json(&body)).await?;
        response["messageIds"][0]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| BusError::Permanent(format!("publish answered {response}")))
    }

    /// The topic (`projects/P/topics/T`) of the subscription `name` of `project` (this
    /// project's when none).
    pub async fn subscription_topic(
        &self,
        project: Option<&str>,
        name: &str,
    ) -> Result<String, BusError> {
        let url = format!(
            "{}/v1/projects/{}/subscriptions/{name}",
            self.base,
            project.unwrap_or(&self.project)
        );
        let answer = self.send(self.http.get(url)).await?;
        answer["topic"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| BusError::Permanent(format!("subscription {name} has no topic")))
    }

    /// The answer's JSON (null when it is not JSON).
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<serde_json::Value, RestError> {
        let body = self.tokens.call(request).await?;
        Ok(serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
    }

    /// Creates a topic unless it exists.
    pub async fn ensure_topic(&self, topic: &str) -> Result<(), BusError> {
        let url = format!("{}/v1/{}", self.base, self.topic_path(topic));
        match self
            .send(self.http.put(url).json(&serde_json::json!({})))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_conflict() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates a push subscription unless it exists.
    pub async fn ensure_push_subscription(
        &self,
        subscription: &PushSubscription<'_>,
    ) -> Result<(), BusError> {
        let mut body = serde_json::json!({
            "topic": self.topic_path(subscription.topic),
            "pushConfig": {"pushEndpoint": subscription.endpoint},
            "ackDeadlineSeconds": subscription.ack_deadline_seconds,
            "retryPolicy": {"minimumBackoff": "1s", "maximumBackoff": "60s"},
        });
        if let Some((topic, attempts)) = subscription.dead_letter {
            body["deadLetterPolicy"] = serde_json::json!({
                "deadLetterTopic": self.topic_path(topic),
                "maxDeliveryAttempts": attempts,
            });
        }
        let url = format!(
            "{}/v1/projects/{}/subscriptions/{}",
            self.base, self.project, subscription.name
        );
        match self.send(self.http.put(url).json(&body)).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_conflict() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The services' topics on Pub/Sub.
#[derive(Debug, Clone)]
pub struct Topics {
    pub bus: Bus,
    pub planner: String,
    pub executor: String,
    pub importer: String,
}

impl Topics {
    pub fn new(gcp: &Gcp) -> Result<Self, crate::gcp::CredentialsError> {
        Ok(Self {
            bus: Bus::new(gcp)?,
            planner: gcp.topics.planner.clone(),
            executor: gcp.topics.executor.clone(),
            importer: gcp.topics.importer.clone(),
        })
    }
}

impl Publish for Topics {
    async fn to_planner(&self, event: &PlannerEvent) -> Result<(), BusError> {
        self.bus.publish(&self.planner, event).await.map(|_| ())
    }

    async fn to_executor(&self, task: &ExecutorTask) -> Result<(), BusError> {
        self.bus.publish(&self.executor, task).await.map(|_| ())
    }

    async fn to_importer(&self, task: &ImporterTask) -> Result<(), BusError> {
        self.bus.publish(&self.importer, task).await.map(|_| ())
    }
}
