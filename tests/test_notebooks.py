"""The notebooks run top to bottom in smoke mode (copies, so the stored ones keep their
outputs), on the real data; and the two library modules they rest on, against oracles."""
from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon
from scipy import stats as sps

import cli_process
import gluon_resnet as gr
from gluon_resnet.tools import dataflow, propagation
from gluon_resnet.data import to_batch

# nbformat and nbclient are imported where a notebook is read or run, not here: their import
# doubled each worker's collection time, which every test run pays
if TYPE_CHECKING:
    import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "experiments" / "notebooks"
# He et al. 2016 Fig. 4 (c)-(e): nothing follows the addition, so a zero branch is the identity.
NOTHING_AFTER_ADD = {"relu_before_add", "relu_preact", "bn_relu_conv"}
SMOKE_ORDERINGS = ("conv_bn_relu", "relu_preact", "bn_relu_conv")
SMOKE_SEEDS = (0, 1)
RESULT = "RESULT "  # prefix of the line the cell appended to each copy prints


# ---------------------------------------------------------------- running a copy


@pytest.fixture(scope="module")
def kernelspec(tmp_path_factory) -> Path:
    """A kernelspec that runs this very interpreter, found first through JUPYTER_PATH (a
    user-level `python3` kernelspec could otherwise point at another Python)."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (tests)", "language": "python"}))
    return root


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory) -> Path:
    """A results folder written by run_all.py: smoke profile, three orderings, two seeds."""
    out = tmp_path_factory.mktemp("results")
    done = cli_process.run(
        ["--experiment", "orderings", "--profile", "smoke", "--orderings",
         ",".join(SMOKE_ORDERINGS), "--seeds", ",".join(map(str, SMOKE_SEEDS)),
         "--results-dir", str(out)], timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return out / "orderings" / "smoke"


def run_copy(name: str, tmp_path: Path, monkeypatch, kernelspec: Path, check: str,
             rerun: Optional[int] = None, **env: str) -> tuple[nbformat.NotebookNode, dict]:
    """Execute a copy of notebook `name` in smoke mode with the cell `check` appended (it
    prints RESULT + JSON); return the executed copy and that JSON. With `rerun`, the cells from
    that one on are then run again in the same kernel, as a reader reruns a cell and the ones
    below it: the JSON gains "again" (check's second JSON) and "again_text" (what the rerun
    cell printed)."""
    import nbformat
    from nbclient import NotebookClient

    stored = NOTEBOOKS / name
    before = hashlib.sha256(stored.read_bytes()).hexdigest()
    nb = nbformat.read(stored, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import json, sys\n"
        f"print({RESULT!r} + json.dumps(dict({check}, python_prefix=sys.prefix)))"))
    monkeypatch.setenv("JUPYTER_PATH", str(kernelspec))
    monkeypatch.setenv("NOTEBOOK_MODE", "smoke")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # tiny nets: one thread is faster here
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    again = nbformat.v4.new_notebook()  # the cells run again, when `rerun` asks
    try:
        with client.setup_kernel():
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
            if rerun is not None:
                again.cells = copy.deepcopy(nb.cells[rerun:])
                for index, cell in enumerate(again.cells, start=rerun):
                    client.execute_cell(cell, index)
    finally:
        nbformat.write(nb, tmp_path / name)  # the executed copy, for a look after a failure
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == before, "stored notebook changed"
    result = _result(nb)
    assert Path(result["python_prefix"]).resolve() == Path(sys.prefix).resolve(), \
        "the kernel ran another Python than the tests"
    if rerun is not None:
        result["again"] = _result(again)
        result["again_text"] = text_of(nbformat.v4.new_notebook(cells=again.cells[:1]))
    return nb, result


def _result(nb: nbformat.NotebookNode) -> dict:
    return json.loads(text_of(nb).split(RESULT, 1)[1].splitlines()[0])


def nb_cells(name: str) -> list:
    """The stored notebook's cells."""
    import nbformat

    return nbformat.read(NOTEBOOKS / name, as_version=4).cells


def outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def text_of(nb: nbformat.NotebookNode) -> str:
    """Everything the notebook printed (streams and plain-text results)."""
    parts = []
    for o in outputs(nb):
        assert o.output_type != "error", f"{o.ename}: {o.evalue}"
        parts.append(o.get("text", "") or o.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def images(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for o in outputs(nb))


# ---------------------------------------------------------------- the notebooks


@pytest.mark.slow
def test_blocks_notebook(tmp_path, monkeypatch, kernelspec):
    nb, result = run_copy("01_blocks.ipynb", tmp_path, monkeypatch, kernelspec,
                          "identity=identity.to_dict(orient='index')")
    gaps = result["identity"]
    assert set(gaps) == set(gr.ORDERINGS)
    for ordering, row in gaps.items():
        signed = [v for k, v in row.items() if k.startswith("standardised")]
        if ordering in NOTHING_AFTER_ADD:
            assert all(v == 0 for v in row.values()), (ordering, row)
        else:
            assert all(v > 0.1 for v in signed), (ordering, row)  # signed input: ReLU and BN bite
    # On [0, 1] pixels ReLU is the identity, so (a) passes them through; (b)'s BN does not.
    assert gaps["conv_bn_relu"]["[0, 1] pixels, training mode"] == 0
    assert gaps["bn_after_add"]["[0, 1] pixels, training mode"] > 0.1
    text = text_of(nb)
    assert "output == input exactly (max |out - x| = 0 in every column): " \
           "relu_before_add, relu_preact, bn_relu_conv" in text
    assert "bn_relu_conv     conv3 1x1/2    <- relu0   (shortcut)" in text
    assert "conv_bn_relu     conv3 1x1/2    <- x   (shortcut)" in text
    assert "BatchNorm -> Activation -> GlobalAvgPool2D -> Dense" in text
    assert images(nb) >= 1


@pytest.mark.slow
def test_orderings_notebook(tmp_path, monkeypatch, kernelspec, smoke_results):
    nb, result = run_copy(
        "02_orderings.ipynb", tmp_path, monkeypatch, kernelspec,
        "p=compare_at(epoch, OTHER_BASELINE)['Welch p'].to_dict(), rows=len(epochs), "
        "groups=order, report_rows=list(comparison(OTHER_BASELINE).index)",
        RESULTS_DIR=str(smoke_results))
    records = [json.loads(p.read_text()) for p in (smoke_results / "runs").glob("*.json")]
    assert len(records) == len(SMOKE_ORDERINGS) * len(SMOKE_SEEDS)
    assert result["rows"] == sum(len(r["epochs"]) for r in records)
    assert result["groups"] == list(SMOKE_ORDERINGS)  # paper order
    others = [o for o in SMOKE_ORDERINGS if o != "bn_relu_conv"]
    assert result["report_rows"] == others
    # Welch's p recomputed here from the run files with scipy, at the last epoch.
    final = {}
    for r in records:
        final.setdefault(r["config"]["ordering"], []).append(r["epochs"][-1]["test_acc"])
    for ordering in others:
        a, b = final["bn_relu_conv"], final[ordering]
        expected = sps.ttest_ind(b, a, equal_var=False).pvalue
        assert result["p"][ordering] == pytest.approx(expected, rel=1e-6, nan_ok=True)
    assert images(nb) >= 2


@pytest.mark.slow
def test_signal_notebook(tmp_path, monkeypatch, kernelspec):
    check = ("orderings=sorted(signals.ordering.unique()), steps=sorted(int(s) for s in "
             "signals.step.unique()), blocks=blocks[blocks.step == 0].groupby('ordering', "
             "observed=True).size().to_dict(), finite_at_init=bool(signals[signals.step == 0]"
             "[['act_std', 'grad_norm', 'param_grad_norm']].notna().all().all())")
    nb, result = run_copy("03_signal_propagation.ipynb", tmp_path, monkeypatch, kernelspec, check)
    assert result["orderings"] == sorted(gr.ORDERINGS)
    assert result["steps"] == [0, 3]
    assert set(result["blocks"].values()) == {9}  # cifar20: 3 stages of (20 - 2) / 6 blocks
    assert result["finite_at_init"]
    assert images(nb) >= 1


@pytest.mark.slow
def test_ablation_notebook(tmp_path, monkeypatch, kernelspec):
    """04 declares its ablation, trains it until decided through the API into RESULTS_DIR, and
    shows the report's verdicts, per-seed table and figures; run again, it trains nothing."""
    results = tmp_path / "results"
    check = ("verdicts=verdicts[['comparison', 'verdict', 'seeds', 'sentence']].to_dict("
             "orient='records'), per_seed=per_seed.reset_index().to_dict(orient='records'), "
             "folder=str(results.folder), figures=sorted(results.figures), ok=results.ok")
    run_cell = next(i for i, c in enumerate(nb_cells("04_ablation.ipynb"))
                    if c.source.startswith("results = api.run("))
    nb, result = run_copy("04_ablation.ipynb", tmp_path, monkeypatch, kernelspec, check,
                          rerun=run_cell, RESULTS_DIR=str(results))
    folder = Path(result["folder"])
    assert folder == results / "momentum" / "smoke" and result["ok"]
    records = [json.loads(p.read_text()) for p in (folder / "runs").glob("*.json")]
    # two looks of 2 seeds in smoke: 2 orderings x 2 momenta x seeds 0 and 1
    assert sorted((r["config"]["momentum"], r["config"]["ordering"], r["config"]["seed"])
                  for r in records) == sorted((m, o, s) for m in (0.0, 0.9) for s in (0, 1)
                                              for o in ("conv_bn_relu", "bn_relu_conv"))
    assert all(r["status"] == "completed" for r in records)
    report = (folder / "report.md").read_text()
    assert [v["comparison"] for v in result["verdicts"]] == [
        "bn_relu_conv · momentum=0.0", "bn_relu_conv · momentum=0.9"]
    for v in result["verdicts"]:
        assert v["seeds"] == 2 and v["sentence"] in report
    final = {(r["config"]["momentum"], r["config"]["ordering"], r["config"]["seed"]):
             r["epochs"][-1]["test_acc"] for r in records}
    for row in result["per_seed"]:  # in %, from the records' final test accuracy
        for o in ("conv_bn_relu", "bn_relu_conv"):
            assert row[o] == pytest.approx(100 * final[row["momentum"], o, row["seed"]])
    assert {"test_acc", "train_loss"} <= set(result["figures"])
    assert images(nb) >= 2
    assert (results / "momentum" / "experiment.toml").exists()  # the report's source
    assert "report failed" not in text_of(nb)  # a report drawn inside a notebook's kernel
    # the run cell again, in the same kernel: it trains nothing
    assert result["again"]["ok"] and "report failed" not in result["again_text"]
    assert "training" not in result["again_text"]
    assert "already on disk" in result["again_text"], result["again_text"]
    assert result["again"]["verdicts"] == result["verdicts"]


# ---------------------------------------------------------------- the library helpers


@pytest.fixture(scope="module")
def probe(small_data):
    X = to_batch(small_data.train_images[:16], size=28)
    y = mx.np.array(small_data.train_labels[:16], dtype=np.int32)
    return X, y


@pytest.mark.parametrize("ordering", sorted(gr.ORDERINGS))
def test_measure_matches_one_backward_pass(ordering, probe):
    """Block-by-block back-propagation gives the gradients of one ordinary backward pass."""
    X, y = probe
    mx.random.seed(0)
    net = gr.resnet("cifar20", ordering, width=0.25)
    net.initialize(mx.init.Xavier())
    net(X)
    net.hybridize(static_alloc=True, static_shape=True)
    with autograd.record(train_mode=True):
        logits = net(X)
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(logits, y).mean()
    loss.backward()
    expected = {name: np.sqrt(sum(float((p.grad().asnumpy().astype(np.float64) ** 2).sum())
                                  for p in block.collect_params().values()
                                  if p.grad_req != "null"))
                for name, _, block in propagation.units(net)}
    z = logits.asnumpy().astype(np.float64)  # d(mean cross-entropy)/d(logits), by hand
    soft = np.exp(z - z.max(1, keepdims=True))
    soft /= soft.sum(1, keepdims=True)
    soft[np.arange(len(z)), y.asnumpy()] -= 1
    stats_before = [p.data().asnumpy() for p in net.collect_params().values()
                    if p.grad_req == "null"]
    net.collect_params().zero_grad()  # what measure reports must be its own gradients

    rows = propagation.measure(net, X, y)

    assert [r["unit"] for r in rows] == ["stem"] + [f"stage{s}.{b}" for s in (1, 2, 3)
                                                    for b in (1, 2, 3)] + ["head"]
    for r in rows:
        assert r["param_grad_norm"] == pytest.approx(expected[r["unit"]], rel=1e-3), r["unit"]
    assert rows[-1]["grad_norm"] == pytest.approx(np.linalg.norm(soft / len(z)), rel=1e-4)
    assert rows[0]["loss"] == pytest.approx(loss.item(), rel=1e-5)
    stats_after = [p.data().asnumpy() for p in net.collect_params().values()
                   if p.grad_req == "null"]
    assert all(np.array_equal(a, b) for a, b in zip(stats_before, stats_after)), \
        "measure must leave BN running statistics as they were"


# Operation sequences of He et al. 2016 Fig. 4, written out here independently.
FIG4 = {
    "conv_bn_relu": ["conv", "BN", "ReLU", "conv", "BN", "+", "ReLU"],
    "bn_after_add": ["conv", "BN", "ReLU", "conv", "+", "BN", "ReLU"],
    "relu_before_add": ["conv", "BN", "ReLU", "conv", "BN", "ReLU", "+"],
    "relu_preact": ["ReLU", "conv", "BN", "ReLU", "conv", "BN", "+"],
    "bn_relu_conv": ["BN", "ReLU", "conv", "BN", "ReLU", "conv", "+"],
}


@pytest.mark.parametrize("ordering", sorted(FIG4))
def test_dataflow_traces_fig4(ordering):
    nodes = dataflow.trace(gr.Residual(4, ordering=ordering))
    assert [n.kind for n in nodes[1:]] == FIG4[ordering]
    add = next(n for n in nodes if n.kind == "+")
    assert "x" in add.inputs  # the identity shortcut carries the raw input
    proj = dataflow.trace(gr.Residual(4, use_1x1conv=True, strides=2, ordering=ordering))
    shortcut = [n for n in proj if n.name not in dataflow.main_path(proj)]
    assert [n.label for n in shortcut] == ["conv3 1x1/2"]
    source = next(n for n in proj if n.name == shortcut[0].inputs[0])
    assert source.kind == ("ReLU" if ordering in gr.PREACT else "input")
