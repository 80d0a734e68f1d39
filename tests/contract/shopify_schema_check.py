"""Checks the Shopify emulator's GraphQL schema against Shopify's own.

Usage: shopify_schema_check.py INTROSPECTION_JSON_GZ EMULATOR_SDL DOCUMENTS_DIR

1. Every type, field, argument, input field, enum value and union member the
   emulator serves exists in the real Admin API schema (2025-01) with the
   same type; required arguments and input fields of the real schema are
   present in the emulator's.
2. Every GraphQL document in DOCUMENTS_DIR validates against the real
   schema and against the emulator's.

The real schema is patched with what later API versions add and the
emulator serves: `InventoryQuantityInput.changeFromQuantity` (2026-01),
the `@idempotent(key:)` directive (2026-04) and the
`CHANGE_FROM_QUANTITY_STALE` user error code.

Prints a JSON report; exits 1 on any mismatch.
"""

import gzip
import json
import pathlib
import sys

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLUnionType,
    build_client_schema,
    build_schema,
    extend_schema,
    is_non_null_type,
    parse,
    validate,
)

PATCH = """
extend input InventoryQuantityInput { changeFromQuantity: Int }
extend enum InventorySetQuantitiesUserErrorCode { CHANGE_FROM_QUANTITY_STALE }
directive @idempotent(key: String!) on FIELD
"""


def kind(t):
    for k, name in (
        (GraphQLObjectType, "OBJECT"),
        (GraphQLInterfaceType, "INTERFACE"),
        (GraphQLInputObjectType, "INPUT_OBJECT"),
        (GraphQLEnumType, "ENUM"),
        (GraphQLUnionType, "UNION"),
        (GraphQLScalarType, "SCALAR"),
    ):
        if isinstance(t, k):
            return name
    return "?"


def main():
    intro_path, sdl_path, docs_dir = sys.argv[1:4]
    with gzip.open(intro_path, "rt", encoding="utf-8") as f:
        intro = json.load(f)
    intro = intro.get("data", intro)
    # Shopify's published schema breaks a rule added to the spec after it
    # was written (deprecated fields implementing non-deprecated interface
    # fields), which graphql-core enforces before validating documents.
    # Those rules concern the schema, not documents: skip them.
    real = extend_schema(build_client_schema(intro, assume_valid=True), parse(PATCH), assume_valid=True)
    real._validation_errors = []
    mine = build_schema(pathlib.Path(sdl_path).read_text(encoding="utf-8"))
    problems = []
    checked = {"types": 0, "fields": 0, "arguments": 0, "enum_values": 0}

    if mine.query_type.name != real.query_type.name:
        problems.append(f"query root {mine.query_type.name} != {real.query_type.name}")
    if mine.mutation_type.name != real.mutation_type.name:
        problems.append(f"mutation root {mine.mutation_type.name} != {real.mutation_type.name}")

    for name, t in mine.type_map.items():
        if name.startswith("__"):
            continue
        r = real.type_map.get(name)
        if r is None:
            problems.append(f"type {name} does not exist in the real schema")
            continue
        checked["types"] += 1
        if kind(t) != kind(r):
            problems.append(f"type {name} is {kind(t)}, real is {kind(r)}")
            continue
        if isinstance(t, (GraphQLObjectType, GraphQLInterfaceType)):
            for fname, f in t.fields.items():
                rf = r.fields.get(fname)
                if rf is None:
                    problems.append(f"field {name}.{fname} does not exist")
                    continue
                checked["fields"] += 1
                if str(f.type) != str(rf.type):
                    problems.append(f"field {name}.{fname}: {f.type} != real {rf.type}")
                for aname, a in f.args.items():
                    ra = rf.args.get(aname)
                    if ra is None:
                        problems.append(f"argument {name}.{fname}({aname}) does not exist")
                        continue
                    checked["arguments"] += 1
                    if str(a.type) != str(ra.type):
                        problems.append(f"argument {name}.{fname}({aname}): {a.type} != real {ra.type}")
                for aname, ra in rf.args.items():
                    if is_non_null_type(ra.type) and ra.default_value is None and aname not in f.args:
                        problems.append(f"required argument {name}.{fname}({aname}) missing")
        elif isinstance(t, GraphQLInputObjectType):
            for fname, f in t.fields.items():
                rf = r.fields.get(fname)
                if rf is None:
                    problems.append(f"input field {name}.{fname} does not exist")
                    continue
                checked["fields"] += 1
                if str(f.type) != str(rf.type):
                    problems.append(f"input field {name}.{fname}: {f.type} != real {rf.type}")
            for fname, rf in r.fields.items():
                if is_non_null_type(rf.type) and fname not in t.fields:
                    problems.append(f"required input field {name}.{fname} missing")
        elif isinstance(t, GraphQLEnumType):
            for v in t.values:
                checked["enum_values"] += 1
                if v not in r.values:
                    problems.append(f"enum value {name}.{v} does not exist")
        elif isinstance(t, GraphQLUnionType):
            real_members = {m.name for m in r.types}
            for m in t.types:
                if m.name not in real_members:
                    problems.append(f"union {name} member {m.name} does not exist")

    docs = sorted(pathlib.Path(docs_dir).glob("*.graphql"))
    for d in docs:
        ast = parse(d.read_text(encoding="utf-8"))
        for label, schema in (("real 2025-01 (patched)", real), ("emulator", mine)):
            for e in validate(schema, ast):
                problems.append(f"{d.name} invalid against {label}: {e.message}")

    print(json.dumps({"checked": checked, "documents": [d.name for d in docs], "problems": problems}, indent=1))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
