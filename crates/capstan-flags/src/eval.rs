//! Evaluates compiled rules against one context.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

use crate::context::EvaluationContext;
use crate::fast_hash::hash_str;
use crate::murmur::murmur3_x86_32_of_pair;
use crate::node::{
    BucketKey, ConstSet, FractionalNode, MAX_TOTAL_WEIGHT, Node, Op, Operand, RootLookup, Segment,
    SemVerNode, StaticPath, VarNode, VarPath, Weights, parse_index,
};
use crate::semver::{SemVerOperator, Version};
use crate::value::{Val, compare, format_number, loose_equal, strict_equal};

/// One evaluation of one flag's rules.
pub(crate) struct Evaluation<'a> {
    pub(crate) context: &'a EvaluationContext,
    pub(crate) flag_key: &'a str,
    pub(crate) now_unix_seconds: i64,
    /// Set when a `fractional` produced a result, so the flag reports SPLIT.
    pub(crate) split: bool,
    /// Set when a `fractional` bucketed by targeting key and the context had none.
    pub(crate) missing_targeting_key: bool,
}

/// What a flag's rules picked: a variant already known by position, or a value still to
/// be read as a variant name.
pub(crate) enum Choice<'a> {
    Variant(usize),
    Value(Val<'a>),
}

/// The data `var` reads: the context, or an array item inside `map`, `filter`, `all`,
/// `none` and `some`, or the pair `reduce` offers.
#[derive(Clone, Copy)]
enum Scope<'s, 'a> {
    Root,
    Item(&'s Val<'a>),
    Reduce(&'s ReduceScope<'a>),
}

struct ReduceScope<'a> {
    current: Val<'a>,
    accumulator: Val<'a>,
}

/// A `var` looked up without building a value, when its path is a plain attribute path.
enum Lookup<'a> {
    Found(&'a Value),
    Absent,
    /// The path needs the general lookup.
    Other,
}

