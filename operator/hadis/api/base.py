"""Shared model configuration: camelCase aliases, unknown fields rejected, readable errors."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Base of every HADIS model.

    Fields are snake_case in Python and camelCase on the wire (YAML/JSON, the CRD); both spellings
    are accepted on input. Unknown fields are an error, so a typo in a spec never passes silently.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    def to_wire(self) -> dict[str, object]:
        """JSON-compatible dict with camelCase keys, defaults included, ``None`` left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def describe_validation_error(err: ValidationError, source: str) -> str:
    """One line per problem, each naming the field path (camelCase, as the user wrote it)."""
    lines = [f"{source}: {err.error_count()} invalid field(s)"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        lines.append(f"  {loc}: {e['msg']}")
    return "\n".join(lines)
