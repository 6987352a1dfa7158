#!/usr/bin/env python3
"""Trains AlexNet on CIFAR-10 once per row of the study's loss comparison (its
Figure 12), with the same seed, network and budget, and writes a Markdown table
with the study's figure beside ours.

    python3 benchmarks/loss_comparison.py --data ../shared/data/cifar-10-batches-bin

The defaults are the protocol of the README's table: 15 epochs per row, each
loss's peak learning rate swept over 0.01, 0.02 and 0.05 first (0.01, 0.1 and 1
for a loss on the L2-normalised embedding alone), the test set read from the
centre crop. Rows go to benchmarks/results/loss_comparison, which
is committed (checkpoints aside), so that a fresh checkout continues the
comparison instead of starting it again; --out elsewhere starts afresh.

Each run is `build/bin/convnet train` with --loss SPEC on the study's
network (--config cifar-half, pinned, without label smoothing) and everything
else at the trainer's defaults (SGD Nesterov, one-cycle, batch 128, crop + flip)
unless --trainer-args says otherwise; a loss on the L2-normalised embedding
alone trains without weight decay (scale_free below). A loss on the embedding alone
leaves fc8 untrained, so its row reads the embedding's classes (nearest class
centroid and k nearest neighbours over the training pictures' embeddings, from
the trainer's report); rows with a softmax head give both.

Seventeen full runs take hours on two cores, so every finished row is kept in
OUT/rows.jsonl and a new invocation continues with the rows still missing; a
run cut short is resumed from its last.ckpt (its last finished epoch) and a
finished sweep run is not run again. --sweep 0.01,0.02,0.05 first
tries each learning rate on a short budget (--sweep-epochs, --sweep-batches:
two whole epochs by default),
climbs along 0.001, 0.002, 0.005 ... 100 from the best in either direction while
a neighbouring rate does better, and trains the row at the one with the best validation accuracy (for a loss
on the embedding alone, the embedding's split-half nearest centroid over the
validation pictures; where every rate tried left that figure below
--blind-below, 30%, about what the untrained network's embedding reads, the sweep
could not see the loss learn, and the climb runs on the lowest validation loss
instead); a sweep run that diverges, or whose embedding ends at chance (collapsed),
counts as failed, and where every start rate fails the next lower rates are tried in
turn; the sweep is recorded with the row.
--settings 'contrastive=contrastive(margin=0.5,normalize=1)' runs a row with
other settings of its loss; rows are stored with their spec, so such a row is a
new row, and the table shows the one of the settings asked for. A run that stops on a non-finite loss, or whose embedding collapses (every
embedding classifier at chance), is reported as such. When every row is in, --seed-rows
(cross-entropy and contrastive) run again at their chosen rate with each of
--seeds (2 and 3), into OUT/seeds.jsonl, and the table gives the spread the
seed alone makes. Needs only the standard
library.
"""
import argparse
import csv
import json
import math
import os
import re
import subprocess
import sys
import time

