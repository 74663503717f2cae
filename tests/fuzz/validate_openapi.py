"""Checks that a document is valid OpenAPI 3.1, with the validators schemathesis itself uses.

Two layers: the OpenAPI Initiative's 3.1 meta-schema (as schemathesis ships it, compiled by
jsonschema_rs), which checks the document's structure but not the schemas inside it; then every
Schema Object (components/schemas and each inline `schema`) against JSON Schema 2020-12, the
dialect OpenAPI 3.1 schemas are written in. Prints "valid OpenAPI 3.1 ..." and exits 0, or lists
each problem with its place in the document and exits 1.

Usage: .venv/bin/python tests/fuzz/validate_openapi.py openapi.json
"""

import json
import sys

import jsonschema_rs
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR


def schema_objects(node, where):
    """Yields (place, schema) for every Schema Object: each `schema` value and components/schemas."""
    if isinstance(node, dict):
        for key, value in node.items():
            place = f"{where}/{key}"
            if key == "schema" and isinstance(value, dict):
                yield place, value
            elif where == "#/components" and key == "schemas":
                for name, schema in value.items():
                    yield f"{place}/{name}", schema
                continue
            yield from schema_objects(value, place)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from schema_objects(value, f"{where}/{index}")


def main(path):
    with open(path, encoding="utf-8") as file:
        document = json.load(file)
    problems = [f"{'/'.join(map(str, error.instance_path)) or '(root)'}: {error.message}"
                for error in OPENAPI_31_VALIDATOR.iter_errors(document)]
    if not str(document.get("openapi", "")).startswith("3.1"):
        problems.append(f"openapi is {document.get('openapi')!r}, not 3.1.x")
    count = 0
    for place, schema in schema_objects(document, "#"):
        count += 1
        try:
            jsonschema_rs.meta.validate(schema)
        except jsonschema_rs.ValidationError as error:
            problems.append(f"{place}: not a JSON Schema 2020-12 schema: {error.message}")
    if problems:
        print("\n".join(problems))
        return 1
    print(f"valid OpenAPI 3.1 ({len(document['paths'])} paths, {count} schemas checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
