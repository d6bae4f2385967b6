"""The OpenStack tier of the lab: test guest image, service configuration, clouds.yaml.

Everything here is independent of the lab backend: ``guest`` builds the boot-test guest from
Debian packages, ``config`` renders each service's configuration and WSGI entry point from
addresses and secrets, ``clouds`` writes the ``clouds.yaml`` that the ``openstack`` CLI and the
SDK adapter read.
"""
