"""``edgeface train``: train the Siamese embedder (triplet with online mining, or pairwise classification)."""

from __future__ import annotations

NAME = "train"
HELP = "train the face embedder on a photo folder or a prepared crop cache"


def add_arguments(parser) -> None:
    parser.add_argument("--data", required=True, help="prepared cache (edgeface prepare) or photo folder DIR/<id>/*")
    parser.add_argument("--out", required=True, help="run directory (checkpoints, split, metrics)")
    parser.add_argument("--loss", choices=("triplet", "pair"), default="triplet")
    parser.add_argument("--mining", choices=("batch-hard", "semi-hard", "all"), default="semi-hard")
    parser.add_argument("--margin", type=float, default=0.2)
    parser.add_argument("--pair-form", choices=("abs", "chi2"), default="abs",
                        help="pairwise features: |f(a)-f(b)| or the chi-square form")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=int, default=None)
    budget.add_argument("--time-budget", type=float, default=None, metavar="MIN", help="stop after MIN minutes")
    parser.add_argument("--max-steps", type=int, default=None, help="hard cap on optimizer steps (smoke runs)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoint.pt")
    parser.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--p", type=int, default=8, help="identities per batch")
    parser.add_argument("--k", type=int, default=4, help="images per identity per batch")
    parser.add_argument("--val-fraction", type=float, default=0.2, help="identities held out for validation")
    parser.add_argument("--width", type=float, default=1.0, help="channel width multiplier")
    parser.add_argument("--embedding-size", type=int, default=128)
    parser.add_argument("--activation", choices=("relu", "prelu"), default="relu")
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--init", choices=("dlib-resnet-v1",), default=None,
                        help="fine-tune dlib's pretrained ResNet (its own 150x150 chips) instead of training from "
                             "scratch; the unmodified model is validated at step 0 and kept as best.pt unless a "
                             "fine-tuned step validates better")
    parser.add_argument("--distill", type=float, default=0.0, metavar="W",
                        help="with --init: add W * (1 - cos) toward the starting model's embeddings of the same batch")
    parser.add_argument("--val-every", type=int, default=None, metavar="STEPS",
                        help="validate every STEPS steps (default: once per epoch)")
    parser.add_argument("--select-far", choices=("1e-2", "1e-3", "1e-4"), default=None,
                        help="the FAR whose validation TAR picks best.pt (default 1e-3 with --init, else 1e-2)")
    parser.add_argument("--detector-model", default=None, help="YuNet file, when --data is a photo folder")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--patience", type=int, default=None, metavar="N",
                        help="early stop: end the run after N validations in a row without a better best.pt")
    parser.add_argument("--amp", choices=("off", "bf16", "fp16"), default="off",
                        help="automatic mixed precision (bf16 on CPU or CUDA, fp16 on CUDA)")
    parser.add_argument("--nproc", type=int, default=None, metavar="N",
                        help="run N processes on this machine under torchrun (DistributedDataParallel: gloo on "
                             "CPU, NCCL on CUDA); --p is the global batch's identity count, split over them")
    parser.add_argument("--arch", choices=("mobilefacenet",), default="mobilefacenet", help="the student's network")
    parser.add_argument("--teacher", default=None, metavar="BUNDLE|dlib-resnet-v1",
                        help="distil this teacher's embeddings into the student (each model on its own alignment)")
    parser.add_argument("--teacher-targets", choices=("cached", "online"), default="cached",
                        help="teacher embeddings once per chip and mirrored chip (cached), or per augmented view")
    parser.add_argument("--distill-loss", choices=("cosine", "l2", "centred", "relational"), default="cosine",
                        help="with --teacher: 1 - cos(student, teacher); squared L2 of the raw embeddings; cosine "
                             "to the teacher's centred embeddings (its mean direction removed); or centred plus "
                             "--relation-weight x the batch's similarity-matrix gap")
    parser.add_argument("--relation-weight", type=float, default=1.0, metavar="W",
                        help="with --distill-loss relational: weight of the similarity-matrix term")
    parser.add_argument("--metric-weight", type=float, default=0.0, metavar="W",
                        help="with --teacher: add W * the --loss term (needs identities; 0: unlabelled photos work)")


def run(args) -> int:
    from edgeface.errors import EdgefaceError

    from ..quiet import quiet_libraries

    quiet_libraries(verbose=getattr(args, "verbose", False))  # torch's and LiteRT's chatter (-v shows it)
    if args.epochs is None and args.time_budget is None and args.max_steps is None:
        raise EdgefaceError("give a budget: --epochs N or --time-budget MIN")
    from edgeface.export.launch import in_torchrun, launch, worker_argv

    if args.nproc is not None and not in_torchrun():
        if args.nproc < 1:
            raise EdgefaceError("--nproc needs at least 1 process")
        rc = launch(args.nproc, worker_argv(add_arguments, args), verbose=getattr(args, "verbose", False))
        if rc:
            raise EdgefaceError(f"torchrun with {args.nproc} processes failed (exit status {rc}); see above")
        return 0
    from edgeface.export.train import TrainConfig, train

    cfg = TrainConfig(loss=args.loss, mining=args.mining, margin=args.margin, pair_form=args.pair_form,
                      model={"arch": args.arch, "width": args.width, "embedding_size": args.embedding_size,
                             "activation": args.activation},
                      optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay, p=args.p, k=args.k,
                      epochs=args.epochs, time_budget_min=args.time_budget, max_steps=args.max_steps,
                      val_fraction=args.val_fraction, seed=args.seed, device=args.device, threads=args.threads,
                      augment=not args.no_augment, progress=not args.no_progress, init=args.init,
                      distill=args.distill, val_every=args.val_every, select_far=args.select_far,
                      patience=args.patience, amp=args.amp, teacher=args.teacher,
                      teacher_targets=args.teacher_targets, distill_loss=args.distill_loss,
                      metric_weight=args.metric_weight, relation_weight=args.relation_weight)
    last = train(args.data, args.out, cfg, resume=args.resume, detector_model=args.detector_model)
    if last.get("rank", 0) != 0:
        return 0
    tar = last.get("val_tar_at_far") or {}

    def r(x):  # None: not measured (no held-out pairs, or too few at that rate)
        return "n/a" if x is None else f"{x:.4f}"

    print(f"{args.out}: epoch {last.get('epoch')} step {last.get('step')} val TAR@1e-2 {r(tar.get('1e-2'))} "
          f"TAR@1e-3 {r(tar.get('1e-3'))} EER {r(last.get('val_eer'))}")
    best = last.get("best", {})
    far = best.get("far")
    if best.get("start_was_best"):
        print(f"the unmodified {args.init} (step 0) validated best (TAR@{far} {best.get(f'val_tar@{far}'):.4f} on held-out "
              f"identities): fine-tuning did not improve it, so {args.out}/best.pt holds the unmodified weights; "
              f"`edgeface export --pretrained {args.init}` gives the same model")
    elif best.get("step") is not None:
        print(f"best.pt: step {best['step']}, {best.get('by') or f'val TAR@{far}'} {best.get(f'val_tar@{far}'):.4f}")
    if last.get("early_stop"):
        print(f"early stop: {args.patience or 'the set number of'} validations in a row without improvement")
    return 0
