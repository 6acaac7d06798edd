"""The engine: one process, one loop, one SIP endpoint (``process``); each
admitted call's flow runs as an asyncio task (``call_flows``)."""
from sipagent.engine.process import Engine, parse_invite, uses_fax

__all__ = ["Engine", "parse_invite", "uses_fax"]
