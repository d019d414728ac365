"""The floors of the project (setup.cfg's [importlinter] contracts) and no import cycle between files."""
import os
import subprocess
import sys

import grimp

from tests.conftest import REPO

PACKAGES = ("benchmarks", "pipeline", "server", "stages", "model")


def test_the_import_contracts_are_kept():
    lint = os.path.join(os.path.dirname(sys.executable), "lint-imports")
    proc = subprocess.run([lint, "--config", str(REPO / "setup.cfg"), "--no-cache"], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def cycles(graph):
    """Every set of modules that import each other round a loop (Tarjan's strongly connected
    components of more than one module), each as a loop to read: a -> b -> ... -> a."""
    index, low, stack, found = {}, {}, [], []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = stack[stack.index(module):]
            del stack[stack.index(module):]
            if len(component) > 1:
                path = graph.find_shortest_chain(component[0], component[1])
                back = graph.find_shortest_chain(component[1], component[0])
                found.append(" -> ".join(path + back[1:]))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle_between_files():
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False, cache_dir=None)
    assert cycles(graph) == []


def test_a_cycle_is_found_and_named():
    graph = grimp.ImportGraph()
    for a, b in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")):
        graph.add_import(importer=a, imported=b)
    assert cycles(graph) == ["p.a -> p.b -> p.c -> p.a"]
