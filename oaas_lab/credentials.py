"""The accounts every part of the lab agrees on: who creates them and who logs in with them.

The daemons create these accounts; checks, probes and the OpenStack services log in with them.
The passwords live in the lab's ``SecretStore`` under the ``*_SECRET`` names below, so a name is
written here once rather than in each module that needs it.
"""

GALERA_ROOT_SECRET = "galera_root"  # noqa: S105 -- the name of a secret, not its value
GALERA_APP_USER = "oaas"
GALERA_APP_SECRET = "galera_oaas"  # noqa: S105 -- the name of a secret, not its value
GALERA_APP_DATABASE = "oaas"
RABBITMQ_USER = "openstack"
RABBITMQ_SECRET = "rabbitmq_openstack"  # noqa: S105 -- the name of a secret, not its value
RABBITMQ_COOKIE_SECRET = "rabbitmq_cookie"  # noqa: S105 -- the name of a secret, not its value
