//! The witness on SSM Run Command: the witness found by its tag in EC2, the probe sent as
//! the stack's own command document, its result read with GetCommandInvocation.

use crate::{ec2_filter, ec2_tags, failure, run_command};
use async_trait::async_trait;
use ha_domain::error::AwsFailure;
use ha_domain::incident::IncidentId;
use ha_domain::model::{tag, ServerId};
use ha_ports::{Asked, ProbeStatus, Witness, WitnessInstance};

#[derive(Clone)]
pub struct SsmWitness {
    ec2: aws_sdk_ec2::Client,
    ssm: aws_sdk_ssm::Client,
    document: String,
}

impl SsmWitness {
    pub fn new(ec2: aws_sdk_ec2::Client, ssm: aws_sdk_ssm::Client, document: impl Into<String>) -> Self {
        SsmWitness { ec2, ssm, document: document.into() }
    }
}

#[async_trait]
impl Witness for SsmWitness {
    async fn witness_of(&self, server: &ServerId) -> Result<Option<WitnessInstance>, AwsFailure> {
        let mut pages = self
            .ec2
            .describe_instances()
            .filters(ec2_filter(&format!("tag:{}", tag::WITNESS_FOR), &[server.as_str()]))
            .filters(ec2_filter("instance-state-name", &["running"]))
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failure("DescribeInstances", &e))?;
            for i in page.reservations().iter().flat_map(|r| r.instances()) {
                let tags = ec2_tags(i.tags());
                if let Some(id) = i.instance_id() {
                    found.push(WitnessInstance {
                        instance_id: id.to_string(),
                        // As written: a malformed one is the document's to refuse, and is told.
                        control: tags.get(tag::WITNESS_CONTROL).map(|c| c.trim().to_string()).filter(|c| !c.is_empty()),
                    });
                }
            }
        }
        // Several witnesses: the same one on every delivery.
        found.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        Ok(found.into_iter().next())
    }

    async fn ask(&self, witness: &WitnessInstance, incident: &IncidentId, targets: &str) -> Result<Asked, AwsFailure> {
        let command = self
            .ssm
            .send_command()
            .document_name(&self.document)
            .instance_ids(&witness.instance_id)
            .parameters("Targets", vec![targets.to_string()])
            .parameters("Control", vec![witness.control.clone().unwrap_or_default()])
            .parameters("Incident", vec![incident.to_string()])
            .comment("outposts-ha witness probe");
        run_command::send(command).await
    }

    async fn status(&self, command_id: &str, witness: &str) -> Result<ProbeStatus, AwsFailure> {
        let out = match self.ssm.get_command_invocation().command_id(command_id).instance_id(witness).send().await {
            Ok(out) => out,
            // Shortly after SendCommand the invocation may not be listed yet.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_invocation_does_not_exist()) => {
                return Ok(ProbeStatus::Running)
            }
            Err(e) => return Err(failure("GetCommandInvocation", &e)),
        };
        let status = out.status().map(|s| s.as_str()).unwrap_or_default();
        Ok(match status {
            "Success" => ProbeStatus::Finished(out.standard_output_content().unwrap_or_default().to_string()),
            "Pending" | "InProgress" | "Delayed" | "Cancelling" | "" => ProbeStatus::Running,
            other => ProbeStatus::Failed(format!(
                "the probe ended {other} ({}){}",
                out.status_details().unwrap_or_default(),
                out.standard_error_content().filter(|e| !e.is_empty()).map(|e| format!(": {e}")).unwrap_or_default()
            )),
        })
    }
}
