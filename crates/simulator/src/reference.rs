//! The reference the dispatch benchmark measures against: the Lambda of
//! aws-samples/ec2-outposts-autorestart (autorestart-tool/AutoRestartTemplate.yaml), whose
//! handler, on its server's alarm, makes these calls in this order:
//!
//! 1. CloudWatch `DescribeAlarmHistory` (MaxRecords 2: skip if the alarm was already in
//!    ALARM; an error is printed and ignored);
//! 2. CloudFormation `DescribeStacks` of its own stack, whose `LaunchTemplateId*` outputs
//!    are the launch template ids (it reads them on every alarm: no list call of EC2);
//! 3. EC2 `RunInstances` for each template, one after another (LaunchTemplateId only,
//!    MinCount = MaxCount = 1); the first error raises and ends the loop;
//! 4. then (after the last launch, so outside what is measured) the `instance_running`
//!    waiter, the target group update and the SNS mail.
//!
//! Its calls go through the same world as the product's (the same latency table, the same
//! EC2 token buckets), retried as boto3 retries by default (botocore's legacy mode).

use crate::scenario::Scenario;
use crate::world::{Sim, SimFleet};
use ha_domain::incident::IncidentId;
use ha_domain::model::workload_from_tags;
use ha_ports::{Fleet, LaunchRequest};
use std::sync::Arc;

/// The tool's handler, answering the alarm of `server`.
pub(crate) async fn autorestart(sim: &Arc<Sim>, scenario: &Scenario, server: usize) {
    sim.world().note("ec2-outposts-autorestart starts".into());
    if let Err(e) = sim.enter("DescribeAlarmHistory").await {
        sim.world().note(format!("autorestart: error checking alarm history: {}", e.code));
    }
    if let Err(e) = sim.enter("DescribeStacks").await {
        sim.world().note(format!("autorestart: error retrieving launch template IDs: {}", e.code));
        return;
    }
    let incident = IncidentId::from_stored("ec2-outposts-autorestart");
    for (k, plan) in scenario.servers[server].workloads.iter().enumerate() {
        let workload = {
            let w = sim.world();
            let Some(t) = w.templates.get(&plan.template_id) else { continue };
            match workload_from_tags(&plan.template_id, &t.name, &t.tags) {
                Ok(workload) => workload,
                Err(_) => continue,
            }
        };
        // The tool names no subnet: the template's own network settings place the instance;
        // here, the workload's destination. botocore fills ClientToken itself (one per call,
        // kept across its retries).
        let token = format!("autorestart-{k}");
        let launch = LaunchRequest {
            workload: &workload,
            purpose: ha_ports::LaunchFor::Incident(&incident),
            subnet_id: &plan.subnets[0],
            interfaces: &[],
            client_token: &token,
            restored_from: None,
            dry_run: false,
        };
        if let Err(e) = SimFleet(sim.clone()).launch(&launch).await {
            sim.world().note(format!("autorestart: error launching {}: {} (raised: the loop ends)", plan.name, e.code));
            return;
        }
    }
    sim.world().note("autorestart: every template launched".into());
}
