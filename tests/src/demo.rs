//! The failover story told step by step on the emulator: `make demo` runs it, and a test
//! runs the same scenario so it cannot rot.

use crate::emulator::Emulator;
use crate::site::{tag_of, Site};
use crate::stack::{alarm_event, Stack};
use ha_domain::model::tag;
use ha_domain::timefmt::{format_timestamp, now};
use std::io::Write;
use std::time::Instant;

pub const SERVER_A: &str = "op-0a1b2c3d4e5f60718";
pub const SERVER_B: &str = "op-0f9e8d7c6b5a40312";

/// One row of the closing table.
#[derive(Debug, Clone)]
pub struct SummaryRow {
    pub workload: String,
    pub replacement: String,
    pub subnet: String,
}

#[derive(Debug)]
pub struct Summary {
    pub rows: Vec<SummaryRow>,
    pub notifications: Vec<String>,
}

fn step(out: &mut dyn Write, started: Instant, text: &str) -> std::io::Result<()> {
    writeln!(out, "[{:>6.2}s] {text}", started.elapsed().as_secs_f64())
}

pub async fn run(out: &mut dyn Write) -> Result<Summary, String> {
    let io = |e: std::io::Error| e.to_string();
    let started = Instant::now();
    step(out, started, "starting the local AWS emulator (moto server on 127.0.0.1)").map_err(io)?;
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let stack = Stack::deploy(&sdk, 10).await;
    step(out, started, "deployed: ledger table, event bus with the template's rules, notification topic")
        .map_err(io)?;

    let site = Site::create(&sdk).await;
    let standby_a = site.subnet("10.0.1.0/24").await;
    let fallback_a = site.subnet("10.0.2.0/24").await;
    let standby_b = site.subnet("10.0.3.0/24").await;
    let fleet: [(&str, &str, Vec<&str>, u32); 5] = [
        (SERVER_A, "pos-db", vec![standby_a.as_str(), fallback_a.as_str()], 1),
        (SERVER_A, "pos-app", vec![standby_a.as_str(), fallback_a.as_str()], 10),
        (SERVER_A, "kiosk", vec!["subnet-0000000000000dead", fallback_a.as_str()], 50),
        (SERVER_B, "clinic-records", vec![standby_b.as_str()], 1),
        (SERVER_B, "imaging", vec![standby_b.as_str()], 10),
    ];
    for (server, name, subnets, priority) in &fleet {
        site.declare(server, name, subnets, *priority).await;
    }
    step(out, started, &format!("fleet: server A {SERVER_A} (3 workloads), server B {SERVER_B} (2 workloads)"))
        .map_err(io)?;
    writeln!(out, "           kiosk's preferred standby subnet is gone, so it must use its fallback").map_err(io)?;

    step(out, started, "server A loses its service link: its ConnectedStatus alarm goes to ALARM").map_err(io)?;
    let down = alarm_event("outposts-ha-store-a", SERVER_A, "OK", "ALARM", &format_timestamp(now()));
    let outcome = stack.alarm(&down).await.map_err(|e| e.to_string())?;
    step(out, started, &format!("alarm-handler: {outcome:?}")).map_err(io)?;
    let delivered = stack.deliver().await;
    if !delivered.handler_errors.is_empty() {
        return Err(format!("handlers failed: {:?}", delivered.handler_errors));
    }
    for r in &delivered.relaunch_reports {
        step(out, started, &format!("relaunch: launched {:?}, failed {:?}", r.launched, r.failed)).map_err(io)?;
    }

    // Redelivered, as EventBridge may: nothing is launched twice.
    stack.alarm(&down).await.map_err(|e| e.to_string())?;
    stack.deliver().await;
    step(out, started, "the same alarm event delivered again: no second launch").map_err(io)?;

    step(out, started, "server A reconnects: alarm back to OK").map_err(io)?;
    let back = alarm_event("outposts-ha-store-a", SERVER_A, "ALARM", "OK", &format_timestamp(now()));
    stack.alarm(&back).await.map_err(|e| e.to_string())?;
    stack.deliver().await;

    let notes = stack.notifications().await;
    writeln!(out, "\nNotifications, as the operator reads them ({}):", notes.len()).map_err(io)?;
    for n in &notes {
        let summary: Vec<&str> = n.body.split("\n\n--- event (JSON)").next().unwrap_or_default().lines().collect();
        writeln!(out, "\n  Subject: {}", n.subject).map_err(io)?;
        for line in summary {
            writeln!(out, "  | {line}").map_err(io)?;
        }
    }

    let mut rows: Vec<SummaryRow> = site
        .replacements()
        .await
        .iter()
        .map(|i| SummaryRow {
            workload: tag_of(i, tag::WORKLOAD).unwrap_or_default().to_string(),
            replacement: i.instance_id().unwrap_or_default().to_string(),
            subnet: i.subnet_id().unwrap_or_default().to_string(),
        })
        .collect();
    rows.sort_by(|a, b| a.workload.cmp(&b.workload));
    writeln!(out, "\nSummary").map_err(io)?;
    writeln!(out, "  {:<16} {:<22} {:<26}", "workload", "replacement", "subnet").map_err(io)?;
    for r in &rows {
        writeln!(out, "  {:<16} {:<22} {:<26}", r.workload, r.replacement, r.subnet).map_err(io)?;
    }
    step(out, started, "done; stopping the emulator").map_err(io)?;
    drop(moto);
    Ok(Summary { rows, notifications: notes.into_iter().map(|n| n.subject).collect() })
}
