"""Checks answers against the schemas openapi.json documents for them, with the validator
schemathesis itself uses (jsonschema_rs, JSON Schema 2020-12). The document closes its answers'
objects (no property it does not name), so a field the code renamed or added fails here.

Reads one JSON list on stdin, of {"label", "pointer", "body"}: the pointer is where the answer's
schema sits in the document (`#/paths/...` or `#/components/responses/...`). Prints each answer
that does not match, with why, and exits 1; prints "n answers match" and exits 0.

Usage: .venv/bin/python tests/e2e/openapi/answers.py openapi.json < answers.json
"""

import json
import sys

import jsonschema_rs


def main(path):
    with open(path, encoding="utf-8") as file:
        document = json.load(file)
    answers = json.load(sys.stdin)
    problems = []
    for answer in answers:
        # The document is the root resource, so every "#/..." reference in it resolves.
        root = dict(document)
        root["$ref"] = answer["pointer"]
        validator = jsonschema_rs.validator_for(root)
        for error in validator.iter_errors(answer["body"]):
            place = "/".join(map(str, error.instance_path)) or "(root)"
            problems.append(f"{answer['label']}: {place}: {error.message}")
    if problems:
        print("\n".join(problems))
        return 1
    print(f"{len(answers)} answers match their documented schemas")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
