"""The base of every settings section, with the rules every number follows.

Numbers are finite and, unless a field sets its own ceiling, at most
:data:`~streamproc.domain.INT32_MAX`, checked here for every field, including fields added
later without a ceiling of their own.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic.fields import FieldInfo

from streamproc.domain import check_magnitude


def _has_ceiling(field: FieldInfo) -> bool:
    return any(hasattr(m, "le") or hasattr(m, "lt") for m in field.metadata)


class Frozen(BaseModel):
    """A settings section: immutable, unknown keys refused, every number finite and bounded."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_default=True, allow_inf_nan=False
    )

    @field_validator("*")
    @classmethod
    def _fits(cls, value: Any, info: ValidationInfo) -> Any:
        """Every number field gets a ceiling, including fields added later without one."""
        if info.field_name is not None and not _has_ceiling(cls.model_fields[info.field_name]):
            check_magnitude(value)
        return value
