"""The probe loop and its figures: gaps, failures and lost writes are measured, not assumed."""

from __future__ import annotations

import threading
import time

import pytest

from oaas_lab.components.galera import match_writer, rejoin_method
from oaas_lab.errors import UserError
from oaas_lab.kernel.lab import Pod
from oaas_lab.probes import loop as loop_mod
from oaas_lab.probes.faults import Faults
from oaas_lab.probes.loop import (
    Attempt,
    ProbeLoop,
    figures,
    longest_gap,
    no_lost_writes,
    verify,
)


class FlakyStore:
    """A target at the seam the project owns: it refuses writes while ``down`` is set and
    can forget a write, as a broken cluster would."""

    name = "fake-store"

    def __init__(self, refuse_from: int = -1, refuse_to: int = -1, forget: int = -1) -> None:
        self.kept: set[int] = set()
        self.refuse = range(refuse_from, refuse_to)
        self.forget = forget
        self.closed = False
        self.calls = 0
        self.lock = threading.Lock()

    def write(self, seq: int) -> None:
        with self.lock:
            self.calls += 1
        if seq in self.refuse:
            raise ConnectionError("refused")
        if seq != self.forget:
            self.kept.add(seq)

    def read_back(self) -> set[int]:
        return set(self.kept)

    def close(self) -> None:
        self.closed = True


def test_longest_gap_between_acknowledgements():
    attempts = [
        Attempt(0, 0.0, 0.1, True),
        Attempt(1, 0.2, 0.3, False, "refused"),
        Attempt(2, 0.4, 2.5, False, "refused"),
        Attempt(3, 2.6, 3.1, True),
        Attempt(4, 3.2, 3.3, True),
    ]
    gap, started = longest_gap(attempts, 3.4)
    assert gap == pytest.approx(3.0)
    assert started == pytest.approx(0.1)


def test_a_service_that_never_answers_has_a_gap_of_the_whole_run():
    attempts = [Attempt(i, i * 0.5, i * 0.5 + 0.1, False, "down") for i in range(4)]
    result = figures("x", attempts, 2.0)
    assert result.longest_gap == pytest.approx(2.0)
    assert result.acknowledged == 0
    assert result.failed == 4
    assert result.errors == {"down": 4}


def test_a_lost_acknowledged_write_is_detected_and_named():
    result = verify(figures("sql", [Attempt(i, 0, 0, True) for i in range(5)], 1.0),
                    [0, 1, 2, 3, 4], {0, 1, 3, 4})
    check = no_lost_writes(result)
    assert not check.ok
    assert "1 of 5 acknowledged writes are missing" in check.detail
    assert "sequence numbers 2" in check.detail
    assert result.lost == (2,)


def test_no_lost_writes_fails_when_not_verified_or_nothing_acknowledged():
    assert not no_lost_writes(figures("x", [], 1.0)).ok
    empty = verify(figures("x", [], 1.0), [], set())
    assert not no_lost_writes(empty).ok
    good = verify(figures("x", [Attempt(0, 0, 0, True)], 1.0), [0], {0})
    assert no_lost_writes(good).ok


def test_probe_loop_records_refusals_and_losses_against_a_real_thread():
    store = FlakyStore(refuse_from=3, refuse_to=6, forget=8)
    probe = ProbeLoop(store, interval=0.001, max_attempts=12, max_seconds=10)
    probe.start()
    result = probe.stop_when_capped()
    assert result.attempts == 12
    assert result.failed == 3
    assert "count cap" in result.capped
    verified = probe.verify()
    assert verified.lost == (8,)
    assert not no_lost_writes(verified).ok
    probe.close()
    assert store.closed


def test_probe_loop_is_bounded_in_time():
    store = FlakyStore()
    probe = ProbeLoop(store, interval=0.01, max_attempts=10**6, max_seconds=0.3)
    probe.start()
    result = probe.stop_when_capped()
    assert "time cap" in result.capped
    assert result.duration < 5
    assert result.attempts == store.calls


