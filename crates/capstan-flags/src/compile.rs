//! Compiles JsonLogic rules into [`Node`] trees, rejecting what cannot work with the JSON
//! path of the offending part.

use serde_json::{Map, Value};

use crate::error::DefinitionError;
use crate::fast_hash::{FastHashMap, hash_str};
use crate::flagd::kind_of;
use crate::node::{
    BucketKey, ConstSet, FractionalNode, MAX_TOTAL_WEIGHT, Node, Op, Operand, Operator, RootLookup,
    Segment, SemVerNode, StaticPath, VarNode, VarPath, Weights,
};
use crate::semver::{OwnedVersion, SemVerOperator};
use crate::value::format_number;

/// How strictly definitions are held to the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strictness {
    /// Every detectable problem is an error.
    Strict,
    /// Behave as flagd does: misused flagd operators (`sem_ver`, `starts_with`,
    /// `ends_with`, `fractional`) evaluate to null, and other problems only break the flag
    /// they are in, which then fails with PARSE_ERROR.
    FlagdCompatible,
}

pub(crate) struct RuleCompiler<'d> {
    evaluators: &'d Map<String, Value>,
    strictness: Strictness,
    /// Evaluators compiled so far, inlined by cloning wherever they are referenced.
    compiled_evaluators: FastHashMap<String, Node>,
    /// The chain of `$ref`s being compiled, to report cycles instead of recursing forever.
    resolving: Vec<String>,
    /// Problems tolerated in flagd-compatible mode.
    pub(crate) tolerated: Vec<DefinitionError>,
}

