//! The ledger's table: DynamoDB's item operations as the ledger uses them. A write's
//! condition is data ([`Condition`]), so the SDK adapter renders it into a condition
//! expression and the simulator's table evaluates it, from the same value.

use async_trait::async_trait;
use ha_domain::error::AwsFailure;
use std::collections::BTreeMap;

/// An attribute value, as far as the ledger uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    S(String),
    N(i64),
    Bool(bool),
}

/// One item, `pk` and `sk` included.
pub type Item = BTreeMap<String, Value>;

pub const PK: &str = "pk";
pub const SK: &str = "sk";

/// A write's condition, evaluated as DynamoDB does: `=` and `<=` against an attribute the
/// item lacks are false, `<>` is true (a missing value is not equal to any value). The
/// ledger still writes "absent or different" out with `FieldAbsent` where it means it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `attribute_exists(pk)`: the item is there.
    ItemExists,
    /// `attribute_not_exists(pk)`: no such item.
    ItemAbsent,
    FieldAbsent(String),
    Equals(String, Value),
    Differs(String, Value),
    /// `#f <= :n` on a number.
    AtMost(String, i64),
    And(Vec<Condition>),
    Or(Vec<Condition>),
}

/// One change an update makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Set(String, Value),
    /// `ADD field :n` on a number (a missing number counts from 0).
    Add(String, i64),
    /// `REMOVE field`.
    Remove(String),
}

impl Condition {
    pub fn equals(field: &str, value: Value) -> Condition {
        Condition::Equals(field.to_string(), value)
    }

    pub fn differs(field: &str, value: Value) -> Condition {
        Condition::Differs(field.to_string(), value)
    }

    pub fn field_absent(field: &str) -> Condition {
        Condition::FieldAbsent(field.to_string())
    }

    /// Whether the condition holds for the item as it is (`None`: no such item).
    pub fn holds(&self, item: Option<&Item>) -> bool {
        let field = |f: &str| item.and_then(|i| i.get(f));
        match self {
            Condition::ItemExists => item.is_some(),
            Condition::ItemAbsent => item.is_none(),
            Condition::FieldAbsent(f) => field(f).is_none(),
            Condition::Equals(f, v) => field(f) == Some(v),
            Condition::Differs(f, v) => field(f) != Some(v),
            Condition::AtMost(f, n) => matches!(field(f), Some(Value::N(x)) if x <= n),
            Condition::And(all) => all.iter().all(|c| c.holds(item)),
            Condition::Or(any) => any.iter().any(|c| c.holds(item)),
        }
    }

    /// The condition as a DynamoDB condition expression, with its `#n`/`:v` placeholders
    /// added to `names` and `values`.
    pub fn render(&self, names: &mut BTreeMap<String, String>, values: &mut BTreeMap<String, Value>) -> String {
        let name = |f: &str, names: &mut BTreeMap<String, String>| {
            let placeholder = format!("#n{}", names.len());
            let existing = names.iter().find(|(_, v)| v.as_str() == f).map(|(k, _)| k.clone());
            existing.unwrap_or_else(|| {
                names.insert(placeholder.clone(), f.to_string());
                placeholder
            })
        };
        let value = |v: &Value, values: &mut BTreeMap<String, Value>| {
            let placeholder = format!(":c{}", values.len());
            values.insert(placeholder.clone(), v.clone());
            placeholder
        };
        match self {
            Condition::ItemExists => format!("attribute_exists({PK})"),
            Condition::ItemAbsent => format!("attribute_not_exists({PK})"),
            Condition::FieldAbsent(f) => format!("attribute_not_exists({})", name(f, names)),
            Condition::Equals(f, v) => format!("{} = {}", name(f, names), value(v, values)),
            Condition::Differs(f, v) => format!("{} <> {}", name(f, names), value(v, values)),
            Condition::AtMost(f, n) => format!("{} <= {}", name(f, names), value(&Value::N(*n), values)),
            Condition::And(all) => join(all, " AND ", names, values),
            Condition::Or(any) => join(any, " OR ", names, values),
        }
    }
}

