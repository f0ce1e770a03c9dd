"""Redis topologies beyond one server: a sentinel group (master, replica, three sentinels) and a cluster
devstack launches and wires the apps to, and the drills run on them (failover, killing a node)."""
from .plan import plan_topology

__all__ = ["plan_topology"]
