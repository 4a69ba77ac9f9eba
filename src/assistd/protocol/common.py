"""Pieces shared by every resource: the request base, metadata, lists and deletes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

METADATA_MAX_KEYS = 16
METADATA_KEY_MAX = 64
METADATA_VALUE_MAX = 512


class RequestModel(BaseModel):
    """Request bodies: unknown fields are errors (as on OpenAI), no type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True)

    def given(self, name: str) -> bool:
        """True when the client sent the field, even as null."""
        return name in self.model_fields_set


class WireModel(BaseModel):
    """Response objects: every key is always emitted (and so is required in the served OpenAPI)."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


def _check_metadata(value: dict[str, str]) -> dict[str, str]:
    if len(value) > METADATA_MAX_KEYS:
        raise PydanticCustomError(
            "assistd_object_above_max_properties",
            f"Invalid '{{param}}': too many properties. Expected an object with at most {METADATA_MAX_KEYS} "
            f"properties, but got an object with {len(value)} properties instead.",
        )
    for key, item in value.items():
        if len(key) > METADATA_KEY_MAX:
            raise PydanticCustomError(
                "assistd_string_above_max_length",
                f"Invalid '{{param}}': metadata key {key[:20]!r}... is too long. Expected a key with "
                f"maximum length {METADATA_KEY_MAX}, but got a key with length {len(key)} instead.",
            )
        if len(item) > METADATA_VALUE_MAX:
            raise PydanticCustomError(
                "assistd_string_above_max_length",
                f"Invalid '{{param}}': the value of metadata key {key!r} is too long. Expected a string "
                f"with maximum length {METADATA_VALUE_MAX}, but got a string with length {len(item)} "
                "instead.",
            )
    return value


def string_map_schema(max_keys: int, key_max: int, value: dict[str, Any]) -> WithJsonSchema:
    """The OpenAPI form of a checked object (metadata, attributes): the limits the validator enforces."""
    return WithJsonSchema(
        {
            "type": "object",
            "maxProperties": max_keys,
            "propertyNames": {"maxLength": key_max},
            "additionalProperties": value,
        }
    )


Metadata = Annotated[
    dict[str, str],
    AfterValidator(_check_metadata),
    string_map_schema(METADATA_MAX_KEYS, METADATA_KEY_MAX, {"type": "string", "maxLength": METADATA_VALUE_MAX}),
]


def union_tag(choose: Callable[[Any], str | None], custom_message: str) -> Discriminator:
    """A discriminator whose tags ("~name") are hidden from parameter paths (see validation.py)."""
    return Discriminator(
        choose,
        custom_error_type="assistd_invalid_value",
        custom_error_message=custom_message,
    )


def type_tag(value: Any) -> str | None:
    """Choose a union branch by the `type` key of an object."""
    if isinstance(value, dict):
        kind = value.get("type")
        return f"~{kind}" if isinstance(kind, str) else None
    kind = getattr(value, "type", None)
    return f"~{kind}" if isinstance(kind, str) else None


class ListParams(BaseModel):
    """Cursor pagination, as on every OpenAI list endpoint."""

    model_config = ConfigDict(extra="ignore")

    limit: int = Field(default=20, ge=1, le=100)
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None
    before: str | None = None


T = TypeVar("T")


class ListPage(WireModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    first_id: str | None
    last_id: str | None
    has_more: bool


class Deleted(WireModel):
    id: str
    object: str
    deleted: bool = True
