"""asyncio task helpers shared by every layer (this module imports nothing of sipagent)."""
from __future__ import annotations

import asyncio


async def cancel_and_wait(*tasks: asyncio.Future) -> None:
    """Cancel ``tasks`` and wait until each has ended, whatever it raised
    (a task already done is only waited for)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
