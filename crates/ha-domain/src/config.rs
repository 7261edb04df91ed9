//! Configuration from environment variables, read once at cold start.

use std::str::FromStr;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name} is '{value}': {expected}")]
    Malformed { name: &'static str, value: String, expected: &'static str },
}

/// Reads variables through a lookup function so tests need not touch the process environment.
pub struct EnvReader<F: Fn(&str) -> Option<String>> {
    lookup: F,
}

impl EnvReader<fn(&str) -> Option<String>> {
    pub fn process() -> Self {
        EnvReader { lookup: |k| std::env::var(k).ok() }
    }
}

impl EnvReader<Box<dyn Fn(&str) -> Option<String>>> {
    /// A fixed set of variables, for tests.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        EnvReader { lookup: Box::new(move |k| map.get(k).cloned()) }
    }
}

/// Where incidents are kept and announced: shared by the functions that write the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentStore {
    pub ledger_table: String,
    pub event_bus_name: String,
    pub retention_days: u32,
}

impl IncidentStore {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &EnvReader<F>) -> Result<Self, ConfigError> {
        Ok(IncidentStore {
            ledger_table: env.required("LEDGER_TABLE")?,
            event_bus_name: env.required("EVENT_BUS_NAME")?,
            retention_days: env.number("INCIDENT_RETENTION_DAYS", 90, 1..=3650, "expected days from 1 to 3650")?,
        })
    }
}

impl<F: Fn(&str) -> Option<String>> EnvReader<F> {
    pub fn with(lookup: F) -> Self {
        EnvReader { lookup }
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        match (self.lookup)(name).map(|v| v.trim().to_string()) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ConfigError::Missing(name)),
        }
    }

    /// The variable as set, even when set to the empty string; `None` when unset.
    pub fn raw(&self, name: &'static str) -> Option<String> {
        (self.lookup)(name).map(|v| v.trim().to_string())
    }

    pub fn optional(&self, name: &'static str, default: &str) -> String {
        match (self.lookup)(name).map(|v| v.trim().to_string()) {
            Some(v) if !v.is_empty() => v,
            _ => default.to_string(),
        }
    }

    /// A number within `range`, or `default` when unset.
    pub fn number<T>(
        &self,
        name: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
        expected: &'static str,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + Copy,
    {
        let Some(raw) = (self.lookup)(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) else {
            return Ok(default);
        };
        match raw.parse::<T>() {
            Ok(v) if range.contains(&v) => Ok(v),
            _ => Err(ConfigError::Malformed { name, value: raw, expected }),
        }
    }

    /// An ARN of the given service and resource type prefix (`arn:aws:sns:…`).
    pub fn arn(&self, name: &'static str, service: &str) -> Result<String, ConfigError> {
        let v = self.required(name)?;
        let parts: Vec<&str> = v.splitn(6, ':').collect();
        if parts.len() == 6 && parts[0] == "arn" && parts[2] == service && !parts[5].is_empty() {
            Ok(v)
        } else {
            Err(ConfigError::Malformed { name, value: v, expected: "expected an ARN of this service" })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incident_store_names_the_missing_or_bad_variable() {
        let err = IncidentStore::from_env(&EnvReader::from_pairs(&[("EVENT_BUS_NAME", "b")])).unwrap_err();
        assert_eq!(err.to_string(), "environment variable LEDGER_TABLE is required but not set");
        let err = IncidentStore::from_env(&EnvReader::from_pairs(&[
            ("LEDGER_TABLE", "t"),
            ("EVENT_BUS_NAME", "b"),
            ("INCIDENT_RETENTION_DAYS", "0"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("INCIDENT_RETENTION_DAYS"), "{err}");
        let ok =
            IncidentStore::from_env(&EnvReader::from_pairs(&[("LEDGER_TABLE", "t"), ("EVENT_BUS_NAME", "b")])).unwrap();
        assert_eq!(ok.retention_days, 90);
    }

    #[test]
    fn required_and_optional() {
        let r = EnvReader::from_pairs(&[("A", " x "), ("EMPTY", "  ")]);
        assert_eq!(r.required("A"), Ok("x".into()));
        assert_eq!(r.required("EMPTY"), Err(ConfigError::Missing("EMPTY")));
        assert_eq!(r.required("NOPE"), Err(ConfigError::Missing("NOPE")));
        assert_eq!(r.optional("NOPE", "d"), "d");
    }

    #[test]
    fn numbers_are_range_checked_and_named() {
        let r = EnvReader::from_pairs(&[("N", "0"), ("M", "many"), ("OK", "7")]);
        let err = r.number::<u32>("N", 10, 1..=100, "1 to 100").unwrap_err();
        assert!(err.to_string().contains("N") && err.to_string().contains("1 to 100"), "{err}");
        assert!(r.number::<u32>("M", 10, 1..=100, "1 to 100").is_err());
        assert_eq!(r.number::<u32>("OK", 10, 1..=100, "1 to 100"), Ok(7));
        assert_eq!(r.number::<u32>("UNSET", 10, 1..=100, "1 to 100"), Ok(10));
    }

    #[test]
    fn arns() {
        let r = EnvReader::from_pairs(&[("T", "arn:aws:sns:eu-west-1:123456789012:ops"), ("B", "ops")]);
        assert!(r.arn("T", "sns").is_ok());
        assert!(r.arn("T", "sqs").is_err());
        assert!(r.arn("B", "sns").is_err());
    }
}
