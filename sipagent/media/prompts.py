"""The prompt library: named prompts per language, synthesized once.

Every prompt the engine or a shipped flow plays has a name and an English
text here.  At start the engine renders missing ones with espeak-ng into
8 kHz mono 16-bit WAV (what G.711 carries, so pjmedia never resamples).  A
recorded WAV dropped in ``<prompts_dir>/<language>/<name>.wav`` replaces the
synthetic voice.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import structlog

from sipagent.store.files import fsync_file, write_wav_atomic

log = structlog.get_logger("sipagent.media.prompts")

RATE = 8000

CATALOGUE: dict[str, dict[str, str]] = {
    "en": {
        "welcome": "Welcome to the sipacd contact centre. For support, press 1. For sales, press 2.",
        "connecting": "Please hold while we connect you to an agent.",
        "all-busy": "All our agents are busy. Please stay on the line.",
        "no-agents": "Sorry, no agent is available right now. Please call again later.",
        "queue-timeout": "Sorry, nobody could take your call. Goodbye.",
        "invalid": "Sorry, that is not a valid choice.",
        "callback-confirm": "Thank you. You keep your place in line, and we will call you "
                            "back as soon as an agent is free. Goodbye.",
        "goodbye": "Thank you for calling. Goodbye.",
        "sorry-error": "We are sorry, something went wrong. Please try again later.",
        # To the agent after a transfer key (sipagent/queue/call_keys.py).
        "transfer-target": "Transfer to which number? Finish with hash.",
        # A queue's recording_consent (sipagent/queue/recordings.py).
        "recording-notice": "This call may be recorded for quality and training.",
        # Agents' keypad feature numbers (sipagent/calls/agent_keypad.py).
        "agent-enter-number": "Please enter your agent number, followed by hash.",
        "agent-enter-pin": "Please enter your PIN, followed by hash.",
        "agent-enter-reason": "Please enter your pause reason code.",
        "agent-no-input": "Sorry, nothing was entered.",
        "agent-login-incorrect": "Wrong agent number or PIN.",
        "agent-locked": "Locked: too many wrong PINs.",
        "agent-not-now": "That cannot be done now.",
        "agent-pause-pending": "You will be paused when your call ends.",
        "agent-state-logged-out": "You are logged out.",
        "agent-state-available": "You are ready for calls.",
        "agent-state-offered": "A call is ringing for you.",
        "agent-state-busy": "You are on a call.",
        "agent-state-wrap-up": "You are in wrap-up.",
        "agent-state-paused": "You are paused.",
        # Call pickup from the phone (sipagent/calls/pickup_flow.py).
        "pickup-nothing": "Nothing to pick up.",
        "pickup-not-allowed": "You cannot pick up that call.",
        "pickup-enter-number": "Please enter the ringing agent's number, followed by hash.",
        # Supervisors' monitor feature number (sipagent/calls/supervisor_keypad.py).
        "supervisor-enter-number": "Please enter your supervisor number, followed by hash.",
        "supervisor-enter-agent": "Please enter the agent's number, followed by hash.",
        "supervisor-login-incorrect": "Wrong supervisor number or PIN.",
        "supervisor-agent-not-on-call": "The agent is not on a call.",
        "supervisor-not-your-queue": "You may not monitor calls of this queue.",
        "supervisor-cannot-monitor": "That call cannot be monitored now.",
    },
}


class PromptError(LookupError):
    pass


class PromptLibrary:
    def __init__(self, prompts_dir: Path, language: str = "en"):
        self.dir = Path(prompts_dir)
        self.language = language
        # The engine's own texts plus those that flow files bring (PROMPTS).
        self.texts: dict[str, dict[str, str]] = {lang: dict(p) for lang, p in CATALOGUE.items()}

    def add_texts(self, table: dict) -> None:
        """Merge a flow file's ``PROMPTS = {language: {name: text}}``.  A text
        that changed is rendered anew on next use."""
        for lang, prompts in table.items():
            known = self.texts.setdefault(lang, {})
            for name, text in prompts.items():
                if known.get(name) not in (None, text):
                    (self.dir / lang / f"{name}.wav").unlink(missing_ok=True)
                known[name] = text

    def path(self, name: str, language: str | None = None) -> Path:
        """Resolve a prompt name (or a WAV path) to an existing file."""
        as_path = Path(name)
        if as_path.suffix == ".wav":
            if as_path.is_file():
                return as_path
            raise PromptError(f"prompt file not found: {name}")
        lang = language or self.language
        candidate = self.dir / lang / f"{name}.wav"
        if candidate.is_file():
            return candidate
        text = self.texts.get(lang, {}).get(name)
        if text is None:
            raise PromptError(f"no prompt named {name!r} for language {lang!r} in {self.dir}")
        synthesize(text, candidate, lang)
        return candidate

    def ensure_catalogue(self) -> int:
        """Render every catalogued prompt that has no file yet; returns how many."""
        made = 0
        for lang, prompts in CATALOGUE.items():
            for name, text in prompts.items():
                target = self.dir / lang / f"{name}.wav"
                if not target.is_file():
                    synthesize(text, target, lang)
                    made += 1
        moh = self.music_on_hold()
        return made + (0 if moh.exists() else 1)

    def music_on_hold(self) -> Path:
        target = self.dir / "moh.wav"
        if not target.is_file():
            write_wav_atomic(target, hold_music())
        return target

    def beep(self) -> Path:
        """The tone before a recording starts."""
        target = self.dir / "beep.wav"
        if not target.is_file():
            t = np.arange(int(RATE * 0.35)) / RATE
            write_wav_atomic(target, (0.4 * 32767 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16))
        return target

    def speech(self, text: str, language: str | None = None) -> Path:
        """Text to a cached WAV (the cache key is language + text)."""
        lang = language or self.language
        digest = hashlib.sha1(f"{lang}\0{text}".encode()).hexdigest()[:16]
        target = self.dir / "tts" / lang / f"{digest}.wav"
        if not target.is_file():
            synthesize(text, target, lang)
        return target


def synthesize(text: str, target: Path, language: str = "en") -> None:
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise PromptError(f"{tool} is not installed (Debian package {tool}); "
                              "run scripts/install-system-packages")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        raw = Path(tmp) / "raw.wav"
        out = Path(tmp) / "out.wav"
        subprocess.run(["espeak-ng", "-v", language, "-s", "150", "-w", str(raw), text],
                       check=True, capture_output=True, timeout=60)
        subprocess.run(["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(out)],
                       check=True, capture_output=True, timeout=60)
        fsync_file(out)
        os.replace(out, target)
    log.info("prompt synthesized", path=str(target))


def hold_music(seconds: float = 8.0) -> np.ndarray:
    """A soft arpeggio: recognisably 'on hold', and never silence (silence
    makes callers think the line dropped)."""
    notes = [261.63, 329.63, 392.00, 523.25, 392.00, 329.63]
    per = int(RATE * seconds / len(notes))
    t = np.arange(per) / RATE
    envelope = np.minimum(1.0, np.minimum(t / 0.03, (t[::-1]) / 0.08))
    parts = [0.18 * np.sin(2 * np.pi * f * t) * envelope for f in notes]
    return (np.concatenate(parts) * 32767).astype(np.int16)
