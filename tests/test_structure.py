"""Promises about the code's shape that no import contract can state: one writer of Task.state,
no imports hidden inside functions, Celery task names that match, one table of operations."""

import ast
from pathlib import Path

import pytest

from config.celery_app import app as celery_app
from restorations.engines import local
from restorations.jobs import queue
from restorations.jobs.operations import SPECS

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ROOT / "restorations"
THE_WRITER = PRODUCT / "jobs" / "transitions.py"
# Query methods whose `state=` keyword writes the field (filter(state=...) only reads it).
_WRITING_METHODS = {"update", "create", "get_or_create", "update_or_create", "bulk_create"}


def _product_modules():
    for path in sorted(PRODUCT.rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


def state_writes(source: str) -> list[int]:
    """Lines of `source` that write a `state` field: `x.state = ...`, a writing query method
    or a model constructor given `state=`, or `state` named in update_fields / bulk_update."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Attribute) and t.attr == "state" for t in targets):
                lines.append(node.lineno)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            keywords = {k.arg for k in node.keywords}
            if "state" in keywords and (name in _WRITING_METHODS or name == "Task"):
                lines.append(node.lineno)
            named = [
                elt.value
                for arg in [*node.args, *(k.value for k in node.keywords)]
                if isinstance(arg, (ast.List, ast.Tuple, ast.Set))
                for elt in arg.elts
                if isinstance(elt, ast.Constant)
            ]
            if name in ("bulk_update", "save") and "state" in named:
                lines.append(node.lineno)
    return lines


@pytest.mark.parametrize(
    "code",
    [
        "task.state = 1",
        "Task.objects.filter(pk=1).update(state=2)",
        "Task.objects.create(state=100)",
        "Task(state=3)",
        "task.save(update_fields=['state'])",
        "Task.objects.bulk_update(tasks, ['progress', 'state'])",
    ],
)
def test_the_scanner_sees_each_way_of_writing_the_state(code):
    assert state_writes(code) == [1]


def test_the_scanner_leaves_reads_alone():
    assert state_writes("Task.objects.filter(state=2).update(progress=3)\nx = task.state") == []


def test_only_the_transitions_module_writes_task_state():
    writers = {
        str(path.relative_to(ROOT)): lines
        for path in _product_modules()
        if path != THE_WRITER and (lines := state_writes(path.read_text()))
    }
    assert writers == {}
    assert state_writes(THE_WRITER.read_text())  # the scan does see the one writer


def imports_in_functions(source: str) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name != "ready":
            lines += [
                n.lineno for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))
            ]
    return lines


def test_the_import_scanner_sees_an_import_in_a_function():
    assert imports_in_functions("def f():\n    from a import b\n") == [2]
    assert imports_in_functions("class C:\n    def ready(self):\n        import signals\n") == []


def test_no_product_module_imports_inside_a_function():
    # AppConfig.ready() importing signal handlers is Django's documented exception.
    found = {
        str(path.relative_to(ROOT)): lines
        for path in _product_modules()
        if (lines := imports_in_functions(path.read_text()))
    }
    assert found == {}


def test_every_message_name_is_a_registered_task_and_every_task_is_named():
    celery_app.loader.import_default_modules()
    ours = {name for name in celery_app.tasks if not name.startswith("celery.")}
    assert ours == set(queue.NAMES)


def test_the_local_engine_runs_exactly_the_operations_offered():
    assert set(local.OPERATIONS) == set(SPECS)
