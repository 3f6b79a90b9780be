"""``quag data-stats``: examples per split and task under the official filters, plus feature checks."""

from __future__ import annotations

import argparse
from pathlib import Path

from quag.data import annotations as A


def split_stats(videos: list[A.VideoAnnotation]) -> dict[str, int]:
    """Counts that the official HiREST loaders produce for one split."""
    ms_train = A.segmentation_train_examples(videos)
    return {
        "pairs": len(videos),
        "moment_retrieval": len(A.moment_retrieval_examples(videos)),
        "moment_segmentation_train_examples": len(ms_train),
        "moment_segmentation_train_videos": len({e.video.video for e in ms_train}),
        "moment_segmentation_eval_videos": len(A.segmentation_eval_examples(videos)),
        "step_captioning": len(A.caption_examples(videos)),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="data/hirest", help="dataset or annotation root")
    parser.add_argument("--splits", nargs="+", default=["train", "val"], help="splits to count")
    parser.add_argument(
        "--check-features",
        action="store_true",
        help="also load every feature file of the splits and report the length policy",
    )


def run(args: argparse.Namespace) -> int:
    root = Path(args.data)
    rows = []
    loaded = {}
    for split in args.splits:
        videos = A.load_split(root, split)
        loaded[split] = videos
        rows.append((split, split_stats(videos)))
    print(f"HiREST examples under {root} (relevant and clip pairs, official filters)")
    print(f"{'split':<6} {'pairs':>6} {'MR':>6} {'MS train ex.':>13} {'MS videos':>10} {'SC':>6}")
    for split, s in rows:
        ms_videos = s["moment_segmentation_train_videos"] if split == "train" else s["moment_segmentation_eval_videos"]
        ms_ex = s["moment_segmentation_train_examples"] if split == "train" else s["moment_segmentation_eval_videos"]
        print(
            f"{split:<6} {s['pairs']:>6} {s['moment_retrieval']:>6} {ms_ex:>13,} {ms_videos:>10} "
            f"{s['step_captioning']:>6,}"
        )
    print("MS train ex. = teacher-forced next-boundary examples (train); one example per video elsewhere.")
    if args.check_features:
        from tqdm import tqdm

        from quag.data.features import FeatureStore

        store = FeatureStore(root)
        print(f"feature spec: {store.spec.to_dict()}")
        for split, videos in loaded.items():
            used = A.moment_videos(videos)
            store.check_files([v.video for v in used])
            for v in tqdm(used, desc=f"check {split}", unit="video"):
                store.visual(v.video, v.num_frames)
                store.transcript(v.video, v.num_frames)
                store.query_embedding(v.query)
        print(store.report.summary())
    return 0
