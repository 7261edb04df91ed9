//! DynamoDB's item operations on a map: a conditional write is evaluated and applied
//! atomically (the lock is held for both), reads are strongly consistent, an update of an
//! absent item creates it when its condition allows (as UpdateItem does).

use super::{Sim, World};
use async_trait::async_trait;
use ha_domain::error::AwsFailure;
use ha_domain::ledger::{WorkloadStatus, ALARM_STATE, WORKLOAD_PREFIX};
use ha_ports::table::{apply, Change, Condition, Item, Table, Value, PK, SK};
use std::sync::Arc;

pub struct SimTable(pub Arc<Sim>);

fn key(pk: &str, sk: &str) -> (String, String) {
    (pk.to_string(), sk.to_string())
}

/// What a call is about, for a latency model's timed spans: `SERVER/STATE`, `INCIDENT/META`.
fn about(pk: &str, sk: &str) -> Option<String> {
    let kind = pk.split('#').next().unwrap_or(pk);
    let item = sk.split('#').take(2).collect::<Vec<_>>().join("#");
    Some(format!("{kind}/{item}"))
}

fn with_key(mut item: Item, pk: &str, sk: &str) -> Item {
    item.insert(PK.into(), Value::S(pk.into()));
    item.insert(SK.into(), Value::S(sk.into()));
    item
}

#[async_trait]
impl Table for SimTable {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, AwsFailure> {
        self.0.enter_labelled("GetItem", about(pk, sk)).await?;
        let item = self.0.world().table.get(&key(pk, sk)).cloned();
        Ok(item)
    }

    async fn put(&self, pk: &str, sk: &str, item: Item, condition: Option<Condition>) -> Result<bool, AwsFailure> {
        self.0.enter_labelled("PutItem", about(pk, sk)).await?;
        let written = {
            let mut w = self.0.world();
            let held = condition.is_some_and(|c| !c.holds(w.table.get(&key(pk, sk))));
            if sk.starts_with("WORKLOAD#") {
                let owner = match item.get("owner") {
                    Some(Value::S(o)) => o.clone(),
                    _ => String::new(),
                };
                w.note(format!("claim {sk} for {owner}: {}", if held { "held" } else { "won" }));
            }
            if !held {
                let before = w.table.insert(key(pk, sk), with_key(item, pk, sk));
                if World::tracks(sk) {
                    w.written(pk, sk, before);
                }
            }
            !held
        };
        self.0.leave("PutItem").await?;
        Ok(written)
    }

    async fn update(
        &self,
        pk: &str,
        sk: &str,
        changes: Vec<Change>,
        condition: Option<Condition>,
    ) -> Result<bool, AwsFailure> {
        self.0.enter_labelled("UpdateItem", about(pk, sk)).await?;
        let written = {
            let mut w = self.0.world();
            let held = condition.is_some_and(|c| !c.holds(w.table.get(&key(pk, sk))));
            if !held {
                let item = w.table.entry(key(pk, sk)).or_insert_with(|| with_key(Item::new(), pk, sk));
                let before = World::tracks(sk).then(|| item.clone());
                apply(item, &changes);
                if before.is_some() {
                    w.written(pk, sk, before);
                }
            }
            !held
        };
        self.0.leave("UpdateItem").await?;
        Ok(written)
    }

    async fn delete(&self, pk: &str, sk: &str, condition: Option<Condition>) -> Result<bool, AwsFailure> {
        self.0.enter_labelled("DeleteItem", about(pk, sk)).await?;
        let written = {
            let mut w = self.0.world();
            let held = condition.is_some_and(|c| !c.holds(w.table.get(&key(pk, sk))));
            if !held {
                if sk.starts_with("WORKLOAD#") {
                    w.note(format!("claim {sk} released"));
                }
                w.table.remove(&key(pk, sk));
            }
            !held
        };
        self.0.leave("DeleteItem").await?;
        Ok(written)
    }

    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, AwsFailure> {
        self.0.enter_labelled("Query", about(pk, sk_prefix)).await?;
        let w = self.0.world();
        Ok(w.table
            .range(key(pk, "")..)
            .take_while(|((p, _), _)| p == pk)
            .filter(|((_, s), _)| s.starts_with(sk_prefix))
            .map(|(_, item)| item.clone())
            .collect())
    }
}

impl World {
    /// The items whose writes invariant I11 follows (the others are not copied for it).
    fn tracks(sk: &str) -> bool {
        sk == ALARM_STATE || sk.starts_with(WORKLOAD_PREFIX)
    }

    /// What invariant I11 needs from a write: when a server was seen back, when a claim was taken.
    fn written(&mut self, pk: &str, sk: &str, before: Option<Item>) {
        let now = self.now_ms();
        let Some(after) = self.table.get(&key(pk, sk)) else { return };
        let field = |item: Option<&Item>, k: &str| item.and_then(|i| i.get(k)).cloned();
        if sk == ALARM_STATE {
            let up = field(Some(after), "up") == Some(Value::Bool(true));
            let was_up = field(before.as_ref(), "up") == Some(Value::Bool(true));
            if up && !was_up {
                self.seen_up_ms.insert(pk.to_string(), now);
            } else if !up {
                self.seen_up_ms.remove(pk);
            }
        } else if sk.starts_with(WORKLOAD_PREFIX) {
            let launching = field(Some(after), "status") == Some(Value::S(WorkloadStatus::Launching.as_str().into()));
            if launching && field(Some(after), "owner") != field(before.as_ref(), "owner") {
                self.claimed_ms.insert((pk.to_string(), sk.to_string()), now);
            }
        }
    }
}
