//! SSM Automation: the backup runbook's executions, started and read.

use crate::failure;
use async_trait::async_trait;
use aws_sdk_ssm::types::{AutomationExecutionFilter, AutomationExecutionFilterKey, Tag};
use ha_domain::backup::ExecutionFacts;
use ha_domain::error::AwsFailure;
pub use ha_ports::backups::InFlight;
use ha_ports::Runbook;
use std::collections::{BTreeMap, BTreeSet};

/// Statuses of an execution that is still running (or about to).
const IN_FLIGHT: [&str; 7] =
    ["Pending", "InProgress", "Waiting", "Cancelling", "Scheduled", "RunbookInProgress", "Approved"];

#[derive(Clone)]
pub struct Automation {
    ssm: aws_sdk_ssm::Client,
    document: String,
}

impl Automation {
    pub fn new(ssm: aws_sdk_ssm::Client, document: impl Into<String>) -> Self {
        Automation { ssm, document: document.into() }
    }
}

#[async_trait]
impl Runbook for Automation {
    /// Every in-flight execution of the runbook and the instance each one backs up. The
    /// listing does not carry parameters, so each in-flight execution is read once.
    async fn in_flight(&self, instance_parameter: &str) -> Result<InFlight, AwsFailure> {
        let filters = [
            AutomationExecutionFilter::builder()
                .key(AutomationExecutionFilterKey::DocumentNamePrefix)
                .values(&self.document)
                .build()
                .map_err(|e| construction("DescribeAutomationExecutions", e))?,
            AutomationExecutionFilter::builder()
                .key(AutomationExecutionFilterKey::ExecutionStatus)
                .set_values(Some(IN_FLIGHT.iter().map(|s| s.to_string()).collect()))
                .build()
                .map_err(|e| construction("DescribeAutomationExecutions", e))?,
        ];
        let mut ids = Vec::new();
        let mut pages =
            self.ssm.describe_automation_executions().set_filters(Some(filters.to_vec())).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failure("DescribeAutomationExecutions", &e))?;
            for m in page.automation_execution_metadata_list() {
                let status = m.automation_execution_status().map(|s| s.as_str()).unwrap_or_default();
                // The filter is a prefix: keep this document's executions only.
                if m.document_name() == Some(self.document.as_str()) && IN_FLIGHT.contains(&status) {
                    ids.extend(m.automation_execution_id().map(str::to_string));
                }
            }
        }
        let mut in_flight = InFlight { executions: ids.len(), instances: BTreeSet::new() };
        for id in ids {
            if let Some(facts) = self.execution(&id).await? {
                in_flight.instances.extend(facts.parameters.get(instance_parameter).into_iter().flatten().cloned());
            }
        }
        Ok(in_flight)
    }

    /// Starts the runbook. The token makes a repeated start of the same tick return the
    /// execution already started instead of a second one.
    async fn start(
        &self,
        parameters: &BTreeMap<String, Vec<String>>,
        client_token: &str,
        tags: &[(&str, &str)],
    ) -> Result<String, AwsFailure> {
        let out = self
            .ssm
            .start_automation_execution()
            .document_name(&self.document)
            .set_parameters(Some(parameters.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
            .client_token(client_token)
            .set_tags(Some(tags.iter().filter_map(|(k, v)| Tag::builder().key(*k).value(*v).build().ok()).collect()))
            .send()
            .await
            .map_err(|e| failure("StartAutomationExecution", &e))?;
        out.automation_execution_id().map(str::to_string).ok_or_else(|| AwsFailure {
            operation: "StartAutomationExecution",
            code: "NoExecutionId".into(),
            message: "the start succeeded but returned no execution id".into(),
            retry: ha_domain::error::Retry::CanHelp,
        })
    }

    /// The execution, or `None` when SSM does not know it.
    async fn execution(&self, execution_id: &str) -> Result<Option<ExecutionFacts>, AwsFailure> {
        let out = match self.ssm.get_automation_execution().automation_execution_id(execution_id).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_automation_execution_not_found_exception()) => {
                return Ok(None)
            }
            Err(e) => return Err(failure("GetAutomationExecution", &e)),
        };
        let Some(x) = out.automation_execution() else { return Ok(None) };
        let map = |m: Option<&std::collections::HashMap<String, Vec<String>>>| -> BTreeMap<String, Vec<String>> {
            m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
        };
        let failed_step = x
            .step_executions()
            .iter()
            .find(|s| s.step_status().is_some_and(|st| matches!(st.as_str(), "Failed" | "TimedOut" | "Cancelled")))
            .map(|s| {
                (
                    s.step_name().unwrap_or_default().to_string(),
                    s.step_status().map(|st| st.as_str().to_string()).unwrap_or_default(),
                    s.failure_message().unwrap_or_default().to_string(),
                )
            });
        let to_time = |d: Option<&aws_smithy_types::DateTime>| {
            d.and_then(|d| time::OffsetDateTime::from_unix_timestamp_nanos(d.as_nanos()).ok())
        };
        Ok(Some(ExecutionFacts {
            execution_id: execution_id.to_string(),
            status: x.automation_execution_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
            parameters: map(x.parameters()),
            outputs: map(x.outputs()),
            failure_message: x.failure_message().map(str::to_string),
            failed_step,
            started_at: to_time(x.execution_start_time()),
            ended_at: to_time(x.execution_end_time()),
        }))
    }
}

fn construction(operation: &'static str, e: impl std::fmt::Display) -> AwsFailure {
    AwsFailure {
        operation,
        code: "InvalidRequest".into(),
        message: e.to_string(),
        retry: ha_domain::error::Retry::WontHelp,
    }
}
