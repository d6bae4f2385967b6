"""RabbitMQ: the message bus, quorum queues on a cluster of Erlang nodes.

Observed on each node: ``rabbitmqctl cluster_status`` inside its pod, and an AMQP login as the
OpenStack user. Full membership: every node answers, knows the configured nodes, sees them all
running, reports no partition and no alarm, and accepts the login. The probe publishes to a
quorum queue and waits for each publisher confirm.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from oaas_lab.adapters import amqp
from oaas_lab.components.observing import (
    WRITE_TIMEOUT,
    as_evidence,
    close_quietly,
    error_text,
    run_id,
    running_addresses,
    unreachable,
    verdict,
    why,
)
from oaas_lab.components.spec import (
    Component,
    K8sNeeds,
    Role,
    SecretSpec,
    Spec,
    Writing,
    majority,
)
from oaas_lab.credentials import RABBITMQ_COOKIE_SECRET as COOKIE_SECRET
from oaas_lab.credentials import RABBITMQ_SECRET as AMQP_SECRET
from oaas_lab.credentials import RABBITMQ_USER as AMQP_USER
from oaas_lab.errors import LabError
from oaas_lab.kernel.lab import Lab
from oaas_lab.kernel.results import CheckResult, failed, passed
from oaas_lab.secrets import Secret, SecretStore

ENTRY = Component(
    memory_mib=160,
    name="rabbitmq",
    role=Role.CONTROLLER,
    replicas=3,
    ports={"amqp": 5672, "epmd": 4369, "dist": 25672},
    quorum=True,
    description="message bus with quorum queues",
    ready_timeout=180.0,
    # Each observation boots an Erlang VM per node (rabbitmqctl): polled every second it takes
    # most of a core from the services starting beside it.
    poll_interval=3.0,
)

NET_TICKTIME = 30
"""Seconds of silence after which an Erlang node counts a peer as gone (``net_ticktime``; the
default is 60, with which a partition shorter than a minute went unnoticed and the minority
kept its clients waiting instead of pausing). Not lower: a node frozen for longer than this
(SIGSTOP for 15 s with 10) comes back into a partition that ``pause_minority`` does not heal
(mnesia's ``running_partitioned_network``; both sides run, the majority reports the other as
not running until that node is restarted)."""


# Ra (2.2.0 in RabbitMQ 3.10.8) records which on-disk replica (a UID directory) serves which
# quorum queue in ``names.dets``, a DETS table written back only every 500 ms, while the
# replica's directory, ``config`` file and log are already on disk. A SIGKILL within that window
# (every member killed within a second of the declaration, as a cold-restart test does) loses
# the record but not the replica. On the next boot RabbitMQ finds the queue's name unregistered
# and starts a brand-new, empty member under a new UID ("leader call - leader not known"); with
# every member in that state the queue has only empty term-0 members, never elects a leader, and
# its acknowledged messages stay orphaned in the old directories. Re-registering from the
# replicas' ``config`` files before the VM starts brings the original members back. Only a name
# that is unregistered and claimed by exactly one replica is touched. Both labs run it before
# every broker start: with the Ra system directories as its arguments.
REGISTRATION_REPAIR = r"""#!/usr/bin/env escript
%% Re-register Ra replicas whose names.dets record a hard kill lost.
-mode(compile).
main(Dirs) -> lists:foreach(fun repair/1, Dirs).

repair(Dir) ->
    Claims = lists:append([claim(C) || C <- filelib:wildcard(filename:join([Dir, "*", "config"]))]),
    Lost = [{Name, UId} || {Name, UId} <- Claims,
                           length([N || {N, _} <- Claims, N =:= Name]) =:= 1],
    case Lost of
        [] -> ok;
        _ ->
            {ok, T} = dets:open_file(ra_names, [{file, filename:join(Dir, "names.dets")}]),
            [begin
                 ok = dets:insert(T, {Name, UId}),
                 io:format("ra: re-registered ~s as ~s in ~s~n", [Name, UId, Dir])
             end || {Name, UId} <- Lost, dets:lookup(T, Name) =:= []],
            ok = dets:close(T)
    end.

