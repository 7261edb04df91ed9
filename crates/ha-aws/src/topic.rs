//! The SNS topic people subscribe to.

use crate::failure;
use aws_sdk_sns::types::MessageAttributeValue;
use ha_domain::error::AwsFailure;

#[derive(Clone)]
pub struct Topic {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl Topic {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Topic { client, topic_arn: topic_arn.into() }
    }

    pub async fn publish(
        &self,
        subject: &str,
        body: &str,
        attributes: &[(&str, String)],
    ) -> Result<String, AwsFailure> {
        self.send(Some(subject), body, attributes).await
    }

    /// A message without a subject (a chat card: its body is the whole message).
    pub async fn publish_raw(&self, body: &str, attributes: &[(&str, String)]) -> Result<String, AwsFailure> {
        self.send(None, body, attributes).await
    }

    async fn send(
        &self,
        subject: Option<&str>,
        body: &str,
        attributes: &[(&str, String)],
    ) -> Result<String, AwsFailure> {
        let mut request =
            self.client.publish().topic_arn(&self.topic_arn).set_subject(subject.map(str::to_string)).message(body);
        for (name, value) in attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .expect("data_type is set");
            request = request.message_attributes(*name, value);
        }
        let out = request.send().await.map_err(|e| failure("Publish", &e))?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }
}
