"""Helpers shared by all rules: config validation, dataset look-ups, target lists."""

import os
import re
import sys
from pathlib import Path

from snakemake.common.configfile import load_configfile
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config, validate

sys.path.insert(0, str(Path(workflow.basedir, "scripts")))
# TensorFlow's C++ start-up notices (oneDNN, CPU features) drown the rule logs; warnings and
# errors still show. Jobs inherit this, locally and on SLURM (where they re-read this file).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from peak2motif.config import check_config
from peak2motif.errors import InputError

SCHEMA = Path(workflow.basedir, "config", "config.schema.yaml")


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


_replace_demo_config()
try:
    check_config(config, SCHEMA)
except InputError as err:
    raise WorkflowError(f"Invalid config: {err}") from None
validate(config, schema="../config/config.schema.yaml")

SAFE_NAME = r"[A-Za-z0-9_-]+"


def _check_dataset_names():
    for section in ("datasets", "simulate"):
        for name in config.get(section, {}):
            if not re.fullmatch(SAFE_NAME, str(name)):
                raise WorkflowError(
                    f"config key '{section}: {name}' is not a safe dataset name: it becomes a "
                    "folder under results/, so use letters, digits, '_' and '-' only "
                    f"(for example '{re.sub('[^A-Za-z0-9_-]+', '_', str(name)).strip('_') or 'my_data'}')."
                )


_check_dataset_names()

DATASETS = list(config["datasets"])
SIMULATIONS = list(config.get("simulate", {}))


wildcard_constraints:
    dataset="|".join(re.escape(d) for d in DATASETS),
    sim="|".join(re.escape(s) for s in SIMULATIONS) or "(?!)",
    split="train|valid|test",


def dataset_config(name):
    """The config of one dataset, with schema defaults filled in."""
    return config["datasets"][name]


def peak_files(wildcards):
    """Mapping task name -> peak file; a single file becomes the task 'peaks'."""
    peaks = dataset_config(wildcards.dataset)["peaks"]
    if isinstance(peaks, str):
        return {"peaks": peaks}
    return dict(peaks)


def genome_file(wildcards):
    return dataset_config(wildcards.dataset)["genome"]


def _simulated_paths():
    return {
        f"resources/{sim}/{name}"
        for sim in SIMULATIONS
        for name in ("genome.fa", "peaks.narrowPeak")
    }


def _check_inputs_exist():
    """Fail at start-up, not hours later, when a dataset names a file that does not exist."""
    made_here = _simulated_paths()
    for name, ds in config["datasets"].items():
        peaks = ds["peaks"] if isinstance(ds["peaks"], dict) else {"peaks": ds["peaks"]}
        files = [("genome", ds["genome"])] + [
            (f"peaks: {t}", p) for t, p in peaks.items()
        ]
        if ds.get("blacklist"):
            files.append(("blacklist", ds["blacklist"]))
        for key, path in files:
            if path not in made_here and not Path(path).exists():
                raise WorkflowError(
                    f"config key 'datasets: {name}: {key}' points to '{path}', which does not "
                    "exist. Give a path relative to the working directory "
                    f"({Path.cwd()}) or an absolute path."
                )


_check_inputs_exist()


def all_outputs():
    """Final targets of every stage for every dataset (rule all)."""
    targets = []
    for ds in DATASETS:
        targets += [
            f"results/{ds}/sequences/regions.tsv",
            f"results/{ds}/sequences/summary.tsv",
            f"results/{ds}/sequences/summary.html",
            f"results/{ds}/sequences/gc.png",
            f"results/{ds}/sequences/train.h5",
            f"results/{ds}/sequences/valid.h5",
            f"results/{ds}/sequences/test.h5",
        ]
        targets += training_outputs(ds)
        targets += [
            f"results/{ds}/contributions/contributions.h5",
            f"results/{ds}/contributions/checks.tsv",
            f"results/{ds}/contributions/checks.html",
            f"results/{ds}/contributions/top_sequences.png",
            f"results/{ds}/contributions/contributions.bw",
        ]
        targets += [
            f"results/{ds}/motifs/modisco.h5",
            f"results/{ds}/motifs/motifs.tsv",
            f"results/{ds}/motifs/patterns.tsv",
            f"results/{ds}/motifs/motifs.meme",
            f"results/{ds}/motifs/logos",
            f"results/{ds}/motifs/motifs.html",
        ]
        targets += provenance_outputs(ds)
    return targets


# --- attribution stage helpers ---


