"""The neural networks: Wav2Lip, GFPGAN and SyncNet as PyTorch modules, running Wav2Lip in batches, and their
checkpoints (the Hub pins, sha256 checks, local folders and reading the weights).

May import: lipsync.media, lipsync.speech and the top's errors, config and user_cache; never lipsync.faces."""
