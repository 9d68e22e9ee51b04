"""The daemon: the one place that wires components together (DESIGN.md §1).

``sekisho serve`` builds, from the configuration: the policy router, the
spool, the encrypted quarantine and the audit log, the worker pool
(forkserver: the daemon has threads), the egress (Maildir or downstream SMTP),
the relay (processor, queue manager, acceptor), the file-job service, the
drop folders, the HTTP API and web page (with the PPAP links), and the SMTP
front end — one process tree, one worker pool; then runs until SIGTERM/SIGINT.

SIGHUP reloads the policies (gateway/app.App.reload): new messages and files
use them; a policy with an error is refused and the running ones stay.

SIGTERM drains: the front ends stop accepting (HTTP and SMTP first, so no new
upload or message starts), messages being handed over finish, the queue lets
its running entries finish for a grace period and puts the rest back in the
spool, the drop folders stop, file jobs still running after the grace period
stay ``queued`` on disk and run at the next start; then the workers stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import socket
import ssl
from collections.abc import Awaitable, Callable

import structlog

from gateway import policy as policy_mod
from gateway.admin import Admin
from gateway.config import Config
from gateway.egress import Egress
from gateway.egress.folder_release import folder_release
from gateway.egress.maildir import MaildirEgress
from gateway.egress.smtp import SMTPEgress
from gateway.errors import ConfigError
from gateway.ingress.folder import FolderFrontEnd
from gateway.ingress.http import HTTPServer
from gateway.ingress.http_ops import pool_problem
from gateway.ingress.smtp import SMTPFrontEnd
from gateway.jobs.service import JobService
from gateway.jobs.store import JobStore
from gateway.metrics import Metrics
from gateway.pipeline.workers import WorkerPool
from gateway.policy import Policy
from gateway.relay.accept import RelayAcceptor
from gateway.relay.ppap import PPAP, load_secret
from gateway.relay.process import Processor
from gateway.relay.queue import QueueManager
from gateway.relay.release import ppap_release, smtp_release
from gateway.relay.routing import Router
from gateway.store.audit import AuditLog
from gateway.store.quarantine import Quarantine
from gateway.store.sealed import load_keyring
from gateway.store.spool import Spool

log = structlog.get_logger("sekisho.app")

GRACE = 30.0
PURGE_EVERY = 3600.0


class App:
    def __init__(self, cfg: Config, *, log_json: bool = True) -> None:
        self.cfg = cfg
        self.log_json = log_json
        self.router = Router.load(cfg.policy)  # ConfigError before anything starts
        self.hostname = cfg.smtp.hostname or socket.getfqdn() or "localhost"
        self.pool: WorkerPool | None = None
        self.queue: QueueManager | None = None
        self.front: SMTPFrontEnd | None = None
        self.egress: Egress | None = None
        self.jobs: JobService | None = None
        self.folders: FolderFrontEnd | None = None
        self.http: HTTPServer | None = None
        self.admin: Admin | None = None   # quarantine release/delete; front ends register
        self.metrics = Metrics()          # release handlers for their origin on it
        self.file_policies = self._file_policies()  # ConfigError before anything starts
        # the quarantine key: created (0600) on first start; refused if unsafe (ConfigError)
        self.keys = load_keyring(cfg.quarantine_key, cfg.quarantine_old_keys, create=True)
        self.audit = AuditLog(cfg.audit_path)
        self.quarantine: Quarantine | None = None
        self._purger: asyncio.Task[None] | None = None
        self.processor: Processor | None = None
        self.ppap: PPAP | None = None

    def _file_policies(self) -> dict[str, Policy]:
        """Every policy a file job may run under: the daemon's (and those its rules
        name), each folder pair's and those HTTP submitters may choose."""
        found = dict(self.router.policies)
        wanted = [p.policy for p in self.cfg.folder_pairs if p.policy]
        wanted += list(self.cfg.http.policies)
        for ref in wanted:
            if ref not in found:
                pol = policy_mod.load(ref)
                found.setdefault(ref, pol)
                found.setdefault(pol.name, pol)
        return found

    def _tls(self) -> ssl.SSLContext | None:
        tls = self.cfg.smtp.tls
        if tls.cert is None:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(tls.cert), str(tls.key or tls.cert))
        return ctx

    def _egress(self) -> Egress:
        d = self.cfg.delivery
        if d.target == "smtp":
            return SMTPEgress(d.smtp, self.hostname)
        return MaildirEgress(self.cfg.maildir, self.cfg.smtp.domains, self.hostname)

    async def start(self) -> None:
        cfg = self.cfg
        spool = Spool(cfg.var_dir / "spool", quota=cfg.queue.quota, min_free=cfg.queue.min_free)
        quarantine = self.quarantine = Quarantine(
            cfg.var_dir / "quarantine", self.keys, retention=cfg.quarantine_retention,
            audit=self.audit)
        self.pool = WorkerPool(cfg.workers, log_json=self.log_json, log_level=cfg.log_level,
                               start_method="forkserver", preload=("gateway.relay.custody",),
                               nice=cfg.nice)
        max_active = cfg.queue.max_active or max(20, 4 * self.pool.workers)
        self.egress = self._egress()
        processor = Processor(spool=spool, quarantine=quarantine, pool=self.pool,
                              router=self.router, egress=self.egress, queue=cfg.queue,
                              hostname=self.hostname, keep=cfg.quarantine_keep,
                              delivery_slots=asyncio.Semaphore(cfg.delivery.concurrency),
                              audit=self.audit, on_report=self.metrics.report_listener)
        self.queue = QueueManager(processor, spool, max_active=max_active)
        self.metrics.watch_relay(self.queue)
        self.jobs = JobService(
            JobStore(cfg.var_dir / "jobs"), self.pool, self.file_policies,
            default_policy=self.router.base.name, quarantine=quarantine,
            keep=cfg.quarantine_keep, audit=self.audit,
            max_active=cfg.jobs.max_active or 2 * self.pool.workers,
            max_pending=cfg.jobs.max_pending,
            max_password_attempts=cfg.jobs.max_password_attempts)
        self.metrics.watch_jobs(self.jobs)
        self.processor = processor
        admin = self.admin = Admin(quarantine, self.jobs, cfg.var_dir / "release",
                                   audit=self.audit)
        admin.register_release("smtp", smtp_release(processor))
        admin.register_release("folder", folder_release(cfg.folder_pairs))
        if cfg.http.enabled:  # PPAP links lead to the web page: only with HTTP on
            processor.ppap = self.ppap = PPAP(
                self.jobs, _mailer(processor, "ppap"),
                secret=load_secret(cfg.var_dir / "ppap.key"),
                public_url=cfg.http.public_url or f"http://{cfg.http.host}:{cfg.http.port}",
                hostname=self.hostname, langs=self.router.base.mail.notice,
                max_attempts=cfg.jobs.max_password_attempts,
                retention_days=cfg.jobs.retention / 86400)
            admin.register_release("ppap", ppap_release(
                _mailer(processor, "release"), self.hostname, self.router.base.mail.notice))
        # the drop folders' sink is registered before the job service resumes old jobs
        self.folders = FolderFrontEnd(cfg.folder_pairs, self.jobs,
                                      work_dir=cfg.var_dir / "folders")
        await self.queue.start()
        if cfg.http.enabled:  # before the job service resumes: PPAP links need its port
            queue = self.queue
            self.http = HTTPServer(
                cfg.http, jobs=self.jobs, var_dir=cfg.var_dir, metrics=self.metrics,
                admin=self.admin, health={"workers": lambda: pool_problem(self.pool)},
                extra_status=lambda: {"smtp_backlog": queue.backlog,
                                      "smtp_deferred": queue.deferred_count},
                unlock_key=self.ppap.check_key if self.ppap else None)
            await self.http.start()
            if self.ppap is not None and not cfg.http.public_url:
                self.ppap.public_url = f"http://{_url_host(cfg.http.host)}:{self.http.port}"
        if self.ppap is not None:  # held files' notices in the outbox carry the link
            self.folders.egress.link = self.ppap.link
        await self.jobs.start()
        await self.folders.start()
        acceptor = RelayAcceptor(mode=cfg.delivery.mode, spool=spool, processor=processor,
                                 queue=self.queue, max_backlog=cfg.queue.max_backlog,
                                 reply_deadline=cfg.smtp.reply_deadline)
        self.front = SMTPFrontEnd(cfg.smtp, acceptor, self.hostname, self._tls())
        await self.front.start()
        self._purger = asyncio.create_task(self._purge_loop(quarantine))
        log.info("sekisho.started", config=cfg.source, mode=cfg.delivery.mode,
                 target=processor.egress.name, workers=self.pool.workers,
                 worker_nice=cfg.nice,
                 domains=list(cfg.smtp.domains), var_dir=str(cfg.var_dir))

    def reload(self) -> bool:
        """SIGHUP: load the policies again. Jobs and messages that start from now on use
        them; a policy with an error is refused (logged, audited) and the old ones stay."""
        try:
            router = Router.load(self.cfg.policy)
            old, self.router = self.router, router
            try:
                policies = self._file_policies()
            except ConfigError:
                self.router = old
                raise
        except ConfigError as exc:
            log.error("sekisho.reload_failed", error=str(exc))
            self.audit.record("policy.reload", ok=False, error=str(exc)[:300])
            return False
        if self.processor is not None:
            self.processor.router = router
        if self.jobs is not None:
            self.jobs.set_policies(policies, router.base.name)
        self.file_policies = policies
        names = sorted({p.name for p in policies.values()})
        log.info("sekisho.reloaded", policies=names)
        self.audit.record("policy.reload", ok=True, policies=names)
        return True

    async def _purge_loop(self, quarantine: Quarantine) -> None:
        """Retention: shred expired originals now and every PURGE_EVERY seconds."""
        while True:
            try:
                await asyncio.to_thread(quarantine.purge)
            except Exception:
                log.exception("quarantine.purge_failed")
            await asyncio.sleep(PURGE_EVERY)

    async def stop(self, grace: float = GRACE) -> None:
        log.info("sekisho.stopping", grace=grace)
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        if self.http is not None:  # stop accepting uploads before the job service stops
            await self.http.stop(grace)
        if self.front is not None:
            await self.front.stop(grace)
        if self.queue is not None:
            await self.queue.stop(grace)
        if self.folders is not None:  # stop taking files before the job service stops
            await self.folders.stop()
        if self.jobs is not None:
            await self.jobs.stop(grace)
        if self.egress is not None:
            await self.egress.close()
        if self.pool is not None:
            await asyncio.to_thread(self.pool.close, wait=False)
        log.info("sekisho.stopped")


async def run(cfg: Config, *, log_json: bool = True) -> None:
    app = App(cfg, log_json=log_json)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, app.reload)
    try:
        await app.start()
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
        await app.stop()


def _mailer(processor: Processor, origin: str) -> Callable[[str, bytes], Awaitable[str]]:
    """Queue a message we wrote for one recipient (PPAP links, released files)."""
    def send(rcpt: str, data: bytes) -> Awaitable[str]:
        return processor.inject(rcpt, data, smtputf8=not rcpt.isascii(), origin=origin)
    return send


def _url_host(host: str) -> str:
    """A host name for links to a listener (a wildcard listener: this machine's name)."""
    try:
        wildcard = ipaddress.ip_address(host).is_unspecified
    except ValueError:  # a host name, or "" (every address)
        wildcard = not host
    if wildcard:
        return socket.getfqdn() or "localhost"
    return f"[{host}]" if ":" in host else host
