"""The lab report: `report --quick` writes README.md with all 7 sections, its figures and tables, the same
seeds give the same text, and the prose and verdicts follow the numbers."""

import contextlib
import io
import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from tinygrad_lab.lab import cli, report, runs
from tinygrad_lab.lab.config import TrainConfig
from tinygrad_lab.lab.report import prose, runner, statistics
from tinygrad_lab.lab.report.context import Context

TITLES = [
    "The lab's settings on linear and XOR",
    "Learning rates",
    "Hidden units",
    "Without activation functions",
    "Activation functions",
    "Optimizers",
    "Loss: MSE vs binary cross-entropy",
]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli.main(["report", "--out", str(out), "--quick"])
    assert code == 0
    return out, (out / "README.md").read_text(), buf.getvalue()


def sections(text):
    parts = re.split(r"^## (\d)\. (.*)$", text, flags=re.M)
    return {int(parts[i]): (parts[i + 1], parts[i + 2]) for i in range(1, len(parts), 3)}


def test_readme_has_all_seven_sections(quick):
    out, text, stdout = quick
    found = sections(text)
    assert sorted(found) == [1, 2, 3, 4, 5, 6, 7]
    assert [found[i][0] for i in range(1, 8)] == TITLES
    for number, (_, body) in found.items():
        assert "| linear |" in body and "| xor |" in body, number  # a table row per task
        assert "![" in body, number  # at least one figure
    assert f"report written to {out / 'README.md'}" in stdout


def test_every_setting_of_every_section_is_in_its_table(quick):
    _, text, _ = quick
    found = sections(text)
    for section in report.SECTIONS:
        body = found[section.number][1]
        for variant in section.variants:
            for task in report.TASKS:
                assert f"| {task} | {variant.label} |" in body, (section.key, variant.label, task)
    assert "Quick smoke run" in text and "/2 |" in text  # 2 seeds per cell in quick mode


def test_figures_exist_and_decode(quick):
    out, text, _ = quick
    import matplotlib.image as mpimg

    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) >= 7 + 8  # a curves figure per section, comparisons and boundaries for sections 1 and 4
    for name in links:
        path = out / name
        assert path.is_file(), name
        if name.endswith(".png"):
            image = mpimg.imread(path)
            assert image.ndim == 3 and image[..., :3].std() > 0.02, name
        else:
            assert ET.parse(path).getroot().tag.endswith("svg"), name
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_graphs_are_embedded(quick):

    _, text, _ = quick
    found = sections(text)
    assert "graph_forward.svg" in found[1][1]
    lr_body = found[2][1]
    assert "graph_backward_lr_0.1.svg" in lr_body and "graph_backward_lr_0.0001.svg" in lr_body
    assert "| lr 0.1 | lr 0.0001 |" in lr_body  # side by side


def without_timings(text):
    """The report without the one measured quantity, the seconds per epoch of the convolution section's table."""
    return re.sub(r"^(\| (?:MLP|CNN) \|.*\| )\d+\.\d{3} \|$", r"\1(s) |", text, flags=re.M)


def test_same_seeds_give_the_same_report(quick, tmp_path):
    _, text, _ = quick
    again = report.build_report(tmp_path / "again", report.settings_for(quick=True), figures=False)
    assert without_timings(text) != text  # the timings were found, and only they are set aside
    assert without_timings(again.read_text()) == without_timings(text)


def test_tables_hold_the_runs_numbers(quick):
    """The lab row of section 1, recomputed here from independent runs of the same configs."""
    _, text, _ = quick
    settings = report.settings_for(quick=True)
    for task in report.TASKS:
        histories = [
            runs.run(TrainConfig(task=task, epochs=settings.epochs, seed=s), quiet=True).history for s in settings.seeds
        ]
        acc = np.array([h.final_accuracy for h in histories])
        expected = f"{acc.mean():.2f} ± {acc.std(ddof=1):.2f}"
        row = next(line for line in sections(text)[1][1].splitlines() if line.startswith(f"| {task} |"))
        assert row.split(" | ")[2] == expected
        assert row.split(" | ")[4] == f"{sum(a == 100.0 for a in acc)}/{len(acc)}"


