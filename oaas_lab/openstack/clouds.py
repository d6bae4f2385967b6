"""The lab's ``clouds.yaml``: what ``openstack --os-cloud oaas-lab ...`` and the SDK read.

The admin password is a lab secret, so the file is written with mode 0600 from the start and
its text is never logged. Point the clients at it with ``OS_CLIENT_CONFIG_FILE=<path>``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from oaas_lab.openstack.config import DOMAIN, ConfigFile, write
from oaas_lab.secrets import Secret

CLOUD_NAME = "oaas-lab"
FILE_NAME = "clouds.yaml"


def clouds_yaml(
    auth_url: str,
    password: Secret,
    *,
    region: str = "RegionOne",
    cloud: str = CLOUD_NAME,
    username: str = "admin",
    project: str = "admin",
) -> ConfigFile:
    """The ``clouds.yaml`` text with one cloud, ``cloud``, for the admin user."""
    document = {
        "clouds": {
            cloud: {
                "auth": {
                    "auth_url": auth_url.rstrip("/") + "/v3",
                    "username": username,
                    "password": password.reveal(),
                    "project_name": project,
                    "user_domain_name": DOMAIN,
                    "project_domain_name": DOMAIN,
                },
                "region_name": region,
                "identity_api_version": 3,
                "interface": "public",
            }
        }
    }
    text = "# Written by oaas-lab; holds the lab's admin password.\n" + yaml.safe_dump(
        document, default_flow_style=False, sort_keys=False
    )
    return ConfigFile(FILE_NAME, text, secret=True)


def write_clouds(
    directory: Path, auth_url: str, password: Secret, *, region: str = "RegionOne"
) -> Path:
    """Write ``directory/clouds.yaml`` (mode 0600) and return its path."""
    return write([clouds_yaml(auth_url, password, region=region)], directory)[0]
