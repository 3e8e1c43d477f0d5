"""The conda environments in envs/: exact pins that agree with requirements.txt, and a
`conda:` directive on every rule.

No conda channel is reachable from CI, so the environments cannot be built here; these checks
make sure that what a cluster user builds with `--sdm conda` is what the tests run on.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))
CHANNELS = ["conda-forge", "bioconda", "nodefaults"]

# Same package, different name: the venv has the CPU-only wheel, the cluster env the CUDA one.
SAME_PACKAGE = {"tensorflow": "tensorflow-cpu"}

CONDA_PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)==?(?P<version>[0-9][A-Za-z0-9_.+]*)$")
PIP_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9_.-]+)(\[[A-Za-z0-9_,.-]+\])?==(?P<version>[0-9][A-Za-z0-9_.+]*)$"
)


def normalise(name: str) -> str:
    """PEP 503 name normalisation (conda names are lower case with dashes as well)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_pins(path: Path = REPO / "requirements.txt") -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[normalise(name)] = version.strip()
    return pins


def env_pins(path: Path) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """Return (conda pins, pip pins, unpinned lines) of one environment file."""
    env = yaml.safe_load(path.read_text())
    conda, pip, bad = {}, {}, []
    for dep in env.get("dependencies", []):
        if isinstance(dep, dict):
            for spec in dep.get("pip", []):
                m = PIP_PIN.match(str(spec).replace(" ", ""))
                if m:
                    pip[normalise(m["name"])] = m["version"]
                else:
                    bad.append(f"pip: {spec}")
            continue
        m = CONDA_PIN.match(str(dep).replace(" ", ""))
        # `name=1.2.*` or a bare `name` are not exact pins.
        if m and "*" not in str(dep):
            conda[normalise(m["name"])] = m["version"]
        else:
            bad.append(str(dep))
    return conda, pip, bad


def test_there_are_environment_files():
    names = {p.stem for p in ENV_FILES}
    assert {"sequences", "tensorflow", "motifs"} <= names, names


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_environment_is_exactly_pinned(path):
    env = yaml.safe_load(path.read_text())
    assert env["channels"] == CHANNELS, f"{path.name}: channels must be {CHANNELS}"
    conda, pip, bad = env_pins(path)
    assert not bad, f"{path.name}: dependencies without an exact pin: {bad}"
    assert "python" in conda, f"{path.name}: pin python"
    # Snakemake's script preamble imports snakemake from the host's install: same minor version.
    assert conda["python"].split(".")[:2] == [str(v) for v in sys.version_info[:2]]
    if pip:
        assert "pip" in conda, f"{path.name}: has a pip section, so pin pip itself"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_pins_agree_with_requirements(path):
    required = requirement_pins()
    conda, pip, _ = env_pins(path)
    disagree = []
    for name, version in {**conda, **pip}.items():
        local = required.get(SAME_PACKAGE.get(name, name))
        if local is not None and local != version:
            disagree.append(f"{name}: env {version} != requirements.txt {local}")
    assert not disagree, f"{path.name}: {disagree}"
    # The Python packages are the point of the envs: each must be one the tests run on.
    unknown = [n for n in pip if SAME_PACKAGE.get(n, n) not in required]
    assert not unknown, f"{path.name}: pip packages not in requirements.txt: {unknown}"


def test_bedtools_pin_matches_installed_bedtools():
    exe = shutil.which("bedtools")
    if exe is None:
        pytest.skip("bedtools is not installed")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    installed = re.search(r"v?(\d+\.\d+)", out).group(1)
    for path in ENV_FILES:
        conda, _, _ = env_pins(path)
        if "bedtools" in conda:
            assert conda["bedtools"].startswith(installed), (path.name, conda["bedtools"], out)


def test_requirement_pins_parser_rejects_ranges(tmp_path):
    """The pin check itself must fail on loose specs, or the tests above prove nothing."""
    env = tmp_path / "loose.yaml"
    env.write_text(
        "channels: [conda-forge, bioconda, nodefaults]\n"
        "dependencies:\n  - python=3.11.*\n  - bedtools>=2.30\n  - samtools\n"
        "  - pip:\n      - numpy>=2\n      - pandas==3.1.1\n"
    )
    conda, pip, bad = env_pins(env)
    assert sorted(bad) == sorted(["python=3.11.*", "bedtools>=2.30", "samtools", "pip: numpy>=2"])
    assert pip == {"pandas": "3.1.1"}


# --- every rule has a conda: directive that names an existing env file -----------------

RULE_START = re.compile(r"^(?P<indent>[ \t]*)(rule|checkpoint)\s+(?P<name>\w+)\s*:", re.M)
CONDA_LINE = re.compile(r"^\s+conda:\s*\n?\s*[\"'](?P<path>[^\"']+)[\"']", re.M)


