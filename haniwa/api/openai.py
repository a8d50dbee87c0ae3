"""The OpenAI-compatible surface (filled in by the OpenAI issue work)."""

from fastapi import APIRouter

router = APIRouter()
