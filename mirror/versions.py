"""Semantic versions and Helm-style (Masterminds semver) constraints: chart versions, and image tags
selected by `tags: {semver: ...}` in a content file."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

_SEMVER = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?$")


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()
    text: str = field(default="", compare=False)

    @classmethod
    def parse(cls, text: str) -> Version | None:
        m = _SEMVER.match(str(text).strip())
        if not m:
            return None
        pre = tuple(m.group(4).split(".")) if m.group(4) else ()
        return cls(int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0), pre, str(text))

    def key(self) -> tuple[Any, ...]:
        # semver precedence: a release sorts after its prereleases; numeric identifiers below alphanumeric ones
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)

    def __lt__(self, other: Version) -> bool:
        return self.key() < other.key()

    def __le__(self, other: Version) -> bool:
        return self.key() <= other.key()


_CLAUSE = re.compile(r"^(=|==|!=|>=|<=|>|<|~>|~|\^)?\s*v?([0-9xX*]+(?:\.[0-9xX*]+)?(?:\.[0-9xX*]+)?"
                     r"(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)$")


def _bounds(op: str, text: str) -> list[tuple[str, Version]]:
    """One clause -> comparisons (op, version) that must all hold. Missing parts act as wildcards."""
    core, _, pre = text.partition("+")[0].partition("-")
    parts = core.split(".")
    nums: list[int | None] = [None if p in ("x", "X", "*") else int(p) for p in parts] + [None] * (3 - len(parts))
    for i, n in enumerate(nums):           # 1.x.3 -> 1.x.x
        if n is None:
            nums[i:] = [None] * (3 - i)
            break
    given = sum(1 for n in nums if n is not None)
    ma, mi, pa = (n or 0 for n in nums)
    lo = Version(ma, mi, pa, tuple(pre.split(".")) if pre else ())
    if given == 0:
        return [] if op in ("", "=", "==", ">=", "<=", "~", "~>", "^") else [("<", Version(0, 0, 0))]

    def bump(level: int) -> Version:
        if level == 0:
            return Version(ma + 1, 0, 0)
        return Version(ma, mi + 1, 0) if level == 1 else Version(ma, mi, pa + 1)

    if op in ("", "=", "=="):
        return [("=", lo)] if given == 3 else [(">=", lo), ("<", bump(given - 1))]
    if op == "!=":
        return [("!=", lo)] if given == 3 else [("!range", lo), ("!range", bump(given - 1))]
    if op in ("~", "~>"):
        return [(">=", lo), ("<", bump(0 if given == 1 else 1))]
    if op == "^":
        level = 0 if ma > 0 or given == 1 else 1 if mi > 0 or given == 2 else 2
        return [(">=", lo), ("<", bump(level))]
    if op == ">":
        return [(">", lo)] if given == 3 else [(">=", bump(given - 1))]
    if op == "<=":
        return [("<=", lo)] if given == 3 else [("<", bump(given - 1))]
    return [(op, lo)]                     # >= and <: the missing parts are zeros


def _holds(v: Version, op: str, b: Version) -> bool:
    k, bk = v.key(), b.key()
    return {"=": k == bk, "!=": k != bk, ">": k > bk, ">=": k >= bk, "<": k < bk, "<=": k <= bk}[op]


class VersionRange:
    """A Helm (Masterminds semver) constraint: `17.11.3`, `~17.11`, `^1.2`, `>=1.2 <2`, `1.2.x`, `1.2 - 1.4`,
    `>=1 <2 || >=3`. Clauses separated by spaces or commas must all hold; `||` separates alternatives.
    Prereleases match only when a clause of the alternative names a prerelease (Helm does the same)."""

    def __init__(self, text: str) -> None:
        self.text = str(text).strip()
        self.alternatives: list[tuple[list[tuple[str, Version]], bool]] = []
        if not self.text:
            raise ValueError("empty version constraint")
        for alt in self.text.split("||"):
            alt = re.sub(r"\s+-\s+", " - ", alt.strip())
            alt = re.sub(r"(=|==|!=|>=|<=|>|<|~>|~|\^)\s+", r"\1", alt)
            tokens = [t for t in re.split(r"[\s,]+", alt) if t]
            if not tokens:
                raise ValueError(f"empty alternative in {self.text!r}")
            checks: list[tuple[str, Version]] = []
            pre = False
            i = 0
            while i < len(tokens):
                if i + 2 < len(tokens) and tokens[i + 1] == "-":      # hyphen range a - b
                    lo_b, hi_b = self._clause(">=" + tokens[i]), self._clause("<=" + tokens[i + 2])
                    checks += lo_b + hi_b
                    pre = pre or "-" in tokens[i] or "-" in tokens[i + 2]
                    i += 3
                    continue
                checks += self._clause(tokens[i])
                pre = pre or bool(re.search(r"\d-[0-9A-Za-z]", tokens[i]))
                i += 1
            self.alternatives.append((checks, pre))

    def _clause(self, token: str) -> list[tuple[str, Version]]:
        m = _CLAUSE.match(token)
        if not m:
            raise ValueError(f"invalid version constraint {token!r} in {self.text!r}")
        return _bounds(m.group(1) or "", m.group(2))

    def matches(self, v: Version | str) -> bool:
        ver = Version.parse(v) if isinstance(v, str) else v
        if ver is None:
            return False
        for checks, pre in self.alternatives:
            if ver.pre and not pre:
                continue
            ok = True
            for op, b in checks:
                if op == "!range":
                    continue
                if not _holds(ver, op, b):
                    ok = False
                    break
            ranges = [b for op, b in checks if op == "!range"]
            if ok and any(ranges[j] <= ver < ranges[j + 1] for j in range(0, len(ranges), 2)):
                ok = False
            if ok:
                return True
        return False

    def best(self, versions: Iterable[str]) -> str | None:
        """The highest matching version; an exact string match on a non-semver version also counts."""
        cands = [(v, Version.parse(v)) for v in versions]
        exact = [v for v, _ in cands if v == self.text]
        good = [(pv, v) for v, pv in cands if pv is not None and self.matches(pv)]
        if good:
            return max(good, key=lambda t: t[0].key())[1]
        return exact[0] if exact else None


__all__ = ["Version", "VersionRange"]