def test_adopted_writes_are_verified_too():
    main_store = FlakyStore()
    main = ProbeLoop(main_store, interval=0.001, max_attempts=3)
    main.start()
    main.stop_when_capped()
    other = ProbeLoop(FlakyStore(), interval=0.001, max_attempts=2, first_seq=100)
    other.start()
    other.stop_when_capped()
    main.adopt(other)
    # The other probe wrote elsewhere, so its writes are missing from the main store.
    result = main.verify()
    assert result.lost == (100, 101)


def test_figures_as_properties_carry_the_numbers():
    result = verify(figures("x", [Attempt(0, 0, 0.5, True)], 2.0), [0], {0})
    props = result.as_properties()
    assert props["longest_gap_s"] == 1.5
    assert props["lost"] == 0
    assert props["verified"] == 1


def test_writer_is_matched_by_name_or_address():
    pods = {"galera-0": "10.0.0.10", "galera-1": "10.0.0.11"}
    assert match_writer({"wsrep_node_name": "galera-1"}, pods) == "galera-1"
    assert match_writer({"wsrep_node_address": "10.0.0.10:4567"}, pods) == "galera-0"
    assert match_writer({"hostname": "oaas-galera-1"}, pods) == "galera-1"
    assert match_writer({"hostname": "elsewhere"}, pods) is None


SST_JOIN = (
    "Starting MariaDB 10.11\nWSREP_SST: [INFO] rsync SST started on joiner\n"
    "WSREP_SST: [INFO] rsync SST completed on joiner\nWSREP: SST received\n"
    "WSREP: IST received: 1234:60\n"
)
IST_JOIN = (
    "Starting MariaDB 10.11\nWSREP_SST: [INFO] rsync SST started on joiner\n"
    "WSREP: Prepared IST receiver for 28-35\nWSREP_SST: [INFO] rsync IST completed on joiner\n"
    "WSREP: SST received\nWSREP: IST received: 1234:35\n"
)


def test_rejoin_method_tells_ist_from_sst_at_the_last_start():
    assert rejoin_method(IST_JOIN) == "IST"
    assert rejoin_method(SST_JOIN) == "SST"
    assert rejoin_method(SST_JOIN + IST_JOIN) == "IST"
    assert rejoin_method(IST_JOIN + SST_JOIN) == "SST"
    assert rejoin_method("Starting MariaDB 10.11\nnothing\n") == "unknown"


class RecordingLab:
    """A lab at the seam: records the verbs it is asked for; pods are always running."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def members(self, component: str) -> list[Pod]:
        return [Pod(name=f"{component}-{i}", component=component, ordinal=i,
                    node=f"controller-{i + 1}", ip=f"10.0.0.{10 + i}") for i in range(3)]

    def kill(self, pod: str) -> None:
        self.calls.append(("kill", pod))

    def stop(self, pod: str) -> None:
        self.calls.append(("stop", pod))

    def start(self, pod: str) -> None:
        self.calls.append(("start", pod))

    def pause(self, pod: str) -> None:
        self.calls.append(("pause", pod))

    def resume(self, pod: str) -> None:
        self.calls.append(("resume", pod))

    def cut(self, pod: str, peers: list[str], loss: float = 1.0) -> None:
        self.calls.append(("cut", f"{pod} from {','.join(peers)} at {loss}"))

    def heal(self, pod: str) -> None:
        self.calls.append(("heal", pod))


def test_lose_crashes_then_keeps_down_and_restore_starts_again():
    lab = RecordingLab()
    ticks = iter(range(100))
    faults = Faults(lab, clock=lambda: float(next(ticks)))  # type: ignore[arg-type]
    assert faults.lose("galera", 2) == ["galera-0", "galera-1"]
    assert lab.calls[:2] == [("kill", "galera-0"), ("kill", "galera-1")]
    assert {("stop", "galera-0"), ("stop", "galera-1")} <= set(lab.calls)
    lab.calls.clear()
    assert faults.start_stopped() == ["galera-0", "galera-1"]
    assert lab.calls == [("start", "galera-0"), ("start", "galera-1")]
    before = faults.injected[-1]
    assert faults.start_stopped() == []
    assert faults.injected[-1] is before  # starting nothing is not a new fault
    assert faults.restore() == []


class SlowStopLab(RecordingLab):
    """A stop that takes a while and deletes the pod meanwhile, as a held k8s member's does."""

    def __init__(self) -> None:
        super().__init__()
        self.stopping: set[str] = set()

    def kill(self, pod: str) -> None:
        if pod in self.stopping:
            raise UserError(f"no pod {pod!r}")
        super().kill(pod)

    def stop(self, pod: str) -> None:
        self.stopping.add(pod)
        time.sleep(1.5)
        super().stop(pod)


