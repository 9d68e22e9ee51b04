"""Daemon configuration: embedded defaults, the example file, errors naming file, key, value."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import config
from gateway.errors import ConfigError
from tests.conftest import ROOT


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sekisho.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_embedded_defaults() -> None:
    cfg = config.load(None)
    assert (cfg.smtp.host, cfg.smtp.port) == ("127.0.0.1", 2525)
    assert cfg.smtp.domains == ("localhost",)
    assert cfg.delivery.mode == "queue" and cfg.delivery.target == "maildir"
    assert cfg.maildir == Path("var/maildir")
    assert cfg.queue.retry_min == 300 and cfg.queue.retry_max == 3600
    assert cfg.queue.lifetime == 5 * 86400


def test_front_end_defaults_and_sections(tmp_path: Path) -> None:
    cfg = config.load(None)
    (pair,) = cfg.folder_pairs
    assert (pair.name, pair.inbox, pair.outbox) == ("default", Path("var/inbox"),
                                                    Path("var/outbox"))
    assert (cfg.http.host, cfg.http.port, cfg.http.tokens) == ("127.0.0.1", 8080, ())
    digest = "ab" * 32
    cfg = config.load(write(tmp_path, f"""
folders:
  - {{name: kikaku, inbox: in/k, outbox: out/k, policy: strict, stable: 5s}}
  - {{name: soumu, inbox: in/s, outbox: out/s}}
http:
  listen: 0.0.0.0:8443
  tokens: [{{name: admin1, sha256: {digest.upper()}, roles: [submit, admin]}}]
  policies: [strict]
jobs: {{max_active: 3, retention: 2d}}
"""))
    assert [(p.name, p.inbox, p.policy, p.stable) for p in cfg.folder_pairs] == [
        ("kikaku", tmp_path / "in/k", "strict", 5.0), ("soumu", tmp_path / "in/s", "", 2.0)]
    assert (cfg.http.host, cfg.http.port, cfg.http.policies) == ("0.0.0.0", 8443, ("strict",))
    assert cfg.http.tokens == (config.TokenConfig("admin1", digest, ("submit", "admin")),)
    assert (cfg.jobs.max_active, cfg.jobs.retention) == (3, 2 * 86400)
    assert config.load(write(tmp_path, "folders: []\n")).folder_pairs == ()


def test_worker_priority_follows_the_delivery_mode(tmp_path: Path) -> None:
    assert config.load(None).nice == 19  # queue mode: the SMTP sessions first
    assert config.load(write(tmp_path, "delivery: {mode: through}\n")).nice == 0
    cfg = config.load(write(tmp_path, "worker_nice: 5\ndelivery: {mode: through}\n"))
    assert (cfg.worker_nice, cfg.nice) == (5, 5)
    assert config.load(write(tmp_path, "worker_nice: 0\n")).nice == 0


def test_example_config_loads() -> None:
    cfg = config.load(ROOT / "config" / "example-lgwan.yaml")
    assert cfg.delivery.mode == "through" and cfg.delivery.target == "smtp"
    assert cfg.delivery.smtp.port == 10026
    assert cfg.smtp.port == 10025


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, "var_dir: data\ndelivery: {maildir: boxes}\n"))
    assert cfg.var_dir == tmp_path / "data"
    assert cfg.maildir == tmp_path / "boxes"


def test_listen_and_domains(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, "smtp:\n  listen: '[::1]:25'\n"
                                      "  domains: [City.Example.LG.JP, .pref.example.lg.jp]\n"))
    assert (cfg.smtp.host, cfg.smtp.port) == ("::1", 25)
    assert cfg.smtp.domains == ("city.example.lg.jp", ".pref.example.lg.jp")


@pytest.mark.parametrize(("text", "needle"), [
    ("smtp: {listen: localhost}\n", "smtp.listen: 'localhost'"),
    ("smtp: {listen: '1.2.3.4:99999'}\n", "port outside"),
    ("smtp: {domains: ['*.example.jp']}\n", "smtp.domains: '*.example.jp'"),
    ("smtp: {domains: ['example.jp.']}\n", "smtp.domains: 'example.jp.'"),
    ("smtp: {domains: []}\n", "smtp.domains"),
    ("smtp: {max_message_size: lots}\n", "smtp.max_message_size: 'lots'"),
    ("smtp: {tls: {require: true}}\n", "smtp.tls.require"),
    ("smtp: {tls: {cert: /no/such.pem}}\n", "smtp.tls.cert"),
    ("delivery: {mode: later}\n", "delivery.mode: 'later' is not one of queue, through"),
    ("delivery: {smtp: {starttls: maybe}}\n", "delivery.smtp.starttls"),
    ("queue: {retry_min: 1h, retry_max: 5m}\n", "queue.retry_max"),
    ("queue: {lifetime: soon}\n", "queue.lifetime: 'soon'"),
    ("smpt: {}\n", "smpt"),
    ("quarantine: {keep: none}\n", "quarantine.keep: 'none'"),
    ("folders: {inbox: x}\n", "folders:"),
    ("folders: [{name: a, inbox: in}]\n", "folders[0].outbox"),
    ("folders: [{name: 'a b', inbox: i, outbox: o}]\n", "folders[0].name: 'a b'"),
    ("folders: [{name: a, inbox: i, outbox: i}]\n", "folders[0].outbox: 'i' must differ"),
    ("folders: [{name: a, inbox: i, outbox: o}, {name: b, inbox: i, outbox: p}]\n",
     "folders[1].inbox: 'i' is also a's inbox"),
    ("folders: [{name: a, inbox: i, outbox: o, stable: forever}]\n", "folders[0].stable"),
    ("http: {listen: 8080}\n", "http.listen: 8080"),
    ("http: {tokens: [{name: t, sha256: secret}]}\n", "http.tokens[0].sha256: 'secret'"),
    ("http: {tokens: [{name: t, sha256: " + "a" * 64 + ", roles: [root]}]}\n",
     "http.tokens[0].roles: 'root'"),
    ("http: {max_upload: huge}\n", "http.max_upload: 'huge'"),
    ("jobs: {max_pending: 0}\n", "jobs.max_pending: 0"),
    ("http: {public_url: 'ftp://sekisho.example'}\n", "http.public_url: 'ftp://sekisho.example'"),
    ("jobs: {max_password_attempts: 0}\n", "jobs.max_password_attempts: 0"),
    ("worker_nice: 20\n", "worker_nice: 20"),
])
def test_errors_name_file_key_and_value(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert str(path) in str(err.value) and needle in str(err.value)
