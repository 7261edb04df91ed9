//! The incident ledger in DynamoDB, laid out as [`ha_domain::ledger`] says. Conditional
//! writes make each piece of work happen once under concurrent redelivery.

use crate::failure;
use aws_sdk_dynamodb::types::AttributeValue;
use ha_domain::config::IncidentStore;
use ha_domain::error::AwsFailure;
use ha_domain::incident::{IncidentId, IncidentRecordState, MaintenanceWindow, ServerLedgerState};
use ha_domain::launch::ClaimRecord;
use ha_domain::ledger::{
    backup_key, expires_at, incident_key, server_key, workload_key, BackupMark, IncidentMark, IncidentStatus,
    IncidentStory, WorkloadStatus, WorkloadStory, MAINTENANCE, MAINTENANCE_KEPT_SECONDS, META, OPEN_INCIDENT,
    WORKLOAD_PREFIX,
};
use ha_domain::model::ServerId;
use std::collections::HashMap;

const STATUS_LAUNCHING: &str = WorkloadStatus::Launching.as_str();

type Item = HashMap<String, AttributeValue>;

#[derive(Clone)]
pub struct Ledger {
    client: aws_sdk_dynamodb::Client,
    table: String,
    retention_days: u32,
}

/// What the alarm handler records when it opens an incident.
pub struct IncidentRecord<'a> {
    pub incident: &'a IncidentId,
    pub server: &'a ServerId,
    pub alarm_arn: &'a str,
    pub alarm_name: &'a str,
    pub detected_at: &'a str,
}

/// Result of trying to claim one (incident, workload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimAttempt {
    Won,
    Existing { record: ClaimRecord, outcome_event: Option<String> },
}

/// How a claimed workload ended.
pub struct Settlement<'a> {
    pub launched: bool,
    pub replacement_instance_id: Option<&'a str>,
    pub subnet_id: Option<&'a str>,
    pub launch_requested_at: Option<&'a str>,
    pub launch_accepted_at: Option<&'a str>,
    /// The event detail to (re-)emit, as JSON; kept so a redelivery can emit it again.
    pub outcome_event: &'a str,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
fn get_s<'a>(item: &'a Item, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}
fn get_n(item: &Item, k: &str) -> Option<i64> {
    item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}
fn get_bool(item: &Item, k: &str) -> bool {
    item.get(k).and_then(|v| v.as_bool().ok()).copied().unwrap_or(false)
}

macro_rules! condition_failed {
    ($err:expr) => {
        $err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception())
    };
}

/// A conditional write's result: `Ok(true)` written, `Ok(false)` its condition held it back.
macro_rules! written {
    ($result:expr, $operation:literal) => {
        match $result {
            Ok(_) => Ok(true),
            Err(e) if condition_failed!(e) => Ok(false),
            Err(e) => Err(failure($operation, &e)),
        }
    };
}