impl<'d> RuleCompiler<'d> {
    pub(crate) fn new(
        evaluators: &'d Map<String, Value>,
        strictness: Strictness,
    ) -> RuleCompiler<'d> {
        RuleCompiler {
            evaluators,
            strictness,
            compiled_evaluators: FastHashMap::default(),
            resolving: Vec::new(),
            tolerated: Vec::new(),
        }
    }

    /// Compiles every evaluator, so that a broken one is reported even if no flag uses it.
    pub(crate) fn check_all_evaluators(&mut self) -> Result<(), DefinitionError> {
        for name in self.evaluators.keys() {
            self.evaluator(name, "$evaluators")?;
        }
        Ok(())
    }

    /// Records a problem that flagd tolerates: an error when strict, a warning otherwise.
    fn tolerate(&mut self, error: DefinitionError) -> Result<(), DefinitionError> {
        match self.strictness {
            Strictness::Strict => Err(error),
            Strictness::FlagdCompatible => {
                self.tolerated.push(error);
                Ok(())
            }
        }
    }

    /// A misused flagd operator: an error when strict, a null (as flagd returns) otherwise.
    fn misuse(
        &mut self,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Result<Node, DefinitionError> {
        self.tolerate(DefinitionError::new(path, message))?;
        Ok(Node::null())
    }

    pub(crate) fn compile(&mut self, rule: &Value, path: &str) -> Result<Node, DefinitionError> {
        match rule {
            Value::Array(items) => {
                let nodes = items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| self.compile(item, &format!("{path}[{index}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                if nodes.iter().all(|node| node.as_const().is_some()) {
                    Ok(Node::Const(Box::new(rule.clone())))
                } else {
                    Ok(Node::Array(nodes.into_boxed_slice()))
                }
            }
            // JsonLogic reads an object with exactly one key as an operation and any
            // other object as data.
            Value::Object(fields) if fields.len() == 1 => {
                let (name, arguments) = fields.iter().next().expect("one field");
                self.operation(name, arguments, path)
            }
            other => Ok(Node::Const(Box::new(other.clone()))),
        }
    }

    fn operation(
        &mut self,
        name: &str,
        arguments: &Value,
        path: &str,
    ) -> Result<Node, DefinitionError> {
        if name == "$ref" {
            return self.reference(arguments, path);
        }
        let Some(operator) = Operator::from_name(name) else {
            return Err(DefinitionError::new(
                path,
                format!("unknown operator \"{name}\""),
            ));
        };
        // A single argument may be written without the array around it.
        let (arguments, in_array): (&[Value], bool) = match arguments {
            Value::Array(items) => (items, true),
            other => (std::slice::from_ref(other), false),
        };
        let call = Call {
            name,
            arguments,
            in_array,
            path,
        };
        match operator {
            Operator::Var => self.var(&call),
            Operator::SemVer => self.sem_ver(&call),
            Operator::Fractional => self.fractional(&call),
            Operator::Standard(op) => self.standard(op, &call),
        }
    }

    fn reference(&mut self, target: &Value, path: &str) -> Result<Node, DefinitionError> {
        let path = format!("{path}.$ref");
        let Value::String(name) = target else {
            return Err(DefinitionError::new(
                path,
                format!("expected an evaluator name, found {}", kind_of(target)),
            ));
        };
        self.evaluator(name, &path)
    }

    fn evaluator(&mut self, name: &str, reference_path: &str) -> Result<Node, DefinitionError> {
        if let Some(node) = self.compiled_evaluators.get(name) {
            return Ok(node.clone());
        }
        let Some(body) = self.evaluators.get(name) else {
            return Err(DefinitionError::new(
                reference_path,
                format!("unknown evaluator \"{name}\""),
            ));
        };
        if self.resolving.iter().any(|resolving| resolving == name) {
            let chain = self.resolving.join(" -> ");
            return Err(DefinitionError::new(
                reference_path,
                format!("evaluator cycle: {chain} -> {name}"),
            ));
        }
        self.resolving.push(name.to_owned());
        let compiled = self.compile(body, &format!("$evaluators.{name}"));
        self.resolving.pop();
        let node = compiled?;
        self.compiled_evaluators
            .insert(name.to_owned(), node.clone());
        Ok(node)
    }

    fn arguments(&mut self, call: &Call<'_>) -> Result<Box<[Node]>, DefinitionError> {
        (0..call.arguments.len())
            .map(|index| self.argument(call, index))
            .collect()
    }

    fn argument(&mut self, call: &Call<'_>, index: usize) -> Result<Node, DefinitionError> {
        self.compile(&call.arguments[index], &call.argument_path(index))
    }

    fn standard(&mut self, op: Op, call: &Call<'_>) -> Result<Node, DefinitionError> {
        let flagd_operator = matches!(op, Op::StartsWith | Op::EndsWith);
        if let Some(message) = call.arity_problem(op.arity()) {
            return if flagd_operator {
                self.misuse(call.path, message)
            } else {
                Err(DefinitionError::new(call.path, message))
            };
        }
        if flagd_operator
            && let Some(constant) = call
                .arguments
                .iter()
                .position(|argument| !is_string_or_logic(argument))
        {
            let found = kind_of(&call.arguments[constant]);
            return self.misuse(
                call.argument_path(constant),
                format!("expected a string, found {found}"),
            );
        }
        let mut arguments = self.arguments(call)?;
        if op == Op::In
            && let Some(Value::Array(items)) = arguments[1].as_const()
        {
            let set = ConstSet::from_items(items);
            let needle = std::mem::replace(&mut arguments[0], Node::null());
            return Ok(Node::InSet(Box::new(needle), Box::new(set)));
        }
        Ok(Node::Op(op, arguments))
    }

    fn var(&mut self, call: &Call<'_>) -> Result<Node, DefinitionError> {
        if call.arguments.len() > 2 {
            return Err(DefinitionError::new(
                call.path,
                format!(
                    "var expects a path and an optional default, found {} arguments",
                    call.arguments.len()
                ),
            ));
        }
        let default = match call.arguments.get(1) {
            Some(_) => Some(self.argument(call, 1)?),
            None => None,
        };
        let path = match call.arguments.first() {
            None | Some(Value::Null) => static_path(""),
            Some(Value::String(text)) => static_path(text),
            Some(Value::Number(number)) => {
                static_path(&format_number(number.as_f64().unwrap_or(f64::NAN)))
            }
            Some(Value::Object(_) | Value::Array(_)) => VarPath::Dynamic(self.argument(call, 0)?),
            Some(Value::Bool(_)) => {
                return Err(DefinitionError::new(
                    call.argument_path(0),
                    "expected a path, found a boolean",
                ));
            }
        };
        Ok(Node::Var(Box::new(VarNode { path, default })))
    }

    fn sem_ver(&mut self, call: &Call<'_>) -> Result<Node, DefinitionError> {
        if let Some(message) = call.arity_problem((3, Some(3))) {
            return self.misuse(call.path, message);
        }
        let version = self.argument(call, 0)?;
        let operator = match &call.arguments[1] {
            Value::String(text) => match SemVerOperator::parse(text) {
                Some(operator) => Operand::Const(operator),
                None => {
                    return self.misuse(
                        call.argument_path(1),
                        format!("unknown sem_ver operator \"{text}\""),
                    );
                }
            },
            Value::Object(_) => Operand::Dynamic(self.argument(call, 1)?),
            other => {
                let found = kind_of(other);
                return self.misuse(
                    call.argument_path(1),
                    format!("expected a comparison operator, found {found}"),
                );
            }
        };
        let target = match &call.arguments[2] {
            Value::String(text) => match OwnedVersion::parse(text) {
                Some(version) => Operand::Const(version),
                None => {
                    return self.misuse(
                        call.argument_path(2),
                        format!("\"{text}\" is not a semantic version"),
                    );
                }
            },
            Value::Number(number) => {
                let text = format_number(number.as_f64().unwrap_or(f64::NAN));
                match OwnedVersion::parse(&text) {
                    Some(version) => Operand::Const(version),
                    None => {
                        return self.misuse(
                            call.argument_path(2),
                            format!("{text} is not a semantic version"),
                        );
                    }
                }
            }
            Value::Object(_) => Operand::Dynamic(self.argument(call, 2)?),
            other => {
                let found = kind_of(other);
                return self.misuse(
                    call.argument_path(2),
                    format!("expected a version, found {found}"),
                );
            }
        };
        Ok(Node::SemVer(Box::new(SemVerNode {
            version,
            operator,
            target,
        })))
    }

    fn fractional(&mut self, call: &Call<'_>) -> Result<Node, DefinitionError> {
        let Some(first) = call.arguments.first() else {
            return self.misuse(call.path, "fractional needs at least one bucket");
        };
        // A leading array is already a bucket, and the bucketing key is flagd's default.
        let (key, first_bucket) = match first {
            Value::Array(_) => (BucketKey::FlagAndTargetingKey, 0),
            Value::String(_) | Value::Object(_) => {
                (BucketKey::Expression(self.argument(call, 0)?), 1)
            }
            other => {
                let found = kind_of(other);
                return self.misuse(
                    call.argument_path(0),
                    format!("expected a bucketing key or a bucket, found {found}"),
                );
            }
        };
        if call.arguments.len() == first_bucket {
            return self.misuse(call.path, "fractional needs at least one bucket");
        }
        let mut variants = Vec::with_capacity(call.arguments.len() - first_bucket);
        let mut weights = Vec::with_capacity(call.arguments.len() - first_bucket);
        for index in first_bucket..call.arguments.len() {
            let bucket_path = call.argument_path(index);
            let parts = match &call.arguments[index] {
                Value::Array(parts) if (1..=2).contains(&parts.len()) => parts,
                _ => {
                    return self.misuse(
                        bucket_path,
                        "expected a bucket: [variant] or [variant, weight]",
                    );
                }
            };
            let variant = self.compile(&parts[0], &format!("{bucket_path}[0]"))?;
            if matches!(
                variant.as_const(),
                Some(Value::Array(_) | Value::Object(_) | Value::Null)
            ) {
                return self.misuse(format!("{bucket_path}[0]"), "expected a variant name");
            }
            let weight = match parts.get(1) {
                None => Operand::Const(1),
                Some(Value::Number(number)) => {
                    let weight = number.as_f64().unwrap_or(0.0);
                    if weight < 0.0 {
                        // flagd clamps negative weights to zero.
                        self.tolerate(DefinitionError::new(
                            format!("{bucket_path}[1]"),
                            "a weight must not be negative",
                        ))?;
                    }
                    // Weights are whole numbers; flagd truncates fractions.
                    Operand::Const(weight.max(0.0) as u64)
                }
                Some(Value::Object(_)) => {
                    Operand::Dynamic(self.compile(&parts[1], &format!("{bucket_path}[1]"))?)
                }
                Some(other) => {
                    let found = kind_of(other);
                    return self.misuse(
                        format!("{bucket_path}[1]"),
                        format!("expected a weight, found {found}"),
                    );
                }
            };
            variants.push(variant);
            weights.push(weight);
        }
        let constants: Option<Vec<u64>> = weights
            .iter()
            .map(|weight| match weight {
                Operand::Const(weight) => Some(*weight),
                Operand::Dynamic(_) => None,
            })
            .collect();
        let weights = match constants {
            Some(constants) => {
                let total = constants
                    .iter()
                    .fold(0u64, |total, weight| total.saturating_add(*weight));
                if total == 0 {
                    return self.misuse(call.path, "fractional weights add up to zero");
                }
                if total > MAX_TOTAL_WEIGHT {
                    return self.misuse(
                        call.path,
                        format!("fractional weights add up to more than {MAX_TOTAL_WEIGHT}"),
                    );
                }
                Weights::Constant {
                    weights: constants.into_boxed_slice(),
                    total,
                }
            }
            None => Weights::Computed(weights.into_boxed_slice()),
        };
        Ok(Node::Fractional(Box::new(FractionalNode {
            key,
            variants: variants.into_boxed_slice(),
            weights,
        })))
    }
}

/// One operation being compiled: its name, arguments and where it is.
struct Call<'c> {
    name: &'c str,
    arguments: &'c [Value],
    /// Whether the arguments were written as an array, which shows in their paths.
    in_array: bool,
    path: &'c str,
}

