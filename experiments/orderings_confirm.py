"""A confirmatory study of the headline's two open comparisons, on new seeds, declared before
its first run: `orderings`' quick protocol, conv_bn_relu against relu_preact and bn_relu_conv."""
from gluon_resnet.analysis.declared import Analysis
from gluon_resnet.runs.experiment import SMOKE_DATA, Experiment, Profile

from . import orderings

FIRST = orderings.EXPERIMENT

EXPERIMENT = Experiment(
    name="orderings_confirm",
    description=(
        "Confirmatory study of the two comparisons `orderings` (quick profile) left "
        "undecided at its locked cap of 10 seeds: relu_preact (-0.03 points) and bn_relu_conv "
        "(-0.43 points) against conv_bn_relu in d2l's ResNet-18 on the same protocol, on seeds "
        "that study did not use (10 onward), reported on its own; the first study's report "
        "and verdicts stand as they are. Declared analysis, before its first run: final test "
        "accuracy, higher is better, paired by seed, on the median of the per-seed "
        "differences (sign test; the statistics rules' default, exact for any distribution of "
        "the differences), equivalence margin 0.5 points (the first study's), alpha 0.05 over "
        "the two comparisons (Holm) and all looks, looks from 3 seeds to the cap of 20; a run "
        "that diverges or ends below 20 % (chance is 10 %) has collapsed and is counted in a "
        "separate claim on collapse rates. Why a cap of 20: simulated through the loop's "
        "looks and early stops (4,000 experiments each) at the first study's per-seed "
        "differences (relu_preact mean -0.03, sd 0.45 points; bn_relu_conv mean -0.43, sd "
        "0.36), the plan settles relu_preact by 20 seeds in 84 % of experiments (10 seeds: "
        "40 %, 15: 59 %) and bn_relu_conv in 91 % (about 14 and 12 seeds expected), within "
        "the study's budget of about 15 CPU-hours (60 runs at the cap)."
    ),
    base=FIRST.base,
    grid={"ordering": ("conv_bn_relu", "relu_preact", "bn_relu_conv"), "seed": (10, 11, 12)},
    analysis=Analysis(metric="final_test_acc", baseline="conv_bn_relu", margin=0.005,
                      alpha=0.05, paired=True, max_seeds=20, basis="median",
                      collapse="separate", collapse_below=0.2),
    profiles={
        "full": Profile(note=FIRST.profiles["full"].note,
                        overrides=FIRST.profiles["full"].overrides,
                        analysis={"metric": "last3_precise_test_acc"}),
        "quick": Profile(note=("the first study's quick protocol, unchanged: "
                               + FIRST.profiles["quick"].note.split(", one seed")[0]
                               + "; seeds from 10 (--until-decided's rounds start at the "
                               "grid's first seed)."),
                         overrides=FIRST.profiles["quick"].overrides, grid={"seed": (10,)}),
        "smoke": Profile(
            note="seconds, for tests and CI: a tiny net on 200 images at 32x32, 2 epochs, 1 seed.",
            overrides={**SMOKE_DATA, "width": 0.0625, "size": 32, "epochs": 2},
            grid={"seed": (10,)},
            analysis={"collapse_below": 0.0},  # its tiny runs may end near chance
        ),
    },
)
