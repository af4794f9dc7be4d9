"""The spec under construction (`Builder`), the values its expressions have, and its objectives."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from gendsl.library.training import INITS
from gendsl.types import TensorType
from tests.strategies.case import DataFile
from tests.strategies.entry_options import entry_call
from tests.strategies.gen_text import literal, real, type_text
from tests.strategies.known_bugs import known_enabled
from tests.strategies.picker import Picker


# ---- the spec under construction --------------------------------------------------------------

@dataclass(frozen=True)
class Value:
    """An expression and its per-sample type; `simple` when it needs no parentheses."""

    text: str
    type: TensorType
    simple: bool = True

    @property
    def atom(self) -> str:
        return self.text if self.simple else f"({self.text})"


@dataclass
class Objective:
    """A loss a train block minimizes, over what (None: everything it reaches)."""

    loss: str
    over: list[str] | None = None
    step: str | None = None


class Builder:
    """A spec being drawn: statements by section, fresh names, params, files and tags."""

    def __init__(self, pick: Picker):
        self.pick = pick
        self.known = known_enabled()
        self.blocks: list[str] = []
        self.params: list[str] = []
        self.data: list[str] = []
        self.decls: list[str] = []
        self.nets: list[str] = []
        self.losses: list[str] = []
        self.objectives: list[Objective] = []
        self.samples: list[str] = []
        self.caps: set[str] = {"losses"}
        self.files: list[DataFile] = []
        self.tags: set[str] = set()
        self.names: set[str] = set()
        self.width_params: dict[str, int] = {}
        self.float_params: dict[str, float] = {}
        self.data_problem = False
        self.train_text = ""
        self.evaluate_text = ""
        self.batch = 0
        self.owned: dict[str | None, list[str]] = {}   # network/density -> tensors and nets it created
        self.owners: list[str | None] = [None]

    @contextmanager
    def scope(self, owner: str):
        """Tensors and helper networks drawn inside belong to `owner` (for `over` lists)."""
        self.owners.append(owner)
        try:
            yield
        finally:
            self.owners.pop()

    def own(self, name: str) -> None:
        self.owned.setdefault(self.owners[-1], []).append(name)

    def expand(self, names: list[str]) -> list[str]:
        """`names` and everything with parameters they created (what a step over them must name)."""
        out, todo = [], list(names)
        while todo:
            name = todo.pop(0)
            if name not in out:
                out.append(name)
                todo += self.owned.get(name, [])
        return out

    def fresh(self, prefix: str) -> str:
        for i in range(1000):
            name = prefix if i == 0 and prefix not in ("h", "t") else f"{prefix}{i}"
            if name not in self.names:
                self.names.add(name)
                return name
        raise AssertionError("out of names")

    def tag(self, *tags: str) -> None:
        self.tags.update(tags)

    def width(self, value: int) -> str:
        """A hidden width as text: the number, or (sometimes) an int param holding it."""
        if not self.pick.chance(20):
            return str(value)
        name = self.fresh("w")
        self.params.append(f"param {name}: int = {value}")
        self.width_params[name] = value
        self.tag("construct:param_int")
        return name

    def number(self, value: float, prefix: str = "a") -> str:
        """A float constant as text: the number, or (sometimes) a float param holding it."""
        if not self.pick.chance(25):
            return literal(value)
        name = self.fresh(prefix)
        self.params.append(f"param {name}: float = {literal(value)}")
        self.float_params[name] = value
        self.tag("construct:param_float")
        return name

    def tensor(self, shape: tuple[int, ...], prefix: str = "t", init: str | None = None) -> str:
        """Declare a learned tensor of `shape` with a drawn initializer; returns its name."""
        name = self.fresh(prefix)
        if init is None:
            init_name = self.pick.choice(sorted(INITS))
            call = entry_call(self.pick, INITS, init_name, optional=60)
            init = call.text if call else "zeros"
            self.tag(f"init:{init_name}")
        self.decls.append(f"tensor {name}: {type_text(real(*shape))} = {init}")
        self.tag("construct:tensor")
        self.own(name)
        return name

    def text(self, model: str = "M", blocks: bool = True) -> str:
        """The spec; without `blocks`, the model alone (its blocks go in an imported file)."""
        sections = [self.params, self.data, self.decls, self.nets, self.losses]
        body = [line for section in sections for line in section]
        body.append(self.train_text)
        body += self.samples
        if self.evaluate_text:
            body.append(self.evaluate_text)
        inner = "\n".join("  " + line.replace("\n", "\n  ") for line in body)
        head = "".join(block + "\n\n" for block in self.blocks) if blocks else ""
        return f"{head}model {model} {{\n{inner}\n}}\n"
