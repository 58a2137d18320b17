//! Engine-level tests through the public API: compile errors, the document round trip,
//! prerequisites, `$ref`s and evaluation semantics.

use serde_json::{Map, Value, json};

use crate::{
    CompiledEnvironment, DefinitionError, ErrorCode, EvaluationContext, FlagdDocument, Reason,
    ValueType,
};

const NOW: i64 = 1_700_000_000;

fn compile(document: Value) -> Result<CompiledEnvironment, DefinitionError> {
    CompiledEnvironment::compile(&FlagdDocument::parse(&document)?)
}

fn environment(document: Value) -> CompiledEnvironment {
    compile(document).expect("the document compiles")
}

fn compile_error(document: Value) -> String {
    compile(document)
        .expect_err("the document is rejected")
        .to_string()
}

fn context(targeting_key: Option<&str>, attributes: Value) -> EvaluationContext {
    let attributes = match attributes {
        Value::Object(attributes) => attributes,
        _ => Map::new(),
    };
    EvaluationContext::new(targeting_key.map(str::to_owned), attributes)
}

/// A document with one flag `f` whose variants are named after their values.
fn one_flag(targeting: Value) -> Value {
    json!({"flags": {"f": {
        "state": "ENABLED",
        "variants": {"on": "on", "off": "off", "true": "yes", "false": "no", "1": "one"},
        "defaultVariant": "off",
        "targeting": targeting,
    }}})
}

/// The variant `f` resolves to for the given attributes.
fn variant_of(targeting: Value, attributes: Value) -> Option<String> {
    let environment = environment(one_flag(targeting));
    let resolution = environment.evaluate("f", &context(None, attributes), NOW);
    assert!(resolution.error.is_none(), "{:?}", resolution.error);
    resolution.variant.map(str::to_owned)
}

// --- compile errors ---------------------------------------------------------------------

#[test]
fn an_unknown_operator_is_reported_with_its_path() {
    let document = json!({"flags": {"checkout": {
        "state": "ENABLED",
        "variants": {"on": true, "off": false},
        "defaultVariant": "off",
        "targeting": {"if": [{"==": [1, 1]}, {"startswith": [{"var": "email"}, "a"]}, "off"]},
    }}});
    assert_eq!(
        compile_error(document),
        r#"flags.checkout.targeting.if[1]: unknown operator "startswith""#
    );
}

#[test]
fn structural_problems_are_reported_with_their_paths() {
    let cases = [
        (
            json!({"flags": {"x": {"state": "ON", "variants": {"a": 1}}}}),
            r#"flags.x.state: expected "ENABLED" or "DISABLED", found "ON""#,
        ),
        (
            json!({"flags": {"x": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "b"}}}),
            r#"flags.x.defaultVariant: "b" is not one of the flag's variants"#,
        ),
        (
            json!({"flags": {"x": {"state": "ENABLED", "variants": ["a"]}}}),
            "flags.x.variants: expected a JSON object, found an array",
        ),
        (
            json!({"flags": {"x": {"variants": {"a": 1}}}}),
            "flags.x.state: missing required field",
        ),
        (
            json!({"flags": {"x": {"state": "ENABLED", "variants": {"a": 1}, "defaultvariant": "a"}}}),
            "flags.x.defaultvariant: unknown field",
        ),
        (
            json!({"flags": {"x": {"state": "ENABLED", "variants": {"a": 1}, "metadata": {"owner": {"team": "t"}}}}}),
            "flags.x.metadata.owner: metadata values must be strings, numbers or booleans",
        ),
        (json!({"flag": {}}), "flag: unknown field"),
        (json!({}), "flags: missing required field"),
    ];
    for (document, expected) in cases {
        assert_eq!(compile_error(document), expected);
    }
}

