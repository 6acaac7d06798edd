"""asyncio task and thread helpers shared by every layer (this module imports nothing of sipagent)."""
from __future__ import annotations

import asyncio
import threading


async def cancel_and_wait(*tasks: asyncio.Future) -> None:
    """Cancel ``tasks`` and wait until each has ended, whatever it raised
    (a task already done is only waited for)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def name_os_thread(name: str) -> None:
    """Give the calling thread ``name`` where the OS shows it (``top -H``,
    ``ps -L``, /proc/<pid>/task/<tid>/comm), not only inside Python: an
    operator (or a benchmark) then sees which of the engine's threads spends
    the CPU.  Linux keeps 15 characters; elsewhere this does nothing."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm", "w") as comm:
            comm.write(name[:15])
    except OSError:
        pass