def rule_blocks(text: str) -> dict[str, str]:
    """Map rule name -> its text: the lines after `rule NAME:` that are indented deeper.

    Rules may sit inside `if`/`else` blocks, so a rule ends at the first non-empty line that
    is indented no deeper than its own `rule` line.
    """
    blocks = {}
    for m in RULE_START.finditer(text):
        depth = len(m["indent"].expandtabs())
        body = []
        for line in text[m.end() :].splitlines()[1:]:
            if line.strip() and len(line) - len(line.lstrip()) <= depth:
                break
            body.append(line)
        blocks[m["name"]] = "\n".join(body)
    return blocks


def smk_files() -> list[Path]:
    return sorted((REPO / "rules").glob("*.smk"))


def test_rule_parser_finds_conda_directives():
    text = (
        'rule a:\n    input:\n        "x",\n    conda:\n        "../envs/motifs.yaml"\n'
        '    shell:\n        "true"\n\n\nrule b:\n    shell:\n        "true"\n\n\n'
        'if x:\n\n    rule c:\n        conda:\n            "../envs/tensorflow.yaml"\n\n'
        'rule d:\n    input:\n        "y",\n'
    )
    blocks = rule_blocks(text)
    assert CONDA_LINE.search(blocks["a"])["path"] == "../envs/motifs.yaml"
    assert CONDA_LINE.search(blocks["b"]) is None
    assert CONDA_LINE.search(blocks["c"])["path"] == "../envs/tensorflow.yaml"
    assert CONDA_LINE.search(blocks["d"]) is None


@pytest.mark.parametrize("smk", smk_files(), ids=lambda p: p.name)
def test_every_rule_has_an_existing_conda_env(smk):
    problems = []
    for name, body in rule_blocks(smk.read_text()).items():
        m = CONDA_LINE.search(body)
        if m is None:
            problems.append(f"rule {name}: no conda: directive")
            continue
        env = (smk.parent / m["path"]).resolve()
        if not env.is_file() or env.parent != REPO / "envs":
            problems.append(f"rule {name}: conda env {m['path']} is not a file in envs/")
    assert not problems, f"{smk.name}: {problems}"


# --- every rule's env holds what its adapter imports ----------------------------------------

SCRIPT_LINE = re.compile(r"^\s+script:\s*\n?\s*[\"'](?P<path>[^\"']+)[\"']", re.M)


def module_imports(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports (function-level imports too)."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def third_party_imports(script: Path) -> set[str]:
    """Third-party top-level packages an adapter needs, following peak2motif's own modules."""
    lib = REPO / "scripts"
    seen, todo, outside = set(), [script], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in module_imports(path):
            top = name.split(".")[0]
            if top == "peak2motif":
                for cand in (lib / (name.replace(".", "/") + ".py"),
                             lib / name.replace(".", "/") / "__init__.py"):
                    if cand.is_file():
                        todo.append(cand)
            elif top not in sys.stdlib_module_names and top != "snakemake":
                outside.add(top)
    return outside


def installed_closure(dists: set[str]) -> set[str]:
    """``dists`` and everything they require, from the installed metadata."""
    import importlib.metadata as md

    out, todo = set(), list(dists)
    while todo:
        d = normalise(todo.pop())
        if d in out:
            continue
        out.add(d)
        try:
            reqs = md.requires(d) or []
        except md.PackageNotFoundError:
            continue
        todo += [re.split(r"[ ;<>=!~\[(]", r, maxsplit=1)[0] for r in reqs if "extra ==" not in r]
    return out


@pytest.mark.parametrize("smk", smk_files(), ids=lambda p: p.name)
def test_every_rule_env_holds_what_its_script_imports(smk):
    """A rule that imports pysam must run in an env with pysam: checked statically, since no
    conda channel is reachable to build the envs."""
    import importlib.metadata as md

    providers = md.packages_distributions()
    problems = []
    for name, body in rule_blocks(smk.read_text()).items():
        script, env = SCRIPT_LINE.search(body), CONDA_LINE.search(body)
        if script is None or env is None:
            continue
        conda, pip, _ = env_pins((smk.parent / env["path"]).resolve())
        pinned = {SAME_PACKAGE.get(d, d) for d in {*conda, *pip}}
        available = installed_closure(pinned)
        for module in sorted(third_party_imports((smk.parent / script["path"]).resolve())):
            dists = {normalise(d) for d in providers.get(module, [module])}
            if not dists & available:
                problems.append(f"rule {name} imports {module} ({'/'.join(sorted(dists))}), "
                                f"not in {env['path']}")
    assert not problems, problems