#[test]
fn rule_problems_are_reported_with_their_paths() {
    let cases = [
        (
            json!({"$ref": "nope"}),
            r#"flags.f.targeting.$ref: unknown evaluator "nope""#,
        ),
        (
            json!({"==": [1]}),
            "flags.f.targeting: == expects 2 arguments, found 1",
        ),
        (
            json!({"!": [1, 2]}),
            "flags.f.targeting: ! expects 1 argument, found 2",
        ),
        (
            json!({"sem_ver": [{"var": "v"}, "="]}),
            "flags.f.targeting: sem_ver expects 3 arguments, found 2",
        ),
        (
            json!({"sem_ver": [{"var": "v"}, "===", "1.0.0"]}),
            r#"flags.f.targeting.sem_ver[1]: unknown sem_ver operator "===""#,
        ),
        (
            json!({"sem_ver": [{"var": "v"}, "=", "1.x"]}),
            r#"flags.f.targeting.sem_ver[2]: "1.x" is not a semantic version"#,
        ),
        (
            json!({"starts_with": ["abc"]}),
            "flags.f.targeting: starts_with expects 2 arguments, found 1",
        ),
        (
            json!({"fractional": [["on", 0], ["off", 0]]}),
            "flags.f.targeting: fractional weights add up to zero",
        ),
        (
            json!({"fractional": [["on", -5], ["off", 10]]}),
            "flags.f.targeting.fractional[0][1]: a weight must not be negative",
        ),
        (
            json!({"fractional": [{"var": "k"}, "on"]}),
            "flags.f.targeting.fractional[1]: expected a bucket: [variant] or [variant, weight]",
        ),
        (
            json!({"in": [{"var": "a"}, [{"nope": 1}]]}),
            r#"flags.f.targeting.in[1][0]: unknown operator "nope""#,
        ),
    ];
    for (targeting, expected) in cases {
        assert_eq!(compile_error(one_flag(targeting)), expected);
    }
}

#[test]
fn problems_inside_evaluators_name_the_evaluator() {
    let document = json!({
        "flags": {"f": {"state": "ENABLED", "variants": {"on": 1}, "defaultVariant": "on"}},
        "$evaluators": {"broken": {"if": [{"bogus": []}, "on"]}},
    });
    assert_eq!(
        compile_error(document),
        r#"$evaluators.broken.if[0]: unknown operator "bogus""#
    );

    let cycle = json!({
        "flags": {"f": {"state": "ENABLED", "variants": {"on": 1}, "targeting": {"$ref": "a"}}},
        "$evaluators": {"a": {"$ref": "b"}, "b": {"!": {"$ref": "a"}}},
    });
    assert_eq!(
        compile_error(cycle),
        "$evaluators.b.!.$ref: evaluator cycle: a -> b -> a"
    );
}

#[test]
fn flagd_compatible_compilation_keeps_broken_flags_as_parse_errors() {
    let document = FlagdDocument::parse(&json!({"flags": {
        "broken": {"state": "ENABLED", "variants": {"on": 1}, "defaultVariant": "on", "targeting": {"$ref": "gone"}},
        "misused": {"state": "ENABLED", "variants": {"on": 1}, "defaultVariant": "on", "targeting": {"sem_ver": ["1.0.0"]}},
        "fine": {"state": "ENABLED", "variants": {"on": 1}, "defaultVariant": "on"},
    }}))
    .unwrap();
    let (environment, tolerated) = CompiledEnvironment::compile_flagd_compatible(&document);
    let messages: Vec<String> = tolerated.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            r#"flags.broken.targeting.$ref: unknown evaluator "gone""#,
            "flags.misused.targeting: sem_ver expects 3 arguments, found 1"
        ]
    );
    let context = context(None, json!({}));
    let broken = environment.evaluate("broken", &context, NOW);
    assert_eq!(
        broken.error.map(|error| error.code),
        Some(ErrorCode::ParseError)
    );
    let misused = environment.evaluate("misused", &context, NOW);
    assert_eq!(
        (misused.variant, misused.reason),
        (Some("on"), Reason::Default)
    );
    assert_eq!(
        environment.evaluate("fine", &context, NOW).reason,
        Reason::Static
    );
}

// --- the document round trip ------------------------------------------------------------

