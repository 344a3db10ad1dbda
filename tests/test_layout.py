"""The package's layout holds: imports between its parts run one way, down the layers below, and no circle."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lipsync"
# Lowest first. A part may import its own layer and the ones below it, never one above.
LAYERS = [
    {"errors", "config", "options", "progress", "user_cache"},
    {"media"},
    {"speech"},
    {"nets"},
    {"faces"},
    {"runtime", "models"},
    {"scoring"},
    {"render", "pipeline"},
    {"live", "batch"},
    {"__main__", "__init__"},
    {"bench"},
]
LAYER_OF = {part: level for level, parts in enumerate(LAYERS) for part in parts}
MAX_TOP_MODULES = 12


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """The lipsync modules and packages a file imports (at any depth of its code, lazy imports included)."""
    own = module_name(path).split(".")
    package = own if path.name == "__init__.py" else own[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            if module.split(".")[0] != "lipsync":
                continue
            for alias in node.names:
                candidate = f"{module}.{alias.name}"
                is_module = any((PACKAGE.parent / candidate.replace(".", "/")).with_suffix(suffix).exists()
                                for suffix in (".py", ""))
                found.add(candidate if is_module else module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "lipsync")
    return found


def part_of(module: str) -> str:
    """lipsync.faces.track -> faces; lipsync.runtime -> runtime; lipsync -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_part_of_the_package_has_a_layer():
    assert {part_of(module_name(path)) for path in sources()} <= set(LAYER_OF)


def test_imports_run_down_the_layers_only():
    upward = [f"{module_name(path)} imports {target}" for path in sources() for target in imported(path)
              if LAYER_OF[part_of(target)] > LAYER_OF[part_of(module_name(path))]]
    assert not upward


def test_no_import_circles_between_modules():
    graph = {module_name(path): {t for t in imported(path) if t != module_name(path)} for path in sources()}
    packages = {name for name, path in ((module_name(p), p) for p in sources()) if path.name == "__init__.py"}
    # Importing a sub-package's module imports its __init__, which is fine while that __init__ imports nothing back.
    done, on_path, circles = set(), [], []

    def visit(node: str) -> None:
        if node in on_path:
            circles.append(on_path[on_path.index(node):] + [node])
            return
        if node in done:
            return
        on_path.append(node)
        for target in graph.get(node, ()):
            visit(target)
        on_path.pop()
        done.add(node)

    for name in graph:
        visit(name)
    assert not circles, circles
    assert packages  # the walk saw the sub-packages


def test_the_top_of_the_package_stays_small_and_each_sub_package_says_what_it_owns():
    top = [path for path in PACKAGE.glob("*.py")]
    assert len(top) <= MAX_TOP_MODULES, sorted(p.name for p in top)
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and "import" in doc, f"{init.relative_to(PACKAGE)} says what it owns and what it may import"


def test_the_product_package_has_no_test_helpers_outside_the_bench():
    users = {module_name(path) for path in sources() if "lipsync.bench.random_weights" in imported(path)}
    assert users <= {module_name(path) for path in (PACKAGE / "bench").glob("*.py")}
