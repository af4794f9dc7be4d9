"""CLI commands that run models: compile, train, sample, evaluate (and score).

`cli.py` registers them; their modules (and torch) load only when one of them runs.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

TRAIN_EXAMPLES = """\
examples:
  gendsl train specs/vae.gen --epochs 1              one epoch; writes runs/vae/
  gendsl train specs/gan_ring.gen --steps 2000 --out runs/gan --seed 1
  gendsl train specs/vae.gen --resume                continue runs/vae from its checkpoint
  gendsl train specs/vae.gen --set beta=4 --out runs/beta4
  gendsl train specs/vae.gen --epochs 1 --mlflow     also log to MLflow, in ./mlruns (experiment "vae");
    browse it with the full mlflow package: MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri ./mlruns
  torchrun --nproc_per_node=2 -m gendsl.cli train specs/gan_ring.gen   (DDP, one process per GPU)
"""
SAMPLE_EXAMPLES = """\
examples:
  gendsl sample runs/vae -n 64 -o vae.png            a grid of 64 samples
  gendsl sample runs/vae --mean -o means.png         show each sample's mean (e.g. Bernoulli probabilities)
  gendsl sample runs/vae --interpolate -o lerp.png   rows walk between two latent draws
  gendsl sample runs/vae --traverse z -o trav.png    row i varies latent dimension i, the rest held
  gendsl sample runs/infogan --traverse c            a category latent: column k has c = k, rows other draws
"""
SCORE_EXAMPLES = """\
examples:
  gendsl score runs/made split:test -o scores.csv    every held-out digit's NLL (nats, bits/dim)
  gendsl score runs/made odd_digits.npz -o odd.csv   rows of a file, shaped like the model's data
"""
EVALUATE_EXAMPLES = """\
examples:
  gendsl evaluate runs/vae                           the spec's metrics on the valid split (IWAE k <= 100: quick)
  gendsl evaluate runs/vae --full                    with the spec's own k (IWAE k=5000: the papers' number)
  gendsl evaluate runs/vae --split test --metric nll --k 5000
  gendsl evaluate runs/gan --metric coverage
  gendsl evaluate runs/cgan --metric fid --metric prd --samples 2000   image samples beside real-vs-real