impl<'a> Evaluation<'a> {
    /// Evaluates a flag's rules. `if` chains are followed here directly, so the common
    /// shape "if condition then variant" never builds a value for the result.
    pub(crate) fn choose(&mut self, node: &'a Node) -> Choice<'a> {
        match node {
            Node::Variant(position, _) => Choice::Variant(*position as usize),
            Node::Op(Op::If, arguments) => {
                let mut index = 0;
                while index + 1 < arguments.len() {
                    if self.test(&arguments[index], Scope::Root) {
                        return self.choose(&arguments[index + 1]);
                    }
                    index += 2;
                }
                match arguments.get(index) {
                    Some(otherwise) => self.choose(otherwise),
                    None => Choice::Value(Val::Null),
                }
            }
            other => Choice::Value(self.eval(other, Scope::Root)),
        }
    }

    /// The truthiness of a node, computed without building values where the node is a
    /// condition the engine knows.
    fn test(&mut self, node: &'a Node, scope: Scope<'_, 'a>) -> bool {
        match node {
            Node::InSet(needle, set) => self.in_set(needle, set, scope),
            Node::Op(Op::And, arguments) => {
                arguments.iter().all(|argument| self.test(argument, scope))
            }
            Node::Op(Op::Or, arguments) => {
                arguments.iter().any(|argument| self.test(argument, scope))
            }
            Node::Op(Op::Not, arguments) => !arguments
                .first()
                .is_some_and(|argument| self.test(argument, scope)),
            Node::Op(Op::Truthy, arguments) => arguments
                .first()
                .is_some_and(|argument| self.test(argument, scope)),
            Node::Op(op, arguments) if op.is_predicate() => {
                self.predicate(*op, arguments, scope).unwrap_or(false)
            }
            other => self.eval(other, scope).truthy(),
        }
    }

    fn eval(&mut self, node: &'a Node, scope: Scope<'_, 'a>) -> Val<'a> {
        match node {
            Node::Const(value) | Node::Variant(_, value) => Val::from_json(value),
            Node::Array(items) => {
                Val::List(items.iter().map(|item| self.eval(item, scope)).collect())
            }
            Node::Var(var) => self.var(var, scope),
            Node::Op(op, arguments) => self.op(*op, arguments, scope),
            Node::InSet(needle, set) => Val::Bool(self.in_set(needle, set, scope)),
            Node::SemVer(sem_ver) => self.sem_ver(sem_ver, scope),
            Node::Fractional(fractional) => self.fractional(fractional, scope),
        }
    }

    /// An argument's value; a missing one reads as null, as JavaScript's undefined would.
    fn argument(&mut self, arguments: &'a [Node], index: usize, scope: Scope<'_, 'a>) -> Val<'a> {
        match arguments.get(index) {
            Some(node) => self.eval(node, scope),
            None => Val::Null,
        }
    }

    fn in_set(&mut self, needle: &'a Node, set: &'a ConstSet, scope: Scope<'_, 'a>) -> bool {
        if let Node::Var(var) = needle {
            match self.lookup_attribute(var, scope) {
                Lookup::Found(value) => return set.contains_json(value),
                Lookup::Absent if var.default.is_none() => return set.contains(&Val::Null),
                _ => {}
            }
        }
        let needle = self.eval(needle, scope);
        set.contains(&needle)
    }

    /// The fast path of `var`: a static attribute path read from the context.
    #[inline]
    fn lookup_attribute(&self, var: &'a VarNode, scope: Scope<'_, 'a>) -> Lookup<'a> {
        let (Scope::Root, VarPath::Static(path)) = (scope, &var.path) else {
            return Lookup::Other;
        };
        let RootLookup::Attribute { hash } = path.root else {
            return Lookup::Other;
        };
        let Some(mut value) = self.context.lookup(hash, &path.segments[0].key) else {
            return Lookup::Absent;
        };
        for segment in &path.segments[1..] {
            let child = match value {
                Value::Object(fields) => fields.get(&*segment.key),
                Value::Array(items) => segment.index.and_then(|index| items.get(index)),
                _ => None,
            };
            match child {
                Some(child) => value = child,
                None => return Lookup::Absent,
            }
        }
        Lookup::Found(value)
    }

    fn var(&mut self, var: &'a VarNode, scope: Scope<'_, 'a>) -> Val<'a> {
        let found = match self.lookup_attribute(var, scope) {
            Lookup::Found(value) => Some(Val::from_json(value)),
            Lookup::Absent => None,
            Lookup::Other => match &var.path {
                VarPath::Static(path) => self.lookup_static(path, scope),
                VarPath::Dynamic(node) => {
                    let path = self.eval(node, scope);
                    let path = if path.is_null() {
                        Cow::Borrowed("")
                    } else {
                        path.to_js_string().into_owned().into()
                    };
                    self.lookup_dynamic(&path, scope)
                }
            },
        };
        match (found, &var.default) {
            (Some(value), _) => value,
            (None, Some(default)) => self.eval(default, scope),
            (None, None) => Val::Null,
        }
    }

    fn lookup_static(&self, path: &'a StaticPath, scope: Scope<'_, 'a>) -> Option<Val<'a>> {
        let segments = path
            .segments
            .iter()
            .map(|segment: &'a Segment| (&*segment.key, segment.index));
        match scope {
            Scope::Root => match path.root {
                RootLookup::Whole => Some(Val::from_json(self.context.as_object())),
                RootLookup::FlagKey => Some(Val::Str(self.flag_key)),
                RootLookup::Timestamp => Some(Val::Number(self.now_unix_seconds as f64)),
                RootLookup::Attribute { hash } => {
                    let first = &path.segments[0];
                    let value = self.context.lookup(hash, &first.key)?;
                    descend(Val::from_json(value), segments.skip(1))
                }
            },
            _ => lookup_in_scope(scope, segments),
        }
    }

    fn lookup_dynamic(&self, path: &str, scope: Scope<'_, 'a>) -> Option<Val<'a>> {
        if path.is_empty() {
            return match scope {
                Scope::Root => Some(Val::from_json(self.context.as_object())),
                _ => lookup_in_scope(scope, std::iter::empty()),
            };
        }
        let segments = path.split('.').map(|key| (key, parse_index(key)));
        match scope {
            Scope::Root => match path {
                "$flagd.flagKey" => Some(Val::Str(self.flag_key)),
                "$flagd.timestamp" => Some(Val::Number(self.now_unix_seconds as f64)),
                _ => {
                    let first = path.split('.').next().unwrap_or_default();
                    let value = self.context.lookup(hash_str(first), first)?;
                    descend(Val::from_json(value), segments.skip(1))
                }
            },
            _ => lookup_in_scope(scope, segments),
        }
    }

    fn op(&mut self, op: Op, arguments: &'a [Node], scope: Scope<'_, 'a>) -> Val<'a> {
        match op {
            Op::If => {
                let mut index = 0;
                while index + 1 < arguments.len() {
                    if self.test(&arguments[index], scope) {
                        return self.eval(&arguments[index + 1], scope);
                    }
                    index += 2;
                }
                self.argument(arguments, index, scope)
            }
            Op::Or => {
                let mut last = Val::Null;
                for argument in arguments {
                    last = self.eval(argument, scope);
                    if last.truthy() {
                        break;
                    }
                }
                last
            }
            Op::And => {
                let mut last = Val::Null;
                for argument in arguments {
                    last = self.eval(argument, scope);
                    if !last.truthy() {
                        break;
                    }
                }
                last
            }
            Op::Not => Val::Bool(
                !arguments
                    .first()
                    .is_some_and(|argument| self.test(argument, scope)),
            ),
            Op::Truthy => Val::Bool(
                arguments
                    .first()
                    .is_some_and(|argument| self.test(argument, scope)),
            ),
            _ if op.is_predicate() => match self.predicate(op, arguments, scope) {
                Some(result) => Val::Bool(result),
                None => Val::Null,
            },
            _ => self.compute(op, arguments, scope),
        }
    }

    /// Comparisons and string tests. `None` is the null flagd's string operators answer
    /// for arguments that are not strings.
    fn predicate(&mut self, op: Op, arguments: &'a [Node], scope: Scope<'_, 'a>) -> Option<bool> {
        let left = self.argument(arguments, 0, scope);
        let right = self.argument(arguments, 1, scope);
        Some(match op {
            Op::Equal => loose_equal(&left, &right),
            Op::NotEqual => !loose_equal(&left, &right),
            Op::StrictEqual => strict_equal(&left, &right),
            Op::StrictNotEqual => !strict_equal(&left, &right),
            Op::Greater => compare(&left, &right) == Some(Ordering::Greater),
            Op::GreaterOrEqual => matches!(
                compare(&left, &right),
                Some(Ordering::Greater | Ordering::Equal)
            ),
            Op::Less | Op::LessOrEqual => {
                let accepts = |order: Option<Ordering>| match op {
                    Op::Less => order == Some(Ordering::Less),
                    _ => matches!(order, Some(Ordering::Less | Ordering::Equal)),
                };
                // Three arguments test that the middle one lies between the others.
                accepts(compare(&left, &right))
                    && (arguments.len() < 3
                        || accepts(compare(&right, &self.argument(arguments, 2, scope))))
            }
            // flagd answers null, not false, for non-strings, so the flag serves its
            // default variant rather than a variant named "false".
            Op::StartsWith => left.as_str()?.starts_with(right.as_str()?),
            Op::EndsWith => left.as_str()?.ends_with(right.as_str()?),
            _ => unreachable!("{op:?} is not a predicate"),
        })
    }

    /// The operators that compute values: arithmetic, arrays and strings.
    #[inline(never)]
    fn compute(&mut self, op: Op, arguments: &'a [Node], scope: Scope<'_, 'a>) -> Val<'a> {
        match op {
            Op::Max | Op::Min => {
                let mut result: Option<f64> = None;
                for argument in arguments {
                    let number = self.eval(argument, scope).to_number();
                    result = Some(match result {
                        None => number,
                        Some(_) if number.is_nan() => number,
                        Some(best) if best.is_nan() => best,
                        Some(best) if op == Op::Max => best.max(number),
                        Some(best) => best.min(number),
                    });
                }
                result.map_or(Val::Null, Val::Number)
            }
            Op::Add => Val::Number(
                arguments
                    .iter()
                    .map(|argument| self.eval(argument, scope).to_number())
                    .sum(),
            ),
            Op::Multiply => Val::Number(
                arguments
                    .iter()
                    .map(|argument| self.eval(argument, scope).to_number())
                    .product(),
            ),
            Op::Subtract => {
                let first = self.argument(arguments, 0, scope).to_number();
                if arguments.len() == 1 {
                    return Val::Number(-first);
                }
                Val::Number(first - self.argument(arguments, 1, scope).to_number())
            }
            Op::Divide => {
                let dividend = self.argument(arguments, 0, scope).to_number();
                Val::Number(dividend / self.argument(arguments, 1, scope).to_number())
            }
            Op::Modulo => {
                let dividend = self.argument(arguments, 0, scope).to_number();
                Val::Number(dividend % self.argument(arguments, 1, scope).to_number())
            }
            Op::Map => {
                let list = self.argument(arguments, 0, scope);
                let mapped = list
                    .items()
                    .map(|item| self.eval(&arguments[1], Scope::Item(&item)))
                    .collect();
                Val::List(mapped)
            }
            Op::Filter => {
                let list = self.argument(arguments, 0, scope);
                let kept = list
                    .items()
                    .filter(|item| self.test(&arguments[1], Scope::Item(item)))
                    .collect();
                Val::List(kept)
            }
            Op::Reduce => {
                let list = self.argument(arguments, 0, scope);
                let mut accumulator = self.argument(arguments, 2, scope);
                for current in list.items() {
                    let pair = ReduceScope {
                        current,
                        accumulator,
                    };
                    accumulator = self.eval(&arguments[1], Scope::Reduce(&pair));
                }
                accumulator
            }
            Op::All => {
                let list = self.argument(arguments, 0, scope);
                if list.len() == 0 {
                    return Val::Bool(false);
                }
                Val::Bool(
                    list.items()
                        .all(|item| self.test(&arguments[1], Scope::Item(&item))),
                )
            }
            Op::None | Op::Some => {
                let list = self.argument(arguments, 0, scope);
                let any = list
                    .items()
                    .any(|item| self.test(&arguments[1], Scope::Item(&item)));
                Val::Bool(if op == Op::Some { any } else { !any })
            }
            Op::Merge => {
                let mut merged = Vec::new();
                for argument in arguments {
                    let value = self.eval(argument, scope);
                    if value.is_array() {
                        merged.extend(value.items());
                    } else {
                        merged.push(value);
                    }
                }
                Val::List(merged)
            }
            Op::In => {
                let needle = self.argument(arguments, 0, scope);
                let haystack = self.argument(arguments, 1, scope);
                Val::Bool(match haystack.as_str() {
                    Some(text) => text.contains(needle.to_js_string().as_ref()),
                    None => haystack.items().any(|item| strict_equal(&item, &needle)),
                })
            }
            Op::Cat => {
                let mut text = String::new();
                for argument in arguments {
                    text.push_str(&self.eval(argument, scope).to_js_string());
                }
                Val::String(text)
            }
            Op::Substr => {
                let source = self.argument(arguments, 0, scope);
                let start = self.argument(arguments, 1, scope).to_number();
                let length = arguments
                    .get(2)
                    .map(|_| self.argument(arguments, 2, scope).to_number());
                Val::String(substr(&source.to_js_string(), start, length))
            }
            Op::Missing => {
                let first = self.argument(arguments, 0, scope);
                let keys: Vec<Val<'a>> = if first.is_array() {
                    first.items().collect()
                } else {
                    let mut keys = vec![first];
                    keys.extend(
                        arguments[1..]
                            .iter()
                            .map(|argument| self.eval(argument, scope)),
                    );
                    keys
                };
                Val::List(self.missing(keys, scope))
            }
            Op::MissingSome => {
                let needed = self.argument(arguments, 0, scope).to_number();
                let keys: Vec<Val<'a>> = self.argument(arguments, 1, scope).items().collect();
                let total = keys.len();
                let missing = self.missing(keys, scope);
                if (total - missing.len()) as f64 >= needed {
                    Val::List(Vec::new())
                } else {
                    Val::List(missing)
                }
            }
            Op::If
            | Op::Or
            | Op::And
            | Op::Not
            | Op::Truthy
            | Op::Equal
            | Op::NotEqual
            | Op::StrictEqual
            | Op::StrictNotEqual
            | Op::Greater
            | Op::GreaterOrEqual
            | Op::Less
            | Op::LessOrEqual
            | Op::StartsWith
            | Op::EndsWith => unreachable!("{op:?} is handled by op()"),
        }
    }

    /// The keys whose values are absent, null or empty strings.
    fn missing(&self, keys: Vec<Val<'a>>, scope: Scope<'_, 'a>) -> Vec<Val<'a>> {
        keys.into_iter()
            .filter(|key| {
                let found = self.lookup_dynamic(&key.to_js_string(), scope);
                match found {
                    None | Some(Val::Null) => true,
                    Some(value) => value.as_str() == Some(""),
                }
            })
            .collect()
    }

    fn sem_ver(&mut self, node: &'a SemVerNode, scope: Scope<'_, 'a>) -> Val<'a> {
        let version = self.eval(&node.version, scope);
        let Some(text) = version_text(&version) else {
            return Val::Null;
        };
        let Some(version) = Version::parse(&text) else {
            return Val::Null;
        };
        let operator = match &node.operator {
            Operand::Const(operator) => *operator,
            Operand::Dynamic(expression) => {
                let operator = self.eval(expression, scope);
                match operator.as_str().and_then(SemVerOperator::parse) {
                    Some(operator) => operator,
                    None => return Val::Null,
                }
            }
        };
        match &node.target {
            Operand::Const(target) => Val::Bool(operator.holds(&version, &target.as_version())),
            Operand::Dynamic(expression) => {
                let target = self.eval(expression, scope);
                let Some(target_text) = version_text(&target) else {
                    return Val::Null;
                };
                match Version::parse(&target_text) {
                    Some(target) => Val::Bool(operator.holds(&version, &target)),
                    None => Val::Null,
                }
            }
        }
    }

    fn fractional(&mut self, node: &'a FractionalNode, scope: Scope<'_, 'a>) -> Val<'a> {
        let hash = match &node.key {
            BucketKey::FlagAndTargetingKey => match self.context.targeting_key() {
                Some(targeting_key) => {
                    murmur3_x86_32_of_pair(self.flag_key.as_bytes(), targeting_key.as_bytes())
                }
                None => {
                    self.missing_targeting_key = true;
                    return Val::Null;
                }
            },
            BucketKey::Expression(expression) => {
                let key = self.eval(expression, scope);
                match key.as_str() {
                    Some(key) => murmur3_x86_32_of_pair(key.as_bytes(), &[]),
                    None => return Val::Null,
                }
            }
        };
        let chosen = match &node.weights {
            Weights::Constant { weights, total } => {
                pick_bucket(hash, weights.iter().copied(), *total)
            }
            Weights::Computed(operands) => {
                let mut weights = Vec::with_capacity(operands.len());
                for operand in operands.iter() {
                    let weight = match operand {
                        Operand::Const(weight) => *weight,
                        // flagd clamps negative weights to zero and drops fractions.
                        Operand::Dynamic(expression) => match self.eval(expression, scope) {
                            Val::Number(weight) if !weight.is_nan() => weight.max(0.0) as u64,
                            _ => return Val::Null,
                        },
                    };
                    weights.push(weight);
                }
                let total = weights
                    .iter()
                    .fold(0u64, |total, weight| total.saturating_add(*weight));
                if total == 0 || total > MAX_TOTAL_WEIGHT {
                    return Val::Null;
                }
                pick_bucket(hash, weights.into_iter(), total)
            }
        };
        let Some(bucket) = chosen else {
            return Val::Null;
        };
        let variant = self.eval(&node.variants[bucket], scope);
        if matches!(variant, Val::Null | Val::Json(_) | Val::List(_)) {
            return Val::Null;
        }
        self.split = true;
        variant
    }
}

/// flagd's v2 bucketing: the 32-bit hash scaled onto `[0, total)` by a multiply and a
/// shift, then the first bucket whose cumulative weight passes that point.
fn pick_bucket(hash: u32, mut weights: impl Iterator<Item = u64>, total: u64) -> Option<usize> {
    let point = (u64::from(hash) * total) >> 32;
    let mut end = 0u64;
    weights.position(|weight| {
        end += weight;
        point < end
    })
}

fn lookup_in_scope<'k, 'a>(
    scope: Scope<'_, 'a>,
    mut segments: impl Iterator<Item = (&'k str, Option<usize>)>,
) -> Option<Val<'a>> {
    match scope {
        Scope::Root => None,
        Scope::Item(item) => descend(item.clone(), segments),
        Scope::Reduce(pair) => match segments.next() {
            None => None,
            Some(("current", _)) => descend(pair.current.clone(), segments),
            Some(("accumulator", _)) => descend(pair.accumulator.clone(), segments),
            Some(_) => None,
        },
    }
}

fn descend<'k, 'a>(
    mut value: Val<'a>,
    segments: impl Iterator<Item = (&'k str, Option<usize>)>,
) -> Option<Val<'a>> {
    for (key, index) in segments {
        value = value.child(key, index)?;
    }
    Some(value)
}

/// The text of a version operand: strings as they are, numbers as JavaScript prints them.
fn version_text<'v>(value: &'v Val<'_>) -> Option<Cow<'v, str>> {
    match value {
        Val::Number(number) => Some(Cow::Owned(format_number(*number))),
        other => other.as_str().map(Cow::Borrowed),
    }
}

/// JsonLogic's `substr`: JavaScript's `substr`, where a negative length drops characters
/// from the end.
fn substr(source: &str, start: f64, length: Option<f64>) -> String {
    let characters: Vec<char> = source.chars().collect();
    let count = characters.len() as i64;
    let start = if start.is_nan() {
        0
    } else {
        start.trunc().clamp(-1e15, 1e15) as i64
    };
    let start = if start < 0 {
        (count + start).max(0)
    } else {
        start.min(count)
    };
    let end = match length {
        None => count,
        Some(length) if length.is_nan() => start,
        Some(length) if length < 0.0 => (count + length.trunc().max(-1e15) as i64).max(start),
        Some(length) => (start + length.trunc().min(1e15) as i64).min(count),
    };
    characters[start as usize..end.max(start) as usize]
        .iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::substr;

    #[test]
    fn substr_follows_jsonlogic() {
        assert_eq!(substr("jsonlogic", 4.0, None), "logic");
        assert_eq!(substr("jsonlogic", -5.0, None), "logic");
        assert_eq!(substr("jsonlogic", 1.0, Some(3.0)), "son");
        assert_eq!(substr("jsonlogic", 4.0, Some(-2.0)), "log");
        assert_eq!(substr("abc", 5.0, None), "");
    }
}
