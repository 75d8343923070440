"""design.md's layout and the backends' interface, checked on the source rather than
trusted (no TensorFlow or JAX is imported here)."""

import ast
import inspect
import pathlib

import pytest

from kgan.gan.backends import Backend

ROOT = pathlib.Path(__file__).resolve().parents[1] / "kgan"


def _kgan_imports(folder: str) -> dict[str, set[str]]:
    """kgan modules each file under kgan/`folder` imports, at any depth (lazy ones too)."""
    found = {}
    for path in (ROOT / folder).rglob("*.py") if folder else ROOT.rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[str(path.relative_to(ROOT.parent))] = {n for n in names if n.startswith("kgan")}
    return found


@pytest.mark.parametrize("folder, higher", [
    ("gan", ("kgan.training", "kgan.serving", "kgan.demo", "kgan.cli")),
    ("networks", ("kgan.training", "kgan.serving", "kgan.demo", "kgan.cli")),
    ("", ("kgan.cli",)),  # library code never imports the command lines
])
def test_lower_layers_never_import_higher_ones(folder, higher):
    offending = {path: sorted(n for n in names if n.startswith(higher))
                 for path, names in _kgan_imports(folder).items()
                 if not path.startswith("kgan/cli/")}
    assert {path: names for path, names in offending.items() if names} == {}


def _public_members(module: str) -> dict[str, ast.AST]:
    tree = ast.parse((ROOT / "gan" / "backends" / f"{module}.py").read_text())
    members = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            members[node.name] = node
        elif isinstance(node, ast.Assign):
            members.update({t.id: node for t in node.targets if isinstance(t, ast.Name)})
    return {name: node for name, node in members.items() if not name.startswith("_")}


@pytest.mark.parametrize("module", ["tensorflow", "jax"])
def test_each_backend_module_provides_exactly_the_backend_interface(module):
    members = _public_members(module)
    wanted = {name for name in vars(Backend) if not name.startswith("_")} | set(
        Backend.__annotations__)
    assert set(members) == wanted
    for name, node in members.items():
        contract = getattr(Backend, name, None)
        if isinstance(node, ast.FunctionDef) and callable(contract):
            takes = [p for p in inspect.signature(contract).parameters.values()][1:]  # self
            if any(p.kind is p.VAR_POSITIONAL for p in takes):
                continue  # run_train_step / run_test_step: the backend's own arguments
            assert [a.arg for a in node.args.args] == [p.name for p in takes], name