fn join(
    parts: &[Condition],
    op: &str,
    names: &mut BTreeMap<String, String>,
    values: &mut BTreeMap<String, Value>,
) -> String {
    let rendered: Vec<String> = parts.iter().map(|c| format!("({})", c.render(names, values))).collect();
    rendered.join(op)
}

/// Applies `changes` to `item` as UpdateItem does.
pub fn apply(item: &mut Item, changes: &[Change]) {
    for change in changes {
        match change {
            Change::Set(f, v) => {
                item.insert(f.clone(), v.clone());
            }
            Change::Add(f, n) => {
                let old = match item.get(f) {
                    Some(Value::N(old)) => *old,
                    _ => 0,
                };
                item.insert(f.clone(), Value::N(old + n));
            }
            Change::Remove(f) => {
                item.remove(f);
            }
        }
    }
}

/// DynamoDB's item operations, each strongly consistent. A write returns `Ok(false)` when
/// its condition held it back (ConditionalCheckFailed).
#[async_trait]
pub trait Table: Send + Sync {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, AwsFailure>;
    /// Replaces the whole item (`pk`/`sk` are added to it).
    async fn put(&self, pk: &str, sk: &str, item: Item, condition: Option<Condition>) -> Result<bool, AwsFailure>;
    /// UpdateItem: like DynamoDB, creates the item when it is absent and the condition allows.
    async fn update(
        &self,
        pk: &str,
        sk: &str,
        changes: Vec<Change>,
        condition: Option<Condition>,
    ) -> Result<bool, AwsFailure>;
    async fn delete(&self, pk: &str, sk: &str, condition: Option<Condition>) -> Result<bool, AwsFailure>;
    /// Every item under `pk` whose sort key starts with `sk_prefix`, in sort-key order.
    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, AwsFailure>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, Value)]) -> Item {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn conditions_hold_as_dynamodb_evaluates_them() {
        let it = item(&[(PK, Value::S("a".into())), ("owner", Value::S("me".into()))]);
        let me = Value::S("me".into());
        let cases = [
            (Condition::ItemExists, None, false),
            (Condition::ItemExists, Some(&it), true),
            (Condition::ItemAbsent, None, true),
            (Condition::equals("owner", me.clone()), Some(&it), true),
            (Condition::equals("owner", me.clone()), None, false),
            (Condition::differs("owner", me.clone()), Some(&it), false),
            // A missing attribute is not equal to anything.
            (Condition::differs("marker", me.clone()), Some(&it), true),
            (
                Condition::Or(vec![Condition::field_absent("marker"), Condition::differs("marker", me.clone())]),
                Some(&it),
                true,
            ),
            (Condition::And(vec![Condition::ItemExists, Condition::field_absent("owner")]), Some(&it), false),
        ];
        for (condition, subject, want) in cases {
            assert_eq!(condition.holds(subject), want, "{condition:?} on {subject:?}");
        }
    }

    #[test]
    fn conditions_render_with_placeholders() {
        let (mut names, mut values) = (BTreeMap::new(), BTreeMap::new());
        let c = Condition::And(vec![
            Condition::ItemExists,
            Condition::Or(vec![
                Condition::field_absent("status"),
                Condition::differs("status", Value::S("closed".into())),
            ]),
        ]);
        assert_eq!(
            c.render(&mut names, &mut values),
            "(attribute_exists(pk)) AND ((attribute_not_exists(#n0)) OR (#n0 <> :c0))"
        );
        assert_eq!(names.get("#n0").map(String::as_str), Some("status"));
        assert_eq!(values.get(":c0"), Some(&Value::S("closed".into())));
    }

    #[test]
    fn add_counts_from_zero() {
        let mut it = Item::new();
        apply(&mut it, &[Change::Add("takeovers".into(), 1), Change::Add("takeovers".into(), 1)]);
        assert_eq!(it.get("takeovers"), Some(&Value::N(2)));
    }
}