def test_the_convolution_section_compares_the_models_on_the_digits(quick):
    """MLP against CNN: the section follows the numbered ones, its table holds the runs' test accuracies
    (recomputed here from independent runs), and it shows the curves and the CNN's filters."""
    out, text, _ = quick
    from tinygrad_lab.lab.report import digits

    assert text.index("## Extra: convolution layers") > text.index("## 7. ")
    body = text.split("## Extra: convolution layers", 1)[1]
    settings = report.settings_for(quick=True)
    for model in ("mlp", "cnn"):
        runs_ = [
            runs.run(TrainConfig.for_task("digits", model, seed=s, epochs=digits.QUICK_EPOCHS), quiet=True)
            for s in settings.seeds[: digits.SEEDS]
        ]
        acc = np.array([r.history.final_val_accuracy for r in runs_])
        params = sum(p.data.size for p in runs_[0].model.parameters())
        row = next(line for line in body.splitlines() if line.startswith(f"| {model.upper()} |")).split(" | ")
        assert row[1:4] == [f"{acc.mean():.2f} ± {acc.std(ddof=1):.2f}", f"{np.median(acc):.2f}", f"{params:,}"]
    assert "![digits_curves.png](digits_curves.png)" in body and "![digits_filters.png](digits_filters.png)" in body
    assert "- CNN: conv 5x5 (16, 32 channels, padding 2) - relu - max pool 2 per layer" in body  # the lab's recipe
    assert "the pixels standardized with the training images' mean and standard deviation" in body
    assert "test acc(%) :" in body  # the CNN's log, epoch by epoch


def test_claims_table_lists_the_labs_observations(quick):
    _, text, _ = quick
    head = text.split("## 1.")[0]
    rows = [line for line in head.splitlines() if re.match(r"^\| \d \|", line)]
    assert [int(r.split("|")[1]) for r in rows] == [1, 2, 2, 2, 3, 3, 4, 4]
    verdicts = [r.split("|")[-2].strip() for r in rows]
    assert set(verdicts) <= {"confirmed", "not confirmed"}
    assert f"**{verdicts[0]}**" in sections(text)[1][1]  # the table's verdict on section 1 is its prose's


def test_pool_and_single_process_agree():
    configs = [
        TrainConfig(task=t, epochs=40, seed=s, optimizer=o)
        for t in ("xor", "linear")
        for s in (0, 1)
        for o in ("sgd", "adam")
    ]
    one = runner.run_all(configs, workers=1)
    two = runner.run_all(configs, workers=2)
    assert list(one) != [] and set(one) == set(two) == set(configs)
    for c in configs:
        assert one[c]["final_loss"] == two[c]["final_loss"]
        np.testing.assert_array_equal(one[c]["loss_curve"], two[c]["loss_curve"])


def test_all_configs_are_shared_between_sections():
    settings = report.settings_for(seeds=1, epochs=10)
    configs = report.all_configs(settings)
    assert len(configs) == len(set(configs))
    # the lab's cell appears in sections 1, 2, 3, 4, 5, 6 and 7 but runs once per task and seed
    assert sum(c == TrainConfig(task="xor", epochs=10, seed=0) for c in configs) == 1
    # per task: the lab's cell + 2 other learning rates + 2 other sizes + no activation + 3 other activations
    # + 3 other optimizers + BCE
    assert len(configs) == len(report.TASKS) * (1 + 2 + 2 + 1 + 3 + 3 + 1)
    for section in report.SECTIONS:
        for v in section.variants:
            assert all(v.config(t, 10, 0) in configs for t in report.TASKS)


# ---- prose and verdicts follow the numbers (synthetic results, no training) -----------------------------------------


def fake(task, label, accs, first, loss=0.01, seed0=0):
    runs = [
        {
            "config": TrainConfig(task=task, seed=seed0 + i),
            "final_accuracy": a,
            "final_loss": loss if a is not None else math.nan,
            "epochs_to_100": f,
        }
        for i, (a, f) in enumerate(zip(accs, first))
    ]
    return statistics.Cell(task, label, runs, 20000)


def test_cell_statistics():
    cell = fake("xor", "x", [100.0, 100.0, 90.0, 100.0, 80.0], [500, 300, None, 900, None])
    assert cell.n_100 == 3
    assert cell.median_epochs == 900  # sorted: 300, 500, 900, never, never
    assert math.isinf(fake("xor", "x", [100.0, 90.0, 90.0], [10, None, None]).median_epochs)
    m, s = statistics.mean_std(cell.acc)
    assert m == pytest.approx(94.0) and s == pytest.approx(np.std([100, 100, 90, 100, 80], ddof=1))
    assert statistics.fmt_epochs(cell) == "900"


def test_ranking_orders_by_speed_then_names_the_stragglers():
    cells = [
        fake("xor", "slow", [100.0] * 3, [5000, 6000, 7000]),
        fake("xor", "fast", [100.0] * 3, [100, 200, 300]),
        fake("xor", "stuck", [60.0, 70.0, 100.0], [None, None, 19000]),
    ]
    text = statistics.ranking(cells, 20000)
    assert text.startswith("On xor, fast reaches 100% first (median 200 epochs), then slow (6,000).")
    assert "stuck (76.67 ± 20.82%, 1/3 runs at 100%) does not get the median run there within 20,000 epochs." in text
    assert text.endswith("Highest final accuracy: slow and fast (100.00 ± 0.00%).")


