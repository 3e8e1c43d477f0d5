"""Helpers shared by all rules: config checks, per-dataset settings, look-ups, targets."""

import os
import re
import sys
from functools import cache
from pathlib import Path

from snakemake.common.configfile import load_configfile
from snakemake.exceptions import WorkflowError
from snakemake.utils import Paramspace, update_config, validate

sys.path.insert(0, str(Path(workflow.basedir, "scripts")))
# TensorFlow's C++ start-up notices (oneDNN, CPU features) drown the rule logs; warnings and
# errors still show. Jobs inherit this, locally and on SLURM (where they re-read this file).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
# numba (memelite, TF-MoDISco-lite) compiles for a minute or more; its cache goes into the
# working directory, so every later run of the motif rules starts warm, on a cluster too.
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(".snakemake", "numba").resolve()))

from peak2motif import explain
from peak2motif import resources as measured_costs
from peak2motif.config import check_config, dataset_settings, dataset_vcf, load_schema
from peak2motif.errors import InputError
from peak2motif.provenance import dataset_config as resolved_dataset_config
from peak2motif.regions import resolve_task_type
from peak2motif.sweep import (
    apply_overrides,
    check_point_names,
    grid_table,
    point_overrides,
)

SCHEMA = Path(workflow.basedir, "config", "config.schema.yaml")
SAFE_NAME = r"[A-Za-z0-9_-]+"


def _replace_demo_config():
    """`--configfile my.yaml` replaces the demo config instead of merging into it.

    Snakemake merges command-line config files into the one named by `configfile:`, which
    would run the demo next to the user's data. `--config key=value` alone still merges.
    """
    demo = Path(workflow.basedir, "config", "config.yaml").resolve()
    own = [
        Path(f)
        for f in workflow.config_settings.configfiles
        if Path(f).resolve() != demo
    ]
    if own:
        fresh = {}
        for f in own:
            update_config(fresh, load_configfile(f))
        update_config(fresh, dict(workflow.config_settings.config))
        config.clear()
        config.update(fresh)


def _check_dataset_names():
    for section in ("datasets", "simulate"):
        for name in config.get(section, {}):
            if not re.fullmatch(SAFE_NAME, str(name)):
                raise WorkflowError(
                    f"config key '{section}: {name}' is not a safe dataset name: it becomes a "
                    "folder under results/, so use letters, digits, '_' and '-' only "
                    f"(for example '{re.sub('[^A-Za-z0-9_-]+', '_', str(name)).strip('_') or 'my_data'}')."
                )


_replace_demo_config()
try:
    check_config(config, SCHEMA)
except InputError as err:
    raise WorkflowError(f"Invalid config: {err}") from None
validate(config, schema="../config/config.schema.yaml")
_check_dataset_names()

DATASETS = list(config["datasets"])
SIMULATIONS = list(config.get("simulate", {}))


@cache
def settings(name):
    """The data/model/training/attribution/motifs/variants sections of dataset `name`:
    the top-level ones with the dataset's overrides merged in, defaults in, checked."""
    try:
        out = dataset_settings(config, name, load_schema(SCHEMA))
        method = explain.check_method(out["model"], out["attribution"]["method"])
    except InputError as err:
        raise WorkflowError(f"Invalid config: {err}") from None
    out["attribution"]["method"] = method
    return out


def section(name):
    """An input function giving section `name` of the wildcards' dataset."""

    def get(wildcards):
        return settings(wildcards.dataset)[name]

    get.__name__ = f"{name}_settings"
    return get


def setting(*path):
    """An input function giving one setting (`setting("training", "threads")`)."""

    def get(wildcards):
        node = settings(wildcards.dataset)
        for key in path:
            node = node[key]
        return node

    get.__name__ = "_".join(path)
    return get


# Per rule: the line of peak2motif.resources it follows (fitted by bench/scale.py) and the
# inputs whose size drives it. A compute_contributions job reads and explains its shard's
# share of its fold's split files (time and memory: only the labels are read whole).
COST_DRIVERS = {
    "prepare_regions": ("prepare_regions", ("peaks",)),
    "extract_sequences": ("extract_sequences", ("regions",)),
    "train_model": ("train_model", ("train", "valid")),
    "train_sweep_point": ("train_model", ("train", "valid")),
    "evaluate_model": ("train_model", ("valid", "test")),
    "compute_contributions": ("compute_contributions", ("train", "valid", "test")),
}