#[test]
fn a_document_survives_serialisation() {
    let original = json!({
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "flags": {
            "banner": {
                "state": "ENABLED",
                "variants": {"zeta": {"title": "hi", "n": [1, 2]}, "alpha": 0.5, "mid": null},
                "defaultVariant": "zeta",
                "targeting": {"if": [{"$ref": "staff"}, "alpha", null]},
                "metadata": {"owner": "growth", "version": 3},
                "prerequisites": [{"flag": "gate", "variants": ["on"]}],
            },
            "gate": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": null},
            "empty-targeting": {"state": "ENABLED", "variants": {"a": "a"}, "targeting": {}},
        },
        "$evaluators": {"staff": {"ends_with": [{"var": "email"}, "@example.com"]}},
        "metadata": {"flagSetId": "checkout"},
    });
    let parsed = FlagdDocument::parse(&original).unwrap();
    let written = parsed.to_json();
    assert_eq!(FlagdDocument::parse(&written).unwrap(), parsed);
    // Variant order is part of the document and survives too.
    let names: Vec<&String> = parsed.flags[0].variants.keys().collect();
    assert_eq!(names, ["zeta", "alpha", "mid"]);
    assert_eq!(written["flags"]["banner"], original["flags"]["banner"]);
    assert_eq!(parsed.flags[1].default_variant, None);
}

// --- prerequisites ----------------------------------------------------------------------

fn with_prerequisites(gate_state: &str) -> Value {
    json!({"flags": {
        "gate": {
            "state": gate_state,
            "variants": {"on": true, "off": false},
            "defaultVariant": "off",
            "targeting": {"if": [{"in": [{"var": "plan"}, ["pro", "team"]]}, "on", "off"]},
        },
        "feature": {
            "state": "ENABLED",
            "variants": {"new": "new", "old": "old"},
            "defaultVariant": "old",
            "targeting": {"if": [{"==": [{"var": "country"}, "NO"]}, "new", "old"]},
            "prerequisites": [{"flag": "gate", "variants": ["on"]}],
        },
    }})
}

#[test]
fn a_met_prerequisite_lets_the_flag_be_served() {
    let environment = environment(with_prerequisites("ENABLED"));
    let resolution = environment.evaluate(
        "feature",
        &context(None, json!({"plan": "pro", "country": "NO"})),
        NOW,
    );
    assert_eq!(
        (resolution.variant, resolution.reason),
        (Some("new"), Reason::TargetingMatch)
    );
}

#[test]
fn an_unmet_prerequisite_serves_the_default_variant() {
    let environment = environment(with_prerequisites("ENABLED"));
    let resolution = environment.evaluate(
        "feature",
        &context(None, json!({"plan": "free", "country": "NO"})),
        NOW,
    );
    assert_eq!(resolution.variant, Some("old"));
    assert_eq!(resolution.value, Some(&json!("old")));
    assert_eq!(resolution.reason, Reason::PrerequisiteFailed);
    assert!(resolution.error.is_none());

    let disabled_gate = self::environment(with_prerequisites("DISABLED"));
    let resolution = disabled_gate.evaluate(
        "feature",
        &context(None, json!({"plan": "pro", "country": "NO"})),
        NOW,
    );
    assert_eq!(
        (resolution.variant, resolution.reason),
        (Some("old"), Reason::PrerequisiteFailed)
    );
}

#[test]
fn prerequisite_cycles_and_unknown_flags_are_rejected() {
    let flag = |requires: &str| {
        json!({"state": "ENABLED", "variants": {"on": 1}, "defaultVariant": "on",
               "prerequisites": [{"flag": requires, "variants": ["on"]}]})
    };
    let cycle = json!({"flags": {"A": flag("B"), "B": flag("A")}});
    assert_eq!(
        compile_error(cycle),
        "flags.B.prerequisites[0].flag: prerequisite cycle: A -> B -> A"
    );
    let own = json!({"flags": {"A": flag("A")}});
    assert_eq!(
        compile_error(own),
        "flags.A.prerequisites[0].flag: prerequisite cycle: A -> A"
    );
    let unknown = json!({"flags": {"B": flag("A")}});
    assert_eq!(
        compile_error(unknown),
        r#"flags.B.prerequisites[0].flag: unknown flag "A""#
    );
    let bad_variant =
        json!({"flags": {"A": flag("B"), "B": {"state": "ENABLED", "variants": {"off": 0}}}});
    assert_eq!(
        compile_error(bad_variant),
        r#"flags.A.prerequisites[0].variants[0]: flag "B" has no variant "on""#
    );
}

