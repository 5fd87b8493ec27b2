//! The change pipeline: deploy, update and delete, what they ask for
//! ([`DeploySpec`], [`WasiCap`], [`EnvWithoutWasi`]), on whose behalf
//! ([`Changer`]), one change per name at a time (`ChangeGuard`), and the
//! install itself: check the secrets, pull, validate and stage the module
//! side by side, commit to the store, then swap it into the deployed map.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use super::error::{SecretError, ServiceError};
use super::secrets::check_env_outside_secret_namespace;
use super::{FunctionService, lock};
use crate::function::{
    AnswerSettings, FunctionEntry, FunctionLimits, FunctionMetadata, FunctionName, ManagedBy,
};
use crate::metrics::ChangeOp;
use crate::registry::{ImageReference, RegistryError};
use crate::runtime::{Abi, Runtime, RuntimeError};
use crate::secret::SecretName;
use crate::store::FunctionRecord;

/// What a deploy or update asks for, validated: built only by
/// [`DeploySpec::new`], so a deploy through the REST API, the provider API
/// or the functions file passes the same checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploySpec {
    image: ImageReference,
    wasi_cap: WasiCap,
    limits: FunctionLimits,
    metadata: FunctionMetadata,
    /// What an `env` given to a function that turns out not to be a WASI
    /// function means: an error (the REST API and the functions file ask
    /// for it explicitly), or nothing (the provider API, whose `envVars`
    /// OpenFaaS stacks set for every function, `write_debug` and the like).
    env_without_wasi: EnvWithoutWasi,
}

impl DeploySpec {
    /// Checks what a deploy asks for: each limit that is set
    /// ([`FunctionLimits::validate`]), the metadata
    /// ([`FunctionMetadata::validate`]: the secret list, `calls`, the sizes
    /// of the labels and annotations) and the annotations that say how the
    /// function's output is answered ([`AnswerSettings::from_annotations`]).
    /// The `env` is an `Environment`, checked when it was built; whether it
    /// may set `SECRET_*` variables, and whether the function's module fits
    /// what is asked, are the deploy's to check (its errors are not the
    /// request's).
    ///
    /// # Errors
    /// A message naming the field and the rule it breaks, which either API
    /// answers with a 400.
    pub fn new(
        image: ImageReference,
        wasi_cap: WasiCap,
        limits: FunctionLimits,
        metadata: FunctionMetadata,
        env_without_wasi: EnvWithoutWasi,
    ) -> Result<Self, String> {
        limits.validate()?;
        metadata.validate()?;
        // The content type and HTTP answer mode, checked now; calls read them.
        AnswerSettings::from_annotations(&metadata.annotations)?;
        Ok(Self {
            image,
            wasi_cap,
            limits,
            metadata,
            env_without_wasi,
        })
    }

    /// The image to pull.
    pub fn image(&self) -> &ImageReference {
        &self.image
    }

    /// Whether the function runs as a WASI command.
    pub fn wasi_cap(&self) -> WasiCap {
        self.wasi_cap
    }

    /// Its own limits; those not set are the server's defaults.
    pub fn limits(&self) -> &FunctionLimits {
        &self.limits
    }

    /// Its secrets, labels, annotations, `calls` and `env`.
    pub fn metadata(&self) -> &FunctionMetadata {
        &self.metadata
    }
}

/// What an `env` given to a function that is not a WASI function means
/// (see [`DeploySpec`]'s field of that name).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EnvWithoutWasi {
    #[default]
    Refused,
    Dropped,
}

/// Who asks for a change: the API, or an owner of its own such as the
/// functions file. The API may not update or delete what another owner
/// manages; an owner takes over a function of the API's when it names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Changer {
    Api,
    Owner(ManagedBy),
}

impl Changer {
    fn managed_by(self) -> Option<ManagedBy> {
        match self {
            Self::Api => None,
            Self::Owner(owner) => Some(owner),
        }
    }