SHARDED_RULES = ("compute_contributions",)


def _driver_mb(rulename, wildcards, input):
    total = 0
    for name in COST_DRIVERS[rulename][1]:
        paths = getattr(input, name, [])
        for path in [paths] if isinstance(paths, str) else paths:
            if os.path.exists(path):
                total += os.path.getsize(path)
    mb = total / 2**20
    if rulename in SHARDED_RULES:
        mb /= settings(wildcards.dataset)["attribution"]["shards"]
    return mb


def measured(rulename, what, override=None):
    """A resources function: `what` (mem_mb or runtime) of one job of `rulename` from its input
    size, doubled on each retry; a config value at the settings path `override`, when set,
    wins (and is doubled on retries too)."""
    index = {"mem_mb": 0, "runtime": 1}[what]

    def get(wildcards, input, attempt):
        if override is not None:
            value = setting(*override)(wildcards)
            if value is not None:
                return value * 2 ** (attempt - 1)
        cost = COST_DRIVERS[rulename][0]
        size = _driver_mb(rulename, wildcards, input)
        return measured_costs.estimate(cost, size, attempt)[index]

    get.__name__ = f"{rulename}_{what}"
    return get


def setting_or(default, *path):
    """`setting(*path)`, or `default` where the config leaves it unset (null)."""

    def get(wildcards):
        value = setting(*path)(wildcards)
        return default if value is None else value

    get.__name__ = "_".join(path)
    return get


def peak_files(name):
    """Mapping task name -> peak file of a dataset; a single file becomes the task 'peaks'."""
    peaks = config["datasets"][name]["peaks"]
    return {"peaks": peaks} if isinstance(peaks, str) else dict(peaks)


def task_type(wildcards):
    """binary / multitask / multiclass / regression (`auto` resolved)."""
    ds = config["datasets"][wildcards.dataset]
    return resolve_task_type(ds.get("task", "auto"), len(peak_files(wildcards.dataset)))


def tasks_of(name):
    """The explained tasks of a dataset (one per peak file; multiclass: one per class)."""
    return list(peak_files(name))


def folds_of(name):
    return list(range(settings(name)["data"]["split"]["folds"]))


def shards_of(name):
    return list(range(settings(name)["attribution"]["shards"]))


def genome_file(wildcards):
    return config["datasets"][wildcards.dataset]["genome"]


def _simulated_paths():
    return {
        f"resources/{sim}/{name}"
        for sim in SIMULATIONS
        for name in ("genome.fa", "peaks.narrowPeak", "variants.vcf")
    }


def _check_inputs_exist():
    """Fail at start-up, not hours later, when a dataset names a file that does not exist."""
    made_here = _simulated_paths()
    for name, ds in config["datasets"].items():
        files = [("genome", ds["genome"])]
        files += [(f"peaks: {t}", p) for t, p in peak_files(name).items()]
        files += [("blacklist", ds["blacklist"])] if ds.get("blacklist") else []
        files += [("variants", dataset_vcf(ds))] if dataset_vcf(ds) else []
        meme = settings(name)["motifs"]["meme_file"]
        if meme:
            files.append(("motifs: meme_file", meme))
        for key, path in files:
            if path not in made_here and not Path(path).exists():
                raise WorkflowError(
                    f"config key 'datasets: {name}: {key}' points to '{path}', which does not "
                    "exist. Give a path relative to the working directory "
                    f"({Path.cwd()}) or an absolute path."
                )


for _name in DATASETS:
    settings(_name)  # every dataset's settings are checked before any job starts
_check_inputs_exist()


# --- signal (BAM / fragments / bigWig) ---------------------------------------------------


