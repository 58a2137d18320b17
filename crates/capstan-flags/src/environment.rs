//! A compiled environment: every flag of a flagd document ready to evaluate.

use serde_json::{Map, Value};

use crate::compile::{RuleCompiler, Strictness};
use crate::context::EvaluationContext;
use crate::definition::{FlagDefinition, FlagState, check_metadata};
use crate::error::DefinitionError;
use crate::eval::{Choice, Evaluation};
use crate::fast_hash::{FastHashMap, HashIndex, hash_str, same_str};
use crate::flagd::FlagdDocument;
use crate::node::{Node, Op};
use crate::resolution::{ErrorCode, EvaluationError, Reason, Resolution};
use crate::value::{Val, format_number};

/// Every flag of one flagd document, compiled. Immutable once built, so it is shared
/// between threads behind an `Arc` and replaced whole when the definitions change.
#[derive(Debug)]
pub struct CompiledEnvironment {
    /// In document order.
    flags: Vec<CompiledFlag>,
    /// Finds flags by the hash of their keys.
    key_index: HashIndex,
    /// Flag-set metadata, reported for flags that do not exist.
    metadata: Map<String, Value>,
}

#[derive(Debug)]
struct CompiledFlag {
    key: Box<str>,
    state: FlagState,
    variants: Variants,
    default_variant: Option<usize>,
    rules: Rules,
    prerequisites: Box<[CompiledPrerequisite]>,
    /// Flag-set metadata merged with the flag's own.
    metadata: Map<String, Value>,
}

#[derive(Debug)]
enum Rules {
    None,
    Targeting(Node),
    /// A definition that flagd-compatible compilation kept, failing with PARSE_ERROR.
    Broken(String),
}

#[derive(Debug)]
struct CompiledPrerequisite {
    flag: usize,
    /// Positions of the accepted variants in the prerequisite flag's variants.
    variants: Box<[usize]>,
}

/// A flag's variants in document order, found by name.
#[derive(Debug)]
struct Variants {
    entries: Box<[(Box<str>, Value)]>,
    /// Only for flags with many variants: a handful are faster to compare one by one.
    by_name: Option<FastHashMap<Box<str>, usize>>,
}

const LINEAR_VARIANT_LIMIT: usize = 8;

impl Variants {
    fn new(variants: &Map<String, Value>) -> Variants {
        let entries: Box<[(Box<str>, Value)]> = variants
            .iter()
            .map(|(name, value)| (name.as_str().into(), value.clone()))
            .collect();
        let by_name = (entries.len() > LINEAR_VARIANT_LIMIT).then(|| {
            entries
                .iter()
                .enumerate()
                .map(|(position, (name, _))| (name.clone(), position))
                .collect()
        });
        Variants { entries, by_name }
    }

    #[inline]
    fn position(&self, name: &str) -> Option<usize> {
        match &self.by_name {
            Some(by_name) => by_name.get(name).copied(),
            None => self
                .entries
                .iter()
                .position(|(candidate, _)| same_str(candidate, name)),
        }
    }
}

impl CompiledFlag {
    /// Serves a variant (or none), building the resolution in place.
    #[inline(always)]
    fn serve(&self, variant: Option<usize>, reason: Reason) -> Resolution<'_> {
        let entry = variant.map(|variant| &self.variants.entries[variant]);
        Resolution {
            value: entry.map(|(_, value)| value),
            variant: entry.map(|(name, _)| &**name),
            reason,
            error: None,
            metadata: &self.metadata,
        }
    }

    #[cold]
    fn fail(&self, code: ErrorCode, message: String) -> Resolution<'_> {
        Resolution {
            value: None,
            variant: None,
            reason: Reason::Error,
            error: Some(EvaluationError::new(code, message)),
            metadata: &self.metadata,
        }
    }
}

impl CompiledEnvironment {
    /// Compiles every flag, rejecting the first problem found, with its JSON path.
    pub fn compile(document: &FlagdDocument) -> Result<CompiledEnvironment, DefinitionError> {
        build(document, Strictness::Strict).map(|(environment, _)| environment)
    }

    /// Compiles the document the way flagd loads it, for flagd files written elsewhere:
    /// misused flagd operators evaluate to null, and a flag with any other problem is kept
    /// but fails with PARSE_ERROR. Returns the problems it tolerated.
    pub fn compile_flagd_compatible(
        document: &FlagdDocument,
    ) -> (CompiledEnvironment, Vec<DefinitionError>) {
        build(document, Strictness::FlagdCompatible)
            .expect("flagd-compatible compilation tolerates every problem")
    }

