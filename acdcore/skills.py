"""Skill requirements: normalising, relaxing with wait time, matching agents.

A requirement is a sorted tuple ``((skill, min_proficiency), ...)``.  Agents
lack a skill = proficiency 0, so a minimum <= 0 is no requirement and is
dropped.  Both schedulers intern each distinct requirement tuple as a
*class*; class 0 is "no requirement".  Not on the hot path: this runs once per
new class and once per relax step of a call.
"""
from __future__ import annotations

from .model import QueueConfig

Requirement = tuple[tuple[str, int], ...]
ANY: Requirement = ()


def normalize(skills) -> Requirement:
    """Accepts ``(("fr", 3), "billing")`` or ``{"fr": 3}``; bare names mean 1."""
    if isinstance(skills, dict):
        skills = skills.items()
    best: dict[str, int] = {}
    for item in skills or ():
        if isinstance(item, str):
            name, level = item, 1
        else:
            name, level = item
            name, level = str(name), int(level)
        if level > 0:
            best[name] = max(best.get(name, 0), level)
    return tuple(sorted(best.items()))


def relax_moments(cfg: QueueConfig) -> tuple[tuple[float, int], ...]:
    """Ordered ``(after_s, drop)`` steps; drop == -1 means "any agent"."""
    steps = list(cfg.skill_relax)
    if cfg.skill_any_after > 0:
        steps.append((cfg.skill_any_after, -1))
    steps.sort(key=lambda s: s[0])
    return tuple(steps)


def relaxed(req: Requirement, drop: int) -> Requirement:
    if drop < 0:
        return ANY
    return tuple((s, m - drop) for s, m in req if m - drop > 0)


def eligible(agent_skills: dict[str, int], req: Requirement) -> bool:
    return all(agent_skills.get(s, 0) >= m for s, m in req)


def score(agent_skills: dict[str, int], req: Requirement) -> int:
    """Rank for the ``skills`` strategy: summed proficiency on what is asked."""
    return sum(agent_skills.get(s, 0) for s, _ in req)