@cache
def signal_tracks(name):
    """{track: {"source", "assay", "task"}} of a dataset: one track per task of `signal`,
    plus `control` (shared by every task) or `control_TASK` (one per task)."""
    from peak2motif.signal.checks import control_sources, signal_sources

    ds = config["datasets"][name]
    try:
        signal = signal_sources(ds, tasks_of(name), name)
        control = control_sources(ds, tasks_of(name), name)
    except InputError as err:
        raise WorkflowError(f"Invalid config: {err}") from None
    assay = ds.get("assay", "chip")
    tracks = {t: {"source": s, "assay": assay, "task": t} for t, s in signal.items()}
    shared = len({str(c) for c in control.values()}) == 1
    for t, c in control.items():
        track = "control" if shared else f"control_{t}"
        if track in signal:
            raise WorkflowError(
                f"config key 'datasets: {name}: peaks': a task named '{track}' clashes with "
                "the control track's name. Rename the task."
            )
        tracks[track] = {"source": c, "assay": assay, "task": None}
    return tracks


def _check_signal_inputs():
    """Start-up checks of every signal and control file: kind, assay, index, chromosome
    names, NaN or negative bigWig values, the head of a fragments file (InputError)."""
    from peak2motif.genome import chromosome_lengths
    from peak2motif.signal.checks import check_source

    made_here = _simulated_paths()
    for name, ds in config["datasets"].items():
        genome = ds["genome"]
        for track, spec in signal_tracks(name).items():
            source = spec["source"]
            key = f"datasets: {name}: {'signal' if spec['task'] else 'control'}"
            paths = list(source.values()) if isinstance(source, dict) else [source]
            for path in paths:
                if path not in made_here and not Path(path).exists():
                    raise WorkflowError(
                        f"config key '{key}' points to '{path}', which does not exist. "
                        "Give a path relative to the working directory "
                        f"({Path.cwd()}) or an absolute path."
                    )
            if genome in made_here or any(p in made_here for p in paths):
                continue
            try:
                check_source(
                    source, chromosome_lengths(genome), genome, spec["assay"], key
                )
            except InputError as err:
                raise WorkflowError(f"Invalid signal input: {err}") from None


_check_signal_inputs()


def _track_pattern():
    names = {t for ds in DATASETS for t in signal_tracks(ds)}
    return "|".join(re.escape(t) for t in sorted(names)) or "(?!)"


def _signal_spec(wildcards):
    return signal_tracks(wildcards.dataset)[wildcards.track]


def signal_conversion_inputs(wildcards):
    """The BAM or fragments file of one track, and the genome (its names and sizes)."""
    return {
        "source": _signal_spec(wildcards)["source"],
        "genome": genome_file(wildcards),
    }


def signal_reader_settings():
    """The `signal:` settings that change a track (filters, shifts): not the reads-in-peaks
    threshold, so changing it reruns only the check, never the conversion."""
    return {k: v for k, v in config["signal"].items() if k != "min_peaks_with_reads"}


def signal_assay(wildcards):
    return _signal_spec(wildcards)["assay"]


def signal_runtime(wildcards, input, attempt):
    """Minutes for one conversion: 10 + 10 per GB of input, doubled on each retry."""
    size = os.path.getsize(input.source) if os.path.exists(input.source) else 0
    return int(10 + 10 * size / 2**30) * 2 ** (attempt - 1)


def track_files(name, track):
    """The bigWigs of one track: the user's own, or the ones the conversion makes."""
    from peak2motif.signal import source_kind

    spec = signal_tracks(name)[track]
    source, kind = spec["source"], source_kind(spec["source"])
    if kind == "bigwig":
        return [source]
    if kind == "bigwig_pair":
        return [source["plus"], source["minus"]]
    base = f"results/{name}/signal/{track}"
    if spec["assay"] == "chip":
        return [f"{base}.plus.bw", f"{base}.minus.bw"]
    return [f"{base}.bw"]


def signal_track_files(wildcards):
    return track_files(wildcards.dataset, wildcards.track)


def task_peak_file(wildcards):
    return peak_files(wildcards.dataset)[_signal_spec(wildcards)["task"]]


def signal_outputs(name):
    """Targets of a dataset's signal: each converted track, and the check of each task."""
    targets = []
    for track, spec in signal_tracks(name).items():
        targets += [p for p in track_files(name, track) if p.startswith("results/")]
        if spec["task"]:
            targets.append(f"results/{name}/signal/{track}.check.tsv")
    return targets


def _task_pattern():
    names = {t for ds in DATASETS for t in tasks_of(ds)}
    return "|".join(re.escape(t) for t in sorted(names)) or "(?!)"


