//! Compiled environments: what evaluation reads. Each environment's flags are compiled
//! once per change into an [`EnvironmentSnapshot`] and shared behind an `Arc`, so an
//! evaluation takes a read lock, clones an `Arc` and never touches the store.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use tokio::sync::watch;

use capstan_flags::{CompiledEnvironment, DefinitionError, FlagdDocument};
use capstan_model::{EnvironmentKey, FlagKey, FlagType, ProjectKey};
use capstan_store::{ConfigRecord, EnvironmentState, FlagRecord, Store};
use serde_json::{Map, Value};

use crate::core::error::Failure;
use crate::core::metrics::{FlagCounters, Metrics};
use crate::flags::error::FlagError;

/// One environment as of one revision, ready to evaluate.
pub struct EnvironmentSnapshot {
    pub project: ProjectKey,
    pub environment: EnvironmentKey,
    pub state: EnvironmentState,
    pub engine: CompiledEnvironment,
    /// Per flag: what the API layer needs beside the engine.
    pub flags: HashMap<String, FlagInfo>,
    /// Where each flag's record and configuration sit in `state`.
    positions: HashMap<FlagKey, (usize, Option<usize>)>,
    /// The SDK's copy of the environment, serialised once and shared by every stream.
    sdk_document: OnceLock<Arc<str>>,
}

pub struct FlagInfo {
    pub flag_type: FlagType,
    pub client_visible: bool,
    pub counters: Arc<FlagCounters>,
    /// The variant and value the flag serves remote clients when it is disabled.
    pub off: Option<(String, Value)>,
}

impl EnvironmentSnapshot {
    pub fn revision(&self) -> i64 {
        self.state.environment.revision
    }

    /// What an SDK evaluates locally: the environment's flagd document with its revision
    /// and each flag's type, as JSON text built on first use.
    pub fn sdk_document(&self) -> Arc<str> {
        self.sdk_document
            .get_or_init(|| {
                let mut document = match flagd_json(&self.state) {
                    Value::Object(document) => document,
                    _ => Map::new(),
                };
                let types: Map<String, Value> = self
                    .state
                    .flags
                    .iter()
                    .map(|flag| (flag.key.to_string(), Value::from(flag.flag_type.as_str())))
                    .collect();
                document.insert("project".into(), Value::from(self.project.as_str()));
                document.insert("environment".into(), Value::from(self.environment.as_str()));
                document.insert("revision".into(), Value::from(self.revision()));
                document.insert("types".into(), Value::Object(types));
                Arc::from(Value::Object(document).to_string())
            })
            .clone()
    }

    /// A flag's project-wide record, if the project has the flag.
    pub fn flag(&self, key: &FlagKey) -> Option<&FlagRecord> {
        self.positions
            .get(key)
            .map(|(flag, _)| &self.state.flags[*flag])
    }

    /// A flag's configuration in this environment, if it has one here.
    pub fn config(&self, key: &FlagKey) -> Option<&ConfigRecord> {
        self.positions
            .get(key)
            .and_then(|(_, config)| config.map(|index| &self.state.configs[index]))
    }
}

/// For each flag, its position in `state.flags` and in `state.configs`.
fn positions(state: &EnvironmentState) -> HashMap<FlagKey, (usize, Option<usize>)> {
    let configs: HashMap<&FlagKey, usize> = state
        .configs
        .iter()
        .enumerate()
        .map(|(index, config)| (&config.flag, index))
        .collect();
    state
        .flags
        .iter()
        .enumerate()
        .map(|(index, flag)| (flag.key.clone(), (index, configs.get(&flag.key).copied())))
        .collect()
}

/// The flagd document an environment's state amounts to: its flags' configurations and
/// its segments as `$evaluators`.
pub fn flagd_json(state: &EnvironmentState) -> Value {
    let flags: Map<String, Value> = state
        .configs
        .iter()
        .map(|config| (config.flag.to_string(), config.config.clone()))
        .collect();
    let evaluators: Map<String, Value> = state
        .segments
        .iter()
        .map(|segment| (segment.key.to_string(), segment.rule.clone()))
        .collect();
    let mut document = Map::new();
    document.insert("flags".to_owned(), Value::Object(flags));
    if !evaluators.is_empty() {
        document.insert("$evaluators".to_owned(), Value::Object(evaluators));
    }
    Value::Object(document)
}

/// Checks an environment's state and compiles it. Errors name the path of the bad field.
pub fn compile(state: &EnvironmentState) -> Result<CompiledEnvironment, DefinitionError> {
    let document = FlagdDocument::parse(&flagd_json(state))?;
    check_types(state)?;
    CompiledEnvironment::compile(&document)
}

