"""Daemon configuration (``sekisho serve [--config FILE]``).

YAML, validated here at the edge like policies (gateway/policy.py): every error
names the file, the key path and the offending value. Without a file the
embedded defaults apply: SMTP on 127.0.0.1:2525, queue mode, mail for
``@localhost`` delivered to one Maildir per recipient under ``var/maildir``.

Relative paths in a config file are taken relative to the file's directory;
the embedded defaults are relative to the working directory.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.policy import Validator, read_yaml

MODES = ("queue", "through")
TARGETS = ("maildir", "smtp")
STARTTLS = ("no", "opportunistic", "require")
KEEP = ("all", "changed", "blocked")
_DOMAIN = re.compile(r"^\.?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*"
                     r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class TLSConfig:
    cert: Path | None = None          # PEM certificate chain; None: no STARTTLS
    key: Path | None = None
    require: bool = False             # 530 before STARTTLS


@dataclass(frozen=True, slots=True)
class SMTPInConfig:
    host: str = "127.0.0.1"
    port: int = 2525
    hostname: str = ""                # banner and Received:; "" = the machine's FQDN
    #: recipient domains we accept mail for; ".example.jp" also takes its subdomains
    domains: tuple[str, ...] = ("localhost",)
    max_message_size: int = 50 * 1024**2
    max_recipients: int = 100
    max_hops: int = 50                # Received: headers; more is a loop (554 5.4.6)
    max_sessions: int = 100
    timeout: float = 300.0            # idle: no command and no DATA bytes for this long
    #: through mode: answer 451 before the client's own "." timeout (RFC 5321 4.5.3.2.6: 10 min)
    reply_deadline: float = 540.0
    tls: TLSConfig = TLSConfig()


@dataclass(frozen=True, slots=True)
class DownstreamConfig:
    host: str = "127.0.0.1"
    port: int = 10026
    timeout: float = 300.0            # per command; DATA waits this long for the final reply
    starttls: str = "opportunistic"   # no | opportunistic | require
    verify_cert: bool = True
    cafile: Path | None = None
    helo: str = ""                    # "" = our hostname


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    mode: str = "queue"               # queue (store and forward) | through (after-queue filter)
    target: str = "maildir"           # maildir | smtp
    maildir: Path | None = None       # None: <var_dir>/maildir
    concurrency: int = 20             # deliveries in parallel
    smtp: DownstreamConfig = DownstreamConfig()


@dataclass(frozen=True, slots=True)
class QueueConfig:
    retry_min: float = 300.0          # first retry after 5 min (Postfix minimal_backoff_time)
    retry_max: float = 3600.0         # doubling up to about 1 h (maximal_backoff_time)
    lifetime: float = 5 * 86400.0     # then bounce (maximal_queue_lifetime)
    max_backlog: int = 10_000         # messages received but not yet sanitized: then 451 4.3.2
    max_active: int = 0               # messages processed at once; 0: 4 x workers (>= 20)
    quota: int = 10 * 1024**3         # bytes in the spool: then 452 4.3.1
    min_free: int = 256 * 1024**2     # free bytes the file system keeps: then 452 4.3.1


@dataclass(frozen=True, slots=True)
class FolderPair:
    name: str = "default"
    inbox: Path = Path("var/inbox")
    outbox: Path = Path("var/outbox")
    policy: str = ""                  # "" = the daemon's policy
    stable: float = 2.0               # size and mtime unchanged this long = complete


@dataclass(frozen=True, slots=True)
class TokenConfig:
    name: str
    sha256: str                       # hex digest of the bearer token (never the token)
    roles: tuple[str, ...] = ("submit",)


@dataclass(frozen=True, slots=True)
class HTTPConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    max_upload: int = 50 * 1024**2
    max_wait: float = 30.0            # longest ?wait= a synchronous submit may ask for
    #: bearer tokens; empty: tokens are generated once under <var_dir>/tokens/
    tokens: tuple[TokenConfig, ...] = ()
    #: policies a submitter may choose with ?policy=; the daemon's policy always
    policies: tuple[str, ...] = ()
    #: the address recipients' browsers reach the web page at (links in PPAP mail);
    #: "" = http://<listen address>:<port>
    public_url: str = ""


@dataclass(frozen=True, slots=True)
class JobsConfig:
    max_active: int = 0               # file jobs in the pipeline at once; 0: 2 x workers
    max_pending: int = 1000           # accepted and not yet through: then busy (HTTP 503)
    retention: float = 7 * 86400.0    # finished jobs (reports, results) kept this long
    max_password_attempts: int = 5    # wrong passwords for a held (PPAP) file, then blocked


@dataclass(frozen=True, slots=True)
class Config:
    source: str = "<embedded defaults>"
    var_dir: Path = Path("var")
    policy: str = "default"
    workers: int = 0                  # pipeline worker processes; 0: CPU count
    #: steps below the daemon's CPU priority the workers run at (nice); None: 19 in queue
    #: mode (the SMTP dialog first, sanitizing in the background), 0 in through mode
    worker_nice: int | None = None
    log_format: str = "auto"          # auto | json | console
    log_level: str = "INFO"
    quarantine_keep: str = "all"      # which originals are kept: all | changed | blocked
    quarantine_key_file: Path | None = None   # AES key of the quarantine; None: <var_dir>/...
    #: key files of a previous rotation: entries they sealed stay readable
    quarantine_old_keys: tuple[Path, ...] = ()
    quarantine_retention: float = 30 * 86400.0  # originals are shredded this long after
    audit_log: Path | None = None     # None: <var_dir>/audit.log
    smtp: SMTPInConfig = SMTPInConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    queue: QueueConfig = field(default_factory=QueueConfig)
    #: drop folders; None: the embedded default pair <var_dir>/inbox -> <var_dir>/outbox
    folders: tuple[FolderPair, ...] | None = None
    http: HTTPConfig = HTTPConfig()
    jobs: JobsConfig = JobsConfig()

    @property
    def folder_pairs(self) -> tuple[FolderPair, ...]:
        if self.folders is not None:
            return self.folders
        return (FolderPair(inbox=self.var_dir / "inbox", outbox=self.var_dir / "outbox"),)

    @property
    def quarantine_key(self) -> Path:
        return self.quarantine_key_file or self.var_dir / "quarantine.key"

    @property
    def audit_path(self) -> Path:
        return self.audit_log or self.var_dir / "audit.log"

    @property
    def maildir(self) -> Path:
        return self.delivery.maildir or self.var_dir / "maildir"

    @property
    def nice(self) -> int:
        """The workers' nice increment: in queue mode a client's 250 waits only for the
        spool, so the SMTP sessions come first and sanitizing takes the CPU they leave
        (bench/RESULTS.md: accepted/s about 1.5x, delivered/s the same); in through mode
        the client waits for the sanitizing itself."""
        if self.worker_nice is not None:
            return self.worker_nice
        return 19 if self.delivery.mode == "queue" else 0


def defaults() -> Config:
    return Config()


# ---------------------------------------------------------------------------- loading

_TOP = ("var_dir", "policy", "workers", "worker_nice", "log", "smtp", "delivery", "queue",
        "quarantine", "audit", "folders", "http", "jobs")
_SMTP = ("listen", "hostname", "domains", "max_message_size", "max_recipients", "max_hops",
         "max_sessions", "timeout", "reply_deadline", "tls")
_DELIVERY = ("mode", "target", "maildir", "concurrency", "smtp")
_DOWN = ("host", "port", "timeout", "starttls", "verify_cert", "cafile", "helo")
_QUEUE = ("retry_min", "retry_max", "lifetime", "max_backlog", "max_active", "quota",
          "min_free")


def load(path: Path | None) -> Config:
    if path is None:
        return defaults()
    raw = read_yaml(path)
    v = Validator(path)
    base = path.resolve().parent
    d = v.mapping("", raw, _TOP)
    log = v.mapping("log", d.get("log", {}), ("format", "level"))
    quar = v.mapping("quarantine", d.get("quarantine", {}),
                     ("keep", "key_file", "old_keys", "retention"))
    old_keys = quar.get("old_keys", [])
    if not isinstance(old_keys, list):
        raise v.fail("quarantine.old_keys", old_keys, "must be a list of key files")
    audit = v.mapping("audit", d.get("audit", {}), ("path",))
    var_dir = _path(v, base, "var_dir", d.get("var_dir", "var"))
    policy = v.string("policy", d.get("policy", "default"))
    if policy.endswith((".yaml", ".yml")) and not Path(policy).is_absolute():
        policy = str(base / policy)
    cfg = Config(
        source=str(path), var_dir=var_dir, policy=policy,
        workers=v.integer("workers", d.get("workers", 0), 0, 256),
        worker_nice=(v.integer("worker_nice", d["worker_nice"], 0, 19)
                     if d.get("worker_nice") is not None else None),
        log_format=v.choice("log.format", log.get("format", "auto"), ("auto", "json", "console")),
        log_level=v.choice("log.level", str(log.get("level", "INFO")).upper(),
                           ("DEBUG", "INFO", "WARNING", "ERROR")),
        quarantine_keep=v.choice("quarantine.keep", quar.get("keep", "all"), KEEP),
        quarantine_key_file=(_path(v, base, "quarantine.key_file", quar["key_file"])
                             if "key_file" in quar else None),
        quarantine_old_keys=tuple(_path(v, base, "quarantine.old_keys", k) for k in old_keys),
        quarantine_retention=_duration(v, "quarantine.retention",
                                       quar.get("retention", 30 * 86400.0)),
        audit_log=_path(v, base, "audit.path", audit["path"]) if "path" in audit else None,
        smtp=_smtp(v, base, d.get("smtp", {})),
        delivery=_delivery(v, base, d.get("delivery", {})),
        queue=_queue(v, d.get("queue", {})),
        folders=_folders(v, base, d["folders"]) if "folders" in d else None,
        http=_http(v, d.get("http", {})),
        jobs=_jobs(v, d.get("jobs", {})),
    )
    if cfg.queue.retry_max < cfg.queue.retry_min:
        raise v.fail("queue.retry_max", d["queue"]["retry_max"], "is shorter than retry_min")
    return cfg


def _path(v: Validator, base: Path, key: str, value: Any) -> Path:
    text = v.string(key, value)
    if not text:
        raise v.fail(key, value, "must not be empty")
    p = Path(text).expanduser()
    return p if p.is_absolute() else base / p


def _duration(v: Validator, key: str, value: Any) -> float:
    """A duration as policies take it (60s, 5m, 1h), plus days (5d)."""
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*d\s*", value)
        if m:
            return _duration(v, key, float(m.group(1)) * 86400)
    return v.duration(key, value)


def _bool(v: Validator, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise v.fail(key, value, "must be true or false")
    return value


def parse_listen(v: Validator, key: str, value: Any) -> tuple[str, int]:
    text = v.string(key, value)
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^:\[\]]+):(\d+)", text.strip())
    if not m:
        raise v.fail(key, value, "is not HOST:PORT (e.g. 127.0.0.1:2525, [::1]:25)")
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if not 0 <= port <= 65535:
        raise v.fail(key, value, "has a port outside 0-65535")
    if m.group(1):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise v.fail(key, value, "has an invalid IPv6 address") from None
    return host, port


def normalize_domain(v: Validator, key: str, value: Any) -> str:
    text = v.string(key, value).strip().lower()
    lead = "." if text.startswith(".") else ""
    try:
        ascii_name = lead + text.lstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        raise v.fail(key, value, "is not a valid domain name") from None
    if not _DOMAIN.match(ascii_name) or len(ascii_name) > 253:
        raise v.fail(key, value, "is not a valid domain name (no trailing dot, no wildcards; "
                     "a leading dot takes the subdomains)")
    return ascii_name


def _smtp(v: Validator, base: Path, raw: Any) -> SMTPInConfig:
    d = v.mapping("smtp", raw, _SMTP)
    dflt = SMTPInConfig()
    host, port = (parse_listen(v, "smtp.listen", d["listen"]) if "listen" in d
                  else (dflt.host, dflt.port))
    domains_raw = d.get("domains", list(dflt.domains))
    if not isinstance(domains_raw, list) or not domains_raw:
        raise v.fail("smtp.domains", domains_raw, "must be a non-empty list of domains")
    domains = tuple(normalize_domain(v, "smtp.domains", x) for x in domains_raw)
    t = v.mapping("smtp.tls", d.get("tls", {}), ("cert", "key", "require"))
    cert = _path(v, base, "smtp.tls.cert", t["cert"]) if t.get("cert") else None
    key = _path(v, base, "smtp.tls.key", t["key"]) if t.get("key") else cert
    require = _bool(v, "smtp.tls.require", t.get("require", False))
    if require and cert is None:
        raise v.fail("smtp.tls.require", True, "needs smtp.tls.cert")
    for name, p in (("cert", cert), ("key", key)):
        if p is not None and not p.is_file():
            raise v.fail(f"smtp.tls.{name}", str(p), "is not a readable file")
    hostname = v.string("smtp.hostname", d.get("hostname", ""))
    if hostname and not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", hostname):
        raise v.fail("smtp.hostname", hostname, "is not a host name")
    return SMTPInConfig(
        host=host, port=port, hostname=hostname, domains=domains,
        max_message_size=v.size("smtp.max_message_size",
                                d.get("max_message_size", dflt.max_message_size)),
        max_recipients=v.integer("smtp.max_recipients",
                                 d.get("max_recipients", dflt.max_recipients), 1, 10_000),
        max_hops=v.integer("smtp.max_hops", d.get("max_hops", dflt.max_hops), 1, 1000),
        max_sessions=v.integer("smtp.max_sessions", d.get("max_sessions", dflt.max_sessions),
                               1, 100_000),
        timeout=_duration(v, "smtp.timeout", d.get("timeout", dflt.timeout)),
        reply_deadline=_duration(v, "smtp.reply_deadline",
                                  d.get("reply_deadline", dflt.reply_deadline)),
        tls=TLSConfig(cert=cert, key=key, require=require),
    )


def _delivery(v: Validator, base: Path, raw: Any) -> DeliveryConfig:
    d = v.mapping("delivery", raw, _DELIVERY)
    dflt = DeliveryConfig()
    s = v.mapping("delivery.smtp", d.get("smtp", {}), _DOWN)
    ds = DownstreamConfig()
    cafile = _path(v, base, "delivery.smtp.cafile", s["cafile"]) if s.get("cafile") else None
    down = DownstreamConfig(
        host=v.string("delivery.smtp.host", s.get("host", ds.host)),
        port=v.integer("delivery.smtp.port", s.get("port", ds.port), 1, 65535),
        timeout=_duration(v, "delivery.smtp.timeout", s.get("timeout", ds.timeout)),
        starttls=v.choice("delivery.smtp.starttls", s.get("starttls", ds.starttls), STARTTLS),
        verify_cert=_bool(v, "delivery.smtp.verify_cert", s.get("verify_cert", ds.verify_cert)),
        cafile=cafile,
        helo=v.string("delivery.smtp.helo", s.get("helo", ds.helo)),
    )
    return DeliveryConfig(
        mode=v.choice("delivery.mode", d.get("mode", dflt.mode), MODES),
        target=v.choice("delivery.target", d.get("target", dflt.target), TARGETS),
        maildir=_path(v, base, "delivery.maildir", d["maildir"]) if "maildir" in d else None,
        concurrency=v.integer("delivery.concurrency", d.get("concurrency", dflt.concurrency),
                              1, 1000),
        smtp=down,
    )


def _queue(v: Validator, raw: Any) -> QueueConfig:
    d: Mapping[str, Any] = v.mapping("queue", raw, _QUEUE)
    q = QueueConfig()
    quota = d.get("quota", q.quota)
    min_free = d.get("min_free", q.min_free)
    return QueueConfig(
        retry_min=_duration(v, "queue.retry_min", d.get("retry_min", q.retry_min)),
        retry_max=_duration(v, "queue.retry_max", d.get("retry_max", q.retry_max)),
        lifetime=_duration(v, "queue.lifetime", d.get("lifetime", q.lifetime)),
        max_backlog=v.integer("queue.max_backlog", d.get("max_backlog", q.max_backlog),
                              1, 10_000_000),
        max_active=v.integer("queue.max_active", d.get("max_active", q.max_active), 0, 10_000),
        quota=0 if quota == 0 else v.size("queue.quota", quota),
        min_free=0 if min_free == 0 else v.size("queue.min_free", min_free),
    )


_FOLDER = ("name", "inbox", "outbox", "policy", "stable")
_HTTP = ("enabled", "listen", "max_upload", "max_wait", "tokens", "policies", "public_url")
_TOKEN = ("name", "sha256", "roles")
ROLES = ("submit", "admin")


def _folders(v: Validator, base: Path, raw: Any) -> tuple[FolderPair, ...]:
    if not isinstance(raw, list):
        raise v.fail("folders", raw, "must be a list of {name, inbox, outbox} (may be empty)")
    pairs: list[FolderPair] = []
    for i, item in enumerate(raw):
        key = f"folders[{i}]"
        d = v.mapping(key, item, _FOLDER)
        for need in ("name", "inbox", "outbox"):
            if need not in d:
                raise v.fail(f"{key}.{need}", None, "is required")
        name = v.string(f"{key}.name", d["name"])
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            raise v.fail(f"{key}.name", name, "must be letters, digits, - or _")
        pair = FolderPair(
            name=name, inbox=_path(v, base, f"{key}.inbox", d["inbox"]),
            outbox=_path(v, base, f"{key}.outbox", d["outbox"]),
            policy=v.string(f"{key}.policy", d.get("policy", "")),
            stable=_duration(v, f"{key}.stable", d.get("stable", 2.0)))
        if pair.inbox.resolve() == pair.outbox.resolve():
            raise v.fail(f"{key}.outbox", str(d["outbox"]), "must differ from the inbox")
        for other in pairs:
            if other.name == name:
                raise v.fail(f"{key}.name", name, "is used twice")
            if other.inbox.resolve() == pair.inbox.resolve():
                raise v.fail(f"{key}.inbox", str(d["inbox"]), f"is also {other.name}'s inbox")
        pairs.append(pair)
    return tuple(pairs)


def _http(v: Validator, raw: Any) -> HTTPConfig:
    d = v.mapping("http", raw, _HTTP)
    dflt = HTTPConfig()
    host, port = (parse_listen(v, "http.listen", d["listen"]) if "listen" in d
                  else (dflt.host, dflt.port))
    tokens_raw = d.get("tokens", [])
    if not isinstance(tokens_raw, list):
        raise v.fail("http.tokens", tokens_raw, "must be a list of {name, sha256, roles}")
    tokens: list[TokenConfig] = []
    for i, item in enumerate(tokens_raw):
        key = f"http.tokens[{i}]"
        t = v.mapping(key, item, _TOKEN)
        name = v.string(f"{key}.name", t.get("name", ""))
        if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", name):
            raise v.fail(f"{key}.name", name, "must be 1-64 letters, digits, . _ @ -")
        digest = v.string(f"{key}.sha256", t.get("sha256", "")).lower()
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise v.fail(f"{key}.sha256", digest, "must be the hex SHA-256 of the token "
                         "(sha256sum of the token text, without newline)")
        roles = t.get("roles", ["submit"])
        if not isinstance(roles, list) or not roles:
            raise v.fail(f"{key}.roles", roles, "must be a non-empty list")
        tokens.append(TokenConfig(name, digest, tuple(
            v.choice(f"{key}.roles", r, ROLES) for r in roles)))
    if len({t.name for t in tokens}) != len(tokens):
        raise v.fail("http.tokens", [t.name for t in tokens], "has a name used twice")
    policies = d.get("policies", [])
    if not isinstance(policies, list):
        raise v.fail("http.policies", policies, "must be a list of policy names")
    return HTTPConfig(
        enabled=_bool(v, "http.enabled", d.get("enabled", True)), host=host, port=port,
        max_upload=v.size("http.max_upload", d.get("max_upload", dflt.max_upload)),
        max_wait=_duration(v, "http.max_wait", d.get("max_wait", dflt.max_wait)),
        tokens=tuple(tokens),
        policies=tuple(v.string("http.policies", p) for p in policies),
        public_url=_url(v, "http.public_url", d.get("public_url", "")))


def _url(v: Validator, key: str, value: Any) -> str:
    text = v.string(key, value).strip()
    if text and not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(?::\d+)?(?:/[^\s#?]*)?",
                                 text):
        raise v.fail(key, value, "is not an http(s) URL such as https://sekisho.city.lg.jp")
    return text.rstrip("/")


def _jobs(v: Validator, raw: Any) -> JobsConfig:
    d = v.mapping("jobs", raw, ("max_active", "max_pending", "retention",
                                "max_password_attempts"))
    j = JobsConfig()
    return JobsConfig(
        max_active=v.integer("jobs.max_active", d.get("max_active", j.max_active), 0, 10_000),
        max_pending=v.integer("jobs.max_pending", d.get("max_pending", j.max_pending),
                              1, 10_000_000),
        retention=_duration(v, "jobs.retention", d.get("retention", j.retention)),
        max_password_attempts=v.integer(
            "jobs.max_password_attempts",
            d.get("max_password_attempts", j.max_password_attempts), 1, 100))