# The study's seventeen rows: its name, its figure (as printed there), our loss spec and weights
# (None where we have no implementation yet).
#
# Which embedding losses run on L2-normalised embeddings (normalize=1) was chosen on a short
# probe (1 epoch of 60 batches at the default learning rate, the test embedding's 1-NN and
# 10-NN; README): unnormalised, LMNN and the improved triplet diverge, batch-hard triplet
# collapses to one point, and contrastive, pair hinge, double margin and SoftPN classify
# 7-12 points worse by 1-NN; the distance ratio is the same either way and the lifted loss
# better unnormalised, so those two stay as the originals have them. The global losses and the
# histogram loss normalise by themselves. The triplet terms are the study's source, FaceNet
# (semi-hard mining, squared distances, margin 0.2 on normalised embeddings): batch-hard mining
# with margin 1, our first triplet row, sat at its margin for 15 epochs (45.33% 10-NN).
# SoftPN runs on the normalised embedding although PN-Net has it raw: raw, on relu7, it collapses
# (every embedding to 0, validation loss exactly 0.5, every classifier at chance) at every rate
# that moves it: within 2 epochs at 0.005-0.05, and at the sweep's choice, 0.002, by epoch 6 of 15
# (split-half 30.6, 30.2, 29.2, 22.7, 12.4, 10.6%; softpn/lr0.002/metrics.csv, stopped at epoch 7).
# Its negative distance is the smaller of two, so on an untrained network d+ > d* and shrinking
# every embedding lowers the loss towards 0.5, and relu7 at 0 is a fixed point (PN-Net's tanh
# descriptor has none). Normalised it cannot collapse; it reaches 46.00% 10-NN at 0.2 (by loss).
# LMNN runs with targets=3, as Weinberger and Saul choose each point's target neighbours (its k
# nearest of its class; k = 3 in their experiments). With every same-class sample a target its
# pull drew each class, and then every class, to one point: normalised, the sweep runs at 0.01,
# 0.02, 0.1 and 1 all ended at validation loss 0.5000 (mu x margin, every embedding at one point),
# split-half 20-29% (sweep-2xall/lmnn_normalize=1__wd0/).
STUDY_ROWS = [
    ("categorical cross-entropy", 0.6574, "cross-entropy", ""),
    ("class-wise hinge", 0.6707, "hinge", ""),
    ("cosine similarity", 0.6164, "cosine", ""),
    ("pairwise hinge", 0.5904, "pair-hinge(normalize=1)", ""),
    ("Hadsell (contrastive)", 0.6544, "contrastive(normalize=1)", ""),
    ("double margin", 0.6548, "double-margin(normalize=1)", ""),
    ("siamese with global", 0.6593, "siamese-global", ""),
    ("triplet", 0.6552, "triplet(margin=0.2,semi_hard=1,squared=1,normalize=1)", ""),
    ("distance ratio", 0.6574, "distance-ratio", ""),
    ("SoftPN", 0.6616, "softpn(normalize=1)", ""),
    ("improved triplet", 0.6411, "improved-triplet(normalize=1)", ""),
    ("large margin nearest neighbour", 0.6545, "lmnn(targets=3,normalize=1)", ""),
    ("lifted structured (softmax similarity)", 0.6542, "lifted", ""),
    ("triplet with global", 0.6485, "triplet-global", ""),
    ("histogram loss", 0.6577, "histogram", ""),
    ("cross-entropy + class-wise hinge", 0.6532, "cross-entropy+hinge", "1,1"),
    ("cross-entropy + triplet", 0.6493, "cross-entropy+triplet(margin=0.2,semi_hard=1,squared=1,normalize=1)", "1,1"),
]
# --settings "contrastive=contrastive(margin=0.5,normalize=1),..." replaces a row's spec, so that a
# loss can be tuned beyond its learning rate; a stored row counts only for the spec it was run with.
LOGIT_LOSSES = {"cross-entropy", "hinge", "squared-hinge", "cosine"}
# Losses that L2-normalise the embedding whatever their settings (normalize=0 turns the global
# losses' off); any other loss does so with normalize=1.
SELF_NORMALISING = {"siamese-global", "triplet-global", "histogram"}


def terms(spec):
    """The spec's terms as (name, settings text): "a(x=1)+b" -> [("a", "x=1"), ("b", "")]."""
    depth, found, term = 0, [], ""
    for c in spec + "+":
        depth += {"(": 1, ")": -1}.get(c, 0)
        if c == "+" and depth == 0:
            name, _, settings = term.partition("(")
            found.append((name, settings.rstrip(")")))
            term = ""
        else:
            term += c
    return found


def embedding_only(spec):
    """Whether no term of the spec reads the logits."""
    return not any(name in LOGIT_LOSSES for name, _ in terms(spec))


def scale_free(spec):
    """Whether every term reads the embedding L2-normalised, so that the loss cannot see the scale
    of the weights before it. Weight decay then regularises nothing: it only shrinks the weights
    and so raises the effective learning rate (van Laarhoven 2017 on L2 under normalisation), and
    at the large rates these losses' sweeps choose it stalled training. Measured on contrastive
    (normalize=1) at a peak rate of 0.5: with the recipe's 5e-4, the split-half validation figure
    went 29.6, 38.2, 30.1, 29.7, 30.4, 22.9% over epochs 1-6 with the training loss flat at 0.044;
    without decay 28.7, 36.4, 39.8, 45.0, 48.3, 46.6% with the training loss falling."""
    def normalised(name, settings):
        on = re.search(r"normalize=([0-9.]+)", settings)
        return float(on.group(1)) != 0 if on else name in SELF_NORMALISING
    return all(normalised(name, settings) for name, settings in terms(spec))