    /// Evaluates one flag. The context is built once per request and reused for every
    /// flag; `now_unix_seconds` is what rules read as `$flagd.timestamp`.
    pub fn evaluate<'a>(
        &'a self,
        key: &str,
        context: &EvaluationContext,
        now_unix_seconds: i64,
    ) -> Resolution<'a> {
        let Some(position) = self.position(key) else {
            return Resolution {
                value: None,
                variant: None,
                reason: Reason::Error,
                error: Some(EvaluationError::new(
                    ErrorCode::FlagNotFound,
                    format!("flag \"{key}\" not found"),
                )),
                metadata: &self.metadata,
            };
        };
        self.resolve(position, context, now_unix_seconds)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    #[inline]
    fn position(&self, key: &str) -> Option<usize> {
        self.key_index.find(hash_str(key), |position| {
            same_str(&self.flags[position].key, key)
        })
    }

    #[inline(never)]
    fn prerequisite_met(
        &self,
        prerequisite: &CompiledPrerequisite,
        context: &EvaluationContext,
        now_unix_seconds: i64,
    ) -> bool {
        let required = self.resolve(prerequisite.flag, context, now_unix_seconds);
        // A prerequisite that is itself off, failing or held back by its own
        // prerequisites does not count as being on any variant.
        required.error.is_none()
            && matches!(
                required.reason,
                Reason::Static | Reason::TargetingMatch | Reason::Split | Reason::Default
            )
            && required.variant.is_some_and(|variant| {
                let variants = &self.flags[prerequisite.flag].variants.entries;
                prerequisite
                    .variants
                    .iter()
                    .any(|&accepted| same_str(&variants[accepted].0, variant))
            })
    }

    /// Flag keys in document order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.flags.iter().map(|flag| &*flag.key)
    }

    // Inlined into `evaluate`, so the outcome stays in registers; prerequisites recurse
    // through `prerequisite_met`, which is not inlined.
    #[inline(always)]
    fn resolve(
        &self,
        position: usize,
        context: &EvaluationContext,
        now_unix_seconds: i64,
    ) -> Resolution<'_> {
        let flag = &self.flags[position];
        if flag.state == FlagState::Disabled {
            return flag.serve(None, Reason::Disabled);
        }
        if let Rules::Broken(message) = &flag.rules {
            return flag.fail(ErrorCode::ParseError, message.clone());
        }
        for prerequisite in flag.prerequisites.iter() {
            if !self.prerequisite_met(prerequisite, context, now_unix_seconds) {
                return flag.serve(flag.default_variant, Reason::PrerequisiteFailed);
            }
        }
        let Rules::Targeting(rules) = &flag.rules else {
            return match flag.default_variant {
                Some(variant) => flag.serve(Some(variant), Reason::Static),
                None => flag.serve(None, Reason::Default),
            };
        };
        let mut evaluation = Evaluation {
            context,
            flag_key: &flag.key,
            now_unix_seconds,
            split: false,
            missing_targeting_key: false,
        };
        let choice = evaluation.choose(rules);
        // A split by user with no user to split is the caller's mistake, and OpenFeature
        // has a code for it; serving everyone the same bucket would hide it.
        if evaluation.missing_targeting_key {
            return flag.fail(
                ErrorCode::TargetingKeyMissing,
                format!(
                    "flag \"{}\" splits by targeting key, and the context has none",
                    flag.key
                ),
            );
        }
        let matched = if evaluation.split {
            Reason::Split
        } else {
            Reason::TargetingMatch
        };
        let result = match choice {
            Choice::Variant(variant) => return flag.serve(Some(variant), matched),
            Choice::Value(result) => result,
        };
        // flagd takes a boolean as the name of a "true" or "false" variant, and a number
        // as its printed form.
        let number;
        let name = match &result {
            Val::Null => return flag.serve(flag.default_variant, Reason::Default),
            Val::Bool(true) => "true",
            Val::Bool(false) => "false",
            Val::Number(value) => {
                number = format_number(*value);
                &number
            }
            Val::Str(text) => text,
            Val::String(text) => text,
            Val::Json(_) | Val::List(_) => {
                return flag.fail(
                    ErrorCode::General,
                    format!(
                        "targeting of flag \"{}\" returned {}, not a variant name",
                        flag.key,
                        result.to_json()
                    ),
                );
            }
        };
        match flag.variants.position(name) {
            Some(variant) => flag.serve(Some(variant), matched),
            None => flag.fail(
                ErrorCode::General,
                format!(
                    "targeting of flag \"{}\" chose \"{name}\", which is not one of its variants",
                    flag.key
                ),
            ),
        }
    }
}

