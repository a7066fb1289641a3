"""Package structure: the import graph of nnc/ is acyclic, every module
imports alone in a fresh process, the layer registry holds exactly nnc's
public layer classes, and only the model-file module touches files."""
import ast
import os
import subprocess
import sys

import pytest

import nnc
from nnc.layers import registry as layer_registry

PKG_DIR = os.path.dirname(os.path.abspath(nnc.__file__))


def _modules(pkg_dir):
    """{dotted module name: (path, is_package)} of every .py file under
    pkg_dir; compiled modules (.pyx, .so: nnc._core) with path None (they
    import no Python module of the package)."""
    root = os.path.dirname(pkg_dir)
    mods = {}
    for dirpath, _, files in os.walk(pkg_dir):
        for f in sorted(files):
            path = os.path.join(dirpath, f)
            parts = os.path.relpath(path, root).split(os.sep)
            if f.endswith(".py"):
                parts[-1] = f[:-3]
                is_pkg = parts[-1] == "__init__"
                mods[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
            elif f.endswith((".pyx", ".so")):
                parts[-1] = f.split(".")[0]
                mods.setdefault(".".join(parts), (None, False))
    return mods


def _import_edges(name, path, is_pkg, known):
    """[(imported module, line, at module level)] of the intra-package imports
    of one module, function-level ones included.  ``from P import x`` names
    the module P.x when that is a module, else P; the parent packages a
    dotted import runs first are not edges (every module would then import
    its own package)."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    top = {id(n) for n in tree.body}
    here = name if is_pkg else name.rpartition(".")[0]
    top_pkg = name.partition(".")[0]
    edges = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known and t.startswith(top_pkg + "."):
                t = t.rpartition(".")[0]   # `import nnc.x.Name` -> nnc.x
            if t in known:
                edges.append((t, node.lineno, id(node) in top))
    return edges


def import_graph(pkg_dir=PKG_DIR):
    """{module: [(imported module, line, at module level)]} over the .py files of pkg_dir."""
    mods = _modules(pkg_dir)
    return {m: _import_edges(m, p, is_pkg, mods) if p else [] for m, (p, is_pkg) in mods.items()}


def find_cycle(graph):
    """One import cycle as a list of modules (first == last), or None."""
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t, _, _ in graph[m]:
            if state.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in state:
                cyc = visit(t)
                if cyc:
                    return cyc
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            cyc = visit(m)
            if cyc:
                return cyc
    return None


def test_import_graph_is_acyclic():
    graph = import_graph()
    assert "nnc.layers.residual" in graph and "nnc.serialization" in graph
    cyc = find_cycle(graph)
    assert cyc is None, "import cycle in nnc/: " + " -> ".join(cyc)


def test_cycle_finder_sees_function_level_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .sub import a\n")
    (pkg / "sub" / "__init__.py").write_text("from .a import f\n")
    (pkg / "sub" / "a.py").write_text("def f():\n    from .. import io\n")
    (pkg / "io.py").write_text("from . import sub\n")
    cyc = find_cycle(import_graph(str(pkg)))
    assert cyc[0] == cyc[-1] and set(cyc) == {"pkg.io", "pkg.sub", "pkg.sub.a"}
    (pkg / "io.py").write_text("import numpy\n")
    assert find_cycle(import_graph(str(pkg))) is None


def test_intra_package_imports_are_at_module_level():
    """A function-level import of an nnc module would be one hiding a cycle."""
    late = [f"{m}:{line} imports {t}" for m, edges in import_graph().items()
            for t, line, at_top in edges if not at_top]
    assert not late


def test_no_dynamic_imports():
    """``__import__``/``importlib`` calls would be imports the graph above cannot see."""
    found = []
    for m, (path, _) in _modules(PKG_DIR).items():
        if path:
            for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
                if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) \
                        in ("__import__", "import_module"):
                    found.append(f"{m}:{node.lineno}")
    assert not found


def test_no_layer_imports_the_file_format():
    graph = import_graph()
    users = [m for m, edges in graph.items() if m.startswith("nnc.layers")
             and any(t == "nnc.serialization" for t, _, _ in edges)]
    assert not users
    assert not any(t.startswith("nnc.") for t, _, _ in graph["nnc.layers.registry"])


@pytest.mark.parametrize("module", ["nnc.layers.residual", "nnc.serialization", "nnc.layers.registry",
                                    "nnc.models", "nnc.layers.conv_recurrent"])
def test_module_imports_alone_in_a_fresh_process(module):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(PKG_DIR))
    r = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, env=env,
                       cwd=os.path.dirname(PKG_DIR), timeout=120)
    assert r.returncode == 0, r.stderr


def test_registry_holds_exactly_the_public_layer_classes():
    reg = layer_registry.registry()
    expected = {name for name in nnc.layers.__all__ if name != "Layer"} | {"Sequential", "Graph"}
    assert set(reg) == expected
    assert all(reg[name] is getattr(nnc, name) for name in expected)


def test_registry_ignores_user_subclasses_and_rejects_name_clashes():
    class MyDense(nnc.Dense):
        pass

    assert "MyDense" not in layer_registry.registry()
    with pytest.raises(TypeError, match="not an nnc layer class"):
        layer_registry.layer_to_config(MyDense(2, 2))
    clash = type("Dense", (), {"__module__": "nnc.elsewhere"})
    with pytest.raises(TypeError, match="both named Dense"):
        layer_registry.register(clash)
    assert layer_registry.registry()["Dense"] is nnc.Dense


def test_layer_from_config_builds_only_registered_classes():
    spec = layer_registry.layer_to_config(nnc.Residual(nnc.Sequential([nnc.Dense(3, 3)])))
    assert spec["class_name"] == "Residual"
    assert spec["config"]["block"]["class_name"] == "Sequential"
    again = layer_registry.layer_from_config(spec)
    assert type(again.block) is nnc.Sequential and type(again.block[0]) is nnc.Dense
    for name in ("os.system", "Layer", "_Recurrent", "builtins.eval"):
        with pytest.raises(ValueError, match="unknown layer class"):
            layer_registry.layer_from_config({"class_name": name, "config": {}})


def test_import_leaves_the_progress_bar_for_fit(tmp_path):
    # tqdm.auto costs tens of milliseconds: `import nnc` must not pay for it;
    # fit's first progress bar does.
    code = ("import sys, numpy as np, nnc\nassert 'tqdm' not in sys.modules\n"
            "m = nnc.Sequential([nnc.Dense(2, 1)])\n"
            "m.fit(np.zeros((4, 2), np.float32), np.zeros((4, 1), np.float32), epochs=1, verbose=1)\n"
            "assert 'tqdm.auto' in sys.modules\n")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(PKG_DIR))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=120)
    assert r.returncode == 0, r.stderr


def test_conv_geometry_fields_are_the_c_struct_fields_in_order():
    # The conv binding fills nnc_conv_desc from a ConvGeometry by one tuple unpack.
    import re
    from nnc.layers.conv import ConvGeometry
    header = open(os.path.join(os.path.dirname(PKG_DIR), "src_c", "include", "nnc", "nnc_conv.h")).read()
    body = re.search(r"typedef struct \w*\s*\{(.*?)\}\s*nnc_conv_desc;", header, re.S).group(1)
    body = re.sub(r"//[^\n]*", "", body)
    fields = [f.strip() for decl in body.split(";") if decl.strip()
              for f in decl.replace("nnc_ssize", "").split(",")]
    assert fields[:len(ConvGeometry._fields)] == list(ConvGeometry._fields)
    assert fields[len(ConvGeometry._fields):] == ["ldx", "ldy"]   # from the buffers