def weight_decay_of(spec):
    """The weight decay a row trains with: none for a scale-free loss, else the trainer's default
    (None)."""
    return 0.0 if scale_free(spec) else None


def row_key(name, spec):
    """What identifies a stored row: a row run under another weight decay is another row."""
    return (name, spec, weight_decay_of(spec))


def stored_key(r):
    return (r["name"], r["spec"], r.get("weight_decay"))


def parse_report(path):
    text = open(path).read()
    found = {}
    for key, pattern in (("top1", r"test top-1: ([0-9.]+)%"), ("top5", r"test top-5: ([0-9.]+)%"),
                         ("best_val", r"validation accuracy ([0-9.]+)%")):
        m = re.search(pattern, text)
        found[key] = float(m.group(1)) if m else None
    m = re.search(r"nearest centroid ([0-9.]+)%, 1-NN ([0-9.]+)%, 10-NN ([0-9.]+)%", text)
    if m:
        found.update(centroid=float(m.group(1)), knn1=float(m.group(2)), knn10=float(m.group(3)))
    return found


def validation_figure(out):
    """What the sweep compares: the best validation accuracy (for a loss on the embedding alone the
    trainer's validation accuracy is the embedding's split-half nearest centroid: its fc8 is
    untrained, and its own loss is measured with dropout on in training and off in validation)."""
    rows = list(csv.DictReader(open(os.path.join(out, "metrics.csv"))))
    return max(float(r["val_accuracy"]) for r in rows)


# CIFAR-10's chance level, in percent, with a point's slack: an embedding whose classifiers read no
# better has collapsed (a sweep run's last split-half figure, a row's centroid and k-NN figures).
CHANCE_WITH_SLACK = 100.0 / 10 + 1


def collapsed_sweep_run(out, spec):
    """Whether a sweep run of a loss on the embedding alone ended with its embedding collapsed: the
    split-half figure of its last epoch at chance (10%, with a point's slack). Raw SoftPN's three
    start rates did so (validation loss exactly 0.5, every distance 0): shrinking every embedding
    lowers that loss on an untrained network, whose positive distance exceeds the smaller of two
    negative ones, and relu7 at zero is a fixed point. Such a rate is too high, not a result."""
    rows = list(csv.DictReader(open(os.path.join(out, "metrics.csv"))))
    return embedding_only(spec) and bool(rows) and 100 * float(rows[-1]["val_accuracy"]) <= CHANCE_WITH_SLACK


def validation_loss(out):
    """The lowest validation loss of a run (what a blind sweep compares instead)."""
    rows = list(csv.DictReader(open(os.path.join(out, "metrics.csv"))))
    return min(float(r["val_loss"]) for r in rows)


def blind(a, spec, figures):
    """Whether a sweep could not see the loss learn: a loss on the embedding alone whose every rate
    left the split-half figure below --blind-below, about where the untrained network's embedding
    reads (28%). Siamese global's rates read 22.5-24.0% and SoftPN's 19.4-26.8% after 2 epochs
    while their validation losses fell by 20% at some rates and not at others; picking the
    highest of such figures picks the rate that moved the embedding least (siamese global: 0.02,
    42.41% 10-NN after 15 epochs, where 0.2 reached 52.28%). The rate that lowered the held-out
    loss most is then the sweep's choice, as in a learning-rate range test."""
    return (embedding_only(spec) and a.blind_below > 0
            and all(f is None or f < a.blind_below for f in figures.values()))