claim(Config) ->
    case file:consult(Config) of
        {ok, [#{id := {Name, _Node}, uid := UId}]} -> [{Name, UId}];
        _ -> []
    end.
"""


@dataclass(frozen=True)
class RabbitView:
    """One node's ``rabbitmqctl cluster_status`` (known nodes, running nodes, partitions,
    alarms) and how its AMQP login went (``ok`` or why not)."""

    nodes: tuple[str, ...]
    running: tuple[str, ...]
    partitions: tuple[str, ...]
    alarms: tuple[str, ...] = ()
    login: str = "ok"


def parse_status(text: str) -> RabbitView:
    """Parse ``rabbitmqctl cluster_status --formatter json``; raises ``ValueError``."""
    try:
        data: Any = json.loads(text[text.find("{"):] if "{" in text else text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"cluster_status is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("cluster_status is not a JSON object")
    nodes = data.get("disk_nodes", []) + data.get("ram_nodes", [])
    partitions = data.get("partitions") or {}
    split = sorted(
        f"{node} cannot see {', '.join(peers)}" for node, peers in partitions.items() if peers
    ) if isinstance(partitions, dict) else [str(p) for p in partitions]
    alarms = [json.dumps(a, sort_keys=True) for a in data.get("alarms") or []]
    return RabbitView(
        nodes=tuple(sorted(nodes)),
        running=tuple(sorted(data.get("running_nodes", []))),
        partitions=tuple(split),
        alarms=tuple(alarms),
    )


# --- judges -----------------------------------------------------------------------------------


def membership(observed: Mapping[str, RabbitView | str], expected: int) -> CheckResult:
    """Every node answers, knows ``expected`` nodes, sees all of them running, reports no
    partition or alarm, and accepts an AMQP login."""
    name = "rabbitmq membership"
    problems = [f"{pod}: unreachable ({why})" for pod, why in unreachable(observed).items()]
    views = {pod: v for pod, v in observed.items() if isinstance(v, RabbitView)}
    for pod, v in sorted(views.items()):
        if len(v.nodes) != expected:
            problems.append(f"{pod}: knows {len(v.nodes)} nodes, expected {expected}")
        stopped = sorted(set(v.nodes) - set(v.running))
        if stopped:
            problems.append(f"{pod}: nodes not running: {', '.join(stopped)}")
        if v.partitions:
            problems.append(f"{pod}: partition: {'; '.join(v.partitions)}")
        if v.alarms:
            problems.append(f"{pod}: alarms: {', '.join(v.alarms)}")
        if v.login != "ok":
            problems.append(f"{pod}: AMQP login: {v.login}")
    if len({v.nodes for v in views.values()}) > 1:
        problems.append("nodes disagree on the cluster's members")
    if len(observed) != expected:
        problems.append(f"{len(observed)} members known to the lab, expected {expected}")
    # The cluster as the first answering node sees it, in rabbitmqctl's own words.
    first = next((v for _, v in sorted(views.items())), None)
    summary: dict[str, object] = (
        {"running_nodes": list(first.running), "disk_nodes": list(first.nodes)}
        if first is not None else {"error": "no node answered cluster_status"})
    return verdict(name, problems, hint="read the rabbitmq member logs",
                   ok=f"{expected} nodes running, no partition", members=as_evidence(observed),
                   cluster_status=summary)


def quorum(observed: Mapping[str, RabbitView | str], total: int) -> CheckResult:
    """A majority of ``total`` nodes run and see each other without a partition."""
    name = "rabbitmq quorum"
    views = [v for v in observed.values() if isinstance(v, RabbitView) and not v.partitions]
    best = max((len(v.running) for v in views), default=0)
    if best < majority(total):
        return failed(
            name, f"at most {best} of {total} nodes running together (need {majority(total)})",
            hint="quorum queues need a majority of nodes",
        )
    return passed(name, f"{best} of {total} nodes running together")


# --- observation ------------------------------------------------------------------------------


def _login(lab: Lab, pod: str, password: Secret) -> str:
    try:
        with amqp.channel(lab.address(pod), user=AMQP_USER, password=password, timeout=3.0):
            return "ok"
    except (amqp.Error, OSError, LabError) as exc:
        return why(exc)


def _observe_node(lab: Lab, pod: str, password: Secret) -> RabbitView | str:
    try:
        done = lab.exec(pod, ["rabbitmqctl", "cluster_status", "--formatter", "json"],
                        timeout=30.0)
    except Exception as exc:  # a pod that cannot even run a command is an observation
        return f"{type(exc).__name__}: {exc}"
    if not done.ok:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"rabbitmqctl exited {done.returncode}: {tail[0]}"
    try:
        view = parse_status(done.stdout)
    except ValueError as exc:
        return str(exc)
    return RabbitView(view.nodes, view.running, view.partitions, view.alarms,
                      login=_login(lab, pod, password))


def observe(lab: Lab, store: SecretStore) -> dict[str, RabbitView | str]:
    """Each node's cluster status, as ``rabbitmqctl`` in its pod reports it, and its login.

    The nodes are asked at the same time: each ``rabbitmqctl`` spends seconds booting its VM.
    """
    password = store.get(AMQP_SECRET)
    pods = [p.name for p in lab.members(ENTRY.name)]
    with ThreadPoolExecutor(max_workers=max(1, len(pods))) as pool:
        views = list(pool.map(lambda pod: _observe_node(lab, pod, password), pods))
    return dict(zip(pods, views, strict=True))


# --- the writer -------------------------------------------------------------------------------


class QueuePublishes:
    """Persistent publishes to a quorum queue, each waiting for the publisher confirm.

    A confirmed publish is acknowledged. The client moves to the next member after a failure,
    like an oslo.messaging client with several transport hosts.
    """

    def __init__(
        self, hosts: Sequence[str], password: Secret, *, user: str = AMQP_USER,
        run: str | None = None,
    ) -> None:
        if not hosts:
            raise ValueError("QueuePublishes needs at least one host")
        self.hosts = list(hosts)
        self.user = user
        self._password = password
        self.run = run or run_id()
        self.name = "rabbitmq-publish"
        self._current = 0
        self._stack: ExitStack | None = None
        self._channel: Any = None

    @property
    def queue(self) -> str:
        return f"oaas-probe-{self.run}"

    def _open(self, host: str) -> tuple[ExitStack, Any]:
        stack = ExitStack()
        try:
            ch = stack.enter_context(amqp.channel(
                host, user=self.user, password=self._password, timeout=WRITE_TIMEOUT
            ))
        except BaseException:
            stack.close()
            raise
        return stack, ch

    def _each_host(self) -> Iterator[str]:
        for i in range(len(self.hosts)):
            yield self.hosts[(self._current + i) % len(self.hosts)]

    def prepare(self) -> None:
        """Declare the quorum queue (on the first member that answers)."""
        last: Exception | None = None
        for host in self._each_host():
            try:
                stack, ch = self._open(host)
                with stack:
                    amqp.declare_quorum_queue(ch, self.queue)
                return
            except amqp.Error as exc:
                last = exc
        raise amqp.NoAnswerError(f"no RabbitMQ member accepted the queue: {last}")

    def write(self, seq: int) -> None:
        if self._channel is None:
            host = self.hosts[self._current % len(self.hosts)]
            try:
                self._stack, self._channel = self._open(host)
            except Exception:
                self._current += 1
                raise
        try:
            amqp.publish_within(self._channel, self.queue, str(seq), timeout=WRITE_TIMEOUT)
        except Exception:
            self._current += 1
            self.close()
            raise

    def read_back(self) -> set[int]:
        """Drain the queue (consuming the messages) on the first member that answers."""
        errors: list[str] = []
        for host in self._each_host():
            try:
                stack, ch = self._open(host)
                with stack:
                    bodies = amqp.drain(ch, self.queue)
                    amqp.delete_queue(ch, self.queue)
            except amqp.Error as exc:
                errors.append(f"{host}: {error_text(exc)}")
                continue
            return {int(b) for b in bodies}
        raise amqp.NoAnswerError("no RabbitMQ member answered: " + "; ".join(errors))

    def close(self) -> None:
        stack, self._stack, self._channel = self._stack, None, None
        close_quietly(stack)


def writer(lab: Lab, store: SecretStore, how: Writing) -> QueuePublishes:
    """A publisher knowing every member (running ones first), or ``how.hosts``."""
    addresses = list(how.hosts) if how.hosts else running_addresses(lab, ENTRY.name)
    target = QueuePublishes(addresses, store.get(AMQP_SECRET), run=how.run)
    if how.prepare:
        target.prepare()
    return target


# --- Kubernetes scale-in ------------------------------------------------------------------------


def forget_nodes(lab: Lab, keep: int, before: int, peer_domain: str) -> None:
    """A removed node stays a quorum-queue member until the cluster forgets it."""
    for ordinal in range(keep, before):
        node = f"rabbit@rabbitmq-{ordinal}.{peer_domain}"
        out = lab.exec("rabbitmq-0", ["rabbitmqctl", "forget_cluster_node", node], 60.0)
        if not out.ok and "not_a_cluster_node" not in out.stderr + out.stdout:
            raise LabError(f"rabbitmqctl forget_cluster_node {node} failed: "
                           f"{out.stderr.strip()}")


SPEC: Spec[RabbitView] = Spec(
    entry=ENTRY,
    observe=observe,
    ready=membership,
    quorum=quorum,
    writer=writer,
    local="rabbitmq:RabbitmqDriver",
    k8s=K8sNeeds(
        template="rabbitmq.yaml.j2", storage="5Gi",
        after_scale_in=forget_nodes,
        secrets=(SecretSpec(
            "rabbitmq-credentials",
            {
                "erlang-cookie": (COOKIE_SECRET, "erlang_cookie"),
                "openstack-password": (AMQP_SECRET, "password"),
            },
            files={
                "default-user.conf":
                    f"default_user = {AMQP_USER}\ndefault_pass = {{openstack-password}}\n",
            },
        ),),
    ),
)