// --- $ref -------------------------------------------------------------------------------

#[test]
fn refs_are_inlined_including_refs_inside_evaluators() {
    let environment = environment(json!({
        "flags": {"f": {
            "state": "ENABLED",
            "variants": {"staff": "staff", "other": "other"},
            "defaultVariant": "other",
            "targeting": {"if": [{"$ref": "is_staff"}, "staff", null]},
        }},
        "$evaluators": {
            "is_staff": {"and": [{"$ref": "has_email"}, {"ends_with": [{"var": "email"}, "@capstan.dev"]}]},
            "has_email": {"!!": {"var": "email"}},
        },
    }));
    let staff = environment.evaluate(
        "f",
        &context(None, json!({"email": "ada@capstan.dev"})),
        NOW,
    );
    assert_eq!(
        (staff.variant, staff.reason),
        (Some("staff"), Reason::TargetingMatch)
    );
    let other = environment.evaluate(
        "f",
        &context(None, json!({"email": "bob@example.com"})),
        NOW,
    );
    assert_eq!(
        (other.variant, other.reason),
        (Some("other"), Reason::Default)
    );
}

// --- evaluation -------------------------------------------------------------------------

#[test]
fn reasons_and_errors_follow_openfeature() {
    let environment = environment(json!({
        "flags": {
            "static": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on", "metadata": {"team": "a"}},
            "disabled": {"state": "DISABLED", "variants": {"on": true}, "defaultVariant": "on"},
            "no-default": {"state": "ENABLED", "variants": {"on": true}},
            "bad-variant": {"state": "ENABLED", "variants": {"on": true}, "targeting": {"cat": ["o", "ff"]}},
            "split": {"state": "ENABLED", "variants": {"a": 1, "b": 2}, "targeting": {"fractional": [["a"], ["b"]]}},
        },
        "metadata": {"team": "platform", "flagSetId": "web"},
    }));
    let context = context(Some("user-1"), json!({}));

    let resolution = environment.evaluate("static", &context, NOW);
    assert_eq!(
        (resolution.value, resolution.reason),
        (Some(&json!(true)), Reason::Static)
    );
    assert_eq!(
        Value::Object(resolution.metadata.clone()),
        json!({"team": "a", "flagSetId": "web"})
    );

    let resolution = environment.evaluate("disabled", &context, NOW);
    assert_eq!(
        (resolution.value, resolution.variant, resolution.reason),
        (None, None, Reason::Disabled)
    );
    assert!(resolution.error.is_none());

    let resolution = environment.evaluate("no-default", &context, NOW);
    assert_eq!(
        (resolution.value, resolution.reason),
        (None, Reason::Default)
    );

    let resolution = environment.evaluate("bad-variant", &context, NOW);
    assert_eq!(resolution.reason, Reason::Error);
    assert_eq!(
        resolution.error.map(|error| error.code),
        Some(ErrorCode::General)
    );

    let resolution = environment.evaluate("split", &context, NOW);
    assert_eq!(resolution.reason, Reason::Split);
    assert!(resolution.value.is_some());

    let resolution = environment.evaluate("missing", &context, NOW);
    assert_eq!(
        resolution.error.map(|error| error.code),
        Some(ErrorCode::FlagNotFound)
    );

    let resolution = environment
        .evaluate("static", &context, NOW)
        .expect_type(ValueType::String);
    assert_eq!(
        resolution.error.map(|error| error.code),
        Some(ErrorCode::TypeMismatch)
    );
    assert_eq!(resolution.value, None);

    assert!(environment.contains("split"));
    assert_eq!(
        environment.keys().collect::<Vec<_>>(),
        ["static", "disabled", "no-default", "bad-variant", "split"]
    );
}

#[test]
fn fractional_buckets_like_flagd_v2() {
    // flagd's own vectors: the default bucketing key is the flag key then the targeting key.
    let environment = environment(json!({"flags": {"fractional-flag-shorthand": {
        "state": "ENABLED",
        "variants": {"heads": "heads", "tails": "tails"},
        "targeting": {"fractional": [["heads"], ["tails", 1]]},
    }}}));
    for (key, expected) in [("jon@company.com", "heads"), ("jane@company.com", "tails")] {
        let resolution = environment.evaluate(
            "fractional-flag-shorthand",
            &context(Some(key), json!({})),
            NOW,
        );
        assert_eq!(resolution.variant, Some(expected), "{key}");
    }
}