    /// The secrets an update by the functions file keeps: the file has no
    /// `secrets` field (values do not belong in a ConfigMap), so its update
    /// of a function the API deployed with secrets (a takeover), or of one
    /// that kept them so, would otherwise strip them, and nothing could give
    /// them back (the API may not change a function the file manages). A
    /// function's secrets therefore stay what its last API deploy said;
    /// `None` when there are none to keep or the update lists its own.
    fn secrets_kept_from(
        self,
        existing: &FunctionEntry,
        spec: &DeploySpec,
    ) -> Option<Vec<SecretName>> {
        let keeps = self == Self::Owner(ManagedBy::FunctionsFile)
            && spec.metadata.secrets.is_empty()
            && !existing.metadata.secrets.is_empty();
        keeps.then(|| existing.metadata.secrets.clone())
    }

    /// Refuses an API change of a function another owner manages.
    fn may_change(self, existing: &FunctionEntry) -> Result<(), ServiceError> {
        match (self, existing.managed_by) {
            (Self::Api, Some(ManagedBy::FunctionsFile)) => Err(ServiceError::ManagedByFile {
                name: existing.func_name.clone(),
            }),
            _ => Ok(()),
        }
    }
}

/// Whether a function runs as a WASI command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WasiCap {
    /// The plain ABIs (string or numeric): the REST API's `wasi_cap: false`.
    Off,
    /// WASI preview 1: the REST API's `wasi_cap: true`.
    On,
    /// WASI when the module imports `wasi_snapshot_preview1`, else the plain
    /// ABIs: for OpenFaaS deploys, which have no such field.
    FromImports,
}

impl From<bool> for WasiCap {
    fn from(wasi_cap: bool) -> Self {
        if wasi_cap { Self::On } else { Self::Off }
    }
}

/// Marks a name as changing for as long as it lives.
struct ChangeGuard<'a> {
    changing: &'a Mutex<HashSet<FunctionName>>,
    name: FunctionName,
}

impl Drop for ChangeGuard<'_> {
    fn drop(&mut self) {
        lock(self.changing).remove(&self.name);
    }
}

