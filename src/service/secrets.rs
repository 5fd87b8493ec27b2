//! Secrets as the service sees them: creating, replacing and deleting
//! them (never one a deployed function uses), the checks a deploy's
//! secrets and `env` pass, and the values a call gets. Storing them is
//! `store::SecretStore`'s.

use super::error::{SecretError, ServiceError};
use super::{FunctionService, lock};
use crate::function::{FunctionEntry, FunctionMetadata, FunctionName};
use crate::secret::{SECRET_ENV_PREFIX, Secret, SecretName, SecretValue};
use crate::store::{SecretChange, SecretStore};

impl FunctionService {
    pub(super) fn check_secrets_exist(
        &self,
        function: &FunctionName,
        secrets: &[SecretName],
    ) -> Result<(), SecretError> {
        let missing: Vec<SecretName> = secrets
            .iter()
            .filter(|name| !self.secrets.contains(name))
            .cloned()
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(SecretError::Missing {
                function: function.clone(),
                missing,
            })
        }
    }

    /// Every secret's name, sorted (never a value).
    pub fn secret_names(&self) -> Vec<SecretName> {
        self.secrets.names()
    }

    /// Creates or replaces a secret; calls that start after the answer see
    /// the new value. `expect` says whether it must exist already
    /// (`Some(true)`: an update), must not (`Some(false)`: a create), or
    /// either (`None`).
    ///
    /// # Errors
    /// [`SecretError::NotFound`] or [`SecretError::AlreadyExists`] when
    /// `expect` is not met, or a store failure.
    pub fn put_secret(
        &self,
        name: &SecretName,
        value: SecretValue,
        expect: Option<bool>,
    ) -> Result<SecretChange, ServiceError> {
        let _secrets_in_use = lock(&self.secrets_in_use);
        match (expect, self.secrets.contains(name)) {
            (Some(true), false) => {
                return Err(SecretError::NotFound { name: name.clone() }.into());
            }
            (Some(false), true) => {
                return Err(SecretError::AlreadyExists { name: name.clone() }.into());
            }
            _ => {}
        }
        let change = self.secrets.put(name, value)?;
        log::info!(
            "secret {name} {}",
            match change {
                SecretChange::Created => "created",
                SecretChange::Updated => "updated",
            }
        );
        Ok(change)
    }

    /// Deletes a secret no deployed function uses.
    ///
    /// # Errors
    /// [`SecretError::NotFound`], [`SecretError::InUse`] naming the
    /// functions that use it, or a store failure.
    pub fn delete_secret(&self, name: &SecretName) -> Result<(), ServiceError> {
        let _secrets_in_use = lock(&self.secrets_in_use);
        let users: Vec<FunctionName> = self
            .deployed
            .all()
            .iter()
            .filter(|deployed| deployed.entry.metadata.secrets.contains(name))
            .map(|deployed| deployed.entry.func_name.clone())
            .collect();
        if !users.is_empty() {
            return Err(SecretError::InUse {
                name: name.clone(),
                functions: users,
            }
            .into());
        }
        if !self.secrets.remove(name)? {
            return Err(SecretError::NotFound { name: name.clone() }.into());
        }
        log::info!("secret {name} deleted");
        Ok(())
    }
}

/// Refuses an `env` that sets a `SECRET_*` variable: a function cannot tell
/// such a variable from a secret's, so a deploy could hand it a decoy for a
/// secret it is given (or is given later). The whole prefix is refused, not
/// only the names of the function's own secrets: the rule then does not
/// depend on which secrets exist or are listed.
pub(super) fn check_env_outside_secret_namespace(
    function: &FunctionName,
    metadata: &FunctionMetadata,
) -> Result<(), SecretError> {
    let keys: Vec<String> = metadata
        .env
        .variables()
        .keys()
        .filter(|key| key.starts_with(SECRET_ENV_PREFIX))
        .cloned()
        .collect();
    if keys.is_empty() {
        Ok(())
    } else {
        Err(SecretError::EnvInSecretNamespace {
            function: function.clone(),
            keys,
        })
    }
}

/// The values of a function's secrets as they are now.
pub(super) fn secrets_of(
    store: &SecretStore,
    entry: &FunctionEntry,
) -> Result<Vec<Secret>, SecretError> {
    entry
        .metadata
        .secrets
        .iter()
        .map(|name| {
            let value = store.get(name).ok_or_else(|| SecretError::Vanished {
                function: entry.func_name.clone(),
                name: name.clone(),
            })?;
            Ok(Secret {
                name: name.clone(),
                value,
            })
        })
        .collect()
}
