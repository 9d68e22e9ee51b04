"""What the file-job tests share: the policies they run and two small inputs."""

from __future__ import annotations

from gateway.policy import load

POLICIES = {"default": load("default"), "strict": load("strict")}
#: disarmed by the default policy (the script goes)
HTML = b"<html><body><p>hello</p><script>alert(1)</script></body></html>"
#: a PE executable: blocked
EXE = b"MZ" + b"\x90" * 58 + b"\x80\x00\x00\x00" + b"\x00" * 64 + b"PE\x00\x00" + b"\x00" * 200