impl FunctionService {
    fn begin_change(&self, name: &FunctionName) -> Result<ChangeGuard<'_>, ServiceError> {
        if !lock(&self.changing).insert(name.clone()) {
            return Err(ServiceError::ChangeInProgress { name: name.clone() });
        }
        Ok(ChangeGuard {
            changing: &self.changing,
            name: name.clone(),
        })
    }

    /// Pulls, validates and stores a new function, then makes it invocable.
    ///
    /// # Errors
    /// [`ServiceError::AlreadyDeployed`], or what pulling, validating or storing reported.
    pub fn deploy(
        &self,
        name: &FunctionName,
        spec: &DeploySpec,
    ) -> Result<FunctionEntry, ServiceError> {
        self.deploy_as(Changer::Api, name, spec)
    }

    /// [`deploy`](Self::deploy) on behalf of `changer`, whom the entry records.
    ///
    /// # Errors
    /// As [`deploy`](Self::deploy).
    pub fn deploy_as(
        &self,
        changer: Changer,
        name: &FunctionName,
        spec: &DeploySpec,
    ) -> Result<FunctionEntry, ServiceError> {
        self.counted(ChangeOp::Deploy, || {
            let _guard = self.begin_change(name)?;
            if let Ok(existing) = self.get(name) {
                return Err(ServiceError::AlreadyDeployed {
                    name: name.clone(),
                    image: Box::new(existing.entry.func_image_name.clone()),
                });
            }
            self.install(name, spec, changer.managed_by())
        })
    }

    /// Replaces a deployed function's image. Calls already running finish on
    /// the old module; calls that start after the answer use the new one.
    ///
    /// # Errors
    /// [`ServiceError::NotDeployed`], or what pulling, validating or storing reported.
    pub fn update(
        &self,
        name: &FunctionName,
        spec: &DeploySpec,
    ) -> Result<FunctionEntry, ServiceError> {
        self.update_as(Changer::Api, name, spec)
    }

    /// [`update`](Self::update) on behalf of `changer`, whom the entry then
    /// records (an owner takes over a function the API deployed).
    ///
    /// # Errors
    /// As [`update`](Self::update), and [`ServiceError::ManagedByFile`] when
    /// the API names a function the functions file manages.
    pub fn update_as(
        &self,
        changer: Changer,
        name: &FunctionName,
        spec: &DeploySpec,
    ) -> Result<FunctionEntry, ServiceError> {
        self.counted(ChangeOp::Update, || {
            let _guard = self.begin_change(name)?;
            let old = self.get(name)?;
            changer.may_change(&old.entry)?;
            let kept;
            let spec = match changer.secrets_kept_from(&old.entry, spec) {
                Some(secrets) => {
                    log::info!(
                        "{name}: the functions file's update keeps the secrets it was deployed with ({}); the file has no secrets field",
                        secrets
                            .iter()
                            .map(SecretName::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    kept = DeploySpec {
                        image: spec.image.clone(),
                        wasi_cap: spec.wasi_cap,
                        limits: spec.limits,
                        metadata: FunctionMetadata {
                            secrets,
                            ..spec.metadata.clone()
                        },
                        env_without_wasi: spec.env_without_wasi,
                    };
                    &kept
                }
                None => spec,
            };
            let entry = self.install(name, spec, changer.managed_by())?;
            log::info!(
                "updated {name}: {}@{} -> {}@{}",
                old.entry.func_image_name,
                old.entry.image_digest_text(),
                entry.func_image_name,
                entry.image_digest_text()
            );
            Ok(entry)
        })
    }

    /// Runs a change and counts it by its result.
    fn counted<T>(
        &self,
        op: ChangeOp,
        change: impl FnOnce() -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        let result = change();
        let outcome = match &result {
            Ok(_) => "success",
            Err(ServiceError::NotDeployed { .. }) => "not_found",
            Err(
                ServiceError::AlreadyDeployed { .. }
                | ServiceError::ChangeInProgress { .. }
                | ServiceError::ManagedByFile { .. },
            ) => "conflict",
            Err(ServiceError::Registry(_)) => "registry_error",
            Err(ServiceError::Runtime(_)) => "invalid_module",
            Err(ServiceError::Store(_)) => "store_error",
            Err(ServiceError::Secret(_)) => "invalid_secrets",
        };
        self.change_metrics.count_change(op, outcome);
        result
    }

    fn install(
        &self,
        name: &FunctionName,
        spec: &DeploySpec,
        managed_by: Option<ManagedBy>,
    ) -> Result<FunctionEntry, ServiceError> {
        let DeploySpec {
            image,
            wasi_cap,
            limits,
            metadata,
            env_without_wasi,
        } = spec;
        // Before the pull, so that a missing secret costs no download; again
        // at the commit, under the lock that delete takes.
        self.check_secrets_exist(name, &metadata.secrets)?;
        check_env_outside_secret_namespace(name, metadata)?;
        let started = Instant::now();
        let pulled = self.registry.pull_using(image, &*self.blobs);
        let pulled_at = started.elapsed();
        self.change_metrics.record_pull(
            pulled_at,
            pulled
                .as_ref()
                .map(|pulled| pulled.layer_bytes)
                .map_err(RegistryError::metric_label),
        );
        let mut pulled = pulled?;
        let wasm = &pulled.wasm.contents;
        let wasi_cap = match wasi_cap {
            WasiCap::Off => false,
            WasiCap::On => true,
            WasiCap::FromImports => Runtime::imports_wasi(wasm),
        };
        // Validating and writing (with its fsync) take similar time: overlap them.
        let (staged, compiled) = std::thread::scope(|scope| {
            let staging = scope.spawn(|| {
                let staged = self.store.stage(name, wasm);
                (staged, started.elapsed())
            });
            let compiled = self.runtime.prepare(name, wasi_cap, wasm);
            let validated_at = started.elapsed();
            let (staged, staged_at) = staging
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            log::debug!(
                "install {name}: validated {:?} and staged {:?} after the pull",
                validated_at.saturating_sub(pulled_at),
                staged_at.saturating_sub(pulled_at)
            );
            (staged, compiled)
        });
        let compiled = compiled?;
        if compiled.imports_calls() && metadata.calls.is_empty() {
            return Err(RuntimeError::CallsNotListed {
                function: name.to_string(),
            }
            .into());
        }
        let drop_env = !wasi_cap && !metadata.env.is_empty();
        if drop_env && *env_without_wasi == EnvWithoutWasi::Refused {
            return Err(RuntimeError::EnvWithoutWasi {
                function: name.to_string(),
            }
            .into());
        }
        if drop_env {
            log::info!(
                "deploy of {name}: envVars ignored (only WASI functions have an environment)"
            );
        }
        let staged = staged?;
        if !metadata.secrets.is_empty() && !matches!(compiled.abi(), Abi::Wasi) {
            return Err(SecretError::NeedsWasi {
                function: name.clone(),
            }
            .into());
        }
        let validated_at = started.elapsed();
        let secrets_in_use = lock(&self.secrets_in_use);
        self.check_secrets_exist(name, &metadata.secrets)?;
        let entry = self.store.commit(
            staged,
            FunctionRecord {
                image: image.clone(),
                image_digest: pulled.digest.clone(),
                wasi_cap,
                limits: *limits,
                managed_by,
                metadata: if drop_env {
                    FunctionMetadata {
                        env: Default::default(),
                        ..metadata.clone()
                    }
                } else {
                    metadata.clone()
                },
            },
        )?;
        log::info!(
            "installed function {name} from {image} ({}, {} from the image, {} bytes, {})",
            pulled.digest,
            pulled.wasm.path,
            pulled.wasm.contents.len(),
            compiled.describe_abi()
        );
        // A fixed format (docs/development.md, "Benchmarks") that
        // benches/cold_start.sh reads: milliseconds, three decimals.
        log::debug!(
            "install phases: function={name} pull_ms={:.3} stage_ms={:.3} commit_ms={:.3}",
            pulled_at.as_secs_f64() * 1e3,
            (validated_at - pulled_at).as_secs_f64() * 1e3,
            (started.elapsed() - validated_at).as_secs_f64() * 1e3
        );
        let replaced = self.get(name).ok();
        // Translated in the background from now on; the replaced version's
        // warming, if still queued, is cancelled.
        self.runtime
            .warm(&compiled, std::mem::take(&mut pulled.wasm.contents));
        let deployed = self.deployed_function(
            entry.clone(),
            compiled,
            replaced.as_deref(),
            SystemTime::now(),
        );
        self.deployed.insert(name.clone(), Arc::new(deployed));
        if let Some(replaced) = replaced {
            replaced.compiled.stop_warming();
        }
        drop(secrets_in_use);
        self.blobs.keep(name, &pulled.referenced, &pulled.fetched);
        Ok(entry)
    }

    /// Removes a function and its files. Calls already running finish.
    ///
    /// # Errors
    /// [`ServiceError::NotDeployed`], or a store failure.
    pub fn delete(&self, name: &FunctionName) -> Result<(), ServiceError> {
        self.delete_as(Changer::Api, name)
    }

    /// [`delete`](Self::delete) on behalf of `changer`.
    ///
    /// # Errors
    /// As [`delete`](Self::delete), and [`ServiceError::ManagedByFile`] when
    /// the API names a function the functions file manages.
    pub fn delete_as(&self, changer: Changer, name: &FunctionName) -> Result<(), ServiceError> {
        self.counted(ChangeOp::Delete, || {
            let _guard = self.begin_change(name)?;
            changer.may_change(&self.get(name)?.entry)?;
            self.store.remove(name)?;
            if let Some(deleted) = self.deployed.remove(name) {
                deleted.compiled.stop_warming();
            }
            self.blobs.forget(name);
            log::info!("deleted function {name}");
            Ok(())
        })
    }
}
