"""The store and the record: atomic writes under a concurrent reader, quarantine, and every
way a record on disk can be malformed."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from gluon_resnet.atomic import write_json_atomic
from gluon_resnet.config import RunConfig
from gluon_resnet.records import CorruptRecord, Epoch, Run, new_record
from gluon_resnet.store import RunStore, read_record

CFG = RunConfig(width=0.0625, size=32, epochs=2)


def record(**changes) -> dict:
    return {**new_record(CFG, "e", "p", {}).to_dict(), **changes}


def test_a_concurrent_reader_never_sees_half_a_file(tmp_path):
    path = tmp_path / "r.json"
    big = {"values": list(range(50_000))}  # ~0.3 MB: many write() calls per file
    small = {"values": [1]}
    write_json_atomic(path, small)
    stop, seen, errors = threading.Event(), [], []

    def read() -> None:
        while not stop.is_set():
            try:
                seen.append(len(json.loads(path.read_text())["values"]))
            except ValueError as e:  # a torn file would land here
                errors.append(e)

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(60):
        write_json_atomic(path, big if i % 2 else small)
    stop.set()
    reader.join()
    assert not errors and set(seen) <= {1, 50_000} and len(seen) > 10
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_quarantine_moves_the_file_aside_and_drops_its_checkpoint(tmp_path):
    store = RunStore(tmp_path / "e" / "p")
    store.write(record())
    ckpt = store.checkpoint_dir(CFG.run_id)
    ckpt.mkdir(parents=True)
    (ckpt / "epoch-001.params").write_bytes(b"x")
    store.record_path(CFG.run_id).write_text('{"schema_version": 1, "run_')  # torn
    lines: list[str] = []
    store.quarantine(CFG.run_id, lines.append)
    assert not store.record_path(CFG.run_id).exists() and not ckpt.exists()
    kept = list((store.root / "corrupt").glob(f"{CFG.run_id}.*.json"))
    assert len(kept) == 1 and kept[0].read_text().startswith('{"schema_version": 1')
    assert "corrupted run file" in lines[0] and "not readable JSON" in lines[0]


@pytest.mark.parametrize("change, message", [
    ({"schema_version": 2}, "schema_version 2, this code reads 1"),
    ({"status": "paused"}, "status 'paused' is not one of"),
    ({"epochs": [{"epoch": 1}]}, "epoch entry 0 is malformed (missing ['train_loss'"),
    ({"epochs": [{"epoch": 2, "train_loss": 1, "train_acc": 1, "test_loss": 1, "test_acc": 1,
                  "lr": 1, "seconds": 1, "images_per_sec": 1}]}, "epoch entry 0 is malformed"),
    ({"epochs": "none"}, "epochs is not a list"),
    ({"config": [1]}, "config is not an object"),
    ({"config": {**CFG.to_dict(), "ordering": "v9"}}, "config is not a valid RunConfig"),
    ({"run_id": "other"}, "holds the record of run 'other'"),
])
def test_malformed_records_are_named_and_explained(tmp_path, change, message):
    path = tmp_path / f"{CFG.run_id}.json"
    path.write_text(json.dumps(record(**change)))
    with pytest.raises(CorruptRecord) as err:
        read_record(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value)
    listing = RunStore(tmp_path / "store")
    listing.runs_dir.mkdir(parents=True)
    (listing.runs_dir / path.name).write_text(path.read_text())
    assert listing.records() == [] and message in listing.problems()[0]


def trained(status: str = "completed", epochs: int = 2, **last) -> dict:
    """A record of CFG with `epochs` plausible epochs, the last one changed by `last`."""
    eps = [{"epoch": e, "train_loss": 2.0 / e, "train_acc": 0.3, "test_loss": 2.1,
            "test_acc": 0.25, "lr": 0.05, "seconds": 1.0, "images_per_sec": 300.0,
            "precise_test_loss": 1.9, "precise_test_acc": 0.3, "clipped_steps": 0,
            "grad_norm": {"stem": 1.5, "head": None}} for e in range(1, epochs + 1)]
    eps[-1:] = [{**e, **last} for e in eps[-1:]]
    return record(status=status, epochs=eps, params=44_898, wall_seconds=3.0)


@pytest.mark.parametrize("raw, message", [
    (trained(test_acc=1.5), "epoch 2's test_acc is 1.5, must be in [0, 1]"),
    (trained(test_acc="0.99"), "epoch 2's test_acc is '0.99', not a number"),
    (trained(test_acc=None), "epoch 2's test_acc is None, not a number"),
    (trained(test_acc=float("nan")), "epoch 2's test_acc is nan, not a finite number"),
    (trained(train_acc=True), "epoch 2's train_acc is True, not a number"),
    (trained(train_loss=-0.5), "epoch 2's train_loss is -0.5, must be >= 0"),
    (trained(test_loss=float("inf")), "epoch 2's test_loss is inf, not a finite number"),
    (trained(precise_test_acc=2.0), "epoch 2's precise_test_acc is 2.0, must be in [0, 1]"),
    (trained(clipped_steps=1.5), "epoch 2's clipped_steps is 1.5, not an integer or null"),
    (trained(grad_norm={"head": "x"}),
     "epoch 2's grad_norm is {'head': 'x'}, not an object whose values are each (a number or null)"),
    (trained(lr=-0.1), "epoch 2's lr is -0.1, must be >= 0"),
    ({**trained(), "params": "44898"}, "params is '44898', not an integer or null"),
    ({**trained(), "wall_seconds": -1}, "wall_seconds is -1, must be >= 0"),
    (trained(epochs=3), "a completed run with 3 epochs, its config trains 2"),
    (trained(epochs=1), "a completed run with 1 epochs, its config trains 2"),
    (trained("running", epochs=3), "a running run with 3 epochs, its config trains 2"),
    (trained(test_loss=None), "a completed run with a non-finite (null) loss in epochs [2]"),
    (trained("diverged"), "a diverged run with a non-finite (null) loss in epochs none"),
])
def test_records_whose_values_training_never_writes_are_refused(tmp_path, raw, message):
    """Values outside their type or range, and epochs the config or status cannot have: each
    is named, and the record left out of what the store reads (so of every verdict)."""
    store = RunStore(tmp_path / "e" / "p")
    store.runs_dir.mkdir(parents=True)
    path = store.record_path(CFG.run_id)
    path.write_text(json.dumps(raw))
    with pytest.raises(CorruptRecord) as err:
        store.load(CFG.run_id)
    assert str(err.value).startswith(f"{path}: {message}")
    assert store.records() == [] and store.problems() == [str(err.value)]


@pytest.mark.parametrize("raw", [
    trained(), trained("running", epochs=1), trained("failed", epochs=0),
    trained("interrupted", epochs=2), trained("diverged", epochs=1, train_loss=None),
    trained(precise_test_loss=None, grad_norm=None, clipped_steps=None, test_acc=1),
])
def test_records_training_writes_are_read(tmp_path, raw):
    """The checks refuse no record training can write: a run stopped early, one that diverged
    (a null loss in its last epoch), a non-finite precise loss, an integer accuracy."""
    store = RunStore(tmp_path / "e" / "p")
    store.write(raw)
    assert store.load(CFG.run_id).to_dict() == raw and store.problems() == []


COMMITTED = sorted((Path(__file__).resolve().parents[1] / "results").glob("*/*/runs/*.json"))


def test_every_committed_record_reads_typed_and_writes_back_byte_identical(tmp_path):
    """The typed record is a view: each committed run file, read as a Run and written by the
    store's writer, is the same bytes (key order, absent and unknown keys, and an older
    record's config without later fields all kept)."""
    assert COMMITTED
    for path in COMMITTED:
        run = RunStore(path.parents[1]).load(path.stem)
        assert isinstance(run, Run) and run.run_id == path.stem
        assert all(isinstance(e, Epoch) for e in run.epochs)
        store = RunStore(tmp_path / path.parents[2].name / path.parents[1].name)
        store.write(run)
        assert store.record_path(run.run_id).read_bytes() == path.read_bytes(), path
        assert Run.from_dict(run.to_dict()) == run


