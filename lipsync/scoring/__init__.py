"""Lip-sync scores (LSE-D, LSE-C, the audio offset) with SyncNet: the score's arithmetic, the mouth crops of a
video or a result, and the `python -m lipsync score` command.

May import: lipsync.faces and everything below it, the runtime, the model cache and the options; never the
pipeline, which scores its results through this package."""
