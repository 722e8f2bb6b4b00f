"""The implementation is ours: no torch convolution / pooling / fold / unfold kernel is used.

Two independent checks:

1. Static: every ``.py`` file under ``src/anyconv`` is parsed with ``ast``; import aliases
   (``import torch.nn.functional as G``, ``from torch.nn import functional``, ``from torch import
   conv2d as c``, ``H = torch.nn.functional``, ``getattr(F, "conv2d")``) are resolved to dotted
   paths, and any reference to a forbidden path fails the test with file and line.
2. Dynamic: the conv-family ops (every algorithm, forward, backward and double backward) run
   under a ``TorchDispatchMode`` that records every ATen op dispatched; none may be a
   convolution, pooling or im2col/col2im kernel.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import anyconv
import anyconv.functional as AF

SRC = Path(anyconv.__file__).resolve().parent
FILES = sorted(SRC.rglob("*.py"))

_KERNEL = r"(conv\w*|\w*pool\w*|unfold|fold|im2col|col2im|convolution\w*|_convolution\w*|\w*cudnn\w*|mkldnn\w*)"
FORBIDDEN = [
    re.compile(rf"^torch\.nn\.functional\.{_KERNEL}$"),
    re.compile(rf"^torch\.{_KERNEL}$"),
    re.compile(r"^torch\._C(\..*)?\.\w*(conv|pool|im2col|col2im|fold)\w*$"),
    re.compile(r"^torch\._C\._nn(\..*)?$"),
    re.compile(r"^torch\.ops\.aten\.\w*(conv|pool|im2col|col2im)\w*(\..*)?$"),
    re.compile(r"^torch\.(_ops\.)?ops\.aten$"),  # getattr(torch.ops.aten, name) cannot be checked
    re.compile(r"^torch\.nn\.grad(\..*)?$"),
    re.compile(r"^torch\.backends\.cudnn(\..*)?$"),
    re.compile(r"^torch\.backends\.mkldnn(\..*)?$"),
    re.compile(r"^torch\..*\._conv_forward$"),  # torch.nn.ConvNd's own forward (calls F.conv*)
    re.compile(r"^super\(\)\._conv_forward$"),
]
# Outside the implementation (core/, algorithms/, ops/, functional/, nn/, private _*.py modules), a function
# whose name starts with ``torch_`` may call torch's kernels: the demo and the benchmarks run
# torch side by side with anyconv. Everywhere else nothing is exempt.
IMPLEMENTATION = re.compile(r"^(core|algorithms|ops|functional|nn)/|^_[^/]*\.py$")
REFERENCE_FUNCTION = re.compile(r"^torch_")


class _Resolver(ast.NodeVisitor):
    """Collect every dotted path a module refers to, with import aliases resolved."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.uses: list[tuple[int, str, str]] = []  # (line, path, enclosing function or "")
        self.function = ""

    def _use(self, line: int, path: str) -> None:
        self.uses.append((line, path, self.function))

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        outer = self.function
        self.function = outer or node.name  # the outermost function names the region
        self.generic_visit(node)
        self.function = outer

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            if a.asname:
                self.aliases[a.asname] = a.name
                self._use(node.lineno, a.name)
            else:
                top = a.name.split(".")[0]
                self.aliases[top] = top
                self._use(node.lineno, a.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and node.level == 0:
            for a in node.names:
                path = f"{node.module}.{a.name}"
                self.aliases[a.asname or a.name] = path
                self._use(node.lineno, path)

    def resolve(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return f"{base}.{node.attr}" if base else None
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            base = self.resolve(node.args[0])
            return f"{base}.{node.args[1].value}" if base else None
        return None

    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        path = self.resolve(node.value)
        if path:
            for target in node.targets:
                if isinstance(target, ast.Name):
                    self.aliases[target.id] = path

    def visit_Attribute(self, node: ast.Attribute) -> None:
        path = self.resolve(node)
        if path:
            self._use(node.lineno, path)
        elif (isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
              and node.value.func.id == "super"):
            self._use(node.lineno, f"super().{node.attr}")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        path = self.resolve(node)
        if path and isinstance(node.func, ast.Name) and node.func.id == "getattr":
            self._use(node.lineno, path)
        self.generic_visit(node)


def forbidden_uses(source: str, implementation: bool = True) -> list[tuple[int, str]]:
    """``(line, path)`` for every forbidden torch kernel the source refers to.

    With ``implementation=False`` uses inside a ``torch_*`` function (a side-by-side reference)
    are allowed.
    """
    resolver = _Resolver()
    tree = ast.parse(source)
    # two passes so that aliases defined below their first use (module level) are known
    resolver.visit(tree)
    resolver.uses.clear()
    resolver.visit(tree)
    return sorted({
        (line, path) for line, path, function in resolver.uses
        if any(p.search(path) for p in FORBIDDEN) and (implementation or not REFERENCE_FUNCTION.search(function))
    })


def test_there_are_files_to_scan() -> None:
    names = {p.relative_to(SRC).as_posix() for p in FILES}
    assert {"core/spec.py", "algorithms/direct.py", "functional/conv.py", "functional/fold.py"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(SRC).as_posix())
def test_no_torch_kernels_in_source(path: Path) -> None:
    rel = path.relative_to(SRC).as_posix()
    found = forbidden_uses(path.read_text(), implementation=bool(IMPLEMENTATION.search(rel)))
    assert not found, "\n".join(f"{path.relative_to(SRC)}:{line}: uses {p}" for line, p in found)


@pytest.mark.parametrize(
    "source",
    [
        "import torch.nn.functional as F\nF.conv2d(x, w)",
        "import torch\ntorch.nn.functional.conv_transpose3d(x, w)",
        "from torch.nn import functional as G\nG.max_pool2d(x, 2)",
        "from torch.nn.functional import unfold as u\nu(x, 2)",
        "from torch.nn import functional\nfunctional.fold(x, 3, 2)",
        "import torch as T\nT.conv1d(x, w)",
        "import torch\nH = torch.nn.functional\nH.avg_pool1d(x, 2)",
        "import torch\ngetattr(torch.nn.functional, 'conv2d')(x, w)",
        "import torch\ntorch.convolution(x, w, None, [1], [0], [1], False, [0], 1)",
        "import torch\ntorch._C._nn.im2col(x, 1, 1, 0, 1)",
        "import torch\ntorch.ops.aten.convolution(x)",
        "import torch\ntorch.ops.aten.max_pool2d_with_indices.default(x)",
        "from torch import ops\nops.aten.cudnn_convolution(x)",
        "import torch\ntorch.backends.cudnn.deterministic = True",
        "import torch\ntorch.max_pool1d(x, 2)",
        "import torch\ntorch.nn.grad.conv2d_input(s, w, g)",
        "class C(Conv2d):\n    def forward(self, x):\n        return super()._conv_forward(x, self.weight, None)",
        "import torch\ntorch.nn.Conv2d._conv_forward(m, x, w, b)",
        "from torch import conv_transpose2d\nconv_transpose2d(x, w)",
    ],
)
def test_scanner_catches(source: str) -> None:
    assert forbidden_uses(source), source


@pytest.mark.parametrize(
    "source",
    [
        "import torch.nn.functional as F\nF.pad(x, [1, 1])",
        "import torch\ntorch.einsum('ij,jk->ik', a, b)",
        "import torch\nx.unfold(2, 3, 1)",  # Tensor.unfold (a strided view) is fine
        "import torch\nclass Conv2d(torch.nn.Conv2d):\n    pass",
        "def conv2d(x):\n    return x",
        "class C:\n    def _conv_forward(self, x, w, b):\n        return conv(x, w, b)",
        "import torch\ntorch.fft.rfftn(x)",
    ],
)
def test_scanner_allows(source: str) -> None:
    assert not forbidden_uses(source), source


def test_reference_functions_only_outside_the_implementation() -> None:
    source = "import torch.nn.functional as F\ndef torch_reference(x, w):\n    return F.conv2d(x, w)"
    assert not forbidden_uses(source, implementation=False)
    assert forbidden_uses(source, implementation=True)
    helper = "import torch.nn.functional as F\ndef reference(x, w):\n    return F.conv2d(x, w)"
    assert forbidden_uses(helper, implementation=False)
    assert IMPLEMENTATION.search("algorithms/direct.py") and IMPLEMENTATION.search("core/spec.py")
    assert IMPLEMENTATION.search("nn/conv.py") and not IMPLEMENTATION.search("commands/_demo_examples.py")


# --------------------------------------------------------------------------------- dynamic
# torch's kernels (anyconv's own operators, ``anyconv.*``, are recorded too, and their insides with them)
KERNEL_OP = re.compile(r"^(?!anyconv\.).*(convolution|conv\d|conv_transpose|conv_depthwise|conv_tbc|slow_conv|thnn_conv"
                       r"|pool|im2col|col2im)")


class _Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: set[str] = set()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.ops.add(str(func))
        if func.namespace == "anyconv":  # an anyconv operator: record what its kernel dispatches too
            with self:
                return anyconv.ops.KERNELS[func._opname](*args, **(kwargs or {}))
        return func(*args, **(kwargs or {}))


def _exercise(fn: Any, *tensors: torch.Tensor) -> None:
    leaves = [t.detach().clone().requires_grad_() for t in tensors]
    y = fn(*leaves)
    grads = torch.autograd.grad(y.square().sum(), leaves, create_graph=True)
    total = torch.stack([g.square().sum() for g in grads]).sum()
    torch.autograd.grad(total, leaves)


# (kernel, size, stride, padding) variants, so that each algorithm finds calls it serves
VARIANTS = [(3, 4, 1, 1), (2, 5, 2, 1), (1, 3, 1, 0)]


@pytest.mark.parametrize("algo", ["auto", *anyconv.algorithms.names()])
def test_no_torch_kernels_dispatched(algo: str) -> None:
    rec = _Recorder()
    d = torch.float64
    served = 0
    with rec:
        for n in (1, 2, 3):
            for k, size, stride, pad in VARIANTS:
                x = torch.randn((2, 2) + (size,) * n, dtype=d)
                w = torch.randn((2, 1) + (k,) * n, dtype=d)
                calls = [
                    lambda a, b, s=stride, p=pad: AF.conv(a, b, stride=s, padding=p, groups=2, padding_mode="reflect",
                                                          algorithm=algo),
                    lambda a, b, s=stride, p=pad: AF.conv_transpose(a, b, stride=s, padding=p, groups=2, algorithm=algo),
                ]
                for call in calls:
                    try:
                        _exercise(call, x, w)
                        served += 1
                    except ValueError as e:  # an algorithm may refuse a call, with its reason
                        assert algo != "auto" and "cannot serve this call" in str(e), e
            _exercise(lambda a, n=n: AF.fold(AF.unfold(a, [2] * n, padding=1), [5] * n, [2] * n, padding=1),
                      torch.randn((2, 2) + (5,) * n, dtype=d))
    assert served > 0, f"{algo} served none of the calls"
    assert rec.ops, "the recorder saw nothing"
    assert "anyconv.corr.default" in rec.ops  # under a dispatch mode the operators are called
    bad = sorted(op for op in rec.ops if KERNEL_OP.search(op))
    assert not bad, f"torch kernels dispatched: {bad}"


def test_recorder_sees_torch_kernels() -> None:
    """The dynamic check can fail: torch's own conv is seen."""
    rec = _Recorder()
    with rec:
        torch.nn.functional.conv2d(torch.randn(1, 1, 4, 4), torch.randn(1, 1, 2, 2))
    assert any(KERNEL_OP.search(op) for op in rec.ops)