wildcard_constraints:
    dataset="|".join(re.escape(d) for d in DATASETS),
    sim="|".join(re.escape(s) for s in SIMULATIONS) or "(?!)",
    split="train|valid|test",
    fold=r"\d+",
    shard=r"\d+",
    task=_task_pattern(),
    track=_track_pattern(),


# --- data stage --------------------------------------------------------------------------


def simulation_config(wildcards):
    """The `simulate: SIM` section (schema defaults filled in)."""
    return config["simulate"][wildcards.sim]


def region_inputs(wildcards):
    """Genome (with its index when simulated), peak files in task order, optional blacklist."""
    ds = config["datasets"][wildcards.dataset]
    inputs = {
        "genome": ds["genome"],
        "peaks": list(peak_files(wildcards.dataset).values()),
    }
    if ds["genome"] in _simulated_paths():
        inputs["fai"] = ds["genome"] + ".fai"
    if ds.get("blacklist"):
        inputs["blacklist"] = ds["blacklist"]
    return inputs


def peak_tasks(wildcards):
    """Task names, in the order of the `peaks` input of prepare_regions."""
    return list(peak_files(wildcards.dataset))


def dataset_entry(wildcards):
    """The `datasets: NAME` entry (genome, peaks, task, chromosome choices, ...)."""
    return {
        k: v
        for k, v in config["datasets"][wildcards.dataset].items()
        if k not in ("data", "model", "training", "attribution", "motifs")
    }


def split_files(wildcards):
    """The three split files of one fold."""
    base = f"results/{wildcards.dataset}/folds/{wildcards.fold}/sequences"
    return {s: f"{base}/{s}.h5" for s in ("train", "valid", "test")}


# --- training stage ----------------------------------------------------------------------


def _training_setup():
    """Check init_from names and every sweep point; return {point name: overrides}."""
    for name, ds in config["datasets"].items():
        other = ds.get("init_from")
        if other is not None and (other not in config["datasets"] or other == name):
            raise WorkflowError(
                f"config key 'datasets: {name}: init_from' is '{other}', which is not "
                f"another dataset of this config (datasets: {', '.join(DATASETS)}). Name a "
                "dataset whose model should initialise this one, or remove the key."
            )
    grid = config["sweep"]["grid"]
    if not grid:
        return None, {}
    space = Paramspace(grid_table(grid), filename_params="*", single_wildcard="point")
    names = list(space.instance_patterns)
    overrides = point_overrides(grid)
    try:
        check_point_names(names)
    except InputError as err:
        raise WorkflowError(f"Invalid sweep: {err}") from None
    for name in DATASETS:
        for over in overrides:
            try:
                s = settings(name)
                point = apply_overrides(
                    {"model": s["model"], "training": s["training"]}, over
                )
                check_config({"datasets": config["datasets"], **point}, SCHEMA)
            except InputError as err:
                raise WorkflowError(f"Invalid sweep point {over}: {err}") from None
    return space, dict(zip(names, overrides))


SWEEP, SWEEP_POINTS = _training_setup()
SWEEP_POINT_PATTERN = "|".join(re.escape(p) for p in SWEEP_POINTS) or "(?!)"


def training_inputs(wildcards):
    """A fold's train and valid files, plus the model of `init_from` for transfer learning
    (the same fold of the other dataset when it has one, else its fold 0)."""
    files = split_files(wildcards)
    inputs = {"train": files["train"], "valid": files["valid"]}
    other = config["datasets"][wildcards.dataset].get("init_from")
    if other:
        fold = wildcards.fold if int(wildcards.fold) in folds_of(other) else "0"
        inputs["init"] = f"results/{other}/folds/{fold}/model/model.keras"
    if dataset_vcf(config["datasets"][wildcards.dataset]):
        # the VCF is checked against the genome before any training (rule check_variants)
        inputs["vcf_check"] = f"results/{wildcards.dataset}/variants/vcf_check.tsv"
    return inputs


def frozen_convolutions(wildcards):
    """Whether the conv layers copied by init_from stay frozen."""
    ds = config["datasets"][wildcards.dataset]
    return bool(ds.get("init_from") and ds.get("freeze_convolutions"))


def sweep_point_overrides(wildcards):
    """{dotted config key: value} of one sweep point."""
    return SWEEP_POINTS[wildcards.point]


