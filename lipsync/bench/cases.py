"""The benchmark's cases, in the order they run (a later case may count on what an earlier one cached), and the
figures derived from them. Each case is one record; bench_measure says what its fields mean."""

from __future__ import annotations

from .floor import cpu_over_floor
from .measure import (Bench, Case, Derived, cold_command, detector_alone, end_to_end, first_segment, peak_rss,
                      request_seconds)
from .parts import (landmarks_alone, live_real_time, live_socket, natural_voice, score_share, scorer_alone,
                    text_first_segment)

# The ratios to the generator alone the end-to-end cases should reach (issue 21); each is timed in pairs.
STILL_TARGET = 1.0
VIDEO_TARGET = 0.6
VIDEO_CACHED_TARGET = 0.85
VIDEO_BOX_TARGET = 0.7
VIDEO_1080_TARGET = 0.45
VIDEO_FACE_BOX = (250, 520, 190, 440)  # the talking head's face (top, bottom, left, right), for the no-detection case
FINDERS = {"haar": "Haar", "s3fd": "S3FD"}


def cases(bench: Bench) -> list[Case]:
    return [*_requests(bench), *_floors(bench), *_parts(bench), *_memory(bench)]


def _floors(bench: Bench) -> list[Case]:
    """CPU per frame outside the model against decoding and encoding alone (issue 31's targets in the labels)."""
    seconds = bench.speech_seconds
    finder = FINDERS[bench.base.detector]
    cpu = "CPU outside the model / decode + encode"
    return [
        Case("video_repeat", f"704x1216 video + {seconds:g} s ({finder}, detection cached): {cpu} (target 1.3x)",
             cpu_over_floor, "video", seconds, warm_up=seconds),
        Case("video_first", "  the same, first request (detection included) (target 1.6x)", cpu_over_floor, "video",
             seconds, fresh=True),
        Case("video_1080x1920_first", f"1080x1920 video + {seconds:g} s, first request: {cpu} (target 1.6x)",
             cpu_over_floor, "video_1080x1920", seconds, fresh=True),
        Case("still", f"still portrait + {seconds:g} s: CPU outside the model / the encode (target 1.3x)",
             cpu_over_floor, "portrait", seconds),
    ]


def _requests(bench: Bench) -> list[Case]:
    """Whole requests against the generator alone, and the first preview segment."""
    seconds = bench.speech_seconds
    finder = FINDERS[bench.base.detector]
    still, video = f"still portrait + {seconds:g} s speech", f"704x1216 video + {seconds:g} s speech"
    listed = [
        # Its warm-up loads the detector and the mel basis for every case after it.
        Case("still", f"{still}, end to end", end_to_end, "portrait", seconds, target=STILL_TARGET, warm_up=seconds,
             detections_key="detections_second_call"),
    ]
    if bench.device == "cpu" and bench.precision != "fp32":
        listed.append(Case("still_fp32", f"  the same in fp32 (vs the {bench.precision} generator)", end_to_end,
                           "portrait", seconds, {"precision": "fp32"}))
    listed += [
        Case("video", f"{video} ({finder}, first request)", end_to_end, "video", seconds, target=VIDEO_TARGET,
             fresh=True),
        Case("video_repeat", f"{video} ({finder}, same video again: detection cached)", end_to_end, "video",
             seconds, target=VIDEO_CACHED_TARGET),
        Case("video_box", f"{video} (fixed --box, no detection)", end_to_end, "video", seconds,
             {"box": VIDEO_FACE_BOX}, target=VIDEO_BOX_TARGET),
        Case("video_1080x1920", f"1080x1920 video + {seconds:g} s speech (the sample scaled, {finder}, first request)",
             end_to_end, "video_1080x1920", seconds, target=VIDEO_1080_TARGET, fresh=True),
        Case("cli_cold", f"the command line in a fresh process, {still}, box given", cold_command, "portrait",
             seconds, warm_up=2.0),
        Case("still_first_segment", f"{still}: first preview segment ready after", first_segment, "portrait",
             seconds),
        Case("video_first_segment", f"{video}: first preview segment ready after", first_segment, "video", seconds),
    ]
    if bench.device == "cuda":
        listed += [
            Case("video_720p_10s_seconds", "the video at 720p + 10 s speech, S3FD, end to end", request_seconds,
                 "video_720p", 10.0, {"detector": "s3fd"}, warm_up=2.0),
            Case("video_720p_10s_enhanced_seconds", "  the same with enhance gfpgan (the default on CUDA)",
                 request_seconds, "video_720p", 10.0, {"detector": "s3fd", "enhance": "gfpgan"}),
        ]
    return listed


