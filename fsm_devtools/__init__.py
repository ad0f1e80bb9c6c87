"""Development peers (mail stack, SNMP simulators) used by tests, the demo and benchmarks."""