def sweep_files(kind):
    """Input function: one file of every (fold, sweep point) of the dataset."""

    def get(wildcards):
        return [
            f"results/{wildcards.dataset}/folds/{k}/sweep/{p}/{kind}"
            for p in SWEEP_POINTS
            for k in folds_of(wildcards.dataset)
        ]

    get.__name__ = f"sweep_{kind.replace('.', '_')}"
    return get


def selected_models(wildcards):
    return [
        f"results/{wildcards.dataset}/folds/{k}/model/model.keras"
        for k in folds_of(wildcards.dataset)
    ]


def fold_files(pattern):
    """Input function: `pattern` (with {dataset} and {fold}) for every fold of the dataset."""

    def get(wildcards):
        return [
            pattern.format(dataset=wildcards.dataset, fold=k)
            for k in folds_of(wildcards.dataset)
        ]

    get.__name__ = "fold_files"
    return get


# --- attribution stage -------------------------------------------------------------------


def shard_files(kind):
    """Input function: one file of every (fold, shard) of the dataset."""

    def get(wildcards):
        return [
            f"results/{wildcards.dataset}/folds/{k}/contributions/shard_{s}.{kind}"
            for k in folds_of(wildcards.dataset)
            for s in shards_of(wildcards.dataset)
        ]

    get.__name__ = f"shard_{kind}"
    return get


def planted_truth(wildcards):
    """{"planted": resources/SIM/planted.tsv} when the dataset's genome is a simulated one."""
    genome = config["datasets"][wildcards.dataset]["genome"]
    for sim in SIMULATIONS:
        if genome == f"resources/{sim}/genome.fa":
            return {"planted": f"resources/{sim}/planted.tsv"}
    return {}


def n_folds(wildcards):
    return len(folds_of(wildcards.dataset))


# --- motif stage -------------------------------------------------------------------------


def motif_match_inputs(wildcards):
    """modisco.h5 of every task, plus the demo's truth table and the user's MEME file."""
    inputs = dict(planted_truth(wildcards))
    inputs["modisco"] = [
        f"results/{wildcards.dataset}/motifs/{t}/modisco.h5"
        for t in tasks_of(wildcards.dataset)
    ]
    meme = settings(wildcards.dataset)["motifs"]["meme_file"]
    if meme:
        inputs["meme_file"] = meme
    return inputs


def dataset_tasks(wildcards):
    return tasks_of(wildcards.dataset)


# --- variant stage -----------------------------------------------------------------------


def variant_vcf(wildcards):
    return dataset_vcf(config["datasets"][wildcards.dataset])


def variant_inputs(wildcards):
    """The dataset's VCF and genome, every fold's model.keras (in fold order, the fold whose
    test split holds a variant's region scores it) and each task's modisco.h5."""
    ds = config["datasets"][wildcards.dataset]
    return {
        "vcf": dataset_vcf(ds),
        "genome": ds["genome"],
        "models": selected_models(wildcards),
        "modisco": [
            f"results/{wildcards.dataset}/motifs/{t}/modisco.h5"
            for t in tasks_of(wildcards.dataset)
        ],
    }


# --- provenance --------------------------------------------------------------------------


def provenance_config(wildcards):
    """The config that produces one dataset, with every schema default filled in."""
    return resolved_dataset_config(config, wildcards.dataset, load_schema(SCHEMA))


# --- targets -----------------------------------------------------------------------------


def all_outputs():
    """The final outputs of every dataset (rule all); everything else is built on the way."""
    leaves = [
        rules.prepare_regions.output,
        rules.summarize_evaluation.output,
        rules.gather_contributions.output,
        rules.verify_contributions.output,
        rules.write_contribution_track.output,
        rules.match_motifs.output,
        rules.call_instances.output,
        rules.record_provenance.output,
    ]
    targets = []
    for ds in DATASETS:
        for out in leaves:
            targets += [str(p).format(dataset=ds) for p in out]
        if dataset_vcf(config["datasets"][ds]):
            targets += [str(p).format(dataset=ds) for p in rules.score_variants.output]
        targets += signal_outputs(ds)
        if SWEEP_POINTS:
            targets += [
                str(p).format(dataset=ds) for p in rules.select_model.output[:2]
            ]
    return targets
