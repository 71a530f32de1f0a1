"""demo/demo.py with overlapping windows: track ids per object, per-track summary, overlay."""

import json

import pytest

from ovavss_d2.utils.video_io import iter_frames


def test_json_tracks_and_overlay_frames(demo, predictor, tiny_config_file, tmp_path, make_video):
    video = make_video(tmp_path / "clip.mp4", 6.0, fps=5, size=(64, 48), audio_seconds=6.0)
    out = tmp_path / "out"
    argv = ["--video", str(video), "--config-file", str(tiny_config_file), "--output", str(out)]
    old_stride = predictor.stride
    try:
        summary = demo.main(argv + ["--stride", "1", "--confidence-threshold", "0"], predictor)
    finally:
        predictor.stride = old_stride
    on_disk = json.loads((out / "clip.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert (on_disk["window_length"], on_disk["window_stride"]) == (3, 1)
    frames = on_disk["frames"]
    assert [f["frame_index"] for f in frames] == [2, 7, 12, 17, 22, 27]  # one per second
    assert len(list(iter_frames(out / "clip_overlay.mp4"))) == 6
    per_track = {}
    for record in frames:
        ids = [obj["track_id"] for obj in record["objects"]]
        assert len(ids) == len(set(ids))  # a track appears once per frame
        for obj in record["objects"]:
            per_track.setdefault(obj["track_id"], []).append((record["time"], obj))
    tracks = {t["track_id"]: t for t in on_disk["tracks"]}
    assert set(tracks) == set(per_track) and per_track
    for track_id, seen in per_track.items():
        track = tracks[track_id]
        assert set(track) == {
            "track_id",
            "class",
            "mean_score",
            "first_time",
            "last_time",
            "seconds_sounding",
            "num_frames",
            "names_shown",
        }
        assert track["first_time"] == seen[0][0] and track["last_time"] == seen[-1][0]
        assert track["num_frames"] == len(seen) and track["seconds_sounding"] == len(seen) / 1.0
        mean = sum(obj["score"] for _, obj in seen) / len(seen)
        assert abs(track["mean_score"] - mean) < 1e-3
        assert track["names_shown"] == sorted({obj["class"] for _, obj in seen})
        assert track["class"] == predictor.class_names[predictor.tracks[track_id].class_id]


def test_bad_stride_is_a_clear_error(demo, tiny_config_file, tmp_path, make_video):
    video = make_video(tmp_path / "clip.mp4", 1.0, fps=5, audio_seconds=1.0)
    argv = ["--video", str(video), "--config-file", str(tiny_config_file)]
    with pytest.raises(SystemExit, match="stride must lie in 1..3"):
        demo.main(argv + ["--output", str(tmp_path / "out"), "--stride", "9"])
