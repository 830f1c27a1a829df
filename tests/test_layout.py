"""The package's layout rules (docs/contributing.rst), checked on its source.

Static checks of the files: every import of a ``sklandscapes`` module,
at module level or inside a function, is an edge of the import graph.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sklandscapes"
# A function that does not fit on a screen is several functions.
MAX_LINES_OF_CODE = 80


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources():
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(path, modules):
    """(imported module, imported names) of every sklandscapes import in path."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, ()) for a in node.names if a.name in modules]
        elif isinstance(node, ast.ImportFrom) and node.module in modules:
            names = [a.name for a in node.names]
            found += [
                (f"{node.module}.{n}", ())
                for n in names
                if f"{node.module}.{n}" in modules
            ]
            attributes = tuple(n for n in names if f"{node.module}.{n}" not in modules)
            if attributes:
                found.append((node.module, attributes))
    return found


def import_graph():
    modules = sources()
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        for target, _ in imports(path, modules):
            if target != name:
                graph[name].add(target)
        # Importing a.b.c runs the __init__ of a.b first.
        for target in list(graph[name]):
            parent = target.rpartition(".")[0]
            while parent and parent != "sklandscapes":
                if parent != name and not name.startswith(parent + "."):
                    graph[name].add(parent)
                parent = parent.rpartition(".")[0]
    return graph


def find_cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    # activations reads snapshot paths through an import inside a function.
    assert "sklandscapes._snapshot_files" in graph["sklandscapes.activations"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_no_private_name_of_a_public_module_crosses_packages():
    modules = sources()
    borrowed = []
    for name, path in modules.items():
        for target, names in imports(path, modules):
            public_module = not target.rpartition(".")[2].startswith("_")
            other_package = target.rpartition(".")[0] != name.rpartition(".")[0]
            for imported in names:
                private = imported.startswith("_") and not imported.startswith("__")
                if public_module and other_package and private:
                    borrowed.append(f"{name} imports {target}.{imported}")
    assert borrowed == []


def lines_of_code(function, lines):
    body = function.body
    if (
        isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:]
    numbers = {
        n
        for statement in body
        for n in range(statement.lineno, statement.end_lineno + 1)
        if lines[n - 1].strip() and not lines[n - 1].strip().startswith("#")
    }
    return len(numbers)


@pytest.mark.parametrize("name", sorted(sources()))
def test_functions_fit_on_a_screen(name):
    path = sources()[name]
    lines = path.read_text().splitlines()
    long = [
        f"{node.name} (line {node.lineno}): {count} lines of code"
        for node in ast.walk(ast.parse("\n".join(lines)))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and (count := lines_of_code(node, lines)) > MAX_LINES_OF_CODE
    ]
    assert long == []
