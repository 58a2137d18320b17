//! The compiled form of targeting rules: a tree of typed nodes with operators resolved,
//! `var` paths split and hashed, `$ref`s inlined and constants built, so evaluation never
//! looks at the rule's JSON again.

use serde_json::Value;

use crate::fast_hash::{FastHashSet, same_str};
use crate::semver::{OwnedVersion, SemVerOperator};
use crate::value::Val;

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Const(Box<Value>),
    /// A constant that a rule returns as its result and that names one of the flag's
    /// variants, by position, so choosing it needs no lookup by name.
    Variant(u32, Box<Value>),
    /// A literal array holding operations, evaluated element by element.
    Array(Box<[Node]>),
    Var(Box<VarNode>),
    Op(Op, Box<[Node]>),
    /// `in` against a constant array, compiled to a set.
    InSet(Box<Node>, Box<ConstSet>),
    SemVer(Box<SemVerNode>),
    Fractional(Box<FractionalNode>),
}

impl Node {
    pub(crate) fn null() -> Node {
        Node::Const(Box::new(Value::Null))
    }

    pub(crate) fn as_const(&self) -> Option<&Value> {
        match self {
            Node::Const(value) | Node::Variant(_, value) => Some(value),
            _ => None,
        }
    }
}

/// The standard JsonLogic operators plus flagd's string operators; `var`, `sem_ver` and
/// `fractional` have nodes of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    If,
    Or,
    And,
    Not,
    Truthy,
    Equal,
    StrictEqual,
    NotEqual,
    StrictNotEqual,
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
    Max,
    Min,
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
    Map,
    Filter,
    Reduce,
    All,
    None,
    Some,
    Merge,
    In,
    Cat,
    Substr,
    Missing,
    MissingSome,
    StartsWith,
    EndsWith,
}

impl Op {
    /// Operators that answer true, false or (for the string tests) null.
    pub(crate) fn is_predicate(self) -> bool {
        matches!(
            self,
            Op::Equal
                | Op::NotEqual
                | Op::StrictEqual
                | Op::StrictNotEqual
                | Op::Greater
                | Op::GreaterOrEqual
                | Op::Less
                | Op::LessOrEqual
                | Op::StartsWith
                | Op::EndsWith
        )
    }

    /// How many arguments the operator takes, at least and at most.
    pub(crate) fn arity(self) -> (usize, Option<usize>) {
        match self {
            Op::If
            | Op::Or
            | Op::And
            | Op::Max
            | Op::Min
            | Op::Add
            | Op::Multiply
            | Op::Missing => (1, None),
            Op::Merge | Op::Cat => (0, None),
            Op::Not | Op::Truthy => (1, Some(1)),
            Op::Subtract => (1, Some(2)),
            Op::Less | Op::LessOrEqual => (2, Some(3)),
            Op::Reduce | Op::Substr => (2, Some(3)),
            Op::Equal
            | Op::StrictEqual
            | Op::NotEqual
            | Op::StrictNotEqual
            | Op::Greater
            | Op::GreaterOrEqual
            | Op::Divide
            | Op::Modulo
            | Op::Map
            | Op::Filter
            | Op::All
            | Op::None
            | Op::Some
            | Op::In
            | Op::MissingSome
            | Op::StartsWith
            | Op::EndsWith => (2, Some(2)),
        }
    }
}

/// What an operator name in a rule stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operator {
    Standard(Op),
    Var,
    SemVer,
    Fractional,
}

