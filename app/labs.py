"""The guided labs (issue 11) and the map of the chapter that the /labs index opens with.

``LABS`` lists every lab in the chapter's order; ``CHAPTER_MAP`` lists the chapter's
sections in order, each with what in the app lets a learner run it (a playground preset,
the step-through page, a lab, a heavy job). Both are plain data: the index template draws
them and tests check that every link they hold answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Lab:
    """One guided lab: its URL slug, its number, what it is about and its opening question."""

    name: str
    number: int
    title: str
    section: str  # the chapter's section the lab follows, e.g. "6.3.2"
    summary: str
    question: str


LABS: list[Lab] = [
    Lab(
        "shallow-regression", 1, "A shallow network for regression", "6.1",
        "One hidden layer of sigmoid units and a linear output fit a noisy 1-D curve with "
        "squared error and a weight penalty; each hidden unit's S-shaped curve is drawn as "
        "it learns, beside the sum they make.",
        "Compared with no penalty at all, what will your weight decay λ do to the fit?",
    ),
    Lab(
        "conditional-statistics", 2, "Mean or median: what a loss estimates", "6.2",
        "The same skewed, noisy data fitted twice, with squared error and with absolute "
        "error, beside the conditional mean and median computed straight from the data.",
        "The noise only ever pushes y upwards. Which fit will sit higher?",
    ),
    Lab(
        "saturating-losses", 3, "Losses that saturate", "6.3.2",
        "The same network trained side by side with softmax + negative log-likelihood and "
        "with softmax + squared error, starting confidently wrong on many examples; the "
        "gradient each loss sends to the correct class's score is drawn against that score.",
        "Which run will still be confidently wrong on more training examples at the end?",
    ),
    Lab(
        "output-units", 4, "Output units as conditional distributions", "6.3.2",
        "A Bernoulli, a softmax, a Gaussian with a learned precision and a mixture density "
        "output, each trained by maximum likelihood on 1-D data, drawn as the distribution "
        "p(y | x) they learn; gradient clipping on or off for the mixture.",
        "Each output unit asks its own question: pick one and predict before you train.",
    ),
    # labs 5-7
    Lab(
        "hidden-units", 5, "Hidden units", "6.8",
        "Rectifiers, leaky and parametric ReLUs, maxout, absolute value, hard tanh, sigmoid, "
        "tanh, softplus and RBF units side by side: dead and saturated units counted as the "
        "net learns, a positive starting bias, a net whose random hidden layers stay fixed, "
        "and the map of linear regions a piecewise-linear net cuts the plane into.",
        "How many linear regions will the trained net cut the plane into, against the most "
        "that one layer of the same units can make?",
    ),
    Lab(
        "random-operations", 6, "Back-propagating through random operations", "6.5",
        "A sample y = μ + σz and a cost J(y): the gradient of the expected cost estimated by "
        "back-propagating through the sample and by REINFORCE, with and without a baseline, "
        "as the number of samples grows.",
        "Which estimate of ∂E[J]/∂μ will land closest to the exact gradient?",
    ),
    Lab(
        "depth-and-curvature", 7, "Depth, width and curvature", "6.6",
        "The same parameter budget spent on one wide layer or on several narrow ones, error "
        "against parameter count; then the trained net's Hessian by Hessian-vector products: "
        "its top eigenvalues and the cost along the sharpest direction, with larger runs "
        "sent to the jobs.",
        "With the same number of parameters, which net will fit the target best?",
    ),
]

LAB_NAMES = [lab.name for lab in LABS]


def lab(name: str) -> Lab:
    """The lab called ``name``; KeyError for an unknown one."""
    for entry in LABS:
        if entry.name == name:
            return entry
    raise KeyError(name)


@dataclass(frozen=True)
class Runner:
    """Something in the app that runs part of a section: kind is preset, playground, step,
    lab or job."""

    kind: str
    label: str
    href: str


@dataclass(frozen=True)
class Section:
    number: str
    title: str
    gist: str  # what the section is about, in our own words
    runners: list[Runner] = field(default_factory=list)


def _preset(name: str, label: str) -> Runner:
    return Runner("preset", label, f"/?preset={name}")


def _lab(name: str) -> Runner:
    return Runner("lab", f"Lab {lab(name).number}: {lab(name).title}", f"/labs/{name}")


def _job(kind: str, label: str) -> Runner:
    return Runner("job", label, f"/jobs#form-{kind}")


def chapter_map(available: set[str] | None = None) -> list[Section]:
    """The chapter's sections in order with what runs each. A lab appears once it is in
    ``LABS`` and, when ``available`` is given, in it (the labs whose page exists)."""
    names = set(LAB_NAMES) if available is None else set(LAB_NAMES) & available

    def maybe(name: str) -> list[Runner]:
        return [_lab(name)] if name in names else []

    step = Runner("step", "Step through the forward and backward passes", "/step")
    return [
        Section("6.1", "MLPs from the 1980's",
                "A hidden layer learns features; a linear output combines them. Example 6.1.1 "
                "fits a regression with sigmoid hidden units and weight decay; Fig. 6.2 shows "
                "a hidden layer warping the plane until the classes separate.",
                [_preset("example_6_1_1", "Preset: Example 6.1.1 (Fig. 6.1)"),
                 *maybe("shallow-regression"),
                 _preset("fig_6_2", "Preset: Fig. 6.2, two curves")]),
        Section("6.2", "Estimating conditional statistics",
                "Minimising squared error makes the network estimate the mean of y given x; "
                "absolute error makes it estimate the median.",
                [*maybe("conditional-statistics"),
                 _preset("mean_median", "Preset: mean against median")]),
        Section("6.3.1", "Family of functions",
                "Networks compose affine maps and element-wise non-linearities: tanh, "
                "sigmoid, rectifiers and others.",
                [_preset("deep_spiral", "Preset: a deep tanh net on the spiral"), step,
                 *maybe("hidden-units")]),
        Section("6.3.2", "Loss function and conditional log-likelihood",
                "The output unit defines a distribution p(y | x) and the loss is its negative "
                "log-likelihood: Bernoulli, softmax, a Gaussian whose precision is learned, "
                "a mixture of Gaussians.",
                [*maybe("saturating-losses"), *maybe("output-units"),
                 _preset("spiral_3", "Preset: 3-class spiral, softmax"),
                 _preset("learned_precision", "Preset: learned precision"),
                 _preset("mixture", "Preset: mixture density")]),
        Section("6.3.3", "Cost functions for neural networks",
                "The negative log-likelihood plus a regulariser such as weight decay.",
                [_preset("example_6_1_1", "Preset: squared error with weight decay")]),
        Section("6.3.4", "Optimization procedure",
                "Iterative optimisation: stochastic gradient descent, often with momentum.",
                [Runner("playground", "Playground: choose SGD, momentum, Nesterov or Adam", "/")]),
        Section("6.4", "Computational graphs and back-propagation",
                "The chain rule applied node by node in reverse order computes every "
                "gradient at about the cost of the forward pass.",
                [step]),
        Section("6.4.5", "Higher-order derivatives",
                "Differentiating the gradient gives Hessian-vector products without forming "
                "the Hessian.",
                [*maybe("depth-and-curvature"),
                 _job("spectrum", "Job: the Hessian's top eigenvalues"),
                 _job("landscape", "Job: a slice of the loss landscape")]),
        Section("6.5", "Back-propagation through random operations",
                "Writing a sample as a deterministic function of its parameters and of noise "
                "lets gradients flow through it.",
                [*maybe("random-operations")]),
        Section("6.6", "Universal approximation and depth",
                "One wide hidden layer can approximate a smooth function; depth can do it "
                "with far fewer units.",
                [*maybe("depth-and-curvature"),
                 _job("sweep", "Job: a sweep of widths and depths")]),
        Section("6.7", "Feature and representation learning",
                "Instead of fixing the features, the network learns them: the hidden layer's "
                "representation is what makes a task easy for the output layer.",
                [_preset("fig_6_2", "Preset: Fig. 6.2 (watch the warp)"),
                 _job("digits", "Job: a 784-100-10 net on digits")]),
        Section("6.8", "Piecewise linear hidden units",
                "Rectifiers and maxout: units with linear pieces that keep gradients flowing.",
                [*maybe("hidden-units"),
                 _preset("spiral_3", "Preset: ReLU layers on the spiral")]),
        Section("6.9", "Historical notes",
                "Where these ideas came from; nothing to run here.", []),
    ]
