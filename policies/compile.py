"""A loaded, checked policy, ready to evaluate: reference values resolved, CEL compiled, digest computed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Mapping

from attestation.jcs import canonical_json

from .cel import CelProgram, compile_condition
from .schema import ReleasePolicy
from .schema.documents import ReferenceSet


@dataclass(frozen=True)
class CompiledPolicy:
    """Build with `compile_policy` (or `loader.load_policy`); immutable afterwards."""

    document: ReleasePolicy
    references: Mapping[str, ReferenceSet]
    programs: tuple[CelProgram | None, ...]
    digest: str
    source: str = ""
    warnings: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return self.document.metadata.name


def canonical(document: ReleasePolicy, references: Mapping[str, ReferenceSet]) -> bytes:
    """RFC 8785 JSON of the policy and of every reference set it uses (sorted by name)."""
    body = {"policy": document.model_dump(mode="json", by_alias=True),
            "references": {name: references[name].model_dump(mode="json") for name in sorted(references)}}
    return canonical_json(body)


def compile_policy(document: ReleasePolicy, references: Mapping[str, ReferenceSet], *,
                   source: str = "") -> CompiledPolicy:
    """Compile CEL conditions and compute the digest. References must already be resolved
    (every name the policy uses present); CelCompileError/KeyError otherwise."""
    used = {name: references[name] for name in sorted(referenced_names(document))}
    programs = tuple(compile_condition(p.condition) if p.condition else None for p in document.spec.platforms)
    digest = hashlib.sha256(canonical(document, used)).hexdigest()
    warnings = tuple(f"platforms[{i}]: insecure_allow_debug is true: debug workloads can be released keys"
                     for i, p in enumerate(document.spec.platforms) if p.insecure_allow_debug)
    return CompiledPolicy(document, used, programs, digest, source, warnings)


def referenced_names(document: ReleasePolicy) -> set[str]:
    return {name for _, _, name in reference_uses(document)}


def reference_uses(document: ReleasePolicy):
    """(platform index, field name, ref name) for every `{ref: …}` in the policy."""
    for i, platform in enumerate(document.spec.platforms):
        section = platform.tdx if platform.tee == "tdx" else platform.snp
        if section is None:
            continue
        for name in type(section).model_fields:
            value = getattr(section, name)
            for ref in getattr(value, "refs", ()) or ():
                yield i, (platform.tee, name), ref
