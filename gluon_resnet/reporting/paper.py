"""He et al. 2016 ("Identity Mappings in Deep Residual Networks"), Table 2 and ResNet-1001:
CIFAR-10 test error in %, medians of 5 runs. Published figures, shown beside ours as context
(never analysed); the one copy that the reports and the findings page read."""
from __future__ import annotations

# ordering -> (the paper's label, ResNet-110, ResNet-164 (bottleneck), ResNet-1001); "" = not run
HE_2016 = {"conv_bn_relu": ("(a)", "6.61", "5.93", "7.61"),
           "bn_after_add": ("(b)", "8.17", "6.50", ""),
           "relu_before_add": ("(c)", "7.84", "6.14", ""),
           "relu_preact": ("(d)", "6.71", "5.91", ""),
           "bn_relu_conv": ("(e)", "6.37", "5.46", "4.92 (4.89 ± 0.14)")}
HEADER = ["paper", "ordering", "ResNet-110", "ResNet-164", "ResNet-1001"]


def rows() -> list[list[str]]:
    """The table as report rows: label, ordering, one error per depth."""
    return [[label, ordering, *errors] for ordering, (label, *errors) in HE_2016.items()]


def _gap(column: int) -> float:
    """conv_bn_relu's error minus bn_relu_conv's at one depth, in points."""
    a, e = HE_2016["conv_bn_relu"][column], HE_2016["bn_relu_conv"][column]
    return float(a) - float(e.split()[0])


def context() -> str:
    """One paragraph for the findings page: the 110-layer errors and the gap by depth."""
    at_110 = [f"{errors[0]} % ({o})" for o, (_, *errors) in HE_2016.items()]
    a, e = HE_2016["conv_bn_relu"], HE_2016["bn_relu_conv"]
    return ("For context only, not results of ours: He et al. (2016, Table 2) report CIFAR-10 "
            f"test error at 110 layers of {', '.join(at_110[:-1])} and {at_110[-1]}, medians "
            "of 5 runs; the gap between conv_bn_relu and bn_relu_conv grows with depth there: "
            f"{_gap(1):.2f} points at 110 layers, {_gap(2):.2f} at 164 (bottleneck: {a[2]} % "
            f"against {e[2]} %) and {_gap(3):.2f} at 1001 ({a[3]} % against "
            f"{e[3].split()[0]} %).")
