//! Evaluates compiled rules against one context.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::context::EvaluationContext;
use crate::fast_hash::hash_str;
use crate::murmur::murmur3_x86_32_of_pair;
use crate::node::{
    BucketKey, FractionalNode, MAX_TOTAL_WEIGHT, Node, Op, Operand, RootLookup, Segment,
    SemVerNode, StaticPath, VarNode, VarPath, parse_index,
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
}

/// The data `var` reads: the context, or an array item inside `map`, `filter`, `all`,
/// `none` and `some`, or the pair `reduce` offers.
#[derive(Clone, Copy)]
enum Scope<'s, 'a> {
    Root,
    Item(&'s Val<'a>),
    Reduce {
        current: &'s Val<'a>,
        accumulator: &'s Val<'a>,
    },
}

impl<'a> Evaluation<'a> {
    pub(crate) fn run(&mut self, node: &'a Node) -> Val<'a> {
        self.eval(node, Scope::Root)
    }

    fn eval(&mut self, node: &'a Node, scope: Scope<'_, 'a>) -> Val<'a> {
        match node {
            Node::Const(value) => Val::from_json(value),
            Node::Array(items) => {
                Val::List(items.iter().map(|item| self.eval(item, scope)).collect())
            }
            Node::Var(var) => self.var(var, scope),
            Node::Op(op, arguments) => self.op(*op, arguments, scope),
            Node::InSet(needle, set) => {
                let needle = self.eval(needle, scope);
                Val::Bool(set.contains(&needle))
            }
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

    fn var(&mut self, var: &'a VarNode, scope: Scope<'_, 'a>) -> Val<'a> {
        let found = match &var.path {
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
                    if self.eval(&arguments[index], scope).truthy() {
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
            Op::Not => Val::Bool(!self.argument(arguments, 0, scope).truthy()),
            Op::Truthy => Val::Bool(self.argument(arguments, 0, scope).truthy()),
            Op::Equal | Op::NotEqual | Op::StrictEqual | Op::StrictNotEqual => {
                let left = self.argument(arguments, 0, scope);
                let right = self.argument(arguments, 1, scope);
                Val::Bool(match op {
                    Op::Equal => loose_equal(&left, &right),
                    Op::NotEqual => !loose_equal(&left, &right),
                    Op::StrictEqual => strict_equal(&left, &right),
                    _ => !strict_equal(&left, &right),
                })
            }
            Op::Greater | Op::GreaterOrEqual => {
                let left = self.argument(arguments, 0, scope);
                let right = self.argument(arguments, 1, scope);
                let order = compare(&left, &right);
                Val::Bool(if op == Op::Greater {
                    order == Some(Ordering::Greater)
                } else {
                    matches!(order, Some(Ordering::Greater | Ordering::Equal))
                })
            }
            Op::Less | Op::LessOrEqual => {
                let accepts = |order: Option<Ordering>| match op {
                    Op::Less => order == Some(Ordering::Less),
                    _ => matches!(order, Some(Ordering::Less | Ordering::Equal)),
                };
                let first = self.argument(arguments, 0, scope);
                let second = self.argument(arguments, 1, scope);
                if !accepts(compare(&first, &second)) {
                    return Val::Bool(false);
                }
                // Three arguments test that the middle one lies between the others.
                if arguments.len() == 3 {
                    let third = self.argument(arguments, 2, scope);
                    return Val::Bool(accepts(compare(&second, &third)));
                }
                Val::Bool(true)
            }
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
                    .filter(|item| self.eval(&arguments[1], Scope::Item(item)).truthy())
                    .collect();
                Val::List(kept)
            }
            Op::Reduce => {
                let list = self.argument(arguments, 0, scope);
                let mut accumulator = self.argument(arguments, 2, scope);
                for current in list.items() {
                    let scope = Scope::Reduce {
                        current: &current,
                        accumulator: &accumulator,
                    };
                    accumulator = self.eval(&arguments[1], scope);
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
                        .all(|item| self.eval(&arguments[1], Scope::Item(&item)).truthy()),
                )
            }
            Op::None | Op::Some => {
                let list = self.argument(arguments, 0, scope);
                let any = list
                    .items()
                    .any(|item| self.eval(&arguments[1], Scope::Item(&item)).truthy());
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
            Op::StartsWith | Op::EndsWith => {
                let text = self.argument(arguments, 0, scope);
                let affix = self.argument(arguments, 1, scope);
                // flagd answers null, not false, for non-strings, so the flag serves its
                // default variant rather than a variant named "false".
                match (text.as_str(), affix.as_str()) {
                    (Some(text), Some(affix)) if op == Op::StartsWith => {
                        Val::Bool(text.starts_with(affix))
                    }
                    (Some(text), Some(affix)) => Val::Bool(text.ends_with(affix)),
                    _ => Val::Null,
                }
            }
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
            BucketKey::FlagAndTargetingKey => {
                let targeting_key = self.context.targeting_key().unwrap_or_default();
                murmur3_x86_32_of_pair(self.flag_key.as_bytes(), targeting_key.as_bytes())
            }
            BucketKey::Expression(expression) => {
                let key = self.eval(expression, scope);
                match key.as_str() {
                    Some(key) => murmur3_x86_32_of_pair(key.as_bytes(), &[]),
                    None => return Val::Null,
                }
            }
        };
        let chosen = match node.constant_total {
            Some(total) => {
                let point = (u64::from(hash) * total) >> 32;
                node.buckets
                    .iter()
                    .scan(0u64, |end, bucket| {
                        let Operand::Const(weight) = bucket.weight else {
                            unreachable!("constant weights")
                        };
                        *end += weight;
                        Some((*end, bucket))
                    })
                    .find(|(end, _)| point < *end)
                    .map(|(_, bucket)| bucket)
            }
            None => {
                let mut weights = Vec::with_capacity(node.buckets.len());
                for bucket in node.buckets.iter() {
                    let weight = match &bucket.weight {
                        Operand::Const(weight) => *weight,
                        Operand::Dynamic(expression) => match self.eval(expression, scope) {
                            Val::Number(weight) if !weight.is_nan() => weight.max(0.0) as u64,
                            _ => return Val::Null,
                        },
                    };
                    weights.push(weight);
                }
                let total: u64 = weights.iter().sum();
                if total == 0 || total > MAX_TOTAL_WEIGHT {
                    return Val::Null;
                }
                let point = (u64::from(hash) * total) >> 32;
                let mut end = 0;
                node.buckets
                    .iter()
                    .zip(weights)
                    .find_map(|(bucket, weight)| {
                        end += weight;
                        (point < end).then_some(bucket)
                    })
            }
        };
        let Some(bucket) = chosen else {
            return Val::Null;
        };
        let variant = self.eval(&bucket.variant, scope);
        if matches!(variant, Val::Null | Val::Json(_) | Val::List(_)) {
            return Val::Null;
        }
        self.split = true;
        variant
    }
}

fn lookup_in_scope<'k, 'a>(
    scope: Scope<'_, 'a>,
    mut segments: impl Iterator<Item = (&'k str, Option<usize>)>,
) -> Option<Val<'a>> {
    match scope {
        Scope::Root => None,
        Scope::Item(item) => descend(item.clone(), segments),
        Scope::Reduce {
            current,
            accumulator,
        } => match segments.next() {
            None => None,
            Some(("current", _)) => descend(current.clone(), segments),
            Some(("accumulator", _)) => descend(accumulator.clone(), segments),
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
