"""One module per daemon (the OpenStack services share one): files, command line, lifecycle.

``DRIVERS`` is the registry the local lab reads: component name -> driver.
"""

from __future__ import annotations

from oaas_lab.backends.local.daemons.base import Driver
from oaas_lab.backends.local.daemons.etcd import EtcdDriver
from oaas_lab.backends.local.daemons.galera import GaleraDriver
from oaas_lab.backends.local.daemons.haproxy import HaproxyDriver
from oaas_lab.backends.local.daemons.memcached import MemcachedDriver
from oaas_lab.backends.local.daemons.openstack import DRIVERS as OPENSTACK_DRIVERS
from oaas_lab.backends.local.daemons.rabbitmq import RabbitmqDriver

DRIVERS: dict[str, Driver] = {
    "etcd": EtcdDriver(),
    "galera": GaleraDriver(),
    "haproxy": HaproxyDriver(),
    "rabbitmq": RabbitmqDriver(),
    "memcached": MemcachedDriver(),
    **OPENSTACK_DRIVERS,
}
