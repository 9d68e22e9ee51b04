# Sekisho (関所) container image: the daemon with SMTP (2525), HTTP (8080) and the drop
# folder (/var/lib/sekisho/inbox -> outbox), running as an unprivileged user.
#
#   docker build -t sekisho .
#   docker run -d --name sekisho -p 2525:2525 -p 8080:8080 \
#       -v sekisho-var:/var/lib/sekisho sekisho
#
# Mount your own configuration over /etc/sekisho/sekisho.yaml and your policies into
# /etc/sekisho/policies/. Everything the daemon keeps (spool, quarantine, audit log,
# keys, tokens) lives in the /var/lib/sekisho volume: back it up, and keep
# quarantine.key with it or the quarantined originals can't be read.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
ARG DEBIAN_FRONTEND=noninteractive
# libmagic (type sniffing), libarchive (RAR, CAB, LZH, password zips), 7-Zip (ISO, UDF,
# WIM, DMG and ARJ), unar (solid and old RAR), qpdf (PDF checks); prlimit and setpriv
# (util-linux) bound 7-Zip and unar
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libmagic1=1:5.44-3 \
        libarchive13=3.6.2-1+deb12u5 \
        7zip=22.01+really26.02+dfsg-0+deb12u1 \
        unar=1.10.7+ds1+really1.10.1-2+b2 \
        qpdf=11.3.0-1+deb12u1 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/sekisho \
        --create-home --shell /usr/sbin/nologin sekisho
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels sekisho==0.1.0 \
    && rm -rf /wheels
COPY policies /etc/sekisho/policies
COPY config/container.yaml /etc/sekisho/sekisho.yaml
USER 10001:10001
WORKDIR /var/lib/sekisho
VOLUME ["/var/lib/sekisho"]
EXPOSE 2525 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]
CMD ["sekisho", "serve", "--config", "/etc/sekisho/sekisho.yaml"]
