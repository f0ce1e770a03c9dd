"""Redis topologies beyond one server: a sentinel group (master, replica, three sentinels) and a cluster
devstack launches and wires the apps to, and the drills run on them (failover, killing a node)."""
from .drills import failover, kill_node
from .plan import expected_endpoint, node_ports, plan_topology
from .state import NodeState, TopologyPoller, TopologyState

__all__ = ["plan_topology", "expected_endpoint", "node_ports", "failover", "kill_node", "TopologyPoller",
           "TopologyState", "NodeState"]
