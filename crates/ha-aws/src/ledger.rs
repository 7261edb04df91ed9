//! The ledger's table in DynamoDB: [`Table`] on the SDK. Conditions arrive as data and are
//! rendered into condition expressions here; every read is strongly consistent.

use crate::failure;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use ha_domain::config::IncidentStore;
use ha_domain::error::AwsFailure;
use ha_ports::table::{Change, Condition, Item, Table, Value, PK, SK};
use ha_ports::Ledger;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

#[derive(Clone)]
pub struct DynamoTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// The ledger a function's configuration names, on DynamoDB.
pub fn ledger_of_store(client: aws_sdk_dynamodb::Client, store: &IncidentStore) -> Ledger {
    Ledger::new(Arc::new(DynamoTable::new(client, &store.ledger_table)), store.retention_days)
}

fn to_attribute(v: &Value) -> AttributeValue {
    match v {
        Value::S(s) => AttributeValue::S(s.clone()),
        Value::N(n) => AttributeValue::N(n.to_string()),
        Value::Bool(b) => AttributeValue::Bool(*b),
    }
}

fn from_item(item: &HashMap<String, AttributeValue>) -> Item {
    item.iter()
        .filter_map(|(k, v)| {
            let value = match v {
                AttributeValue::S(s) => Value::S(s.clone()),
                AttributeValue::N(n) => Value::N(n.parse().ok()?),
                AttributeValue::Bool(b) => Value::Bool(*b),
                _ => return None,
            };
            Some((k.clone(), value))
        })
        .collect()
}

fn key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([(PK.to_string(), AttributeValue::S(pk.into())), (SK.to_string(), AttributeValue::S(sk.into()))])
}

/// A rendered condition: expression, names and values.
struct Rendered {
    expression: Option<String>,
    names: BTreeMap<String, String>,
    values: BTreeMap<String, Value>,
}

fn render(condition: Option<&Condition>) -> Rendered {
    let (mut names, mut values) = (BTreeMap::new(), BTreeMap::new());
    let expression = condition.map(|c| c.render(&mut names, &mut values));
    Rendered { expression, names, values }
}

fn names_of(map: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    (!map.is_empty()).then(|| map.clone().into_iter().collect())
}

fn values_of(map: &BTreeMap<String, Value>) -> Option<HashMap<String, AttributeValue>> {
    (!map.is_empty()).then(|| map.iter().map(|(k, v)| (k.clone(), to_attribute(v))).collect())
}

macro_rules! written {
    ($result:expr, $operation:literal) => {
        match $result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(failure($operation, &e)),
        }
    };
}

impl DynamoTable {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoTable { client, table: table.into() }
    }
}

#[async_trait]
impl Table for DynamoTable {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, AwsFailure> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failure("GetItem", &e))?;
        Ok(out.item().map(from_item))
    }

    async fn put(&self, pk: &str, sk: &str, item: Item, condition: Option<Condition>) -> Result<bool, AwsFailure> {
        let r = render(condition.as_ref());
        let mut attributes: HashMap<String, AttributeValue> =
            item.iter().map(|(k, v)| (k.clone(), to_attribute(v))).collect();
        attributes.extend(key(pk, sk));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attributes))
            .set_condition_expression(r.expression)
            .set_expression_attribute_names(names_of(&r.names))
            .set_expression_attribute_values(values_of(&r.values))
            .send()
            .await;
        written!(put, "PutItem")
    }

    async fn update(
        &self,
        pk: &str,
        sk: &str,
        changes: Vec<Change>,
        condition: Option<Condition>,
    ) -> Result<bool, AwsFailure> {
        let mut r = render(condition.as_ref());
        let (mut sets, mut adds, mut removes) = (Vec::new(), Vec::new(), Vec::new());
        for (i, change) in changes.iter().enumerate() {
            let name = format!("#u{i}");
            let value = format!(":u{i}");
            match change {
                Change::Set(f, v) => {
                    r.names.insert(name.clone(), f.clone());
                    r.values.insert(value.clone(), v.clone());
                    sets.push(format!("{name} = {value}"));
                }
                Change::Add(f, n) => {
                    r.names.insert(name.clone(), f.clone());
                    r.values.insert(value.clone(), Value::N(*n));
                    adds.push(format!("{name} {value}"));
                }
                Change::Remove(f) => {
                    r.names.insert(name.clone(), f.clone());
                    removes.push(name);
                }
            }
        }
        let mut expression = Vec::new();
        if !sets.is_empty() {
            expression.push(format!("SET {}", sets.join(", ")));
        }
        if !adds.is_empty() {
            expression.push(format!("ADD {}", adds.join(", ")));
        }
        if !removes.is_empty() {
            expression.push(format!("REMOVE {}", removes.join(", ")));
        }
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .update_expression(expression.join(" "))
            .set_condition_expression(r.expression)
            .set_expression_attribute_names(names_of(&r.names))
            .set_expression_attribute_values(values_of(&r.values))
            .send()
            .await;
        written!(update, "UpdateItem")
    }

    async fn delete(&self, pk: &str, sk: &str, condition: Option<Condition>) -> Result<bool, AwsFailure> {
        let r = render(condition.as_ref());
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .set_condition_expression(r.expression)
            .set_expression_attribute_names(names_of(&r.names))
            .set_expression_attribute_values(values_of(&r.values))
            .send()
            .await;
        written!(delete, "DeleteItem")
    }

    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, AwsFailure> {
        let request = self.client.query().table_name(&self.table).consistent_read(true);
        let request = if sk_prefix.is_empty() {
            request
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
        } else {
            request
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
                .expression_attribute_values(":prefix", AttributeValue::S(sk_prefix.into()))
        };
        let mut pages = request.into_paginator().send();
        let mut items = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failure("Query", &e))?;
            items.extend(page.items().iter().map(from_item));
        }
        Ok(items)
    }
}