impl Call<'_> {
    fn argument_path(&self, index: usize) -> String {
        if self.in_array {
            format!("{}.{}[{index}]", self.path, self.name)
        } else {
            format!("{}.{}", self.path, self.name)
        }
    }

    fn arity_problem(&self, (least, most): (usize, Option<usize>)) -> Option<String> {
        let found = self.arguments.len();
        let expected = match most {
            Some(most) if found > most || found < least => {
                if least == most {
                    format!("{least}")
                } else {
                    format!("{least} to {most}")
                }
            }
            None if found < least => format!("at least {least}"),
            _ => return None,
        };
        let plural = if expected == "1" {
            "argument"
        } else {
            "arguments"
        };
        Some(format!(
            "{} expects {expected} {plural}, found {found}",
            self.name
        ))
    }
}

fn is_string_or_logic(argument: &Value) -> bool {
    matches!(argument, Value::String(_) | Value::Object(_))
}

fn static_path(text: &str) -> VarPath {
    if text.is_empty() {
        return VarPath::Static(StaticPath {
            root: RootLookup::Whole,
            segments: Box::default(),
        });
    }
    let segments: Box<[Segment]> = text.split('.').map(Segment::new).collect();
    let root = match text {
        "$flagd.flagKey" => RootLookup::FlagKey,
        "$flagd.timestamp" => RootLookup::Timestamp,
        _ => RootLookup::Attribute {
            hash: hash_str(&segments[0].key),
        },
    };
    VarPath::Static(StaticPath { root, segments })
}
