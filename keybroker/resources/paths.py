"""Resource paths `<repository>/<type>/<tag>` and tenant / policy names, validated as Trustee does."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import BadRequest

SEGMENT = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$")
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class ResourcePath:
    repo: str
    type: str
    tag: str

    @classmethod
    def of(cls, repo: str, type_: str, tag: str) -> ResourcePath:
        for what, value in (("repository", repo), ("type", type_), ("tag", tag)):
            if not SEGMENT.match(value):
                raise BadRequest("resource.path", f"resource {what} {value!r} must match "
                                                  "[A-Za-z0-9_-][A-Za-z0-9_.-]* (at most 128 characters)")
        return cls(repo, type_, tag)

    def __str__(self) -> str:
        return f"{self.repo}/{self.type}/{self.tag}"


def check_name(what: str, value: str) -> str:
    if not NAME.match(value):
        raise BadRequest(f"{what}.name", f"{what} name {value!r} must match [a-z0-9][a-z0-9_.-]* "
                                          "(at most 64 characters)")
    return value
