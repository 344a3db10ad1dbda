"""Speech: decoding any recording to 16 kHz samples, the mel the model was trained on, silence, and text to speech.

May import: lipsync.media and the top's errors, config and user_cache."""
