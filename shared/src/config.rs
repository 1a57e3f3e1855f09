//! Configuration from the environment, checked once at start-up with a
//! message that names the variable and the values it takes.

use std::env;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageType {
    /// In-process, seeded with the built-in generated data set.
    Memory,
    DynamoDb,
}

/// How the people data is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeopleConfig {
    pub storage: StorageType,
    /// Memory storage: how many generated people to start with.
    pub seed_people: usize,
    pub seed: u64,
}

impl PeopleConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| env::var(k).ok())
    }

    /// `from_env` over any lookup, for tests.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let storage = match get("STORAGE_TYPE").as_deref() {
            None | Some("memory") => StorageType::Memory,
            Some("dynamodb") => StorageType::DynamoDb,
            Some(other) => {
                return Err(ConfigError {
                    variable: "STORAGE_TYPE",
                    message: format!("{other:?} is not one of: memory, dynamodb"),
                });
            }
        };
        Ok(Self {
            storage,
            seed_people: number(&get, "SEED_PEOPLE", 100_000)?,
            seed: number(&get, "SEED", 42)?,
        })
    }
}

fn number<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match get(variable) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| ConfigError {
            variable,
            message: format!("{v:?} is not a whole number"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<PeopleConfig, ConfigError> {
        PeopleConfig::from_lookup(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_to_memory() {
        let c = config(&[]).unwrap();
        assert_eq!(c.storage, StorageType::Memory);
        assert_eq!(c.seed_people, 100_000);
    }

    #[test]
    fn wrong_values_name_the_variable() {
        assert_eq!(
            config(&[("STORAGE_TYPE", "s3")]).unwrap_err().variable,
            "STORAGE_TYPE"
        );
        assert_eq!(
            config(&[("SEED_PEOPLE", "many")]).unwrap_err().variable,
            "SEED_PEOPLE"
        );
        assert_eq!(
            config(&[("STORAGE_TYPE", "dynamodb")]).unwrap().storage,
            StorageType::DynamoDb
        );
    }
}