impl Ledger {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>, retention_days: u32) -> Self {
        Ledger { client, table: table.into(), retention_days }
    }

    /// The ledger a function's configuration names.
    pub fn of_store(client: aws_sdk_dynamodb::Client, store: &IncidentStore) -> Self {
        Ledger::new(client, &store.ledger_table, store.retention_days)
    }

    fn expires_at(&self, now_epoch: i64) -> AttributeValue {
        n(expires_at(now_epoch, self.retention_days))
    }

    async fn get(&self, pk: String, sk: String) -> Result<Option<Item>, AwsFailure> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failure("GetItem", &e))?;
        Ok(out.item().cloned())
    }

    /// Makes `incident` the server's open incident unless another one already is.
    pub async fn claim_server(
        &self,
        server: &ServerId,
        incident: &IncidentId,
        now_epoch: i64,
    ) -> Result<ServerLedgerState, AwsFailure> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(server_key(server)))
            .item("sk", s(OPEN_INCIDENT))
            .item("incident_id", s(incident.as_str()))
            .item("opened_epoch", n(now_epoch))
            .item("expires_at", self.expires_at(now_epoch))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(ServerLedgerState::Free),
            Err(e) if condition_failed!(e) => match self.open_incident_of(server).await? {
                Some(open) if &open == incident => Ok(ServerLedgerState::HeldBySame),
                Some(open) => Ok(ServerLedgerState::HeldByOther(open)),
                // Released between our write and our read: try once more.
                None => Box::pin(self.claim_server(server, incident, now_epoch)).await,
            },
            Err(e) => Err(failure("PutItem", &e)),
        }
    }

    pub async fn open_incident_of(&self, server: &ServerId) -> Result<Option<IncidentId>, AwsFailure> {
        let item = self.get(server_key(server), OPEN_INCIDENT.into()).await?;
        Ok(item.as_ref().and_then(|i| get_s(i, "incident_id")).map(IncidentId::from_stored))
    }

    /// Writes the incident item once, and says what was there.
    pub async fn record_incident(
        &self,
        r: &IncidentRecord<'_>,
        now_epoch: i64,
    ) -> Result<IncidentRecordState, AwsFailure> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(incident_key(r.incident)))
            .item("sk", s(META))
            .item("server_id", s(r.server.as_str()))
            .item("alarm_arn", s(r.alarm_arn))
            .item("alarm_name", s(r.alarm_name))
            .item("detected_at", s(r.detected_at))
            .item("status", s(IncidentStatus::Open.as_str()))
            .item("announced", AttributeValue::Bool(false))
            .item("created_epoch", n(now_epoch))
            .item("expires_at", self.expires_at(now_epoch))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(IncidentRecordState::Created),
            Err(e) if condition_failed!(e) => {
                let item = self.get(incident_key(r.incident), META.into()).await?.unwrap_or_default();
                Ok(IncidentRecordState::Existing {
                    announced: get_bool(&item, "announced"),
                    created_epoch: get_n(&item, "created_epoch").unwrap_or(0),
                })
            }
            Err(e) => Err(failure("PutItem", &e)),
        }
    }

    pub async fn incident_detected_at(&self, incident: &IncidentId) -> Result<Option<String>, AwsFailure> {
        let item = self.get(incident_key(incident), META.into()).await?;
        Ok(item.as_ref().and_then(|i| get_s(i, "detected_at")).map(str::to_string))
    }

    /// Records that the server's alarm fired again at `at` while `incident` was open.
    /// Returns false when this re-alarm was already recorded (a redelivery).
    pub async fn record_realarm(&self, incident: &IncidentId, at: &str) -> Result<bool, AwsFailure> {
        let unchanged = "(attribute_not_exists(#f) OR #f <> :v)";
        self.set_on_incident(incident, "last_realarm_at", s(at), Some(unchanged)).await
    }

    pub async fn mark_announced(&self, incident: &IncidentId) -> Result<(), AwsFailure> {
        self.set_on_incident(incident, "announced", AttributeValue::Bool(true), None).await.map(drop)
    }

    /// Records an incident-level time such as `recovered_at`.
    pub async fn set_incident_time(&self, incident: &IncidentId, field: &str, at: &str) -> Result<(), AwsFailure> {
        self.set_on_incident(incident, field, s(at), None).await.map(drop)
    }

    /// Sets one field of the incident item (`#f`, `:v` in `extra_condition`). Returns false
    /// when a condition held it back: the item expired or was never written, or
    /// `extra_condition` was false.
    async fn set_on_incident(
        &self,
        incident: &IncidentId,
        field: &str,
        value: AttributeValue,
        extra_condition: Option<&str>,
    ) -> Result<bool, AwsFailure> {
        let condition = match extra_condition {
            Some(extra) => format!("attribute_exists(pk) AND {extra}"),
            None => "attribute_exists(pk)".to_string(),
        };
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(incident_key(incident)))
            .key("sk", s(META))
            .update_expression("SET #f = :v")
            .expression_attribute_names("#f", field)
            .expression_attribute_values(":v", value)
            .condition_expression(condition)
            .send()
            .await;
        written!(update, "UpdateItem")
    }

    /// Claims (incident, workload) for `owner` with a lease; the loser learns what is there.
    pub async fn claim_workload(
        &self,
        incident: &IncidentId,
        workload: &str,
        owner: &str,
        now_epoch: i64,
        lease_seconds: i64,
    ) -> Result<ClaimAttempt, AwsFailure> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(incident_key(incident)))
            .item("sk", s(workload_key(workload)))
            .item("status", s(STATUS_LAUNCHING))
            .item("owner", s(owner))
            .item("claimed_epoch", n(now_epoch))
            .item("lease_until", n(now_epoch + lease_seconds))
            .item("reported", AttributeValue::Bool(false))
            .item("expires_at", self.expires_at(now_epoch))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(ClaimAttempt::Won),
            Err(e) if condition_failed!(e) => {
                match self.get(incident_key(incident), workload_key(workload)).await? {
                    Some(item) => Ok(ClaimAttempt::Existing {
                        record: claim_record(&item),
                        outcome_event: get_s(&item, "outcome_event").map(str::to_string),
                    }),
                    // Released (transient failure) between write and read: claim again.
                    None => Box::pin(self.claim_workload(incident, workload, owner, now_epoch, lease_seconds)).await,
                }
            }
            Err(e) => Err(failure("PutItem", &e)),
        }
    }

    /// Takes over a claim whose lease ran out. Only one of several contenders wins.
    pub async fn take_over(
        &self,
        incident: &IncidentId,
        workload: &str,
        expired_lease_until: i64,
        owner: &str,
        now_epoch: i64,
        lease_seconds: i64,
    ) -> Result<bool, AwsFailure> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(incident_key(incident)))
            .key("sk", s(workload_key(workload)))
            .update_expression("SET #owner = :o, lease_until = :l, claimed_epoch = :c ADD takeovers :one")
            .condition_expression("#status = :launching AND lease_until = :old")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":o", s(owner))
            .expression_attribute_values(":l", n(now_epoch + lease_seconds))
            .expression_attribute_values(":c", n(now_epoch))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":launching", s(STATUS_LAUNCHING))
            .expression_attribute_values(":old", n(expired_lease_until))
            .send()
            .await;
        written!(update, "UpdateItem")
    }

    /// Records the outcome, if `owner` still holds the claim. Returns false when another
    /// claimant took over (then that claimant reports).
    pub async fn settle(
        &self,
        incident: &IncidentId,
        workload: &str,
        owner: &str,
        outcome: &Settlement<'_>,
        now_epoch: i64,
    ) -> Result<bool, AwsFailure> {
        let mut sets = vec!["#status = :status", "outcome_event = :event", "settled_epoch = :settled"];
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(incident_key(incident)))
            .key("sk", s(workload_key(workload)))
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(
                ":status",
                s(if outcome.launched { WorkloadStatus::Launched } else { WorkloadStatus::Failed }.as_str()),
            )
            .expression_attribute_values(":event", s(outcome.outcome_event))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":settled", n(now_epoch))
            .condition_expression("#owner = :owner");
        let optional = [
            ("replacement_instance_id", ":rid", outcome.replacement_instance_id),
            ("subnet_id", ":subnet", outcome.subnet_id),
            ("launch_requested_at", ":req", outcome.launch_requested_at),
            ("launch_accepted_at", ":acc", outcome.launch_accepted_at),
        ];
        let mut clauses = Vec::new();
        for (field, placeholder, value) in optional {
            if let Some(v) = value {
                clauses.push(format!("{field} = {placeholder}"));
                request = request.expression_attribute_values(placeholder, s(v));
            }
        }
        sets.extend(clauses.iter().map(String::as_str));
        let update = request.update_expression(format!("SET {}", sets.join(", "))).send().await;
        written!(update, "UpdateItem")
    }

    pub async fn mark_reported(&self, incident: &IncidentId, workload: &str) -> Result<(), AwsFailure> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(incident_key(incident)))
            .key("sk", s(workload_key(workload)))
            .update_expression("SET reported = :t")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await
            .map_err(|e| failure("UpdateItem", &e))?;
        Ok(())
    }

    /// Every workload item of the incident: (status, outcome event as stored JSON).
    pub async fn outcomes_of(
        &self,
        incident: &IncidentId,
    ) -> Result<Vec<(WorkloadStatus, Option<String>)>, AwsFailure> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :workload)")
            .expression_attribute_values(":pk", s(incident_key(incident)))
            .expression_attribute_values(":workload", s(WORKLOAD_PREFIX))
            .consistent_read(true)
            .into_paginator()
            .send();
        let mut outcomes = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failure("Query", &e))?;
            outcomes.extend(
                page.items().iter().map(|i| {
                    (WorkloadStatus::parse(get_s(i, "status")), get_s(i, "outcome_event").map(str::to_string))
                }),
            );
        }
        Ok(outcomes)
    }

    /// The incident's story: its item and every workload's, or `None` if it is unknown
    /// (never opened, or expired).
    pub async fn story_of(&self, incident: &IncidentId) -> Result<Option<IncidentStory>, AwsFailure> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(incident_key(incident)))
            .consistent_read(true)
            .into_paginator()
            .send();
        let mut meta = None;
        let mut workloads = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failure("Query", &e))?;
            for item in page.items() {
                let sk = get_s(item, "sk").unwrap_or_default();
                let text = |k: &str| get_s(item, k).map(str::to_string);
                if sk == META {
                    meta = Some((
                        text("server_id").unwrap_or_default(),
                        IncidentStatus::parse(get_s(item, "status")).unwrap_or(IncidentStatus::Open),
                        text("detected_at").unwrap_or_default(),
                        text("summary"),
                    ));
                } else if let Some(workload) = sk.strip_prefix(WORKLOAD_PREFIX) {
                    workloads.push(WorkloadStory {
                        workload: workload.to_string(),
                        status: WorkloadStatus::parse(get_s(item, "status")),
                        replacement_instance_id: text("replacement_instance_id"),
                        subnet_id: text("subnet_id"),
                        launch_accepted_at: text("launch_accepted_at"),
                        serving_at: text("serving_at"),
                    });
                }
            }
        }
        Ok(meta.map(|(server_id, status, detected_at, summary)| IncidentStory {
            incident_id: incident.to_string(),
            server_id,
            status,
            detected_at,
            summary,
            workloads,
        }))
    }

    /// Closes the incident with its summary and frees the server for a new one. True when
    /// this call closed it (a redelivery finds it closed).
    pub async fn close_incident(
        &self,
        incident: &IncidentId,
        server: &ServerId,
        summary: &str,
        now_epoch: i64,
    ) -> Result<bool, AwsFailure> {
        let closed = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(incident_key(incident)))
            .key("sk", s(META))
            .update_expression("SET #status = :closed, summary = :summary, closed_epoch = :now")
            .condition_expression("attribute_exists(pk) AND #status <> :closed")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":closed", s(IncidentStatus::Closed.as_str()))
            .expression_attribute_values(":summary", s(summary))
            .expression_attribute_values(":now", n(now_epoch))
            .send()
            .await;
        let closed_now = match closed {
            Ok(_) => true,
            Err(e) if condition_failed!(e) => false,
            Err(e) => return Err(failure("UpdateItem", &e)),
        };
        self.release_server(server, incident).await?;
        Ok(closed_now)
    }

    /// Frees the server if `incident` holds it (a later incident's hold is left alone).
    pub async fn release_server(&self, server: &ServerId, incident: &IncidentId) -> Result<(), AwsFailure> {
        let release = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(server_key(server)))
            .key("sk", s(OPEN_INCIDENT))
            .condition_expression("incident_id = :incident")
            .expression_attribute_values(":incident", s(incident.as_str()))
            .send()
            .await;
        written!(release, "DeleteItem").map(drop)
    }

    /// The server's maintenance window, if one was set (expired ones included; the caller
    /// judges them against the alarm's time).
    pub async fn maintenance_of(&self, server: &ServerId) -> Result<Option<MaintenanceWindow>, AwsFailure> {
        let item = self.get(server_key(server), MAINTENANCE.into()).await?;
        Ok(item.and_then(|i| {
            Some(MaintenanceWindow {
                until_epoch: get_n(&i, "until_epoch")?,
                until: get_s(&i, "until").unwrap_or_default().to_string(),
                reason: get_s(&i, "reason").unwrap_or_default().to_string(),
            })
        }))
    }

    /// Sets the server's maintenance window (`make maintenance`, through alarm-handler).
    pub async fn set_maintenance(&self, server: &ServerId, window: &MaintenanceWindow) -> Result<(), AwsFailure> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(server_key(server)))
            .item("sk", s(MAINTENANCE))
            .item("until_epoch", n(window.until_epoch))
            .item("until", s(&window.until))
            .item("reason", s(&window.reason))
            .item("expires_at", n(window.until_epoch + MAINTENANCE_KEPT_SECONDS))
            .send()
            .await
            .map_err(|e| failure("PutItem", &e))?;
        Ok(())
    }

    /// Records when the workload's replacement started serving (the first time only).
    pub async fn record_serving(&self, incident: &IncidentId, workload: &str, at: &str) -> Result<(), AwsFailure> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(incident_key(incident)))
            .key("sk", s(workload_key(workload)))
            .update_expression("SET serving_at = :at")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(serving_at)")
            .expression_attribute_values(":at", s(at))
            .send()
            .await;
        written!(update, "UpdateItem").map(drop)
    }

    /// Records `marker` for `mark` on the incident unless it is already there; true when
    /// this call recorded it.
    pub async fn mark_incident(
        &self,
        incident: &IncidentId,
        mark: IncidentMark<'_>,
        marker: &str,
        now_epoch: i64,
    ) -> Result<bool, AwsFailure> {
        self.record_marker(&incident_key(incident), &mark.key(), marker, now_epoch).await
    }

    /// Forgets that `mark` was told, so it is told again if it happens again (an original
    /// put back by an operator and fenced once more).
    pub async fn clear_incident_mark(&self, incident: &IncidentId, mark: IncidentMark<'_>) -> Result<(), AwsFailure> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(incident_key(incident)))
            .key("sk", s(mark.key()))
            .send()
            .await
            .map_err(|e| failure("DeleteItem", &e))?;
        Ok(())
    }

    /// Records `marker` for `mark` on a backup subject (an execution id or an instance id)
    /// unless it is already there; true when this call recorded it.
    pub async fn mark_backup(
        &self,
        subject: &str,
        mark: BackupMark,
        marker: &str,
        now_epoch: i64,
    ) -> Result<bool, AwsFailure> {
        self.record_marker(&backup_key(subject), mark.key(), marker, now_epoch).await
    }

    /// The marker recorded for `mark` on a backup subject, if any.
    pub async fn backup_mark(&self, subject: &str, mark: BackupMark) -> Result<Option<String>, AwsFailure> {
        self.marker(&backup_key(subject), mark.key()).await
    }

    /// The marker recorded under (`pk`, `sk`), if any.
    async fn marker(&self, pk: &str, sk: &str) -> Result<Option<String>, AwsFailure> {
        Ok(self.get(pk.to_string(), sk.to_string()).await?.and_then(|item| get_s(&item, "marker").map(str::to_string)))
    }

    /// Records `marker` under (`pk`, `sk`) unless that very marker is already there; true
    /// when this call recorded it (the caller announces, a duplicate stays quiet).
    async fn record_marker(&self, pk: &str, sk: &str, marker: &str, now_epoch: i64) -> Result<bool, AwsFailure> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item("marker", s(marker))
            .item("recorded_epoch", n(now_epoch))
            .item("expires_at", self.expires_at(now_epoch))
            .condition_expression("attribute_not_exists(pk) OR marker <> :marker")
            .expression_attribute_values(":marker", s(marker))
            .send()
            .await;
        written!(put, "PutItem")
    }

    /// Gives a claim back after a transient failure, so the retried event can take it.
    pub async fn release(&self, incident: &IncidentId, workload: &str, owner: &str) -> Result<(), AwsFailure> {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(incident_key(incident)))
            .key("sk", s(workload_key(workload)))
            .condition_expression("#owner = :owner AND #status = :launching")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":launching", s(STATUS_LAUNCHING))
            .send()
            .await;
        written!(delete, "DeleteItem").map(drop)
    }
}

fn claim_record(item: &Item) -> ClaimRecord {
    match WorkloadStatus::parse(get_s(item, "status")) {
        WorkloadStatus::Launching => ClaimRecord::Launching { lease_until: get_n(item, "lease_until").unwrap_or(0) },
        WorkloadStatus::Launched | WorkloadStatus::Failed => ClaimRecord::Settled {
            reported: get_bool(item, "reported"),
            settled_epoch: get_n(item, "settled_epoch").unwrap_or(0),
        },
    }
}