/// Builds an environment. Strict compilation returns the first problem; flagd-compatible
/// compilation never fails and returns every problem it tolerated.
fn build(
    document: &FlagdDocument,
    strictness: Strictness,
) -> Result<(CompiledEnvironment, Vec<DefinitionError>), DefinitionError> {
    let mut tolerated = Vec::new();
    let mut report = |error: DefinitionError| match strictness {
        Strictness::Strict => Err(error),
        Strictness::FlagdCompatible => {
            tolerated.push(error);
            Ok(())
        }
    };
    if let Err(error) = check_metadata(&document.metadata, "metadata") {
        report(error)?;
    }

    let mut definitions: Vec<&FlagDefinition> = Vec::with_capacity(document.flags.len());
    let mut by_key: FastHashMap<Box<str>, usize> = FastHashMap::default();
    for definition in &document.flags {
        if by_key.contains_key(definition.key.as_str()) {
            report(DefinitionError::new(
                definition.path(),
                "the flag is defined twice",
            ))?;
            continue;
        }
        by_key.insert(definition.key.as_str().into(), definitions.len());
        definitions.push(definition);
    }

    let mut rule_compiler = RuleCompiler::new(&document.evaluators, strictness);
    let mut flags = Vec::with_capacity(definitions.len());
    for definition in &definitions {
        let flag = match compile_flag(definition, &mut rule_compiler, &document.metadata) {
            Ok(flag) => flag,
            Err(error) => {
                report(error.clone())?;
                broken_flag(definition, &document.metadata, &error)
            }
        };
        flags.push(flag);
    }

    for (position, definition) in definitions.iter().enumerate() {
        if matches!(flags[position].rules, Rules::Broken(_)) {
            continue;
        }
        match link_prerequisites(definition, &by_key, &flags) {
            Ok(prerequisites) => flags[position].prerequisites = prerequisites,
            Err(error) => {
                report(error.clone())?;
                flags[position].rules = Rules::Broken(error.to_string());
            }
        }
    }

    while let Some((position, prerequisite, cycle)) = find_prerequisite_cycle(&flags) {
        let error = DefinitionError::new(
            format!(
                "flags.{}.prerequisites[{prerequisite}].flag",
                flags[position].key
            ),
            format!("prerequisite cycle: {cycle}"),
        );
        report(error.clone())?;
        // Breaking the flag where the cycle closes removes the cycle.
        flags[position].rules = Rules::Broken(error.to_string());
        flags[position].prerequisites = Box::default();
    }

    if strictness == Strictness::Strict {
        rule_compiler.check_all_evaluators()?;
    }
    tolerated.extend(rule_compiler.tolerated);
    let hashes: Vec<u64> = flags.iter().map(|flag| hash_str(&flag.key)).collect();
    let key_index = HashIndex::new(&hashes);
    let environment = CompiledEnvironment {
        flags,
        key_index,
        metadata: document.metadata.clone(),
    };
    Ok((environment, tolerated))
}

fn compile_flag(
    definition: &FlagDefinition,
    rule_compiler: &mut RuleCompiler<'_>,
    flag_set_metadata: &Map<String, Value>,
) -> Result<CompiledFlag, DefinitionError> {
    definition.check_structure()?;
    let variants = Variants::new(&definition.variants);
    let default_variant = definition
        .default_variant
        .as_deref()
        .and_then(|name| variants.position(name));
    let rules = match &definition.targeting {
        Some(targeting) if definition.has_targeting() => {
            let path = format!("{}.targeting", definition.path());
            let mut rules = rule_compiler.compile(targeting, &path)?;
            mark_variant_results(&mut rules, &variants);
            Rules::Targeting(rules)
        }
        _ => Rules::None,
    };
    Ok(CompiledFlag {
        key: definition.key.as_str().into(),
        state: definition.state,
        variants,
        default_variant,
        rules,
        prerequisites: Box::default(),
        metadata: merge_metadata(flag_set_metadata, &definition.metadata),
    })
}

