"""Media files and frames: the ffmpeg and ffprobe tools, reading a face's video or image, I420 frames, the x264
encoder, the decode → model → encode stream's stages, and writing the output file.

May import: lipsync.errors and the standard top (config, user_cache); nothing else of lipsync."""