def test_lose_takes_a_pod_gone_while_it_is_stopped_as_stopping():
    lab = SlowStopLab()
    faults = Faults(lab)  # type: ignore[arg-type]
    assert faults.lose("galera", 2) == ["galera-0", "galera-1"]
    assert faults.stopped == ["galera-0", "galera-1"]


def test_pick_refuses_more_members_than_run():
    with pytest.raises(UserError, match="has 3 running members, cannot take 4"):
        Faults(RecordingLab()).pick("etcd", 4)  # type: ignore[arg-type]


class RestartingStore(FlakyStore):
    """Its read-back cannot connect ``unreachable`` times, as a member restarting once more."""

    def __init__(self, unreachable: int) -> None:
        super().__init__()
        self.unreachable = unreachable

    def read_back(self) -> set[int]:
        if self.unreachable > 0:
            self.unreachable -= 1
            raise ConnectionError("lost connection to server during query")
        return super().read_back()


def test_the_read_back_is_tried_again_while_it_cannot_connect(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(loop_mod.time, "sleep", lambda s: now.__setitem__(0, now[0] + s))
    store = RestartingStore(unreachable=2)
    probe = ProbeLoop(store, interval=0.001, max_attempts=3, clock=lambda: now[0])
    probe.start()
    probe.stop_when_capped()
    result = probe.verify()
    assert result.verified == 3
    assert result.lost == ()
    # A read-back that never connects fails after its bound, with its own error.
    never = ProbeLoop(RestartingStore(unreachable=10**6), interval=0.001, max_attempts=2,
                      clock=lambda: now[0])
    never.start()
    never.stop_when_capped()
    with pytest.raises(ConnectionError):
        never.verify()


def test_isolate_cuts_the_last_member_from_the_others_and_heal_undoes_it():
    lab = RecordingLab()
    faults = Faults(lab)  # type: ignore[arg-type]
    assert faults.isolate("etcd", 1) == ["etcd-2"]
    assert lab.calls == [("cut", "etcd-2 from etcd-0,etcd-1 at 1.0")]
    assert faults.injected[-1].action == "partition"
    assert faults.heal() == ["etcd-2"]
    assert faults.heal() == []
    assert lab.calls[-1] == ("heal", "etcd-2")


def test_isolating_every_member_is_refused():
    with pytest.raises(UserError, match="leaves no other side"):
        Faults(RecordingLab()).isolate("etcd", 3)  # type: ignore[arg-type]


def test_restore_resumes_paused_and_heals_cut_members_a_failed_scenario_left():
    lab = RecordingLab()
    faults = Faults(lab)  # type: ignore[arg-type]
    faults.pause("galera", 1)
    faults.isolate("rabbitmq", 1, loss=0.3)
    assert faults.injected[-1].action == "loss 30%"
    lab.calls.clear()
    assert faults.restore() == ["resumed galera-2", "healed rabbitmq-2"]
    assert lab.calls == [("resume", "galera-2"), ("heal", "rabbitmq-2")]
    assert faults.restore() == []