/// Replaces the constants that rules return and that name a variant with the variant's
/// position, so that choosing them at evaluation time needs no lookup by name.
fn mark_variant_results(node: &mut Node, variants: &Variants) {
    match node {
        Node::Op(Op::If, arguments) => {
            let count = arguments.len();
            for (index, argument) in arguments.iter_mut().enumerate() {
                // Odd positions are branches; a last, even position is the `else`.
                if index % 2 == 1 || index + 1 == count {
                    mark_variant_results(argument, variants);
                }
            }
        }
        Node::Const(value) => {
            let name = match &**value {
                Value::String(name) => name.as_str(),
                Value::Bool(true) => "true",
                Value::Bool(false) => "false",
                _ => return,
            };
            if let Some(position) = variants.position(name) {
                let position = u32::try_from(position).expect("fewer than 2^32 variants");
                *node = Node::Variant(position, value.clone());
            }
        }
        _ => {}
    }
}

fn broken_flag(
    definition: &FlagDefinition,
    flag_set_metadata: &Map<String, Value>,
    error: &DefinitionError,
) -> CompiledFlag {
    CompiledFlag {
        key: definition.key.as_str().into(),
        state: definition.state,
        variants: Variants::new(&definition.variants),
        default_variant: None,
        rules: Rules::Broken(error.to_string()),
        prerequisites: Box::default(),
        metadata: merge_metadata(flag_set_metadata, &definition.metadata),
    }
}

fn merge_metadata(flag_set: &Map<String, Value>, flag: &Map<String, Value>) -> Map<String, Value> {
    let mut merged = flag_set.clone();
    for (key, value) in flag {
        merged.insert(key.clone(), value.clone());
    }
    merged
}

fn link_prerequisites(
    definition: &FlagDefinition,
    by_key: &FastHashMap<Box<str>, usize>,
    flags: &[CompiledFlag],
) -> Result<Box<[CompiledPrerequisite]>, DefinitionError> {
    let mut linked = Vec::with_capacity(definition.prerequisites.len());
    for (index, prerequisite) in definition.prerequisites.iter().enumerate() {
        let path = format!("{}.prerequisites[{index}]", definition.path());
        let Some(&flag) = by_key.get(prerequisite.flag.as_str()) else {
            return Err(DefinitionError::new(
                format!("{path}.flag"),
                format!("unknown flag \"{}\"", prerequisite.flag),
            ));
        };
        let variants = prerequisite
            .variants
            .iter()
            .enumerate()
            .map(|(variant_index, name)| {
                flags[flag].variants.position(name).ok_or_else(|| {
                    DefinitionError::new(
                        format!("{path}.variants[{variant_index}]"),
                        format!("flag \"{}\" has no variant \"{name}\"", prerequisite.flag),
                    )
                })
            })
            .collect::<Result<Box<[usize]>, _>>()?;
        linked.push(CompiledPrerequisite { flag, variants });
    }
    Ok(linked.into_boxed_slice())
}

/// Finds a prerequisite edge that closes a cycle: the flag, the prerequisite's index and
/// the cycle spelled out as `a -> b -> a`.
fn find_prerequisite_cycle(flags: &[CompiledFlag]) -> Option<(usize, usize, String)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Unvisited,
        OnPath,
        Done,
    }
    fn visit(
        flags: &[CompiledFlag],
        position: usize,
        marks: &mut [Mark],
        path: &mut Vec<usize>,
    ) -> Option<(usize, usize, String)> {
        marks[position] = Mark::OnPath;
        path.push(position);
        for (index, prerequisite) in flags[position].prerequisites.iter().enumerate() {
            match marks[prerequisite.flag] {
                Mark::OnPath => {
                    let start = path
                        .iter()
                        .position(|&on_path| on_path == prerequisite.flag)
                        .unwrap_or(0);
                    let mut names: Vec<&str> = path[start..]
                        .iter()
                        .map(|&on_path| &*flags[on_path].key)
                        .collect();
                    names.push(&flags[prerequisite.flag].key);
                    return Some((position, index, names.join(" -> ")));
                }
                Mark::Unvisited => {
                    if let Some(cycle) = visit(flags, prerequisite.flag, marks, path) {
                        return Some(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks[position] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::Unvisited; flags.len()];
    let mut path = Vec::new();
    (0..flags.len()).find_map(|position| {
        if marks[position] == Mark::Unvisited {
            visit(flags, position, &mut marks, &mut path)
        } else {
            None
        }
    })
}