#[test]
fn jsonlogic_operators_behave_as_specified() {
    let cases: Vec<(Value, Value, Option<&str>)> = vec![
        (
            json!({"if": [{"in": [{"var": "userId"}, ["7", "8"]]}, "on", "off"]}),
            json!({"userId": "7"}),
            Some("on"),
        ),
        (
            json!({"if": [{"in": [{"var": "userId"}, ["7"]]}, "on", "off"]}),
            json!({"userId": 7}),
            Some("off"),
        ),
        (
            json!({"if": [{"in": ["sub", {"var": "s"}]}, "on", "off"]}),
            json!({"s": "a sub string"}),
            Some("on"),
        ),
        (
            json!({"if": [{"==": [{"var": "n"}, "1"]}, "on", "off"]}),
            json!({"n": 1}),
            Some("on"),
        ),
        (
            json!({"if": [{"===": [{"var": "n"}, "1"]}, "on", "off"]}),
            json!({"n": 1}),
            Some("off"),
        ),
        (
            json!({"if": [{"<": [1, {"var": "n"}, 3]}, "on", "off"]}),
            json!({"n": 2}),
            Some("on"),
        ),
        (
            json!({"if": [{"<=": [1, {"var": "n"}, 3]}, "on", "off"]}),
            json!({"n": 3}),
            Some("on"),
        ),
        (
            json!({"if": [{">=": [{"var": "user.age"}, 18]}, "on", "off"]}),
            json!({"user": {"age": 21}}),
            Some("on"),
        ),
        (json!({"var": ["missing", "on"]}), json!({}), Some("on")),
        (
            json!({"var": "list.1"}),
            json!({"list": ["off", "on"]}),
            Some("on"),
        ),
        (
            json!({"if": [{"missing": ["a", "b"]}, "off", "on"]}),
            json!({"a": 1, "b": 2}),
            Some("on"),
        ),
        (
            json!({"if": [{"missing_some": [1, ["a", "b"]]}, "off", "on"]}),
            json!({"b": 2}),
            Some("on"),
        ),
        (
            json!({"cat": ["o", {"substr": ["xxnyy", 2, 1]}]}),
            json!({}),
            Some("on"),
        ),
        (
            json!({"if": [{"==": [{"+": [1, 2, "3"]}, 6]}, "on", "off"]}),
            json!({}),
            Some("on"),
        ),
        (
            json!({"if": [{"==": [{"%": [7, {"-": [5, 2]}]}, 1]}, "on", "off"]}),
            json!({}),
            Some("on"),
        ),
        (
            json!({"if": [{"==": [{"max": [1, 9, 3]}, {"*": [3, 3]}]}, "on", "off"]}),
            json!({}),
            Some("on"),
        ),
        (
            json!({"if": [{"==": [{"min": [4, 2]}, {"/": [4, 2]}]}, "on", "off"]}),
            json!({}),
            Some("on"),
        ),
        (
            json!({"if": [{"all": [{"var": "xs"}, {">": [{"var": ""}, 0]}]}, "on", "off"]}),
            json!({"xs": [1, 2]}),
            Some("on"),
        ),
        (
            json!({"if": [{"some": [{"var": "xs"}, {"==": [{"var": "id"}, 2]}]}, "on", "off"]}),
            json!({"xs": [{"id": 1}, {"id": 2}]}),
            Some("on"),
        ),
        (
            json!({"if": [{"none": [{"var": "xs"}, {"==": [{"var": ""}, 3]}]}, "on", "off"]}),
            json!({"xs": [1, 2]}),
            Some("on"),
        ),
        (
            json!({"if": [{"==": [{"reduce": [{"var": "xs"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]}, 6]}, "on", "off"]}),
            json!({"xs": [1, 2, 3]}),
            Some("on"),
        ),
        (
            json!({"if": [{"in": [4, {"merge": [[1], {"map": [{"var": "xs"}, {"*": [{"var": ""}, 2]}]}]}]}, "on", "off"]}),
            json!({"xs": [1, 2]}),
            Some("on"),
        ),
        (
            json!({"if": [{"==": [{"filter": [[1, 2, 3], {">": [{"var": ""}, 1]}]}, "2,3"]}, "on", "off"]}),
            json!({}),
            Some("on"),
        ),
        (
            json!({"or": [{"var": "nothing"}, {"and": [true, "on"]}]}),
            json!({}),
            Some("on"),
        ),
        (
            json!({"if": [{"!": [{"var": "flag"}]}, "on", "off"]}),
            json!({"flag": []}),
            Some("on"),
        ),
        (
            json!({"==": [{"var": "$flagd.flagKey"}, "f"]}),
            json!({}),
            Some("true"),
        ),
        (
            json!({"if": [{">": [{"var": "$flagd.timestamp"}, 1_600_000_000]}, "on", "off"]}),
            json!({}),
            Some("on"),
        ),
        (
            json!({"var": {"cat": ["pick", "ed"]}}),
            json!({"picked": "on"}),
            Some("on"),
        ),
        (json!({"+": [0, 1]}), json!({}), Some("1")),
        (
            json!({"if": [{"sem_ver": [{"var": "v"}, ">=", "1.2.0"]}, "on", "off"]}),
            json!({"v": "v1.10.0"}),
            Some("on"),
        ),
        (
            json!({"if": [{"sem_ver": [{"var": "v"}, "<", {"var": "w"}]}, "on", "off"]}),
            json!({"v": "1.2.0-rc.1", "w": "1.2.0"}),
            Some("on"),
        ),
        (
            json!({"if": [{"ends_with": [{"var": "e"}, ".dev"]}, "on", "off"]}),
            json!({"e": "a@b.dev"}),
            Some("on"),
        ),
        (
            json!({"if": [{"starts_with": [{"var": "e"}, "a@"]}, "on", "off"]}),
            json!({"e": "b@b.dev"}),
            Some("off"),
        ),
        (
            json!({"starts_with": [{"var": "e"}, "a@"]}),
            json!({"e": 5}),
            Some("off"),
        ),
    ];
    for (targeting, attributes, expected) in cases {
        assert_eq!(
            variant_of(targeting.clone(), attributes.clone()),
            expected.map(str::to_owned),
            "{targeting} on {attributes}"
        );
    }
}

#[test]
fn large_constant_sets_are_matched_by_hash() {
    let members: Vec<String> = (0..100).map(|i| format!("user-{i}")).collect();
    let targeting = json!({"if": [{"in": [{"var": "id"}, members]}, "on", "off"]});
    assert_eq!(
        variant_of(targeting.clone(), json!({"id": "user-42"})),
        Some("on".into())
    );
    assert_eq!(
        variant_of(targeting, json!({"id": "user-420"})),
        Some("off".into())
    );
}

#[test]
fn the_environment_is_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CompiledEnvironment>();
    assert_send_sync::<EvaluationContext>();
}

#[test]
fn a_split_by_targeting_key_without_one_is_targeting_key_missing() {
    let environment = environment(one_flag(json!({"fractional": [["on", 50], ["off", 50]]})));
    let resolution = environment.evaluate("f", &context(None, json!({})), NOW);
    assert_eq!(resolution.reason, Reason::Error);
    assert_eq!(
        resolution.error.map(|error| error.code),
        Some(ErrorCode::TargetingKeyMissing)
    );
    // With an explicit bucketing expression, no targeting key is needed.
    let explicit = environment_with_bucket();
    let resolution = explicit.evaluate("f", &context(None, json!({"email": "a@b.c"})), NOW);
    assert_eq!(resolution.reason, Reason::Split);
    assert!(resolution.error.is_none());
    let resolution = environment.evaluate("f", &context(Some("u-1"), json!({})), NOW);
    assert_eq!(resolution.reason, Reason::Split);
}

fn environment_with_bucket() -> CompiledEnvironment {
    environment(one_flag(
        json!({"fractional": [{"var": "email"}, ["on", 50], ["off", 50]]}),
    ))
}
