"""The lab's supervisord: Supervisor's own ``main`` with one defect of its poll loop fixed.

supervisord keeps a descriptor registered for reading after the pipe it belonged to was closed
(a program restarted). When the number is reused by the next program's stdin pipe, and that
program closes its stdin (RabbitMQ does), ``poll`` reports only ``POLLERR`` on it. The main
loop handles ``POLLIN``/``POLLOUT`` and ``POLLNVAL`` but not that, so it never unregisters the
descriptor and ``poll`` returns at once, forever: a whole core for an idle lab (Supervisor issue
807, open upstream). An event that is neither readable nor writable is dropped here.

    python -m oaas_lab.backends.local.supervisord_main -n -c supervisord.conf
"""

from __future__ import annotations

import select

from supervisor import poller, supervisord


class PollPoller(poller.PollPoller):  # type: ignore[misc]  # supervisor ships no types
    """``PollPoller`` that forgets a descriptor reporting only an error."""

    def _ignore_invalid(self, fd: int, eventmask: int) -> bool:
        if eventmask & select.POLLERR and not eventmask & (self.READ | self.WRITE):
            self._poller.unregister(fd)
            self.readables.discard(fd)
            self.writables.discard(fd)
            return True
        return bool(super()._ignore_invalid(fd, eventmask))


def main() -> None:
    """Run supervisord with the fixed poller (its arguments are supervisord's)."""
    poller.Poller = PollPoller
    supervisord.main()


if __name__ == "__main__":
    main()
