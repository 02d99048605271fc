"""Placeholder: being written this session."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
