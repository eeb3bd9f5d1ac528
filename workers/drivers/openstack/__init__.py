"""OpenStack (Nova servers, with per-project tenants) through ``openstacksdk``.

``settings`` parses the hypervisor's clouds.yaml-style settings, ``client`` holds
the connections and types the errors, ``tenants`` provisions a project's
isolation, ``servers`` has the Nova helpers, ``driver`` registers the
``openstack`` kind. Set-up on the OpenStack side: docs/OPENSTACK.md.
"""

from .driver import OpenStackDriver

__all__ = ["OpenStackDriver"]
