"""memcached: independent members, nothing to cluster."""

from __future__ import annotations

from oaas_lab.backends.local.daemons.base import PodContext, RenderedFile, SimpleDriver, main_log
from oaas_lab.backends.local.supervisor import Program
from oaas_lab.components.memcached import ENTRY


class MemcachedDriver(SimpleDriver):
    """memcached on the pod's address and loopback, 64 MiB of cache."""

    component = "memcached"

    def files(self, ctx: PodContext) -> list[RenderedFile]:
        """memcached takes everything on its command line."""
        return []

    def programs(self, ctx: PodContext) -> list[Program]:
        """``memcached -u root`` (it refuses to run as root without saying so)."""
        argv = ("memcached", "-u", "root", "-l", f"{ctx.pod.ip},127.0.0.1", "-p", str(ENTRY.port),
                "-U", "0", "-m", "64", "-c", "1024", "-t", "1")
        return [Program(name=ctx.pod.name, argv=argv, log=main_log(ctx), env=self.exec_env(ctx))]