def train(a, out, spec, weights, epochs, batches, lr=None, seed=None):
    """One training run into `out`; its result and wall minutes. A run an earlier invocation
    finished (its report.txt is there) is read again, one it left cut short (last.ckpt without a
    report) is resumed from its last checkpoint, so an interrupted comparison loses no training."""
    minutes_file = out + ".minutes"
    before = float(open(minutes_file).read()) if os.path.exists(minutes_file) else 0.0
    if os.path.exists(os.path.join(out, "report.txt")) and os.path.exists(out + ".log"):
        return subprocess.CompletedProcess([], 0, open(out + ".log").read()), before
    if os.path.exists(os.path.join(out, "last.ckpt")):
        cmd = [a.trainer, "train", "--resume", os.path.join(out, "last.ckpt"), "--data", a.data]
    else:
        # The study's network and recipe are pinned, so a change of the trainer's defaults (issue 19
        # made cifar-half-bn with label smoothing the default) cannot change a row.
        cmd = [a.trainer, "train", "--data", a.data, "--out", out, "--loss", spec, "--epochs", str(epochs),
               "--seed", str(a.seed if seed is None else seed),
               "--config", "cifar-half", "--label-smoothing", "0"]
        if batches > 0:
            cmd += ["--max-batches", str(batches)]
        if weights:
            cmd += ["--loss-weights", weights]
        if lr is not None:
            cmd += ["--lr", str(lr)]
        if weight_decay_of(spec) is not None:
            cmd += ["--weight-decay", "%g" % weight_decay_of(spec)]
        cmd += a.trainer_args.split()
    print("==> " + " ".join(cmd), flush=True)
    start = time.time()
    run = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    minutes = before + (time.time() - start) / 60
    open(minutes_file, "w").write("%.3f" % minutes)
    open(out + ".log", "a" if before else "w").write(run.stdout)
    return run, minutes


def folder_name(spec):
    """The runs' folder of a spec; one trained without weight decay says so, so that it never
    reuses a run of the same spec with the decay."""
    decay = weight_decay_of(spec)
    return re.sub(r"[^A-Za-z0-9_.+=-]", "_", spec) + ("" if decay is None else "_wd%g" % decay)


def rows_to_run(a):
    """The study's rows with --settings applied: (name, study figure, spec, weights)."""
    settings = {}
    for item in filter(None, a.settings.split(";")):
        base, _, spec = item.partition("=")
        if not spec or not any(r[2] == base or r[2].split("(")[0] == base for r in STUDY_ROWS):
            sys.exit("loss_comparison: --settings takes ROWSPEC=SPEC;..., e.g. contrastive=contrastive(normalize=1); got %r" % item)
        settings[base] = spec
    return [(name, study, settings.get(spec, settings.get(spec.split("(")[0], spec)), weights)
            for name, study, spec, weights in STUDY_ROWS]


# The rates a sweep climbs along from its best start rate: the 1-2-5 steps of the learning rate
# from 0.001 to 100. It went to 1 at first; without weight decay, pair hinge and
# contrastive on the normalised embedding were still best at 1. Then to 10, where double margin
# was still climbing (38.8, 40.7, 42.9, 45.0% split-half at 1, 2, 5, 10): without decay the
# weights before the normalisation grow, and the effective rate falls with their squared norm.
LADDER = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]


def next_rate(rate, upward):
    """The ladder's next rate beyond `rate` in the direction asked, or None at its end."""
    beyond = [r for r in LADDER if (r > rate * 1.0001 if upward else r < rate * 0.9999)]
    return (min(beyond) if upward else max(beyond)) if beyond else None


def climb(start, figure_of, extend=True):
    """The rate with the best figure: the best of `start`, then, while a neighbour along LADDER
    does better, that neighbour, in either direction. A best at an end of the rates asked is not
    yet the loss's best, only the best tried (the embedding losses on normalised embeddings get
    gradients scaled down by the embedding's norm and want larger rates, the hinge smaller).
    figure_of(rate) is None for a run that diverged. None if every start rate diverged."""
    scored = [(figure_of(r), r) for r in start]
    scored = [(f, r) for f, r in scored if f is not None]
    if not scored:
        return None
    best_figure, best = max(scored)
    for upward in ((True, False) if extend else ()):
        rate = next_rate(best, upward)
        while rate is not None:
            figure = figure_of(rate)
            if figure is None or figure <= best_figure:
                break
            best_figure, best, rate = figure, rate, next_rate(rate, upward)
    return best


