"""Read policy and reference-values files; report every problem with file:line:column and field path."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, TypeVar

from pydantic import BaseModel, ValidationError

from .cel import CelCompileError, compile_condition
from .compile import CompiledPolicy, compile_policy, reference_uses
from .errors import Problem, PolicyLoadError
from .schema import ReferenceValues, ReleasePolicy
from .schema.documents import ReferenceSet
from .yamlpos import Located, YamlProblem, load_located

MAX_FILE_BYTES = 1 << 20
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Source:
    """One parsed file: its name, its data with positions, and its `kind`."""

    file: str
    located: Located

    @property
    def kind(self) -> str | None:
        data = self.located.data
        return data.get("kind") if isinstance(data, dict) else None


def read_source(path: Path) -> Source:
    """Parse a YAML/JSON file; PolicyLoadError if unreadable or not plain YAML."""
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyLoadError([Problem(name, 0, 0, "", f"cannot read: {exc.strerror}")]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise PolicyLoadError([Problem(name, 0, 0, "", f"larger than {MAX_FILE_BYTES} bytes")])
    try:
        return Source(name, load_located(raw.decode("utf-8")))
    except UnicodeDecodeError:
        raise PolicyLoadError([Problem(name, 0, 0, "", "not UTF-8 text")]) from None
    except YamlProblem as exc:
        raise PolicyLoadError([Problem(name, exc.line, exc.column, "", exc.message)]) from None


def validate(source: Source, model: type[M]) -> tuple[M | None, list[Problem]]:
    """The document as `model`, or the located problems."""
    try:
        return model.model_validate(source.located.data), []
    except ValidationError as exc:
        return None, [_problem(source, err) for err in exc.errors()]


def _problem(source: Source, err: dict) -> Problem:
    line, column, _ = source.located.position(tuple(err["loc"]))
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown field (not part of veil.dev/v1)"
    return Problem(source.file, line, column, dotted(err["loc"]), message)


def dotted(loc: Iterable) -> str:
    """("spec", "platforms", 0, "tdx") -> "spec.platforms[0].tdx"; pydantic's union tags are dropped."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.fullmatch(str(part)):
            out += ("." if out else "") + str(part)
    return out


def load_references(paths: Iterable[Path]) -> tuple[dict[str, ReferenceSet], list[Problem]]:
    """Every reference set in the given files and directories (*.yaml, *.yml, *.json in a directory;
    documents of other kinds there are skipped). Duplicate set names are problems."""
    sets: dict[str, ReferenceSet] = {}
    problems: list[Problem] = []
    paths = list(paths)
    explicit = {p for p in paths if not p.is_dir()}
    for path in _expand(paths):
        try:
            source = read_source(path)
        except PolicyLoadError as exc:
            problems += exc.problems
            continue
        if source.kind != "ReferenceValues":
            if path in explicit:
                problems.append(Problem(source.file, 1, 1, "kind", "expected kind: ReferenceValues"))
            continue
        problems += _add_sets(source, sets)
    return sets, problems


def reference_sets(source: Source) -> tuple[dict[str, ReferenceSet], list[Problem]]:
    """The sets of one ReferenceValues document (as a broker stores it beside a pushed policy)."""
    if source.kind != "ReferenceValues":
        return {}, [Problem(source.file, 1, 1, "kind", "expected kind: ReferenceValues")]
    sets: dict[str, ReferenceSet] = {}
    return sets, _add_sets(source, sets)


def references_document(sets: dict[str, ReferenceSet], names: Iterable[str]) -> dict:
    """One ReferenceValues document holding just the named sets (what `veil broker policy-push` sends)."""
    return {"apiVersion": "veil.dev/v1", "kind": "ReferenceValues",
            "metadata": {"name": "pushed-with-policy"},
            "spec": {"sets": [sets[n].model_dump(mode="json", exclude_none=True) for n in sorted(names)]}}


