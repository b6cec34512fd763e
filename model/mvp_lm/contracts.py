"""The public contracts (contracts/ at the repository root, contracts/README.md) as their generated JSON Schemas.

`npm run contracts` writes contracts/schema/<name>.v<version>.json from the zod schemas in contracts/*.ts. The
reference reads the task defaults from task.v1.json (so they cannot drift from contracts/task.ts) and validates
every result document it builds against result.v1.json. The schemas are read from the repository checkout: this
package lives at model/mvp_lm, so the repository root is two levels above this file.
"""
from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "contracts" / "schema"
TASK_SCHEMA = "task.v1.json"
RESULT_SCHEMA = "result.v1.json"


class ContractError(ValueError):
    """A document does not match its contract schema."""


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    """contracts/schema/`name`, parsed; a clear error naming the path when it is not there."""
    path = SCHEMA_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"contract schema {path} is missing: mvp_lm reads the generated schemas from the repository's "
            f"contracts/schema/ (run `npm run contracts` at the repository root to write them)")
    return json.loads(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def _task_defaults() -> dict:
    schema = load_schema(TASK_SCHEMA)
    tasks: dict[str, dict] = {}
    phrase: dict | None = None
    for branch in schema["oneOf"]:
        props = branch["properties"]
        tasks[props["type"]["const"]] = {k: p["default"] for k, p in props.items() if "default" in p}
        if "phrases" in props:
            objects = [b for b in props["phrases"]["items"]["anyOf"] if b.get("type") == "object"]
            phrase = {k: p["default"] for k, p in objects[0]["properties"].items() if "default" in p}
    if set(tasks) != {"words", "sentence"} or phrase is None:
        raise ValueError(f"{SCHEMA_DIR / TASK_SCHEMA}: expected a words task (with phrase objects) and a sentence "
                         f"task, found task types {sorted(tasks)}")
    return {"tasks": tasks, "phrase": phrase}


def task_defaults(task_type: str) -> dict:
    """{field: default} of a task type ('words' or 'sentence') as task.v1.json lists them (a fresh copy)."""
    tasks = _task_defaults()["tasks"]
    if task_type not in tasks:
        raise ValueError(f"task type {task_type!r} is not one of {sorted(tasks)} ({SCHEMA_DIR / TASK_SCHEMA})")
    return copy.deepcopy(tasks[task_type])


def phrase_defaults() -> dict:
    """{field: default} of a phrase object of a words task (a fresh copy)."""
    return copy.deepcopy(_task_defaults()["phrase"])


@lru_cache(maxsize=None)
def _result_validator():
    import jsonschema

    schema = load_schema(RESULT_SCHEMA)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_result(doc: dict) -> dict:
    """Raises ContractError naming the first invalid fields unless `doc` matches result.v1.json; returns `doc`."""
    errors = sorted(_result_validator().iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        shown = "; ".join(f"{e.json_path}: {e.message}" for e in errors[:5])
        raise ContractError(f"result document does not match {SCHEMA_DIR / RESULT_SCHEMA}: {shown}")
    return doc