def sweep_learning_rate(a, spec, weights):
    """The sweep's figures and validation losses by rate, and the rate chosen: the climb from
    sweep_start on the figure, or, for a blind sweep, on the validation loss."""
    figures, losses = {}, {}

    def run(rate):
        # The folder names the sweep's budget: a sweep run at another budget is not reused.
        budget = "%dx%s" % (a.sweep_epochs, a.sweep_batches if a.sweep_batches > 0 else "all")
        out = os.path.join(a.out, "sweep-" + budget, folder_name(spec), "lr%g" % rate)
        if "%g" % rate not in figures:
            result, _ = train(a, out, spec, weights, a.sweep_epochs, a.sweep_batches, rate)
            ok = result.returncode == 0 and not collapsed_sweep_run(out, spec)
            figures["%g" % rate] = validation_figure(out) if ok else None
            losses["%g" % rate] = validation_loss(out) if ok else None
        return figures["%g" % rate]

    def lower_loss_is_better(rate):
        run(rate)
        loss = losses["%g" % rate]
        return None if loss is None or not math.isfinite(loss) else -loss

    start = [float(x) for x in sweep_start(a, spec).split(",")]
    start = step_down_past_failures(start, run)
    best = climb(start, run, a.sweep_extend)
    if blind(a, spec, figures):
        best = climb(start, lower_loss_is_better, a.sweep_extend)
    return figures, losses, best


def step_down_past_failures(start, figure_of):
    """The start rates, with the ladder's next lower rate added while every rate tried so far
    failed (diverged or collapsed): a loss that no start rate trains gets the smaller rates tried
    before it is reported as failed, down to the ladder's end."""
    rates = list(start)
    while all(figure_of(r) is None for r in rates):
        lower = next_rate(min(rates), upward=False)
        if lower is None:
            break
        rates.append(lower)
    return rates


def sweep_start(a, spec):
    """The rates a row's sweep tries first. A scale-free loss starts on decades from 0.01 to 1
    (--sweep-scale-free): its gradients are divided by the embedding's norm, and the first two
    such rows peaked at 1 and 5 after climbing from 0.01 through six rates; but siamese global's
    2-epoch figure was flat over 0.1-1 and its 15-epoch run improved as the rate fell, so the
    low rates stay in. The climb then goes on in either direction from the best."""
    return a.sweep_scale_free if a.sweep_scale_free and scale_free(spec) else a.sweep


def sweep_incomplete(a, spec, row):
    """Whether a stored row's sweep would go on under the current protocol: it lacks a rate the
    climb asks for (a start rate added since, or LADDER now going beyond its end), or the climb over
    its stored figures ends elsewhere than its rate. Such a row is swept on (its runs are reused)
    and trained again if another rate wins."""
    stored = row.get("sweep")
    if not (a.sweep and stored and row.get("lr") is not None):
        return False
    if blind(a, spec, stored):  # replayed on the validation losses, which rows before the rule lack
        losses = row.get("sweep_loss")
        if not losses:
            return True
        stored = {rate: (None if loss is None else -loss) for rate, loss in losses.items()}

    def figure_of(rate):
        if "%g" % rate not in stored:
            raise LookupError
        return stored["%g" % rate]

    try:
        start = step_down_past_failures([float(x) for x in sweep_start(a, spec).split(",")], figure_of)
        best = climb(start, figure_of, a.sweep_extend)
    except LookupError:
        return True
    return best is None or abs(best - row["lr"]) > 1e-9 * row["lr"]


def record_run(record, run, minutes, out):
    """Puts a training run's minutes and its report's figures, or why it failed, into `record`;
    whether it finished."""
    record["minutes"] = round(minutes, 1)
    if run.returncode != 0:
        record["failed"] = ([l for l in run.stdout.splitlines() if l.strip()][-1:] or ["(no output)"])[0]
        print("    failed (exit %d): %s" % (run.returncode, record["failed"]), flush=True)
        return False
    record.update(parse_report(os.path.join(out, "report.txt")))
    return True


