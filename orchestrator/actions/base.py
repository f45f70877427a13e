"""The contract between a runbook step and the code that performs it.

An action is a name, a pydantic ``Params`` model for the step's ``with``, a description of what it touches
(for ``drctl plan``), whether repeating it is safe, and a ``run`` callable. The executor (a later change)
calls ``run(params, ctx)`` once per attempt with the step's parameters resolved; until then ``run`` is None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Generic, Literal, Protocol, TypeVar

from pydantic import ValidationInfo

from orchestrator.runbook.fields import Strict
from orchestrator.stack_outputs import StackOutputs

if TYPE_CHECKING:
    from orchestrator.drill.scope import DrillScope

RunMode = Literal["drill", "failover"]
OutputValue = str | int | float | bool
Access = Literal["reads", "writes", "runs", "calls", "sends", "waits"]


class ActionParams(Strict):
    """Base of every action's ``Params``: the keys its ``with`` accepts, frozen, unknown keys refused.

    Text fields may still hold run-time references (``${stack...}``, ``${steps...}``, ``${env...}``); the
    executor resolves them with ``orchestrator.runbook.interpolate.resolve_params`` before ``run``.
    """

    context_phrase = "in 'with'"

    @classmethod
    def unknown_key_phrase(cls, info: ValidationInfo) -> str:
        action = (info.context or {}).get("action")
        return f"in 'with' of {action}" if action else cls.context_phrase


P = TypeVar("P", bound=ActionParams)
P_contra = TypeVar("P_contra", bound=ActionParams, contravariant=True)


class StepStatus(StrEnum):
    """How one step ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class StepResult:
    """The outcome of one attempt. ``outputs`` are what ``${steps.ID.outputs.NAME}`` reads; their names are
    the action's declared ``outputs``. ``retryable`` says a failure may pass on a later attempt."""

    status: StepStatus
    outputs: Mapping[str, OutputValue] = field(default_factory=dict)
    message: str = ""
    retryable: bool = False


class ActionContext(Protocol):
    """What the executor gives an action for one attempt of one step."""

    @property
    def step_id(self) -> str: ...

    @property
    def mode(self) -> RunMode: ...

    @property
    def run_id(self) -> str: ...

    @property
    def drill(self) -> DrillScope | None:
        """In a drill: its tags, network and DNS zone, and where to note what it made; None in a failover."""
        ...

    @property
    def env(self) -> Mapping[str, str]:
        """The environment the action may read (credentials, keys); never logged."""
        ...

    @property
    def stack(self) -> StackOutputs | None: ...

    @property
    def deadline(self) -> float | None:
        """``time.monotonic()`` by which the attempt must end (the step's ``timeout``), or None."""
        ...

    def cancelled(self) -> bool:
        """True once the run is interrupted; long actions poll it and stop early."""
        ...

    def log(self, message: str) -> None: ...


def azure_group(explicit: str | None, ctx: ActionContext) -> str | None:
    """The resource group a step names, else the stack's ``azure_resource_group``."""
    return explicit or (ctx.stack.azure_resource_group if ctx.stack else None)


class ActionRun(Protocol[P_contra]):
    """Perform one attempt of a step. Failures the action anticipates are a ``StepResult``; anything else is
    a ``DrError`` the executor records (``Transient`` ones as retryable)."""

    def __call__(self, params: P_contra, ctx: ActionContext, /) -> StepResult: ...


@dataclass(frozen=True)
class Touch:
    """One thing a step affects, for ``drctl plan``: ``writes az://vault/db/``."""

    access: Access
    target: str

    def __str__(self) -> str:
        return f"{self.access} {self.target}"


@dataclass(frozen=True)
class ActionSpec(Generic[P]):
    """One registered action.

    ``idempotent`` says whether running the action again after it was interrupted, timed out or even
    succeeded leaves things as one run would; the executor retries and resumes only idempotent steps without
    asking. Each action module's docstring says why its answer is what it is.
    """

    name: str
    params: type[P]
    description: str
    touches: Callable[[P], tuple[Touch, ...]]
    idempotent: bool
    outputs: frozenset[str] = frozenset()
    run: ActionRun[P] | None = None

    def touches_of(self, params: ActionParams) -> tuple[Touch, ...]:
        """``touches`` for parameters typed as the base class, as a validated step holds them."""
        if not isinstance(params, self.params):
            raise TypeError(f"{self.name} expects {self.params.__qualname__}, got {type(params).__qualname__}")
        return self.touches(params)
