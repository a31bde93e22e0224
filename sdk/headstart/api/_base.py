"""The common base of every API model: camelCase on the wire, snake_case in Python, strict fields."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


def cel(*rules: tuple[str, str]) -> ConfigDict:
    """Model config carrying CEL rules into the generated CRD (x-kubernetes-validations)."""
    return ApiModel.model_config | ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]})


class ApiModel(BaseModel):
    """Base for all FineTuneJob models.

    - Wire names are camelCase (``learningRate``); Python attributes are snake_case.
    - Unknown fields are errors (a typo must not be silently ignored).
    - Defaults live here and are applied when reading; they are never written back into a user's spec:
      serialise a user's spec with ``exclude_unset=True``.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=True,
        use_attribute_docstrings=True,
    )

    def to_wire(self, *, exclude_unset: bool = True) -> dict:
        """The object as it is written on the wire (camelCase, JSON types)."""
        return self.model_dump(by_alias=True, mode="json", exclude_unset=exclude_unset, exclude_none=True)