def test_a_typed_record_answers_what_readers_ask(tmp_path):
    """Typed fields and the readers' questions, for a record made in code and one with keys
    this code does not know (kept, and written back)."""
    raw = record(status="completed", epochs=[
        {"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "test_loss": 1.1, "test_acc": 0.4,
         "lr": 0.1, "seconds": 2.0, "images_per_sec": 9.0, "grad_norm": {"head": 0.3},
         "new_measure": 7}], future_key={"x": 1})
    run = Run.from_dict(raw)
    assert (run.ordering, run.arch, run.seed) == (CFG.ordering, CFG.arch, CFG.seed)
    assert run.config == CFG and run.done and run.last.test_acc == 0.4
    assert run.series("test_acc") == [0.4] and run.series("new_measure") == [7]
    assert run.last.value("grad_norm") == {"head": 0.3} and run.last.value("absent") is None
    assert run.extra == {"future_key": {"x": 1}} and run.to_dict() == raw
    assert list(run.to_dict()) == list(raw)
    fresh = Run(schema_version=1, run_id=CFG.run_id, config=CFG, status="running", epochs=())
    assert list(fresh.to_dict()) == ["schema_version", "run_id", "config", "status", "epochs",
                                     "environment"]
    RunStore(tmp_path).write(fresh)
    assert RunStore(tmp_path).load(CFG.run_id) == fresh
