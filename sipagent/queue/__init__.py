"""The ACD runtime: turns acdcore's actions into SIP and media and feeds the outcomes back.

Modules, each importing only those below it: runtime (the loop, offers, the
caller's wait) -> callback (callbacks), agents (agent lines, control,
read-outs) -> entry (a caller's place in line and its state table), hold
(what a waiting caller hears), bridging (caller and agent, once both have
media), stats (counting outcomes).
"""
