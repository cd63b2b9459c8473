#!/usr/bin/env python3
# tests/schema/check.py: jq-stat's JSON output against its versioned schema (tests/stat-list.bats).
#
#   check.py validate SCHEMA FILE...
#       Each FILE holds JSON documents, one per line.  Check every document against SCHEMA (the
#       subset of JSON Schema 2020-12 used in tests/schema: type, const, enum, properties,
#       required, additionalProperties, items, $ref to #/$defs/...), strictly: integers are not
#       numbers with a fraction, booleans are not integers.  Then print, one per line, each type
#       that SCHEMA allows somewhere and that no document had there ("$.progress: null"), so that
#       a test can demand that its documents exercise every type.
#   check.py grown OLD NEW
#       NEW, a later text of the same version's schema, may only add: every property of OLD is
#       in NEW with the same types, a required one stays required, an enum may only grow.
#   check.py lint SCHEMA
#       SCHEMA uses only the keywords above; every object that lists properties forbids others
#       (additionalProperties: false) and requires each one but those in x-jq-optional.
#
# Exit status 0 when all holds, 1 with one message per problem on stderr otherwise.

import json
import sys

KEYWORDS = {"type", "const", "enum", "properties", "required", "additionalProperties", "items",
            "$ref", "$defs", "x-jq-optional"}
ANNOTATIONS = {"$schema", "$id", "$comment", "title", "description"}
TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")

problems = []


def fail(msg):
    problems.append(msg)


def resolve(root, node):
    """Follow a $ref (only #/$defs/NAME) to the node it names."""
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/$defs/"):
            raise SystemExit("unsupported $ref %r" % ref)
        node = root["$defs"][ref[len("#/$defs/"):]]
    return node


