"""sipacd's engine process: a SIP endpoint that answers calls, runs flows, queues
callers in the ACD and bridges them to agents (``engine`` wires it together;
each subpackage is one concept, see its docstring)."""