impl Operator {
    pub(crate) fn from_name(name: &str) -> Option<Operator> {
        let op = match name {
            "var" => return Some(Operator::Var),
            "sem_ver" => return Some(Operator::SemVer),
            "fractional" => return Some(Operator::Fractional),
            "if" | "?:" => Op::If,
            "or" => Op::Or,
            "and" => Op::And,
            "!" => Op::Not,
            "!!" => Op::Truthy,
            "==" => Op::Equal,
            "===" => Op::StrictEqual,
            "!=" => Op::NotEqual,
            "!==" => Op::StrictNotEqual,
            ">" => Op::Greater,
            ">=" => Op::GreaterOrEqual,
            "<" => Op::Less,
            "<=" => Op::LessOrEqual,
            "max" => Op::Max,
            "min" => Op::Min,
            "+" => Op::Add,
            "-" => Op::Subtract,
            "*" => Op::Multiply,
            "/" => Op::Divide,
            "%" => Op::Modulo,
            "map" => Op::Map,
            "filter" => Op::Filter,
            "reduce" => Op::Reduce,
            "all" => Op::All,
            "none" => Op::None,
            "some" => Op::Some,
            "merge" => Op::Merge,
            "in" => Op::In,
            "cat" => Op::Cat,
            "substr" => Op::Substr,
            "missing" => Op::Missing,
            "missing_some" => Op::MissingSome,
            "starts_with" => Op::StartsWith,
            "ends_with" => Op::EndsWith,
            _ => return None,
        };
        Some(Operator::Standard(op))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct VarNode {
    pub(crate) path: VarPath,
    pub(crate) default: Option<Node>,
}

#[derive(Debug, Clone)]
pub(crate) enum VarPath {
    Static(StaticPath),
    /// A path computed by an expression, parsed at evaluation time.
    Dynamic(Node),
}

#[derive(Debug, Clone)]
pub(crate) struct StaticPath {
    /// How to start the lookup when the data is the evaluation context itself.
    pub(crate) root: RootLookup,
    pub(crate) segments: Box<[Segment]>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum RootLookup {
    /// The empty path: the whole data.
    Whole,
    /// `$flagd.flagKey`, which the engine supplies instead of the caller.
    FlagKey,
    /// `$flagd.timestamp`, the evaluation time in unix seconds.
    Timestamp,
    /// An attribute found by the hash of the first segment, then the other segments.
    Attribute { hash: u64 },
}

#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub(crate) key: Box<str>,
    /// The key as an array index, when it is one.
    pub(crate) index: Option<usize>,
}

impl Segment {
    pub(crate) fn new(key: &str) -> Segment {
        Segment {
            key: key.into(),
            index: parse_index(key),
        }
    }
}

pub(crate) fn parse_index(key: &str) -> Option<usize> {
    if key.is_empty() || !key.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    key.parse().ok()
}

/// The members of a constant array, by type, for `in`'s strict equality.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConstSet {
    pub(crate) strings: StringSet,
    pub(crate) numbers: Box<[f64]>,
    pub(crate) has_true: bool,
    pub(crate) has_false: bool,
    pub(crate) has_null: bool,
}

/// Up to this many strings, comparing them one by one beats hashing the needle.
pub(crate) const LINEAR_SET_LIMIT: usize = 8;

#[derive(Debug, Clone)]
pub(crate) enum StringSet {
    Few(Box<[Box<str>]>),
    Many(FastHashSet<Box<str>>),
}

impl Default for StringSet {
    fn default() -> StringSet {
        StringSet::Few(Box::default())
    }
}

impl ConstSet {
    pub(crate) fn from_items(items: &[Value]) -> ConstSet {
        let mut set = ConstSet::default();
        let mut strings = Vec::new();
        let mut numbers = Vec::new();
        for item in items {
            match item {
                Value::String(text) => strings.push(Box::<str>::from(text.as_str())),
                Value::Number(number) => numbers.push(number.as_f64().unwrap_or(f64::NAN)),
                Value::Bool(true) => set.has_true = true,
                Value::Bool(false) => set.has_false = true,
                Value::Null => set.has_null = true,
                // Strict equality never matches an array or object from the context.
                Value::Array(_) | Value::Object(_) => {}
            }
        }
        set.strings = if strings.len() <= LINEAR_SET_LIMIT {
            StringSet::Few(strings.into_boxed_slice())
        } else {
            StringSet::Many(strings.into_iter().collect())
        };
        set.numbers = numbers.into_boxed_slice();
        set
    }

    #[inline]
    pub(crate) fn contains_json(&self, needle: &Value) -> bool {
        match needle {
            Value::String(text) => self.contains_str(text),
            Value::Number(number) => self.numbers.contains(&number.as_f64().unwrap_or(f64::NAN)),
            Value::Bool(true) => self.has_true,
            Value::Bool(false) => self.has_false,
            Value::Null => self.has_null,
            Value::Array(_) | Value::Object(_) => false,
        }
    }

    #[inline]
    fn contains_str(&self, text: &str) -> bool {
        match &self.strings {
            StringSet::Few(strings) => strings.iter().any(|member| same_str(member, text)),
            StringSet::Many(strings) => strings.contains(text),
        }
    }

    #[inline]
    pub(crate) fn contains(&self, needle: &Val<'_>) -> bool {
        match needle {
            Val::Str(text) => self.contains_str(text),
            Val::String(text) => self.contains_str(text),
            Val::Number(number) => self.numbers.contains(number),
            Val::Bool(true) => self.has_true,
            Val::Bool(false) => self.has_false,
            Val::Null => self.has_null,
            Val::Json(_) | Val::List(_) => false,
        }
    }
}

/// An operand that is either known when compiling or computed per evaluation.
#[derive(Debug, Clone)]
pub(crate) enum Operand<T> {
    Const(T),
    Dynamic(Node),
}

#[derive(Debug, Clone)]
pub(crate) struct SemVerNode {
    pub(crate) version: Node,
    pub(crate) operator: Operand<SemVerOperator>,
    pub(crate) target: Operand<OwnedVersion>,
}

#[derive(Debug, Clone)]
pub(crate) struct FractionalNode {
    pub(crate) key: BucketKey,
    /// What each bucket serves, usually a variant name.
    pub(crate) variants: Box<[Node]>,
    pub(crate) weights: Weights,
}

#[derive(Debug, Clone)]
pub(crate) enum Weights {
    /// Every weight known when compiling, and their sum.
    Constant { weights: Box<[u64]>, total: u64 },
    /// Some weights computed per evaluation.
    Computed(Box<[Operand<u64>]>),
}

#[derive(Debug, Clone)]
pub(crate) enum BucketKey {
    /// flagd's default: the flag key followed by the targeting key.
    FlagAndTargetingKey,
    Expression(Node),
}

/// flagd caps the total weight so that `hash * total` fits comfortably in 64 bits.
pub(crate) const MAX_TOTAL_WEIGHT: u64 = i32::MAX as u64;
