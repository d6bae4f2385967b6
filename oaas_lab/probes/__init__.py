"""Measurements: what a client sees while the lab is being broken.

``loop`` runs one writer at sub-second cadence in a background thread, bounded in count and
time, and turns its attempts into figures (longest gap, failed and acknowledged writes, lost
writes). ``targets`` are the writers (SQL through HAProxy, etcd puts, confirmed publishes to a
quorum queue), ``faults`` injects faults through the ``Lab`` and undoes them, and ``session``
groups the probes and figures of one scenario for the reports.
"""

from oaas_lab.probes.faults import Faults
from oaas_lab.probes.loop import Attempt, Figures, ProbeLoop, Target, no_lost_writes
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