def _parts(bench: Bench) -> list[Case]:
    """The optional stages, each alone or as the cost it adds, and live mode."""
    seconds = bench.speech_seconds
    finder = FINDERS[bench.base.detector]
    still, video = f"still portrait + {seconds:g} s speech", f"704x1216 video + {seconds:g} s speech"
    enhanced = 1.0 if bench.device == "cpu" else seconds  # GFPGAN takes seconds a frame on a CPU
    short = 2.0  # FAN takes about a second a face on a CPU: its video rows are short
    live = 20.0 if bench.quick else 60.0
    return [
        Case("s3fd_ms_per_frame", "S3FD alone per searched frame (random weights, top-k bounded)", detector_alone,
             "video", changes={"detector": "s3fd"}, frames=32 if bench.quick else 64),
        Case("enhance_off", f"still portrait + {enhanced:g} s speech, enhance none", end_to_end, "portrait",
             enhanced),
        Case("enhance", "  the same with enhance gfpgan", end_to_end, "portrait", enhanced, {"enhance": "gfpgan"},
             warm_up=0.2),
        Case("fan_ms_per_face", "FAN landmarks alone per face (random weights)", landmarks_alone, "portrait",
             changes={"detector": "haar"}),
        Case("video_landmarks_off", f"704x1216 video + {short:g} s speech ({finder}, landmarks none, first request)",
             end_to_end, "video", short, {"landmarks": "none"}, fresh=True),
        Case("video_landmarks", "  the same with landmarks fan", end_to_end, "video", short, {"landmarks": "fan"},
             fresh=True),
        Case("score_ms_per_frame", f"SyncNet scorer per scored frame, the portrait + {short:g} s", scorer_alone,
             "portrait", short),
        Case("score_share_still", f"scoring's share of a generation, {still}", score_share, "portrait", seconds,
             fresh=True),
        Case("score_share_video", f"scoring's share of a generation, {video} ({finder})", score_share, "video",
             seconds, fresh=True),
        Case("live", f"live: the portrait fed {live:g} s of speech in 200 ms chunks, in real time", live_real_time,
             "portrait", live),
        Case("live_socket", f"live over the WebSocket: the portrait fed {live:g} s as a microphone would",
             live_socket, "portrait", live),
        Case("voice_natural", "the natural voice (Piper) on five sentences", natural_voice),
        Case("voice_first_segment", "five sentences on the portrait: first preview segment after",
             text_first_segment, "portrait"),
    ]


def _memory(bench: Bench) -> list[Case]:
    listed = [
        Case("rss_10s_mb", "peak RSS while generating, still + 10 s speech", peak_rss, "portrait", 10.0),
        Case("rss_60s_mb", "  the same with 60 s speech", peak_rss, "portrait", 60.0),
        Case("rss_video_mb", "peak RSS, 704x1216 video + 10 s speech", peak_rss, "video", 10.0),
        Case("rss_video_1080x1920_mb", "peak RSS, 1080x1920 video + 10 s speech", peak_rss, "video_1080x1920", 10.0),
    ]
    if not bench.quick:  # a long speech: 15,000 frames
        listed.append(Case("rss_600s_mb", "peak RSS, still + 600 s speech", peak_rss, "portrait", 600.0))
    return listed


DERIVED = [
    Derived("enhance_ms_per_frame", "enhance gfpgan's cost on the still portrait",
            lambda figures: 1000 / figures["enhance_fps"] - 1000 / figures["enhance_off_fps"], "+{:.0f} ms a frame"),
    Derived("rss_growth", "peak RSS growth, still + 10 s -> 60 s speech",
            lambda figures: figures["rss_60s_mb"] / figures["rss_10s_mb"], "{:.2f}x"),
    Derived("rss_growth_600s", "peak RSS growth, still + 10 s -> 600 s speech (target 1.15x at most)",
            lambda figures: figures["rss_600s_mb"] / figures["rss_10s_mb"] if "rss_600s_mb" in figures else None,
            "{:.2f}x"),
]