def _expand(paths: Iterable[Path]) -> list[Path]:
    """The files named, directories replaced by their YAML/JSON files; each file once (by resolved path)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json") and p.is_file())
        else:
            out.append(path)
    return _unique(out)


def _unique(paths: Iterable[Path]) -> list[Path]:
    """`paths` in order, a file named twice (or through another spelling of its path) kept once."""
    seen: set[Path] = set()
    out: list[Path] = []
    for path in paths:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            out.append(path)
    return out


def _add_sets(source: Source, sets: dict[str, ReferenceSet]) -> list[Problem]:
    document, problems = validate(source, ReferenceValues)
    if document is None:
        return problems
    for i, ref_set in enumerate(document.spec.sets):
        if ref_set.name in sets:
            line, column, _ = source.located.position(("spec", "sets", i, "name"))
            problems.append(Problem(source.file, line, column, f"spec.sets[{i}].name",
                                    f"reference set {ref_set.name!r} is defined twice"))
        sets[ref_set.name] = ref_set
    return problems


def check_policy(source: Source, references: dict[str, ReferenceSet]) -> tuple[ReleasePolicy | None, list[Problem]]:
    """Validate a policy document, its refs and its CEL conditions; every problem, with positions."""
    document, problems = validate(source, ReleasePolicy)
    if document is None:
        return None, problems
    problems += _check_refs(source, document, references)
    problems += _check_conditions(source, document)
    problems += [Problem(source.file, *source.located.position(("spec", "platforms", i, "insecure_allow_debug"))[:2],
                         f"spec.platforms[{i}].insecure_allow_debug",
                         "debug workloads (memory readable by the host) can be released keys", "warning")
                 for i, p in enumerate(document.spec.platforms) if p.insecure_allow_debug]
    if not document.spec.platforms:
        problems.append(Problem(source.file, *source.located.position(("spec",))[:2], "spec.platforms",
                                "no platforms: this policy denies everything", "warning"))
    return document, problems


def _check_refs(source: Source, document: ReleasePolicy, references: dict[str, ReferenceSet]) -> list[Problem]:
    problems = []
    for index, (tee, field), ref in reference_uses(document):
        loc = ("spec", "platforms", index, tee, field)
        line, column, _ = source.located.position(loc)
        size = getattr(getattr(getattr(document.spec.platforms[index], tee), field), "size", None)
        if ref not in references:
            problems.append(Problem(source.file, line, column, dotted(loc), f"unknown reference set {ref!r}"))
        elif size and any(len(v.value) != 2 * size for v in references[ref].values):
            problems.append(Problem(source.file, line, column, dotted(loc),
                                    f"reference set {ref!r} holds values that are not {size} bytes"))
    return problems


def _check_conditions(source: Source, document: ReleasePolicy) -> list[Problem]:
    problems = []
    for i, platform in enumerate(document.spec.platforms):
        if platform.condition is None:
            continue
        try:
            compile_condition(platform.condition)
        except CelCompileError as exc:
            path = ("spec", "platforms", i, "condition")
            line, column = _cel_position(source, path, exc)
            problems.append(Problem(source.file, line, column, dotted(path), exc.message))
    return problems


def _cel_position(source: Source, path: tuple, exc: CelCompileError) -> tuple[int, int]:
    """Where in the YAML file the CEL error is: block scalars start on the line after `|`."""
    line, column, style = source.located.scalars.get(path, (1, 1, None))
    if style in ("|", ">"):
        lines = source.located.lines
        first = lines[line] if line < len(lines) else ""
        return line + exc.line, len(first) - len(first.lstrip(" ")) + exc.column
    if exc.line > 1:
        return line + exc.line - 1, exc.column
    return line, column + exc.column - (1 if style is None else 0)


def load_policy(path: Path, references: Iterable[Path] = ()) -> CompiledPolicy:
    """Load, check and compile one policy file; PolicyLoadError with every problem otherwise."""
    ref_sets, problems = load_references(list(references))
    source = read_source(path)
    document, found = check_policy(source, ref_sets)
    problems += found
    if document is None or any(p.severity == "error" for p in problems):
        raise PolicyLoadError(problems)
    return compile_policy(document, ref_sets, source=source.file)


def lint(paths: Iterable[Path], references: Iterable[Path] = ()) -> list[Problem]:
    """Every problem in the given policy files (reference-values files among them are checked too
    and supply refs, as do `references`)."""
    references = list(references)
    ref_sets, problems = load_references(references)
    already_read = {p.resolve() for p in _expand(references)}
    sources = []
    for path in _unique(paths):
        try:
            sources.append(read_source(path))
        except PolicyLoadError as exc:
            problems += exc.problems
    for source in (s for s in sources if s.kind == "ReferenceValues"):
        if Path(source.file).resolve() not in already_read:   # a file given both ways is read once
            problems += _add_sets(source, ref_sets)
    for source in (s for s in sources if s.kind != "ReferenceValues"):
        problems += check_policy(source, ref_sets)[1]
    return problems