def planted_truth(wildcards):
    """{"planted": resources/SIM/planted.tsv} when the dataset's genome is a simulated one."""
    genome = dataset_config(wildcards.dataset)["genome"]
    for sim in SIMULATIONS:
        if genome == f"resources/{sim}/genome.fa":
            return {"planted": f"resources/{sim}/planted.tsv"}
    return {}


# --- motifs stage helpers ---


def motif_match_inputs(wildcards):
    """Optional inputs of match_motifs: the demo's truth table and the user's MEME file."""
    inputs = dict(planted_truth(wildcards))
    meme = config.get("motifs", {}).get("meme_file")
    if meme:
        inputs["meme_file"] = meme
    return inputs


# --- training stage helpers ---

from snakemake.utils import Paramspace

from peak2motif.sweep import (
    apply_overrides,
    check_point_names,
    grid_table,
    point_overrides,
)


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
    for over in overrides:
        try:
            point = apply_overrides(
                {"model": config["model"], "training": config["training"]}, over
            )
            check_config({**config, **point}, SCHEMA)
        except InputError as err:
            raise WorkflowError(f"Invalid sweep point {over}: {err}") from None
    return space, dict(zip(names, overrides))


SWEEP, SWEEP_POINTS = _training_setup()
SWEEP_POINT_PATTERN = "|".join(re.escape(p) for p in SWEEP_POINTS) or "(?!)"


def training_inputs(wildcards):
    """Split files, plus the model of `init_from` for transfer learning."""
    inputs = {
        "train": f"results/{wildcards.dataset}/sequences/train.h5",
        "valid": f"results/{wildcards.dataset}/sequences/valid.h5",
    }
    other = dataset_config(wildcards.dataset).get("init_from")
    if other:
        inputs["init"] = f"results/{other}/model/model.keras"
    return inputs


def frozen_convolutions(wildcards):
    """Whether the conv layers copied by init_from stay frozen."""
    ds = dataset_config(wildcards.dataset)
    return bool(ds.get("init_from") and ds.get("freeze_convolutions"))


def sweep_point_overrides(wildcards):
    """{dotted config key: value} of one sweep point."""
    return SWEEP_POINTS[wildcards.point]


def training_outputs(ds):
    """Final targets of the training stage for dataset `ds`."""
    targets = [
        f"results/{ds}/model/model.keras",
        f"results/{ds}/model/model.h5",
        f"results/{ds}/evaluation/metrics.tsv",
        f"results/{ds}/evaluation/metrics.html",
        f"results/{ds}/evaluation/curves.png",
        f"results/{ds}/evaluation/training_curves.png",
    ]
    if SWEEP_POINTS:
        targets += [
            f"results/{ds}/sweep/summary.tsv",
            f"results/{ds}/sweep/summary.html",
        ]
    return targets


# --- provenance stage helpers ---

from peak2motif.config import load_schema
from peak2motif.provenance import dataset_config as resolved_dataset_config


def provenance_config(wildcards):
    """The config that produces one dataset, with every schema default filled in."""
    return resolved_dataset_config(config, wildcards.dataset, load_schema(SCHEMA))


def provenance_outputs(ds):
    """Final targets of the provenance stage for dataset `ds`."""
    return [
        f"results/{ds}/provenance/config.yaml",
        f"results/{ds}/provenance/versions.tsv",
        f"results/{ds}/provenance/provenance.html",
    ]


# --- data stage helpers ---

from peak2motif.regions import resolve_task_type


def simulation_config(wildcards):
    """The `simulate: SIM` section (schema defaults filled in)."""
    return config["simulate"][wildcards.sim]


def region_inputs(wildcards):
    """Genome (with its index when simulated), peak files in task order, optional blacklist."""
    ds = dataset_config(wildcards.dataset)
    inputs = {"genome": ds["genome"], "peaks": list(peak_files(wildcards).values())}
    if ds["genome"] in _simulated_paths():
        inputs["fai"] = ds["genome"] + ".fai"
    if ds.get("blacklist"):
        inputs["blacklist"] = ds["blacklist"]
    return inputs


def peak_tasks(wildcards):
    """Task names, in the order of the `peaks` input of prepare_regions."""
    return list(peak_files(wildcards))


def task_type(wildcards):
    """binary / multitask / multiclass / regression (`auto` resolved)."""
    ds = dataset_config(wildcards.dataset)
    return resolve_task_type(ds.get("task", "auto"), len(peak_files(wildcards)))


def dataset_params(wildcards):
    """The `datasets: NAME` section (schema defaults filled in)."""
    return dataset_config(wildcards.dataset)