"""


def whole_number(flag: str, minimum: int, meaning: str):
    """An argparse type for a count flag: a whole number >= minimum, else an E505 diagnostic
    that says what the flag counts (argparse lets this error through to the CLI's handler)."""
    def parse(text: str) -> int:
        from gendsl.diagnostics import GendslError, error

        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            got = repr(text) if value is None else str(value)
            raise GendslError(error("E505", f"{flag} needs a whole number >= {minimum}, got {got}",
                                    hint=f"{flag} is {meaning}"))
        return value
    return parse


def mlflow_store(text: str) -> str:
    """The argparse type of --mlflow: a folder (or file: URI), not the spec that it swallowed when
    it came before FILE (`gendsl train --mlflow spec.gen`)."""
    if text.endswith(".gen"):
        from gendsl.diagnostics import GendslError, error

        raise GendslError(error("E505", f"--mlflow {text}: that is a spec, not the folder of an MLflow store",
                                hint=f"put the spec first (`gendsl train {text} --mlflow`), or name the store's "
                                     "folder (`--mlflow mlruns`)"))
    from gendsl.runtime.mlflow_log import store_uri

    store_uri(text)  # E505 for a URI that is not a local folder
    return text


def register(sub, common) -> None:
    """Add the run commands to the CLI's subparsers."""
    formatter = argparse.RawDescriptionHelpFormatter
    comp = sub.add_parser("compile", help="write the generated PyTorch module of a spec",
                          description="Compile a checked spec to a standalone Python file that needs only "
                          "torch: one nn.Module per network, the model class with a method per loss, step and "
                          "sample, and SPEC (how to train it).", formatter_class=formatter)
    comp.add_argument("file", metavar="FILE")
    comp.add_argument("--emit", choices=("py",), default="py", help="what to write (python source)")
    comp.add_argument("-o", "--output", required=True, metavar="OUT.py")
    common(comp)
    comp.set_defaults(handler=cmd_compile)

    train = sub.add_parser("train", help="train a spec (checkpoints, logs, sample grids)",
                           description="Check, compile and train a spec. Writes a run folder: model.py, "
                           "checkpoint.pt (atomic, resumable), metrics.csv and TensorBoard logs, sample "
                           "grids (samples/*.png), losses.png and diagram.svg; with --mlflow, an MLflow run "
                           "too.",
                           epilog=TRAIN_EXAMPLES, formatter_class=formatter)
    train.add_argument("file", metavar="FILE")
    common(train)
    train.add_argument("--out", metavar="DIR", help="run folder (default runs/SPEC_NAME)")
    train.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda[:N]")
    train.add_argument("--seed", type=whole_number("--seed", 0, "the random seed"),
                       help="random seed (default: the train block's, else 0)")
    train.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    train.add_argument("--force", action="store_true", help="start over in a folder that holds a run")
    length = train.add_mutually_exclusive_group()
    length.add_argument("--steps", type=whole_number("--steps", 1, "the number of rounds to train"),
                        help="rounds of the train steps (overrides the spec)")
    length.add_argument("--epochs", type=whole_number("--epochs", 1, "the number of passes over the data"),
                        help="passes over the training data (overrides the spec)")
    train.add_argument("--sample-every", type=whole_number("--sample-every", 0, "rounds between sample grids "
                       "(0: only at the end)"), metavar="N", help="write a sample grid every N rounds (0: only at "
                       "the end)")
    train.add_argument("--checkpoint-every", type=whole_number("--checkpoint-every", 1, "rounds between checkpoints"),
                       metavar="N", help="checkpoint every N rounds")
    train.add_argument("--log-every", type=whole_number("--log-every", 1, "rounds between logged losses"),
                       metavar="N", help="log losses every N rounds")
    train.add_argument("--validate-every", type=whole_number("--validate-every", 0, "rounds between validations"),
                       metavar="N", help="rounds between valid losses (default: the train block's validate_every, "
                       "else once an epoch, or ten times a run by steps; 0: never)")
    train.add_argument("--patience", type=whole_number("--patience", 0, "validations without improvement"),
                       metavar="N", help="stop after N validations without a lower valid loss (default: the "
                       "train block's patience; 0: never); best.pt keeps the best weights")
    train.add_argument("--until", type=whole_number("--until", 1, "the epoch (or round) to stop at"), metavar="N",
                       help="stop at epoch N of the run (round N of a run by --steps) and keep the rest for "
                       "--resume; the LR schedule still spans the whole run: a long run's first N epochs")
    train.add_argument("--amp", nargs="?", const="auto", choices=("auto", "bf16", "fp16"), default=None,
                       help="mixed precision: --amp alone is fp16 autocast with a GradScaler on CUDA and bf16 "
                       "autocast on CPU; --amp bf16|fp16 picks one")
    train.add_argument("--accumulate", type=whole_number("--accumulate", 1, "batches per update"), metavar="N",
                       help="average the gradients of N batches in each update (an effective batch of "
                       "batch x N; default: the train block's accumulate, else 1)")
    train.add_argument("--compile", action="store_true", help="torch.compile the train steps")
    train.add_argument("--mlflow", nargs="?", const="mlruns", default=None, type=mlflow_store, metavar="DIR",
                       help="also log the run to MLflow, in the local file store DIR (default ./mlruns; or a "
                       "file: URI): params (the spec's, seed, train settings), the rows of metrics.csv at step "
                       "= round, sample grids, checkpoint and run.json as artifacts, and how it ended "
                       "(FINISHED, KILLED by Ctrl-C, FAILED). Experiment: the spec's name, or "
                       "$MLFLOW_EXPERIMENT_NAME; --resume continues the same MLflow run")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(handler=cmd_train)

    sample = sub.add_parser("sample", help="draw samples from a trained run into a PNG",
                            epilog=SAMPLE_EXAMPLES, formatter_class=formatter,
                            description="Draw samples from a run folder (EMA weights when the spec keeps an "
                            "EMA): an image grid, or a scatter plot over held-out data for 2-D models.")
    sample.add_argument("run", metavar="RUN", help="a run folder written by gendsl train")
    sample.add_argument("-n", type=whole_number("-n", 1, "the number of samples to draw"),
                        help="how many samples (default 64 images, 2,500 points)")
    sample.add_argument("-o", "--output", default=None, metavar="OUT.png", help="default RUN/samples/sample.png")
    sample.add_argument("--name", help="which `sample` statement (default: the first)")
    sample.add_argument("--mean", action="store_true", help="the mean of each draw's distribution")
    what = sample.add_mutually_exclusive_group()
    what.add_argument("--interpolate", action="store_true", help="rows between pairs of latent draws")
    what.add_argument("--traverse", metavar="LATENT", help="vary one latent dimension per row (a category "
                      "latent: one column per value)")
    sample.add_argument("--device", default="auto")
    sample.add_argument("--best", action="store_true", help="the weights of the lowest valid loss (best.pt)")
    sample.add_argument("--seed", type=whole_number("--seed", 0, "the random seed"), default=0)
    sample.set_defaults(handler=cmd_sample)

    evaluate = sub.add_parser("evaluate", help="held-out metrics of a trained run",
                              epilog=EVALUATE_EXAMPLES, formatter_class=formatter,
                              description="Likelihoods in nats and bits/dim (exact, IWAE bound or diffusion "
                              "bound), ELBO, mode coverage, MMD / sliced Wasserstein distance, FID / KID / "
                              "precision and recall of image samples (in the features of a classifier of the data "
                              "set, trained once and cached), reconstruction error, held-out losses.")
    evaluate.add_argument("run", metavar="RUN")
    evaluate.add_argument("--split", choices=("valid", "test"), default="valid",
                          help="tune on valid; report test once (default valid)")
    evaluate.add_argument("--metric", action="append", help="nll, bpd, iwae, elbo, bound, coverage, mmd, swd, "
                          "fid, kid, prd, recon, viterbi, accuracy, losses (repeatable; default: the spec's "
                          "evaluate block)")
    evaluate.add_argument("--k", type=whole_number("--k", 1, "the number of importance samples per data point"),
                          help=f"importance samples for iwae / nll / bpd of encoder models (default: the "
                          f"spec's, at most {QUICK_K} unless --full)")
    evaluate.add_argument("--samples", type=whole_number("--samples", 2, "the number of samples a metric draws"),
                          help="samples drawn by mmd, swd, coverage, fid, kid and prd, instead of the spec's or the "
                          "metric's default (all but coverage compare them with as many held-out rows: at most "
                          "half the split)")
    evaluate.add_argument("--full", action="store_true", help="use the spec's k however long it takes (the "
                          "estimate is printed first)")
    evaluate.add_argument("--batch", type=whole_number("--batch", 1, "the evaluation batch size"), default=500,
                          help="evaluation batch size")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--best", action="store_true", help="the weights of the lowest valid loss (best.pt)")
    evaluate.add_argument("--seed", type=whole_number("--seed", 0, "the random seed"), default=0)
    evaluate.add_argument("--format", choices=("text", "json"), default="text")
    evaluate.add_argument("--quiet", action="store_true")
    evaluate.set_defaults(handler=cmd_evaluate)

    score = sub.add_parser("score", help="per-sample anomaly scores (NLL, bits/dim) of a data file",
                           formatter_class=formatter, epilog=SCORE_EXAMPLES,
                           description="Score each row of DATA under a trained run: the negative "
                           "log-likelihood in nats and bits/dim (exact where the model allows, else the "
                           "IWAE bound or the diffusion bound). High scores are unusual rows.")
    score.add_argument("run", metavar="RUN")
    score.add_argument("data", metavar="DATA", help="a .npy or .npz file (rows shaped like the model's "
                       "data), or split:valid / split:test")
    score.add_argument("-o", "--output", required=True, metavar="SCORES.csv")
    score.add_argument("--k", type=whole_number("--k", 1, "the number of importance samples per row"), default=1000,
                       help="importance samples for encoder models")
    score.add_argument("--batch", type=whole_number("--batch", 1, "the scoring batch size"), default=500)
    score.add_argument("--device", default="auto")
    score.add_argument("--seed", type=whole_number("--seed", 0, "the random seed"), default=0)
    score.add_argument("--quiet", action="store_true")
    score.set_defaults(handler=cmd_score)


def cmd_compile(args, out) -> int:
    from gendsl.plugins import plugins_loaded, requested_plugins
    from gendsl.runtime.run import compile_spec

    with plugins_loaded(requested_plugins(args.plugin, args.file)):
        checked, generated = compile_spec(args.file, args.set, args.model)
    out.add(checked.diagnostics, checked.sources)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(generated.source, encoding="utf-8")
    print(f"wrote {args.output} (class {generated.class_name}, {len(generated.source.splitlines())} lines)")
    return 0


def _where(checked):
    """Spans of data declarations, for data errors at run time."""
    def where(var: str):
        return checked.graph.nodes[var]["data"].span if var in checked.graph else None
    return where


def cmd_train(args, out) -> int:
    from gendsl.diagnostics import GendslError, error
    from gendsl.plugins import plugins_loaded, requested_plugins

    folder = Path(args.out or Path("runs") / Path(args.file).stem)
    if (folder / "checkpoint.pt").exists() and not (args.resume or args.force):
        raise GendslError(error("E510", f"{folder} already holds a trained run",
                                hint="--resume continues it, --force starts over (deleting its checkpoint), "
                                     "--out DIR trains elsewhere"))
    if args.resume and not (folder / "checkpoint.pt").exists():
        raise GendslError(error("E408", f"--resume: no checkpoint in {folder}",
                                hint="train without --resume first, or pass the run's --out"))
    recorded = _recorded_plugins(folder) if args.resume else []  # a run remembers the plugins it was built with
    with plugins_loaded(requested_plugins([*args.plugin, *recorded], args.file)) as plugins:
        try:
            return _train(args, out, folder)
        except (GendslError, KeyboardInterrupt):
            raise
        except Exception as exc:  # a plugin's PyTorch code failing is the plugin's fault, not gendsl's
            from gendsl.plugin_code import implementation_fault

            fault = implementation_fault(exc, plugins) if plugins else None
            if fault is None:
                raise
            raise fault from None


def _recorded_plugins(folder: Path) -> list[str]:
    """The plugin files the run's model.py was compiled with (none when it cannot be read:
    compiling the spec again reports what is wrong)."""
    from gendsl.diagnostics import GendslError
    from gendsl.runtime.run import open_run

    try:
        return list(open_run(folder).spec.plugins)
    except GendslError:
        return []


def _train(args, out, folder: Path) -> int:
    """Compile into the run folder and train (the spec's plugins are loaded)."""
    from gendsl.diagram import render_file
    from gendsl.runtime.loop import Options, Trainer
    from gendsl.runtime.run import create

    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 writes files
    run, checked = create(folder, args.file, args.set, args.model, write=main_process, resume=args.resume)
    out.add(checked.diagnostics, checked.sources)
    _, notes = render_file(checked.graph, folder / "diagram.svg", "compute") if main_process else (None, [])
    options = Options(device=args.device, seed=args.seed, steps=args.steps, epochs=args.epochs, resume=args.resume,
                      quiet=args.quiet, amp=args.amp, compile=args.compile, log_every=args.log_every,
                      checkpoint_every=args.checkpoint_every, sample_every=args.sample_every,
                      validate_every=args.validate_every, patience=args.patience, until=args.until,
                      accumulate=args.accumulate, mlflow=args.mlflow)
    trainer = Trainer(run, options, where=_where(checked))
    if trainer.main:
        print(f"training {run.spec.model} from {args.file}: {trainer.total} rounds on {trainer.device} "
              f"-> {folder}")
    try:
        last = trainer.fit(on_sample=_sampler(trainer))
    finally:
        out.add(trainer.notes)
    if not trainer.main:
        return 0
    final = trainer.final_samples
    losses = ", ".join(f"{k[5:]} {v:.4g}" for k, v in last.items() if k.startswith("loss/"))
    valid = trainer.validator
    print(f"done: {trainer.round} rounds in {last.get('seconds', 0):.1f} s; last losses: {losses}"
          + (f"; best valid {valid.best:.4g} at round {valid.best_round}" if valid and valid.best_round else ""))
    print(f"wrote {folder}/checkpoint.pt" + (f", {folder}/best.pt" if valid and valid.best_round else "")
          + f", {folder}/metrics.csv, {folder}/losses.png"
          + (f", {final}" if final else "") + (f", {folder}/diagram.svg" if not notes else ""))
    if trainer.tracker is not None and trainer.tracker.run_id:
        tracker = trainer.tracker
        print(f"logged to MLflow: run {tracker.run_id} of experiment '{tracker.experiment}' in {tracker.uri}")
    out.add(notes)
    return 0


def _sampler(trainer):
    """Writes RUN/samples/TAG.png from the current (EMA) weights, on the main process only."""
    from gendsl.runtime.draw import choose, held_out, shows_means, write_samples

    cache = {}

    def write(t, tag: str):
        if not t.main or not t.run.spec.samples:
            return None
        import torch

        if "groups" not in cache:
            cache["groups"] = held_out(t.run.spec, t.device)
        model = t.eval_model()
        state = torch.get_rng_state()  # drawing pictures must not change the training run
        try:
            return write_samples(model, t.run.spec, t.run.folder / "samples" / f"{tag}.png", cache["groups"],
                                 mean=shows_means(choose(t.run.spec, None)[1]), notes=t.notes)
        finally:
            torch.set_rng_state(state)
            t.model.train()
    return write


def cmd_sample(args, out) -> int:
    import torch

    from gendsl.runtime.draw import held_out, interpolation, traversal, write_samples
    from gendsl.runtime.run import load_trained

    torch.manual_seed(args.seed)
    run, model, device = load_trained(Path(args.run), args.device, args.best)
    target = Path(args.output or Path(args.run) / "samples" / ("interpolation.png" if args.interpolate else
                                                             "traversal.png" if args.traverse else "sample.png"))
    if args.interpolate:
        written = interpolation(model, run.spec, target, name=args.name)
    elif args.traverse:
        written = traversal(model, run.spec, target, args.traverse, name=args.name)
    else:
        groups = held_out(run.spec, device)
        notes = []
        written = write_samples(model, run.spec, target, groups, args.n, args.name, args.mean, notes)
        out.add(notes)
    print(f"wrote {written}")
    return 0


def cmd_evaluate(args, out) -> int:
    import json

    import torch

    from gendsl.evaluation.metrics import Context, importance_samples, run_metric, sample_count
    from gendsl.runtime.draw import held_out
    from gendsl.runtime.run import load_trained

    torch.manual_seed(args.seed)
    run, model, device = load_trained(Path(args.run), args.device, args.best)
    wanted = [(m, m, {}) for m in args.metric] if args.metric else \
        [(m.alias, m.name, dict(m.options)) for m in run.spec.metrics] or [("losses", "losses", {})]
    context = Context(model, run.spec, held_out(run.spec, device, args.split), args.batch, args.quiet)
    results = {}
    for alias, name, options in wanted:
        options = {**options, **importance_samples(name, args.k), **sample_count(name, args.samples)}
        if importance_samples(name, 1) and run.spec.likelihood.log_weights:  # an IWAE: slow with a large k
            options = _quick_or_announced(context, alias, name, options, args)
        results[alias] = run_metric(context, name, options)
    if args.format == "json":
        print(json.dumps({"run": args.run, "split": args.split, "metrics": results}, indent=2))
    else:
        print(f"{run.spec.model} on the {args.split} split ({len(context.groups[0])} samples):")
        for name, values in results.items():
            print(f"  {name:<9} " + _format(values))
    out.add(not_finite(results))
    return 0


QUICK_K = 100          # IWAE samples of `gendsl evaluate` without --k or --full: a minute, not an hour
ANNOUNCE_AFTER = 60    # seconds: an evaluation this long says so first


def _quick_or_announced(context, alias: str, name: str, options: dict, args) -> dict:
    """Without --k or --full, an IWAE takes at most QUICK_K samples, and says so; with more, one
    that will clearly take minutes says so before it starts (timed on a few rows)."""
    import sys

    from gendsl.library.signature import parameters
    from gendsl.library.training import METRICS
    from gendsl.runtime.loop import format_duration

    entry = METRICS[name]
    k = options.get("k", next(p.default for p in parameters(entry.rule, entry.skip) if p.name == "k"))
    if k <= QUICK_K:
        return {**options, "k": k}
    if args.k is None and not args.full:
        print(f"{alias}: k={QUICK_K} importance samples, for speed (--full: the spec's k={k})", file=sys.stderr)
        return {**options, "k": QUICK_K}
    seconds = _timed_on_a_few_rows(context, name, {**options, "k": k})
    if seconds > ANNOUNCE_AFTER:
        print(f"{alias}: about {format_duration(seconds)} with k={k} on {len(context.groups[0]):,} rows "
              f"(quicker: --k {QUICK_K})", file=sys.stderr)
    return {**options, "k": k}


def _timed_on_a_few_rows(context, name: str, options: dict) -> float:
    """The seconds a metric would take on all held-out rows, from a run on the first few."""
    import time
    from dataclasses import replace

    from gendsl.evaluation.metrics import ROWS_PER_CHUNK, run_metric
    from gendsl.runtime.data import Group

    rows = len(context.groups[0])
    few = max(1, min(rows, context.batch, ROWS_PER_CHUNK // options["k"]))
    groups = [Group(g.names, [t[:few] for t in g.tensors]) for g in context.groups]
    started = time.perf_counter()
    run_metric(replace(context, groups=groups, quiet=True), name, options)
    return (time.perf_counter() - started) * rows / few


def not_finite(results: dict[str, dict]) -> list:
    """A warning for each metric that came out NaN or infinite: printed, but not a number to report."""
    import math

    from gendsl.diagnostics import warning

    found = []
    for name, values in results.items():
        bad = [k for k, v in values.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            found.append(warning("W411", f"metric {name} is not finite ({', '.join(bad)})",
                                 hint="the model's outputs overflow on held-out data: check the training "
                                      "losses (losses.png), lower the learning rate, or train longer"))
    return found


def cmd_score(args, out) -> int:
    import torch

    from gendsl.evaluation.score import score_file
    from gendsl.runtime.run import load_trained

    torch.manual_seed(args.seed)
    run, model, _ = load_trained(Path(args.run), args.device)
    count, mean = score_file(model, run.spec, args.data, Path(args.output), args.k, args.batch, args.quiet)
    print(f"wrote {args.output}: {count} rows, mean {mean:.3f} nats")
    return 0


def _format(values: dict) -> str:
    if "nats" in values:
        text = (f"{values['nats']:.3f} nats (+/- {values['stderr']:.3f}), {values['bpd']:.4f} bits/dim "
                f"[{values['method']}]")
        if "terms" in values:  # a diffusion's bound, term by term
            text += "\n            terms (nats): " + ", ".join(f"{k} {v:.4g}" for k, v in values["terms"].items())
        if "gap" in values:  # data of known density: the true model's NLL of the same points
            text += (f"\n            true density {values['true_nats']:.3f} nats, gap {values['gap']:.4f} "
                     f"(+/- {values['gap_stderr']:.4f})")
        return text
    def number(v) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    # a value measured beside real data against real data (fid, kid, prd): "fid 21.3 (real vs real 2.1)"
    return ", ".join(f"{k} {number(v)}" + (f" (real vs real {number(values['real_vs_real_' + k])})"
                                           if f"real_vs_real_{k}" in values else "")
                     for k, v in values.items() if not k.startswith("real_vs_real_"))