def json_type(v):
    """The JSON type of a parsed value, integers apart from other numbers."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def allowed_types(node):
    """The types a schema node allows ("number" covers integers, as in JSON Schema)."""
    if "const" in node:
        return {json_type(node["const"])}
    if "enum" in node:
        return {json_type(v) for v in node["enum"]}
    t = node.get("type", list(TYPES))
    return set(t if isinstance(t, list) else [t])


def validate(root, node, value, path, seen):
    node = resolve(root, node)
    t = json_type(value)
    types = allowed_types(node)
    ok = t in types or (t == "integer" and "number" in types)
    seen.setdefault(path, set()).add("number" if t == "integer" and "integer" not in types else t)
    if not ok:
        fail("%s: %s where the schema has %s" % (path, t, " or ".join(sorted(types))))
        return
    if "const" in node and value != node["const"]:
        fail("%s: %r where the schema has %r" % (path, value, node["const"]))
    if "enum" in node and value not in node["enum"]:
        fail("%s: %r is not one of %r" % (path, value, node["enum"]))
    if t == "object":
        props = node.get("properties", {})
        for key in node.get("required", []):
            if key not in value:
                fail("%s: no member %r" % (path, key))
        extra = node.get("additionalProperties", True)
        for key, v in value.items():
            sub = "%s.%s" % (path, key)
            if key in props:
                validate(root, props[key], v, sub, seen)
            elif extra is False:
                fail("%s: member %r is not in the schema" % (path, key))
            elif isinstance(extra, dict):
                validate(root, extra, v, "%s.*" % path, seen)
    elif t == "array" and "items" in node:
        for v in value:
            validate(root, node["items"], v, path + "[]", seen)


def expected(root, node, path, out):
    """Every (path, type) pair the schema allows, as validate names them."""
    node = resolve(root, node)
    for t in allowed_types(node):
        out.add((path, t))
    for key, sub in node.get("properties", {}).items():
        expected(root, sub, "%s.%s" % (path, key), out)
    if isinstance(node.get("additionalProperties"), dict):
        expected(root, node["additionalProperties"], path + ".*", out)
    if "items" in node:
        expected(root, node["items"], path + "[]", out)


def cmd_validate(schema_file, files):
    root = json.load(open(schema_file, encoding="utf-8"))
    seen = {}
    n = 0
    for f in files:
        for lineno, line in enumerate(open(f, encoding="utf-8"), 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError as e:
                fail("%s:%d: not JSON: %s" % (f, lineno, e))
                continue
            n += 1
            before = len(problems)
            validate(root, root, doc, "$", seen)
            for i in range(before, len(problems)):
                problems[i] = "%s:%d: %s" % (f, lineno, problems[i])
    if n == 0:
        fail("no document to check")
    want = set()
    expected(root, root, "$", want)
    for path, t in sorted(want):
        if t not in seen.get(path, set()):
            print("%s: %s" % (path, t))


def cmd_grown(old_file, new_file):
    old_root = json.load(open(old_file, encoding="utf-8"))
    new_root = json.load(open(new_file, encoding="utf-8"))

    def walk(old, new, path):
        old = resolve(old_root, old)
        new = resolve(new_root, new)
        if allowed_types(old) != allowed_types(new):
            fail("%s: type %s became %s" % (path, sorted(allowed_types(old)),
                                            sorted(allowed_types(new))))
        if old.get("const") != new.get("const"):
            fail("%s: const %r became %r" % (path, old.get("const"), new.get("const")))
        if "enum" in old and not set(old["enum"]) <= set(new.get("enum", [])):
            fail("%s: enum %r lost values in %r" % (path, old["enum"], new.get("enum")))
        for key in old.get("required", []):
            if key not in new.get("required", []):
                fail("%s: %r is no longer required" % (path, key))
        for key, sub in old.get("properties", {}).items():
            if key not in new.get("properties", {}):
                fail("%s: member %r was removed or renamed" % (path, key))
            else:
                walk(sub, new["properties"][key], "%s.%s" % (path, key))
        oa, na = old.get("additionalProperties", True), new.get("additionalProperties", True)
        if isinstance(oa, dict) != isinstance(na, dict) or (oa is False) != (na is False):
            fail("%s: additionalProperties changed" % path)
        elif isinstance(oa, dict):
            walk(oa, na, path + ".*")
        if "items" in old:
            if "items" not in new:
                fail("%s: items were removed" % path)
            else:
                walk(old["items"], new["items"], path + "[]")

    walk(old_root, new_root, "$")


def cmd_lint(schema_file):
    root = json.load(open(schema_file, encoding="utf-8"))

    def walk(node, path):
        for key in node:
            if key not in KEYWORDS and key not in ANNOTATIONS:
                fail("%s: keyword %r is not one check.py knows" % (path, key))
        t = node.get("type")
        for name in (t if isinstance(t, list) else [t] if t else []):
            if name not in TYPES:
                fail("%s: unknown type %r" % (path, name))
        props = node.get("properties")
        if props is not None:
            if node.get("additionalProperties") is not False:
                fail("%s: lists properties but does not forbid others" % path)
            optional = set(node.get("x-jq-optional", {}))
            for key in props:
                if (key in node.get("required", [])) == (key in optional):
                    fail("%s: %r must be either required or in x-jq-optional" % (path, key))
            for key, sub in props.items():
                walk(sub, "%s.%s" % (path, key))
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], path + ".*")
        if "items" in node:
            walk(node["items"], path + "[]")
        for key, sub in node.get("$defs", {}).items():
            walk(sub, "%s.$defs.%s" % (path, key))

    walk(root, "$")


def main(argv):
    if len(argv) >= 3 and argv[0] == "validate":
        cmd_validate(argv[1], argv[2:])
    elif len(argv) == 3 and argv[0] == "grown":
        cmd_grown(argv[1], argv[2])
    elif len(argv) == 2 and argv[0] == "lint":
        cmd_lint(argv[1])
    else:
        sys.exit("usage: check.py validate SCHEMA FILE... | grown OLD NEW | lint SCHEMA")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