def test_ranking_when_nothing_converges():
    cells = [fake("linear", "a", [50.0, 60.0], [None, None]), fake("linear", "b", [70.0, 80.0], [None, None])]
    text = statistics.ranking(cells, 300)
    assert text.startswith("On linear, no setting gets the median run to 100% within 300 epochs: b (75.00 ± 7.07%")
    assert "Highest final accuracy: b" in text


def context(cells):
    return Context(out=None, settings=report.settings_for(seeds=3), cells=cells, compile=False, claims=[], figures=[])


def test_lab_verdict_follows_the_numbers(monkeypatch):
    monkeypatch.setattr(prose, "comparison_figures", lambda *a: "")
    monkeypatch.setattr(prose, "curves_figure", lambda *a: "")
    section = report.SECTIONS[0]
    label = section.variants[0].label
    for xor_accs, ok in (([100.0, 100.0, 100.0], True), ([100.0, 90.0, 100.0], False)):
        cells = {
            ("lab", "linear", label): fake("linear", label, [100.0] * 3, [10, 20, 30]),
            ("lab", "xor", label): fake("xor", label, xor_accs, [10, None if not ok else 20, 30]),
        }
        for c in cells.values():
            for r in c.runs:
                r["log"], r["pred"] = [], None
        ctx = context(cells)
        text = "\n".join(prose.section_lab(ctx, section))
        assert ctx.claims[0][3] is ok
        assert ("**confirmed**" in text) is ok
        assert f"xor: {sum(a == 100.0 for a in xor_accs)}/3 runs at 100%" in ctx.claims[0][2]


def test_learning_rate_verdicts_follow_the_numbers(monkeypatch):
    monkeypatch.setattr(prose, "curves_figure", lambda *a: "")
    section = report.SECTIONS[1]

    def cells(hi_first, lo_accs):
        out = {}
        for task in report.TASKS:
            out[("lr", task, "lr 1")] = fake(task, "lr 1", [100.0] * 3, hi_first[task])
            out[("lr", task, "lr 0.1")] = fake(task, "lr 0.1", [100.0] * 3, [1000, 1000, 1000])
            out[("lr", task, "lr 0.0001")] = fake(task, "lr 0.0001", lo_accs, [None] * 3)
            for c in out.values():
                for r in c.runs:
                    r["weight_change"] = 1.0
        return out

    ctx = context(cells({"linear": [500] * 3, "xor": [100] * 3}, [50.0, 60.0, 55.0]))
    text = "\n".join(prose.section_lr(ctx, section))
    assert [c[3] for c in ctx.claims] == [True, True, True]
    assert "speed-up in median epochs to 100%: linear: 2.0x; xor: 10.0x" in text
    ctx = context(cells({"linear": [100] * 3, "xor": [500] * 3}, [50.0, 60.0, 55.0]))  # faster, but not on XOR
    text = "\n".join(prose.section_lr(ctx, section))
    assert [c[3] for c in ctx.claims] == [True, False, True]
    assert "XOR gains less (500 against 900 on linear)" in text
    ctx = context(cells({"linear": [2000] * 3, "xor": [2000] * 3}, [100.0, 60.0, 55.0]))
    ctx.cells[("lr", "xor", "lr 0.0001")].runs[0]["epochs_to_100"] = 19000
    prose.section_lr(ctx, section)
    assert [c[3] for c in ctx.claims] == [False, False, False]


def test_answer_names_the_fastest_and_the_reliable_settings():
    section = report.SECTIONS[5]  # optimizers
    labels = [v.label for v in section.variants]

    def build(firsts):
        cells = {}
        for task in report.TASKS:
            for label in labels:
                f = firsts[task].get(label, [None, None, None])
                accs = [100.0 if x is not None else 75.0 for x in f]
                cells[(section.key, task, label)] = fake(task, label, accs, f)
        return context(cells)

    ctx = build(
        {
            "linear": {"Adam": [10, 20, 30], "SGD": [500, 600, 700]},
            "xor": {"Adam": [50, 60, 70], "SGD": [900, None, 800]},
        }
    )
    text = prose.answer(ctx, section)
    assert (
        text == "**Answer:** Adam reaches 100% fastest on both tasks. Every run ends at 100% on both tasks with Adam."
    )
    ctx = build({"linear": {"RMSprop": [5, 5, 5]}, "xor": {"Adam": [50, 60, None]}})
    text = prose.answer(ctx, section)
    assert text.startswith("**Answer:** no setting is fastest on both tasks (linear: RMSprop; xor: Adam).")
    assert text.endswith("No setting brings every run to 100% on both tasks.")
    ctx = build({"linear": {}, "xor": {}})
    assert prose.answer(ctx, section).startswith("**Answer:** within 20,000 epochs no setting gets the median run")


