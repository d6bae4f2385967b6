"""What the host can hold: refusals name the limit and the largest count that fits."""

from __future__ import annotations

import pytest

from oaas_lab.backends.local import capacity
from oaas_lab.backends.local.capacity import Room
from oaas_lab.errors import UserError

LAB = {"etcd": 3, "galera": 3, "haproxy": 2, "memcached": 3, "rabbitmq": 3}
ROOMY = Room(memory_mib=64_000, neighbour_limit=100_000, addresses=240)


def test_a_scale_that_fits_passes_and_a_scale_in_is_never_refused():
    capacity.check_scale("galera", LAB, 5, ROOMY)
    capacity.check_scale("galera", LAB, 1, Room(memory_mib=0, neighbour_limit=0, addresses=0))


def test_memory_refusal_names_the_need_and_the_largest_odd_count():
    room = Room(memory_mib=4 * 256 + 100, neighbour_limit=100_000, addresses=240)
    with pytest.raises(UserError, match=r"galera: 99 members do not fit .*memory") as exc:
        capacity.check_scale("galera", LAB, 99, room)
    # 4 more members fit in memory; galera runs odd counts only, so 7 (3 + 4) is the answer.
    assert exc.value.hint == "the largest galera count that fits is 7"


def test_neighbour_table_refusal_for_a_mesh_that_outgrows_gc_thresh3():
    room = Room(memory_mib=64_000, neighbour_limit=1024 - capacity.NEIGHBOUR_RESERVE,
                addresses=240)
    with pytest.raises(UserError, match="neighbour table") as exc:
        capacity.check_scale("galera", LAB, 99, room)
    largest = int(exc.value.hint.rsplit(" ", 1)[1])
    assert largest % 2 == 1
    assert 3 < largest < 99
    assert capacity.neighbour_entries({**LAB, "galera": largest}) <= room.neighbour_limit
    assert capacity.neighbour_entries({**LAB, "galera": largest + 2}) > room.neighbour_limit


def test_address_refusal_and_a_count_that_cannot_grow_at_all():
    with pytest.raises(UserError, match="addresses: 4 new pods, 3 free") as exc:
        capacity.check_scale("memcached", LAB, 7, Room(64_000, 100_000, addresses=3))
    assert exc.value.hint == "the largest memcached count that fits is 6"
    with pytest.raises(UserError) as exc:
        capacity.check_scale("galera", LAB, 5, Room(0, 100_000, 240))
    assert exc.value.hint == "the largest galera count that fits is 3"


def test_up_counts_only_the_pods_not_running_yet():
    room = Room(memory_mib=300, neighbour_limit=100_000, addresses=240)
    capacity.check_up(LAB, LAB, room)  # a second up adds nothing
    with pytest.raises(UserError, match="the lab's 14 pods do not fit"):
        capacity.check_up({}, LAB, room)


def test_the_host_room_is_read_from_the_kernel():
    room = capacity.host_room(used_addresses=10)
    assert room.addresses == 245 - 10
    assert room.memory_mib > 0
    assert room.neighbour_limit > 0
