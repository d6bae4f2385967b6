"""Measurements: what a client sees while the lab is being broken.

``loop`` runs one writer at sub-second cadence in a background thread, bounded in count and
time, and turns its attempts into figures (longest gap, failed and acknowledged writes, lost
writes). The writers themselves (SQL through HAProxy, etcd puts, confirmed publishes to a quorum
queue, API requests) belong to their components (``oaas_lab.components``); ``faults`` injects
faults through the ``Lab`` and undoes them, and ``session`` groups the probes and figures of one
scenario for the reports.
"""

from oaas_lab.kernel.target import Target
from oaas_lab.probes.faults import Faults
from oaas_lab.probes.loop import Attempt, Figures, ProbeLoop, no_lost_writes
from oaas_lab.probes.session import Measurements

__all__ = [
    "Attempt",
    "Faults",
    "Figures",
    "Measurements",
    "ProbeLoop",
    "Target",
    "no_lost_writes",
]
