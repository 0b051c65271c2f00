"""Reading HadisService specs from YAML/JSON files, with errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from hadis.api.base import describe_validation_error
from hadis.api.service import HadisService
from hadis.errors import InputFileError


def parse_spec(text: str, source: str) -> HadisService:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InputFileError(f"{source}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise InputFileError(f"{source}: expected a HadisService object, got {type(data).__name__}")
    try:
        return HadisService.model_validate(data)
    except ValidationError as e:
        raise InputFileError(describe_validation_error(e, source)) from None


def load_spec(path: str | Path) -> HadisService:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise InputFileError(f"{p}: cannot read: {e.strerror}") from None
    return parse_spec(text, str(p))
