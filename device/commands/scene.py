"""``edgeface scene compose --photos DIR --out door.avi``: a door-camera clip made from photos, for
``edgeface gate --simulate`` when there is no camera (or no recording) yet.

Everybody in ``--photos`` (``Name.jpg`` or ``Name/*.jpg``, the layout of ``edgeface enroll``) walks up to a plain
wall once, seen with one of their photos (drawn by ``--seed``); everybody in ``--strangers`` (the same layout) too,
labelled as a stranger. ``--hard`` draws the hard door scene instead (:func:`edgeface.device.scene.hard_scene`:
light, noise, JPEG, motion blur, walk-ins). It prints when each person is on screen, so the events of
``gate --simulate`` can be read against it, and writes the same as JSON next to the clip (``door.avi.json``).
"""

from __future__ import annotations

from pathlib import Path

NAME = "scene"
HELP = "compose a door-camera clip from photos (for gate --simulate without a camera)"
DESCRIPTION = """Compose a door-camera clip (MJPG .avi, 640x480) from photos, for `edgeface gate --simulate`.

  edgeface scene compose --photos door-photos/ --strangers visitors/ --out door.avi [--hard] [--seed 0]
  edgeface gate --simulate door.avi --bundle bundle --gallery people.gallery

Each person of --photos (Name.jpg or Name/*.jpg) appears once, with one of their photos; use photos other than
the ones you enrolled (another day, another light) for an honest test. --strangers adds people the door must not
let in. --hard adds the door camera's troubles: changing light, noise, JPEG, motion blur, people walking in.
`edgeface demo --photos DIR` does all of it (enroll one photo each, compose from the others, simulate, score).
To record a clip from the door's own camera instead: edgeface camera record --config FILE --out door.avi."""


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = sub.add_parser("compose", help="compose a clip from a folder of photos (and strangers)")
    c.add_argument("--photos", type=Path, required=True, help="the people the door should know: Name.jpg or Name/*.jpg")
    c.add_argument("--strangers", type=Path, default=None, help="people it must not let in (same layout)")
    c.add_argument("--out", type=Path, required=True, help="the clip to write (.avi)")
    c.add_argument("--hard", action="store_true", help="the hard door scene instead of a plain wall")
    c.add_argument("--seconds", type=float, default=2.0, help="how long each person stays (plain scene; default 2)")
    c.add_argument("--fps", type=float, default=10.0, help="frame rate of the clip (default 10)")
    c.add_argument("--seed", type=int, default=0, help="which photo, where, in which order (default 0)")


def run(args) -> int:
    import json

    import numpy as np

    from edgeface.enroll_photos import scan_enroll_folder
    from edgeface.errors import EdgefaceError

    from ..scene import Appearance, SceneCast, compose_video, hard_scene

    if args.out.suffix.lower() != ".avi":
        raise EdgefaceError(f"--out {args.out}: the clip is an MJPG .avi (name it door.avi)")
    if args.seconds <= 0 or args.fps <= 0:
        raise EdgefaceError("--seconds and --fps must be positive")
    people = scan_enroll_folder(args.photos)
    strangers = scan_enroll_folder(args.strangers) if args.strangers else None
    for folder in (people, strangers):
        for path, why in (folder.skipped if folder else ()):
            print(f"SKIPPED {path}: {why}")
    if not people.people and not (strangers and strangers.people):
        raise EdgefaceError(f"{args.photos}: no photos (expected Name.jpg or Name/*.jpg)")
    others = strangers.people if strangers else {}
    rng = np.random.default_rng(args.seed)
    if args.hard:
        appearances = hard_scene(SceneCast(people.people, others, []), seed=args.seed, fps=args.fps,
                                 group=min(10, len(others)))
    else:
        appearances = []
        for label, pool in [*people.people.items(), *((f"stranger:{n}", ps) for n, ps in others.items())]:
            appearances.append(Appearance(label, pool[int(rng.integers(len(pool)))], args.seconds,
                                          int(rng.integers(220, 330)), (float(rng.uniform(0.1, 0.9)), 0.3),
                                          (float(rng.uniform(0.1, 0.9)), 0.5)))
        appearances = [appearances[i] for i in rng.permutation(len(appearances))]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        spans = compose_video(args.out, appearances, fps=args.fps, gap_s=1.5, seed=args.seed)
    except RuntimeError as exc:  # OpenCV cannot write MJPG here
        raise EdgefaceError(f"cannot write {args.out}: {exc}") from None
    timeline = [{"who": s.label.removeprefix("stranger:"), "stranger": not s.enrolled, "from_s": round(s.t0, 1),
                 "to_s": round(s.t1, 1), "photo": str(a.photo)} for a, s in zip(appearances, spans)]
    Path(str(args.out) + ".json").write_text(json.dumps({"clip": str(args.out), "fps": args.fps, "seed": args.seed,
                                                         "scene": "hard" if args.hard else "plain",
                                                         "appearances": timeline}, indent=2))
    for t in timeline:
        print(f"  {t['from_s']:6.1f}-{t['to_s']:6.1f} s  {'stranger ' if t['stranger'] else ''}{t['who']}  "
              f"({Path(t['photo']).name})")
    end = spans[-1].t1 + 1.5 if spans else 0.0
    print(f"wrote {args.out}: {len(spans)} appearance(s), {end:.0f} s at {args.fps:g} fps; the timeline is in "
          f"{args.out}.json. Next: edgeface gate --simulate {args.out} --bundle BUNDLE --gallery GALLERY")
    return 0
