"""Policies: YAML files that decide what is disarmed, blocked, passed or quarantined.

Validation happens here, at the edge: every error names the file, the key path
and the offending value. Inside, a policy is an immutable dataclass.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.errors import ConfigError

ACTIONS = ("disarm", "block", "pass", "quarantine")

#: format families and the options each accepts beyond ``action``:
#: option -> allowed values (a list option when the name is ``keep``)
FORMAT_OPTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "pdf": {"keep": ("hyperlinks",), "embedded_files": ("disarm", "remove"),
            "encrypted": ("block", "quarantine")},
    "ooxml": {"keep": ("hyperlinks",), "embedded": ("disarm", "remove"),
              "encrypted": ("block", "quarantine")},
    "ole": {"keep": ("hyperlinks",), "embedded": ("disarm", "remove"),
            "encrypted": ("block", "quarantine"), "legacy": ("keep", "convert")},
    "rtf": {"keep": ("hyperlinks",)},
    "odf": {"keep": ("hyperlinks",)},
    "html": {"keep": ("hyperlinks",)},
    "svg": {"keep": ("hyperlinks",)},
    "image": {},
    "text": {"keep": ("hyperlinks",), "csv_formulas": ("keep", "neutralize"),
             "sylk": ("disarm", "block")},
    "archive": {"encrypted": ("block", "quarantine"), "disk_images": ("disarm", "block")},
    "mail": {},
    "executable": {},
    "unknown": {},
}

#: actions that make no sense for a family (a rule an admin would want enforced)
FORBIDDEN_ACTIONS: dict[str, tuple[str, ...]] = {
    "unknown": ("disarm", "pass"),
    "executable": ("disarm", "pass"),
}

_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2,
               "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gib": 1024**3}
_TIME_UNITS = {"": 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_QTY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")


@dataclass(frozen=True, slots=True)
class Limits:
    max_size: int = 50 * 1024**2      # bytes of one input
    max_depth: int = 5                # nesting of containers (embedded files, archives)
    max_members: int = 1000           # items inside one job, all levels together
    max_ratio: float = 100.0          # expanded bytes / input bytes
    timeout: float = 60.0             # seconds of a job's own time (jobclock)
    max_memory: int = 2 * 1024**3     # address space of a worker, bytes
    max_cpu: float = 120.0            # CPU seconds per job


@dataclass(frozen=True, slots=True)
class FormatPolicy:
    action: str = "block"
    keep: frozenset[str] = frozenset()
    options: Mapping[str, str] = field(default_factory=dict)

    def option(self, name: str, default: str) -> str:
        return self.options.get(name, default)


@dataclass(frozen=True, slots=True)
class MailPolicy:
    html_body: str = "sanitize"
    links: str = "neutralize"
    notice: tuple[str, ...] = ("ja", "en")
    subject_tag: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    match: Mapping[str, str]
    policy: str


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    source: str = "<builtin>"
    description: str = ""
    limits: Limits = Limits()
    formats: Mapping[str, FormatPolicy] = field(default_factory=dict)
    type_mismatch: str = "report"
    mail: MailPolicy = MailPolicy()
    rules: tuple[Rule, ...] = ()

    def format(self, family: str) -> FormatPolicy:
        """The policy for a family; a family the file does not name is blocked."""
        return self.formats.get(family) or self.formats.get("unknown") or FormatPolicy()


# ---------------------------------------------------------------------------- loading


def policy_dirs() -> list[Path]:
    dirs: list[Path] = []
    env = os.environ.get("SEKISHO_POLICY_DIR")
    if env:
        dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    dirs.append(Path(__file__).resolve().parent.parent / "policies")
    dirs.append(Path("/etc/sekisho/policies"))
    return dirs


def resolve(ref: str) -> Path:
    """A policy reference is a file path or a name looked up in the policy dirs."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or os.sep in ref:
        if not path.is_file():
            raise ConfigError(f"{ref}: policy file not found")
        return path
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", ref):
        raise ConfigError(f"policy name {ref!r} is not a valid name")
    for d in policy_dirs():
        candidate = d / f"{ref}.yaml"
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(d) for d in policy_dirs())
    raise ConfigError(f"policy {ref!r} not found (searched {searched})")


