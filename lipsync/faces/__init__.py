"""Faces in frames: boxes and alignment geometry, the detectors, finding faces in a video or image, FAN landmarks,
tracking a face through a video, the model's crops, pasting mouths back and enhancing faces with GFPGAN.

May import: lipsync.nets, lipsync.speech, lipsync.media and the top's errors and config; never the runtime, the
model cache or the pipeline (they pass what faces need)."""
