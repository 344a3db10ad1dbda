"""The `score_video` endpoint: SyncNet's lip-sync scores of any video, for gradio_client."""

from __future__ import annotations

import json
from typing import Callable

import gradio as gr

from lipsync import LipSyncConfig, LipSyncError
from lipsync.scoring import clips


def endpoint(defaults: Callable[[], LipSyncConfig], error: Callable[[Exception], gr.Error]) -> None:
    """A hidden endpoint: (video, optional recording) -> the score as JSON (lse_d, lse_c, offset, frames,
    distances, confidence), the face found with the served face finder."""
    video = gr.File(visible=False, type="filepath")
    speech = gr.File(visible=False, type="filepath")
    answer = gr.JSON(visible=False, label="score")

    def score_video(video_path: str | None, audio_path: str | None = None) -> dict:
        """Lip-sync scores of a video against its own sound, or against a recording."""
        if not video_path:
            raise error(LipSyncError("Give a video to score."))
        try:
            score = clips.score_video(video_path, audio_path, config=defaults())
        except Exception as exc:
            raise error(exc) from None
        return json.loads(score.to_json())

    gr.Button(visible=False).click(score_video, [video, speech], answer, api_name="score_video",
                                   concurrency_id="generate")