def load(ref: str = "default") -> Policy:
    return load_file(resolve(ref))


def load_file(path: Path) -> Policy:
    """Load one policy file; ``extends: NAME`` merges it over another policy."""
    return _build(path, _flatten(path, ()))


def _sibling_or_resolve(path: Path, name: str) -> Path:
    sibling = path.parent / f"{name}.yaml"
    return sibling if sibling.is_file() else resolve(name)


def _flatten(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    raw = read_yaml(path)
    base = raw.pop("extends", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ConfigError(f"{path}: extends: {base!r} must be a policy name")
    base_path = _sibling_or_resolve(path, base)
    if base_path.resolve() in seen:
        raise ConfigError(f"{path}: extends: {base!r} makes a cycle")
    merged = _merge(_flatten(base_path, (*seen, path.resolve())), raw)
    merged["name"] = raw.get("name", path.stem)
    return merged


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        elif value is not None or key not in out:
            out[key] = value
    return out


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc.__class__.__name__}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} invalid YAML") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


# ---------------------------------------------------------------------------- validation


class Validator:
    """Validation helpers that name file, key path and value in every error."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, value: Any, why: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {value!r} {why}")

    def mapping(self, key: str, value: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key, value, "must be a mapping")
        for k in value:
            if k not in allowed:
                raise self.fail(f"{key}.{k}" if key else str(k), value[k],
                                f"is not a known key (known: {', '.join(allowed)})")
        return dict(value)

    def choice(self, key: str, value: Any, allowed: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise self.fail(key, value, f"is not one of {', '.join(allowed)}")
        return value

    def size(self, key: str, value: Any) -> int:
        if isinstance(value, bool):
            raise self.fail(key, value, "is not a size")
        if isinstance(value, int):
            n = value
        else:
            m = _QTY.match(str(value))
            if not m or m.group(2).lower() not in _SIZE_UNITS:
                raise self.fail(key, value, "is not a size (e.g. 50MiB)")
            n = int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])
        if n <= 0:
            raise self.fail(key, value, "must be positive")
        return n

    def duration(self, key: str, value: Any) -> float:
        if isinstance(value, bool):
            raise self.fail(key, value, "is not a duration")
        if isinstance(value, int | float):
            secs = float(value)
        else:
            m = _QTY.match(str(value))
            if not m or m.group(2).lower() not in _TIME_UNITS:
                raise self.fail(key, value, "is not a duration (e.g. 60s, 5m)")
            secs = float(m.group(1)) * _TIME_UNITS[m.group(2).lower()]
        if secs <= 0:
            raise self.fail(key, value, "must be positive")
        return secs

    def integer(self, key: str, value: Any, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.fail(key, value, f"must be an integer from {lo} to {hi}")
        return value

    def number(self, key: str, value: Any, lo: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < lo:
            raise self.fail(key, value, f"must be a number >= {lo}")
        return float(value)

    def string(self, key: str, value: Any) -> str:
        if not isinstance(value, str):
            raise self.fail(key, value, "must be a string")
        return value


_TOP_KEYS = ("name", "description", "limits", "formats", "type_mismatch", "mail", "rules")
_LIMIT_KEYS = ("max_size", "max_depth", "max_members", "max_ratio", "timeout",
               "max_memory", "max_cpu")
_MAIL_KEYS = ("html_body", "links", "notice", "subject_tag")
_MATCH_KEYS = ("sender", "sender_domain", "recipient", "recipient_domain")


def _build(path: Path, raw: Mapping[str, Any]) -> Policy:
    v = Validator(path)
    data = v.mapping("", raw, _TOP_KEYS)
    name = v.string("name", data.get("name", path.stem))
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise v.fail("name", name, "may only hold letters, digits, '.', '_' and '-'")
    return Policy(
        name=name,
        source=str(path),
        description=v.string("description", data.get("description", "")),
        limits=_limits(v, data.get("limits", {})),
        formats=_formats(v, data.get("formats", {})),
        type_mismatch=v.choice("type_mismatch", data.get("type_mismatch", "report"),
                               ("report", "block")),
        mail=_mail(v, data.get("mail", {})),
        rules=_rules(v, data.get("rules", [])),
    )


def _limits(v: Validator, raw: Any) -> Limits:
    d = v.mapping("limits", raw, _LIMIT_KEYS)
    base = Limits()
    return Limits(
        max_size=v.size("limits.max_size", d.get("max_size", base.max_size)),
        max_depth=v.integer("limits.max_depth", d.get("max_depth", base.max_depth), 0, 50),
        max_members=v.integer("limits.max_members", d.get("max_members", base.max_members),
                              1, 1_000_000),
        max_ratio=v.number("limits.max_ratio", d.get("max_ratio", base.max_ratio), 1.0),
        timeout=v.duration("limits.timeout", d.get("timeout", base.timeout)),
        max_memory=v.size("limits.max_memory", d.get("max_memory", base.max_memory)),
        max_cpu=v.duration("limits.max_cpu", d.get("max_cpu", base.max_cpu)),
    )


def _formats(v: Validator, raw: Any) -> dict[str, FormatPolicy]:
    d = v.mapping("formats", raw, tuple(FORMAT_OPTIONS))
    out: dict[str, FormatPolicy] = {}
    for family, spec in d.items():
        key = f"formats.{family}"
        allowed = FORMAT_OPTIONS[family]
        s = v.mapping(key, spec, ("action", *allowed))
        action = v.choice(f"{key}.action", s.get("action", "disarm"), ACTIONS)
        if action in FORBIDDEN_ACTIONS.get(family, ()):
            raise v.fail(f"{key}.action", action, f"is not allowed for {family}")
        keep: frozenset[str] = frozenset()
        if "keep" in s:
            items = s["keep"]
            if not isinstance(items, list):
                raise v.fail(f"{key}.keep", items, "must be a list")
            keep = frozenset(v.choice(f"{key}.keep", i, allowed["keep"]) for i in items)
        options = {opt: v.choice(f"{key}.{opt}", s[opt], allowed[opt])
                   for opt in allowed if opt != "keep" and opt in s}
        out[family] = FormatPolicy(action=action, keep=keep, options=options)
    out.setdefault("unknown", FormatPolicy(action="block"))
    out.setdefault("executable", FormatPolicy(action="block"))
    return out


def _mail(v: Validator, raw: Any) -> MailPolicy:
    d = v.mapping("mail", raw, _MAIL_KEYS)
    base = MailPolicy()
    notice = d.get("notice", list(base.notice))
    if not isinstance(notice, list) or not notice:
        raise v.fail("mail.notice", notice, "must be a non-empty list of ja, en")
    return MailPolicy(
        html_body=v.choice("mail.html_body", d.get("html_body", base.html_body),
                           ("sanitize", "text")),
        links=v.choice("mail.links", d.get("links", base.links), ("keep", "neutralize", "remove")),
        notice=tuple(v.choice("mail.notice", n, ("ja", "en")) for n in notice),
        subject_tag=v.string("mail.subject_tag", d.get("subject_tag", base.subject_tag)),
    )


def _rules(v: Validator, raw: Any) -> tuple[Rule, ...]:
    if not isinstance(raw, list):
        raise v.fail("rules", raw, "must be a list")
    rules = []
    for i, item in enumerate(raw):
        key = f"rules[{i}]"
        d = v.mapping(key, item, ("match", "policy"))
        if "match" not in d or "policy" not in d:
            raise v.fail(key, item, "needs both match and policy")
        match = v.mapping(f"{key}.match", d["match"], _MATCH_KEYS)
        if not match:
            raise v.fail(f"{key}.match", match, "must name at least one condition")
        policy = v.string(f"{key}.policy", d["policy"])
        rules.append(Rule(match={k: v.string(f"{key}.match.{k}", x).lower()
                                 for k, x in match.items()}, policy=policy))
    return tuple(rules)