def test_report_runs_under_the_spawn_start_method(tmp_path):
    """macOS and Windows start pool workers with spawn: jobs and figures must travel by pickling."""
    import subprocess
    import sys

    code = (
        "import multiprocessing as mp\n"
        "from tinygrad_lab.lab import report\n"
        "if __name__ == '__main__':\n"
        "    mp.set_start_method('spawn')\n"
        f"    report.build_report({str(tmp_path / 'rep')!r}, report.settings_for(quick=True, seeds=1, epochs=30),"
        " workers=2)\n"
    )
    script = tmp_path / "spawn_report.py"
    script.write_text(code)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "rep" / "README.md").is_file()
    assert (tmp_path / "rep" / "lab_curves.png").is_file()


def test_report_links_the_explainer_page_of_the_labs_network(quick):
    out, text, _ = quick
    assert "[Step through its backward pass](backprop_xor.html)" in sections(text)[1][1]
    html = (out / "backprop_xor.html").read_text()
    assert "<svg" in html and "fc1.weight" in html and "<script src" not in html


def test_learning_rates_section_compares_the_curvature_with_two_over_lr(quick):
    from tinygrad_lab.engine.derivatives import loss_hessian
    from tinygrad_lab.lab import data
    from tinygrad_lab.lab.config import LOSSES, build_model, model_spec, seeded_rngs

    _, text, _ = quick
    body = sections(text)[2][1]
    assert "**Curvature.**" in body
    config = TrainConfig(task="xor", seed=0)
    x, y = data.load_task("xor", seeded_rngs(0)[0])
    start = build_model(model_spec(config, 2, 1), seeded_rngs(0)[1])
    top = np.linalg.eigvalsh(loss_hessian(start, x, y, LOSSES["mse"]))[-1]
    assert f"whose largest eigenvalue is {top:.3g}:" in body
    for lr in (1.0, 0.1, 0.0001):
        row = next(line for line in body.splitlines() if line.startswith(f"| lr {lr:g} |"))
        assert row.split(" | ")[1] == f"{2 / lr:.4g}" and row.split(" | ")[2] == f"{top:.3g}"


def test_report_checks_its_own_hand_written_backprop(quick):
    _, text, _ = quick
    part = text.split("## Checking the hand-written backprop\n", 1)[1]
    assert "check_backprop: all 3 gradients agree" in part
    assert part.count(": mismatch: ") == 3  # derivative_sigmoid at the input: every weight's gradient is off
    assert part.count("```") % 2 == 0


def test_no_activation_section_shows_the_network_is_one_linear_map(monkeypatch):
    """Trained without activations, the network's outputs are x @ W1ᵀ W2ᵀ W3ᵀ (nn.Linear keeps (out, in))."""
    monkeypatch.setattr(prose, "comparison_figures", lambda *a: "")
    monkeypatch.setattr(prose, "curves_figure", lambda *a: "")
    section = next(s for s in report.SECTIONS if s.key == "noact")
    cells = {}
    for v in section.variants:
        for task in report.TASKS:
            config = v.config(task, 30, 0).replace(lr=0.01)
            cells[(section.key, task, v.label)] = statistics.Cell(
                task, v.label, [runner.run_one((config, False, 10))], 30
            )
    text = "\n".join(prose.section_noact(context(cells), section))
    gap = float(re.search(r"equal x @ W1ᵀ W2ᵀ W3ᵀ to within (\S+)\.", text).group(1))
    assert gap < 1e-12


def test_the_convolution_answer_counts_the_test_images_behind_the_target():
    """At the full schedule the answer reads the CNN's median against the target in test images too (359 of
    them: one image moves the accuracy by 0.28 points)."""
    from tinygrad_lab.lab.report import digits

    def runs_of(accuracies):
        return [{"test_accuracy": a, "parameters": 100, "test_size": 359} for a in accuracies]

    below = digits._answer({"mlp": runs_of([96.0, 96.1, 96.2]), "cnn": runs_of([96.94, 97.21, 97.77])}, quick=False)
    assert (
        "97.21% (349 of 359 test images), misses the 97.5% it aims for (351 images; one image is 0.28 points)" in below
    )
    above = digits._answer({"mlp": runs_of([96.0, 96.1, 96.2]), "cnn": runs_of([97.77, 97.77, 98.05])}, quick=False)
    assert "97.77% (351 of 359 test images), reaches the 97.5% it aims for" in above
    assert "test images" not in digits._answer({"mlp": runs_of([96.0]), "cnn": runs_of([97.0])}, quick=True)
