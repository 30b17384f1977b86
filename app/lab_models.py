"""The settings of labs 1-4 (issue 11), validated like the playground's: every field has
limits, an unknown field is an error, and a combination too large for one request says
why and which value is the largest that works (``LabTooLarge``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# One request trains at most this much: steps × runs × (1 + hidden units / 32), times
# (1 + components / 3) for a mixture, a few seconds of one core at most; the server holds a
# class of 50, so a lab asks for seconds, not minutes.
WORK_LIMIT = 10_000


CURVES_LIMIT = 960  # hidden-unit curves in one reply of lab 1 (snapshots × hidden units)


class LabTooLarge(ValueError):
    """A setting the lab cannot run in one request; ``largest`` is the largest that works."""

    def __init__(self, message: str, field: str, largest: int):
        super().__init__(message)
        self.message = message
        self.field = field
        self.largest = largest


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runs: int = 1  # how many networks a request trains (not a field a client sends)
    seed: int = Field(0, ge=0, le=1_000_000, description="seeds the data, the weights and "
                      "the minibatch order")
    snapshots: int = Field(30, ge=2, le=60, description="how many moments of training the "
                           "page animates")

    def step_weight(self) -> float:
        """How much dearer than a plain regression step one step of this lab is."""
        return 1.0

    def check_budget(self) -> None:
        """Raise ``LabTooLarge`` when the run would train too long for one request."""
        per_step = self.runs * (1.0 + getattr(self, "hidden", 16) / 32.0) * self.step_weight()
        largest = int(WORK_LIMIT / per_step)
        if self.steps > largest:  # type: ignore[attr-defined]
            raise LabTooLarge(
                f"{self.steps} steps is too long for one request: this lab trains "  # type: ignore[attr-defined]
                f"{self.runs} network(s) of {getattr(self, 'hidden', 16)} hidden units, and "
                f"the server shares its time with a whole class. The largest number of "
                f"steps that works with these settings is {largest}.",
                "steps", largest,
            )


class ShallowRegression(_Settings):
    """Lab 1: Example 6.1.1's network on a noisy sine."""

    runs: Literal[2] = Field(2, exclude=True)  # the learner's λ and the λ = 0 reference
    hidden: int = Field(6, ge=1, le=32, description="sigmoid hidden units n_h")
    l2: float = Field(0.01, ge=0.0, le=1.0, description="weight decay λ on W and V only")
    learning_rate: float = Field(0.3, gt=0.0, le=5.0)
    steps: int = Field(2000, ge=1, le=8000)
    noise: float = Field(0.3, ge=0.0, le=1.0)
    size: int = Field(200, ge=10, le=2000)

    def check_budget(self) -> None:
        """Each snapshot carries every hidden unit's curve: at most 960 curves per run."""
        super().check_budget()
        largest = CURVES_LIMIT // self.hidden
        if self.snapshots > largest:
            raise LabTooLarge(
                f"{self.snapshots} snapshots of {self.hidden} hidden units' curves make a reply "
                f"too large to send at once. The largest number of snapshots that works with "
                f"{self.hidden} hidden units is {largest}.", "snapshots", largest,
            )


class ConditionalStatistics(_Settings):
    """Lab 2: squared against absolute error on skewed data."""

    runs: Literal[2] = Field(2, exclude=True)
    hidden: int = Field(16, ge=1, le=32)
    learning_rate: float = Field(0.01, gt=0.0, le=1.0)
    steps: int = Field(3000, ge=1, le=8000)
    noise: float = Field(0.5, ge=0.0, le=1.0)
    size: int = Field(1000, ge=20, le=2000)
    bins: int = Field(12, ge=2, le=40, description="bins of x for the data's own mean and median")


class SaturatingLosses(_Settings):
    """Lab 3: softmax + NLL against softmax + squared error from the same weights."""

    runs: Literal[2] = Field(2, exclude=True)
    hidden: int = Field(16, ge=1, le=32)
    init_scale: float = Field(8.0, gt=0.0, le=20.0, description="multiplies the initial "
                              "weights: larger starts more examples confidently wrong")
    learning_rate: float = Field(0.05, gt=0.0, le=5.0)
    steps: int = Field(1000, ge=1, le=8000)
    size: int = Field(300, ge=30, le=1500)
    spread: float = Field(0.6, gt=0.0, le=3.0, description="standard deviation of each cloud")


class OutputUnits(_Settings):
    """Lab 4: one output unit trained by maximum likelihood."""

    unit: Literal["bernoulli", "softmax", "gaussian_learned", "mixture"] = "mixture"
    hidden: int = Field(16, ge=1, le=32)
    components: int = Field(3, ge=1, le=6, description="mixture components")
    clip: bool = Field(True, description="clip the gradient's norm (the mixture's remedy)")
    clip_norm: float = Field(5.0, gt=0.0, le=1000.0)
    learning_rate: float = Field(0.01, gt=0.0, le=1.0)
    steps: int = Field(2000, ge=1, le=8000)
    size: int = Field(400, ge=20, le=2000)

    def step_weight(self) -> float:
        # a mixture's loss costs about a third more per component than a single output
        return 1.0 + self.components / 3.0 if self.unit == "mixture" else 1.0
