"""The headline: all five block orderings in d2l's ResNet-18, d2l's protocol, five seeds."""
from gluon_resnet.config import RunConfig
from gluon_resnet.analysis.declared import Analysis
from gluon_resnet.runs.experiment import SMOKE_DATA, Experiment, Profile
from gluon_resnet.orderings import ORDERINGS

EXPERIMENT = Experiment(
    name="orderings",
    description=(
        "Does the order of convolution, batch normalisation and ReLU inside a residual block "
        "change how d2l's ResNet-18 trains on Fashion-MNIST at 96x96? All five orderings of "
        "He et al. 2016 (Fig. 4), d2l's protocol (SGD lr 0.05, batch 256, Xavier, 10 epochs, "
        "no momentum, no weight decay, no augmentation). Declared analysis: each ordering "
        "against conv_bn_relu on the final test accuracy (on the full protocol, at a "
        "constant learning rate, the mean of the last three epochs read with precise "
        "BatchNorm statistics: there a single epoch swings, and the running statistics "
        "trail the fast-moving weights), paired by seed, equivalence margin 0.5 points: "
        "under it a difference is smaller than the seed-to-seed spread measured in the "
        "quick pilot (0.2-0.9 points between two seeds of one ordering) and than what "
        "separates the orderings in He et al.'s Table 2 at 110 layers (0.1-1.6 points), so "
        "it would change no one's choice of block."
    ),
    base=RunConfig(arch="d2l18", size=96, lr=0.05, batch_size=256, epochs=10),
    grid={"ordering": tuple(ORDERINGS), "seed": (0, 1, 2, 3, 4)},
    analysis=Analysis(metric="final_test_acc", baseline="conv_bn_relu", margin=0.005,
                      alpha=0.05, paired=True, max_seeds=10),
    profiles={
        "full": Profile(note="d2l's protocol as defined: full width, all 70,000 images, 10 epochs.",
                        analysis={"metric": "last3_precise_test_acc"}),
        "quick": Profile(
            note=("affordable on a 2-core CPU: channels x 0.25, the first 2,000 training "
                  "images of each class (20,000), the full 10,000-image test set, d2l's 10 "
                  "epochs with a cosine decay of the learning rate from d2l's 0.05, one seed "
                  "(add seeds with --seeds or --until-decided). Why the decay: at a constant "
                  "rate without momentum, short runs end wherever the test accuracy happens "
                  "to swing (measured here: one bn_after_add run read 0.56, 0.80, 0.85, 0.77 "
                  "over its last four epochs). Why 10 epochs: with 6, train accuracy was "
                  "still rising in the last epoch (0.926 -> 0.936 for conv_bn_relu), so a "
                  "comparison would partly measure which ordering trains faster. Same 96x96 "
                  "images; numbers are not comparable with the full protocol's."),
            overrides={"width": 0.25, "train_per_class": 2000, "epochs": 10,
                       "schedule": "cosine"},
            grid={"seed": (0,)},
        ),
        "smoke": Profile(
            note="seconds, for tests and CI: a tiny net on 200 images at 32x32, 2 epochs, 1 seed.",
            overrides={**SMOKE_DATA, "width": 0.0625, "size": 32, "epochs": 2},
            grid={"seed": (0,)},
        ),
    },
)
