"""What a call hears and what is kept of it: playback and music on hold, the prompt library (TTS cache), recordings."""