def run_row(a, name, spec, weights):
    embedding_only_row = embedding_only(spec)
    row = {"name": name, "spec": spec, "weights": weights}
    if weight_decay_of(spec) is not None:
        row["weight_decay"] = weight_decay_of(spec)
    lr = None
    if a.sweep:
        row["sweep"], row["sweep_loss"], lr = sweep_learning_rate(a, spec, weights)
        row["lr"] = lr
        if blind(a, spec, row["sweep"]):
            row["sweep_by"] = "validation loss"
    # The run's folder names its rate, so that a row run again after a wider sweep never reads a
    # finished run of another rate as its own.
    out = os.path.join(a.out, folder_name(spec), "lr%g" % lr if lr is not None else "default")
    if not record_run(row, *train(a, out, spec, weights, a.epochs, a.max_batches, lr), out):
        return row
    if embedding_only_row and all(row.get(k) is not None and row[k] <= CHANCE_WITH_SLACK for k in ("centroid", "knn1", "knn10")):
        row["collapsed"] = True
    print("    " + json.dumps(row), flush=True)
    return row


def cell(v):
    return "" if v is None else "%.2f%%" % v


def table(a, done):
    lines = ["| loss | study | ours: softmax top-1 | ours: nearest centroid | ours: 1-NN | ours: 10-NN | lr | minutes |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, study, spec, _ in rows_to_run(a):
        r = done.get(row_key(name, spec))
        if spec is None:
            lines.append("| %s | %.2f%% | not implemented | | | | | |" % (name, 100 * study))
        elif r is None:
            lines.append("| %s | %.2f%% | not run yet | | | | | |" % (name, 100 * study))
        elif "failed" in r:
            lines.append("| %s | %.2f%% | failed: %s | | | | | %s |" % (name, 100 * study, r["failed"], r["minutes"]))
        else:
            head = "(untrained)" if embedding_only(spec) else cell(r.get("top1"))
            note = " (collapsed)" if r.get("collapsed") else ""
            lines.append("| %s (`%s`) | %.2f%% | %s | %s%s | %s | %s | %s | %s |" % (
                name, spec, 100 * study, head, cell(r.get("centroid")), note, cell(r.get("knn1")),
                cell(r.get("knn10")), "%s%s%s" % (r.get("lr") or "default", ", no decay" if r.get("weight_decay") == 0 else "",
                                                  ", by loss" if r.get("sweep_by") else ""),
                r["minutes"]))
    budget = "%d epochs x %s batches of 128" % (a.epochs, a.max_batches if a.max_batches > 0 else "all")
    header = ("AlexNet cifar-half on CIFAR-10 without label smoothing, seed %d, %s, trainer defaults otherwise%s%s.\n\n"
              % (a.seed, budget, (" plus " + a.trainer_args) if a.trainer_args else "",
                 ("; peak learning rate swept over %s%s (%d epochs x %s batches each, best validation accuracy: the embedding's split-half nearest centroid for a loss on the embedding alone%s)"
                  % (a.sweep + (" (%s for a loss on the L2-normalised embedding alone)" % a.sweep_scale_free if a.sweep_scale_free else ""),
                     ", then climbing along 0.001, 0.002, 0.005 ... 100 while a neighbouring rate did better" if a.sweep_extend else "",
                     a.sweep_epochs, a.sweep_batches if a.sweep_batches > 0 else "all",
                     "; where every rate of such a loss read below %g%%, the untrained network's level, the lowest validation loss instead (\"by loss\")" % (100 * a.blind_below) if a.blind_below > 0 else ""))
                 if a.sweep else "")) + ("A loss on the L2-normalised embedding alone trains without weight decay (\"no decay\"): "
                                         "it cannot see the weights' scale, so the decay only raises the effective learning rate.\n\n")
    return header + "\n".join(lines) + "\n" + agreement(a, done) + seed_spread(a, done)


def seed_key(r):
    return stored_key(r) + (r["lr"], r["seed"])


def load_jsonl(path, key):
    """The records of a JSON-lines file by key(record), a later line replacing an earlier one."""
    found = {}
    if os.path.exists(path):
        for line in open(path):
            if line.strip():
                r = json.loads(line)
                found[key(r)] = r
    return found


def load_seed_runs(a):
    return load_jsonl(os.path.join(a.out, "seeds.jsonl"), seed_key)


def run_seeds(a, done):
    """Each --seed-rows row again at its chosen rate with every --seeds seed, into OUT/seeds.jsonl:
    how far a row's figure moves with the seed alone (initialisation, shuffling, crops) says which
    differences between rows mean something."""
    runs = load_seed_runs(a)
    wanted = [x for x in a.seed_rows.split(";") if x]
    for name, _, spec, weights in rows_to_run(a):
        row = done.get(row_key(name, spec))
        if spec not in wanted or row is None or "failed" in row:
            continue
        for seed in [int(x) for x in a.seeds.split(",") if x]:
            r = {"name": name, "spec": spec, "weight_decay": weight_decay_of(spec), "lr": row.get("lr"), "seed": seed}
            if seed_key(r) in runs:
                continue
            # Beside the row's own run folder (lrX), not inside it.
            out = os.path.join(a.out, folder_name(spec),
                               ("lr%g" % r["lr"] if r["lr"] is not None else "default") + "_seed%d" % seed)
            record_run(r, *train(a, out, spec, weights, a.epochs, a.max_batches, r["lr"], seed), out)
            runs[seed_key(r)] = r
            with open(os.path.join(a.out, "seeds.jsonl"), "a") as f:
                f.write(json.dumps(r) + "\n")
    return runs


def seed_spread(a, done):
    """The figures of the rows run with other seeds, beside seed a.seed's."""
    runs = load_seed_runs(a)
    text = ""
    for name, _, spec, _ in rows_to_run(a):
        row = done.get(row_key(name, spec))
        if row is None or "failed" in row:
            continue
        others = sorted((r for key, r in runs.items()
                         if key[:4] == row_key(name, spec) + (row.get("lr"),) and "failed" not in r),
                        key=lambda r: r["seed"])
        if not others:
            continue
        every = [row] + others
        seeds = ", ".join(str(s) for s in [a.seed] + [r["seed"] for r in others])
        parts = []
        for key, label in (("top1", "top-1"), ("knn10", "fc7 10-NN")):
            values = [r.get(key) for r in every]
            if key == "top1" and embedding_only(spec) or any(v is None for v in values):
                continue
            parts.append("%s %s (range %.2f points)" % (label, " / ".join("%.2f" % v for v in values),
                                                          max(values) - min(values)))
        text += "- %s at lr %g, seeds %s: %s.\n" % (name, row.get("lr"), seeds, "; ".join(parts))
    return ("\nThe same row with other seeds (seed alone):\n" + text) if text else ""


def row_figure(spec, r):
    """A row's own figure: its softmax's top-1 where it has a head, else its embedding's 10-NN."""
    return r.get("knn10") if embedding_only(spec) else r.get("top1")


def ranks(values):
    """Ranks from 1 (smallest), ties sharing their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    rank = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            rank[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return rank


def spearman(x, y):
    """Spearman's rank correlation: Pearson's on the ranks (ties at mean rank)."""
    rx, ry = ranks(x), ranks(y)
    n = len(x)
    mx, my = sum(rx) / n, sum(ry) / n
    sxy = sum((p - mx) * (q - my) for p, q in zip(rx, ry))
    sxx = sum((p - mx) ** 2 for p in rx)
    syy = sum((q - my) ** 2 for q in ry)
    return sxy / (sxx * syy) ** 0.5 if sxx > 0 and syy > 0 else float("nan")


def agreement(a, done):
    """How far our ordering of the rows agrees with the study's: Spearman's rho between the study's
    figures and ours, on each row's own figure and on the fc7 10-NN every row has."""
    finished = [(study, spec, done[row_key(name, spec)]) for name, study, spec, _ in rows_to_run(a)
                if row_key(name, spec) in done and "failed" not in done[row_key(name, spec)]]
    if len(finished) < 3:
        return ""
    text = "\nAgreement with the study's order over the %d rows in (Spearman's rho):" % len(finished)
    for label, figure in (("each row's own figure (softmax top-1, or 10-NN for a loss on the embedding alone)",
                           row_figure),
                          ("the fc7 embedding's 10-NN", lambda spec, r: r.get("knn10"))):
        pairs = [(study, figure(spec, r)) for study, spec, r in finished if figure(spec, r) is not None]
        if len(pairs) >= 3:
            text += " %s %.2f;" % (label, spearman([p[0] for p in pairs], [p[1] for p in pairs]))
    return text.rstrip(";") + ".\n"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trainer", default=os.path.join(root, "build", "bin", "convnet"),
                   help="the convnet program (each run is its train subcommand)")
    p.add_argument("--data", default=os.environ.get("CIFAR10_DIR", "data/cifar-10-batches-bin"))
    p.add_argument("--out", default=os.path.join(here, "results", "loss_comparison"))
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--max-batches", type=int, default=0, help="training batches per epoch (0 = all)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--seeds", default="2,3", help="after every row, run the --seed-rows rows again with these seeds "
                   "at their chosen rate ('' for none), for the spread the seed alone makes")
    p.add_argument("--seed-rows", default="cross-entropy;contrastive(normalize=1)", help="';'-separated specs of the "
                   "rows --seeds runs again")
    p.add_argument("--rows", default="", help="comma-separated loss specs to run (default: every implemented row)")
    p.add_argument("--sweep", default="0.01,0.02,0.05", help="learning rates to try first ('' for none: the trainer's default)")
    p.add_argument("--sweep-scale-free", default="0.01,0.1,1", help="learning rates to try first for a loss on the "
                   "L2-normalised embedding alone ('' for --sweep's)")
    p.add_argument("--sweep-extend", type=int, default=1, help="1: from the best rate tried, climb along "
                   "0.001, 0.002, 0.005 ... 100 in either direction while a neighbour does better (0: only --sweep)")
    p.add_argument("--sweep-epochs", type=int, default=2)
    # Two whole epochs: on 2 x 100 batches an embedding loss's figure stays at the untrained network's
    # (about 28% split-half centroid for contrastive), and the sweep picked the rate that moved it least.
    p.add_argument("--sweep-batches", type=int, default=0, help="batches per sweep epoch (0 = all)")
    p.add_argument("--blind-below", type=float, default=0.30, help="a loss on the embedding alone whose every "
                   "sweep rate reads a split-half figure below this picks its rate by the lowest validation "
                   "loss instead (0: never)")
    p.add_argument("--trainer-args", default="--eval centre", help="further flags for every run (default: the test set "
                   "read from the centre crop alone, as the study's single figure)")
    p.add_argument("--settings", default="", help="ROWSPEC=SPEC;... replaces rows' specs, e.g. "
                   "'contrastive=contrastive(margin=0.5,normalize=1)' (a stored row counts for its own spec)")
    a = p.parse_args()

    if not os.access(a.trainer, os.X_OK):
        sys.exit("loss_comparison: no convnet program at %s (build first: make train-build)" % a.trainer)
    os.makedirs(a.out, exist_ok=True)
    store = os.path.join(a.out, "rows.jsonl")
    done = load_jsonl(store, stored_key)
    wanted = set(a.rows.split(",")) if a.rows else None
    for name, _, spec, weights in rows_to_run(a):
        stored = done.get(row_key(name, spec))
        if (stored is not None and not sweep_incomplete(a, spec, stored)) or (wanted and spec.split("(")[0] not in wanted and spec not in wanted):
            continue
        row = run_row(a, name, spec, weights)
        done[row_key(name, spec)] = row
        with open(store, "a") as f:  # one line a finished row: an interrupted comparison continues here
            f.write(json.dumps(row) + "\n")
        open(os.path.join(a.out, "loss_comparison.md"), "w").write(table(a, done))
    if a.seeds:
        run_seeds(a, done)
    text = table(a, done)
    path = os.path.join(a.out, "loss_comparison.md")
    open(path, "w").write(text)
    print("\n" + text + "\nwrote " + path)
    return 0 if all("failed" not in r for r in done.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