/// Every variant of a flag must hold a value of the flag's type.
fn check_types(state: &EnvironmentState) -> Result<(), DefinitionError> {
    let types: HashMap<&FlagKey, &FlagRecord> =
        state.flags.iter().map(|flag| (&flag.key, flag)).collect();
    for config in &state.configs {
        let Some(flag) = types.get(&config.flag) else {
            continue;
        };
        let variants = config.config.get("variants").and_then(Value::as_object);
        for (name, value) in variants.into_iter().flatten() {
            if !flag.flag_type.accepts(value) {
                return Err(DefinitionError {
                    path: format!("flags.{}.variants.{name}", flag.key),
                    message: format!(
                        "expected a {} value, found {value}",
                        flag.flag_type.as_str()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// What a disabled flag serves to remote clients, which cannot pass a default of their
/// own: `false` for a boolean flag (its variant whose value is false), the default
/// variant for other types.
fn off_variant(flag_type: FlagType, config: &Value) -> Option<(String, Value)> {
    let variants = config.get("variants")?.as_object()?;
    let (name, value) = match flag_type {
        FlagType::Boolean => variants
            .iter()
            .find(|(_, value)| **value == Value::Bool(false))?,
        _ => {
            let name = config.get("defaultVariant")?.as_str()?;
            (variants.get_key_value(name)?.0, variants.get(name)?)
        }
    };
    Some((name.clone(), value.clone()))
}

/// An environment's current snapshot, which subscribers follow.
type Followed = watch::Sender<Arc<EnvironmentSnapshot>>;

pub struct Environments {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    /// Each environment's current snapshot, in a watch channel: SDK streams subscribe to
    /// it and hear about every new snapshot.
    snapshots: RwLock<HashMap<ProjectKey, HashMap<EnvironmentKey, Followed>>>,
}

impl Environments {
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Environments {
        Environments {
            store,
            metrics,
            snapshots: RwLock::new(HashMap::new()),
        }
    }

    /// The cached snapshot, without going to the store.
    pub fn cached(&self, project: &str, environment: &str) -> Option<Arc<EnvironmentSnapshot>> {
        let snapshots = self
            .snapshots
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        snapshots
            .get(project)?
            .get(environment)
            .map(|sender| sender.borrow().clone())
    }

    /// Follows an environment: the receiver holds the current snapshot and wakes on
    /// every new one.
    pub async fn subscribe(
        &self,
        project: &ProjectKey,
        environment: &EnvironmentKey,
    ) -> Result<watch::Receiver<Arc<EnvironmentSnapshot>>, FlagError> {
        self.get(project, environment).await?;
        let snapshots = self
            .snapshots
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        snapshots
            .get(project.as_str())
            .and_then(|environments| environments.get(environment.as_str()))
            .map(watch::Sender::subscribe)
            .ok_or_else(|| FlagError::not_found("environment", environment))
    }

    /// The revision of every environment this replica has loaded, to check against the
    /// store's after missing notifications.
    pub fn loaded(&self) -> Vec<(ProjectKey, EnvironmentKey, i64)> {
        let snapshots = self
            .snapshots
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        snapshots
            .iter()
            .flat_map(|(project, environments)| {
                environments.iter().map(|(environment, sender)| {
                    (
                        project.clone(),
                        environment.clone(),
                        sender.borrow().revision(),
                    )
                })
            })
            .collect()
    }

    /// The environment's snapshot, loading and compiling it on first use.
    pub async fn get(
        &self,
        project: &ProjectKey,
        environment: &EnvironmentKey,
    ) -> Result<Arc<EnvironmentSnapshot>, FlagError> {
        match self.cached(project.as_str(), environment.as_str()) {
            Some(snapshot) => Ok(snapshot),
            None => self.refresh(project, environment).await,
        }
    }

    /// Reloads an environment from the store and compiles it again.
    pub async fn refresh(
        &self,
        project: &ProjectKey,
        environment: &EnvironmentKey,
    ) -> Result<Arc<EnvironmentSnapshot>, FlagError> {
        let state = self.store.load_environment(project, environment).await?;
        // Compiling a large environment takes a while; keep it off the async workers.
        let engine = tokio::task::spawn_blocking(move || {
            let engine = compile(&state);
            (state, engine)
        })
        .await
        .map_err(Failure::internal)?;
        let (state, engine) = engine;
        // Stored definitions were checked when written; one that no longer compiles means
        // the store was edited by hand or the engine changed, which is ours to fix.
        let engine = engine.map_err(|error| {
            Failure::Internal(anyhow::anyhow!(
                "failed to compile stored environment {project}/{environment}: {error}"
            ))
        })?;
        Ok(self.install(state, engine))
    }

    /// Makes a state and its compiled engine the environment's current snapshot, unless
    /// a newer one is already in place.
    pub fn install(
        &self,
        state: EnvironmentState,
        engine: CompiledEnvironment,
    ) -> Arc<EnvironmentSnapshot> {
        let snapshot = Arc::new(self.build(state, engine));
        let mut snapshots = self
            .snapshots
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let slot = snapshots
            .entry(snapshot.project.clone())
            .or_default()
            .entry(snapshot.environment.clone());
        match slot {
            std::collections::hash_map::Entry::Occupied(occupied) => {
                let sender = occupied.get();
                // A slower refresh must not replace a newer snapshot.
                if sender.borrow().revision() < snapshot.revision() {
                    sender.send_replace(snapshot);
                }
                sender.borrow().clone()
            }
            std::collections::hash_map::Entry::Vacant(vacant) => {
                vacant.insert(watch::Sender::new(snapshot.clone()));
                snapshot
            }
        }
    }

    fn build(&self, state: EnvironmentState, engine: CompiledEnvironment) -> EnvironmentSnapshot {
        let project = state.environment.project.clone();
        let environment = state.environment.key.clone();
        let positions = positions(&state);
        let flags = state
            .flags
            .iter()
            .map(|flag| {
                let counters = self
                    .metrics
                    .flag_counters(&project, &environment, &flag.key);
                let off = positions
                    .get(&flag.key)
                    .and_then(|(_, config)| *config)
                    .and_then(|index| off_variant(flag.flag_type, &state.configs[index].config));
                (
                    flag.key.to_string(),
                    FlagInfo {
                        flag_type: flag.flag_type,
                        client_visible: flag.client_visible,
                        counters,
                        off,
                    },
                )
            })
            .collect();
        EnvironmentSnapshot {
            project,
            environment,
            state,
            engine,
            flags,
            positions,
            sdk_document: OnceLock::new(),
        }
    }
}
