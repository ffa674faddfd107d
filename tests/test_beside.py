"""Another study's runs beside this one's (Experiment.beside): seed_notebook_final's report
sets each ordering beside the same ordering of seed_notebook, seed by seed, from the two
folders' run files, and decides nothing on it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from experiments import EXPERIMENTS
from gluon_resnet.analysis.groups import run_metrics
from gluon_resnet.reporting.report import write_report
from gluon_resnet.reporting.tables import fmt_pct, fmt_pts
from gluon_resnet.runs import api
from gluon_resnet.store import RunStore

pytestmark = pytest.mark.slow  # trains 4 smoke runs
METRIC = EXPERIMENTS["seed_notebook_final"].analysis.metric
HEAD = "## Beside `seed_notebook` (described, not decided)"


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> Path:
    """seed_notebook and seed_notebook_final, smoke profile (seed 0), one results folder."""
    results = tmp_path_factory.mktemp("beside")
    for name in ("seed_notebook", "seed_notebook_final"):
        api.run(EXPERIMENTS[name], profile="smoke", results_dir=results,
                executor="sequential", progress=False)
    return results


def values(folder: Path) -> dict[tuple[str, int], float]:
    """(ordering, seed) -> the declared metric, from the folder's run files."""
    return {(r.config.ordering, r.seed): run_metrics(r)[METRIC]
            for r in RunStore(folder).records()}


def section(report: Path) -> str:
    text = report.read_text()
    assert HEAD in text, text
    return text.split(HEAD, 1)[1].split("\n## ", 1)[0]


def test_each_ordering_is_set_beside_the_same_ordering_seed_by_seed(both):
    final, notebook = both / "seed_notebook_final" / "smoke", both / "seed_notebook" / "smoke"
    text = section(final / "report.md")
    ours, theirs = values(final), values(notebook)
    row = next(line for line in text.splitlines() if line.startswith("| 0 |"))
    expected = []
    for ordering in ("conv_bn_relu", "bn_relu_conv"):
        a, b = ours[ordering, 0], theirs[ordering, 0]
        expected += [fmt_pct(a), fmt_pct(b), fmt_pts(a - b)]
    assert [c.strip() for c in row.strip("|").split("|")][1:] == expected
    # the rule gives conv_bn_relu no final BN-ReLU: the same network, seed and machine
    # retrain to the same record, so its difference is exactly zero
    assert ours["conv_bn_relu", 0] == theirs["conv_bn_relu", 0]
    assert "`final_bn_relu` None here, False there" in text
    assert "No test and no verdict" in text


def test_without_the_other_folder_it_says_how_to_train_it(both, tmp_path):
    alone = tmp_path / "seed_notebook_final" / "smoke"
    shutil.copytree(both / "seed_notebook_final" / "smoke", alone)
    text = section(write_report(alone))
    assert "python run_all.py --experiment seed_notebook --profile smoke" in text


def test_an_edited_name_is_not_followed_out_of_the_results_folder(both, tmp_path):
    alone = tmp_path / "seed_notebook_final" / "smoke"
    shutil.copytree(both / "seed_notebook_final" / "smoke", alone)
    info = json.loads((alone / "experiment.json").read_text())
    (alone / "experiment.json").write_text(json.dumps({**info, "beside": "../../elsewhere"}))
    text = write_report(alone).read_text()
    assert "not an experiment's name" in text and "elsewhere/" not in text.split("beside")[-1]
