from __future__ import annotations

from pathlib import Path

import pytest

from gateway import policy
from gateway.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_default_policy() -> None:
    pol = policy.load("default")
    assert pol.name == "default"
    assert pol.format("pdf").action == "disarm"
    # web links go from documents (the phishing document's payload; DocBleach removes
    # PDF links too, oleobj flags Office ones); the URL stays in the report
    for family in ("pdf", "ooxml", "odf", "html"):
        assert pol.format(family).keep == frozenset(), family
    assert pol.format("executable").action == "block"
    assert pol.format("no-such-family").action == "block"
    assert pol.limits.max_size == 50 * 1024**2
    assert pol.limits.timeout == 60.0
    assert pol.mail.subject_tag == "[無害化]"


def test_strict_extends_default() -> None:
    pol = policy.load("strict")
    assert pol.name == "strict"
    assert pol.type_mismatch == "block"
    assert pol.format("pdf").keep == frozenset()
    assert pol.format("pdf").option("embedded_files", "disarm") == "remove"
    assert pol.format("rtf").action == "disarm"           # inherited
    assert pol.limits.max_size == 20 * 1024**2
    assert pol.limits.max_ratio == 100.0                  # inherited


@pytest.mark.parametrize(("text", "message"), [
    ("colour: red\n", "colour: 'red' is not a known key"),
    ("formats: {pdf: {action: zap}}\n", "formats.pdf.action: 'zap' is not one of"),
    ("formats: {pdf: {keep: [macros]}}\n", "formats.pdf.keep: 'macros' is not one of"),
    ("formats: {pdf: {keep: hyperlinks}}\n", "formats.pdf.keep: 'hyperlinks' must be a list"),
    ("formats: {exe: {action: block}}\n", "formats.exe: {'action': 'block'} is not a known key"),
    ("formats: {unknown: {action: pass}}\n", "formats.unknown.action: 'pass' is not allowed"),
    ("limits: {max_size: lots}\n", "limits.max_size: 'lots' is not a size"),
    ("limits: {timeout: -5}\n", "limits.timeout: -5 must be positive"),
    ("limits: {max_depth: 500}\n", "limits.max_depth: 500 must be an integer from 0 to 50"),
    ("mail: {notice: [fr]}\n", "mail.notice: 'fr' is not one of ja, en"),
    ("rules: [{match: {}, policy: strict}]\n", "rules[0].match: {} must name at least one"),
    ("type_mismatch: ignore\n", "type_mismatch: 'ignore' is not one of report, block"),
    ("- a\n- b\n", "top level must be a mapping"),
    ("a: [\n", "invalid YAML"),
])
def test_errors_name_file_key_and_value(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        policy.load_file(path)
    assert str(err.value).startswith(str(path))
    assert message in str(err.value)


def test_sizes_and_durations(tmp_path: Path) -> None:
    pol = policy.load_file(write(tmp_path, "limits: {max_size: 1.5MiB, timeout: 2m, "
                                           "max_memory: 512MB, max_cpu: 1500ms}\n"))
    assert pol.limits.max_size == int(1.5 * 1024**2)
    assert pol.limits.timeout == 120.0
    assert pol.limits.max_memory == 512 * 1000**2
    assert pol.limits.max_cpu == 1.5


def test_extends_cycle_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "extends: b\n", "a.yaml")
    write(tmp_path, "extends: a\n", "b.yaml")
    with pytest.raises(ConfigError, match="makes a cycle"):
        policy.load_file(tmp_path / "a.yaml")


def test_rules(tmp_path: Path) -> None:
    pol = policy.load_file(write(tmp_path, "rules:\n  - match: {recipient_domain: Kikaku.Example}"
                                           "\n    policy: strict\n"))
    assert pol.rules[0].match == {"recipient_domain": "kikaku.example"}
    assert pol.rules[0].policy == "strict"


def test_resolve_rejects_odd_names() -> None:
    with pytest.raises(ConfigError, match="not a valid name"):
        policy.resolve("bad name!")
